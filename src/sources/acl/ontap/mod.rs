//! Permissions from the ONTAP REST API: the paths come from a walk of the volume
//! (`walk.rs`) or from the job's input listing (an S3 access point of the same
//! volume, keys mapped under `listing_root`); each path's permissions from
//! `GET /api/protocols/file-security/permissions/{svm}/{junction + path}`
//! (`permissions.rs`), through one client (`client.rs`).

pub mod client;
pub mod fields;
pub mod pages;
pub mod permissions;
pub mod shares;

pub mod walk;

use serde_json::Value;

use super::entry::ObjectAcl;
use super::found::{Failure, Found, Limits, Notes, Stage, refused_path};
use super::options::{Login, Ontap};
use super::principals::NtfsNames;
use crate::base::error::{Error, Result};
use crate::base::redact::Secret;
use crate::discover::ItemSink;
use crate::storage::Location;
use client::{Answer, Client, ClientError, encode_path};
use object_store::ObjectStoreExt;

/// A connected collector.
#[derive(Debug)]
pub struct Collector {
    pub settings: Ontap,
    client: std::sync::Arc<Client>,
    /// The volume's junction path in the SVM namespace (`/vol1`; `/` for the root).
    junction: String,
    names: NtfsNames,
}

impl Collector {
    /// Logs in (the secret fetched if the login is one), or loads the recording,
    /// and learns the volume's junction path.
    pub async fn connect(
        settings: Ontap,
        names: NtfsNames,
        replay: Option<(&Location, &str)>,
    ) -> Result<Self> {
        let client = match replay {
            Some((input, file)) => {
                let bytes = input
                    .store
                    .get(&input.child(file))
                    .await
                    .map_err(|e| {
                        Error::config(format!("the ONTAP recording `{file}` under the input: {e}"))
                    })?
                    .bytes()
                    .await
                    .map_err(|e| Error::config(format!("the ONTAP recording `{file}`: {e}")))?;
                Client::replay(&bytes, &settings)
            }
            None => {
                let login_with = settings.login.as_ref().ok_or_else(|| {
                    Error::config("no ONTAP credentials (only a recording needs none)")
                })?;
                let (username, password) = login(login_with).await?;
                Client::new(&settings, username, password)
            }
        }
        .map_err(|e| match e {
            ClientError::Setup(_) => Error::config(e.to_string()),
            _ => Error::Collect(e.to_string()),
        })?;
        let junction = match &settings.junction_path {
            Some(j) => j.clone(),
            None => junction_path(&client, &settings.volume_uuid).await?,
        };
        if refused_path(&junction).is_some() {
            return Err(Error::config(format!(
                "the volume's junction path `{junction}` is not a path starting at / without . or .. segments"
            )));
        }
        Ok(Collector {
            settings,
            client: std::sync::Arc::new(client),
            junction: junction.trim_end_matches('/').to_string(),
            names,
        })
    }

    pub async fn walk(&self, limits: Limits, sink: &mut ItemSink, notes: &Notes) -> Result<()> {
        let s = &self.settings;
        walk::walk(
            &self.client,
            &s.volume_uuid,
            s.page_size,
            s.max_in_flight,
            limits,
            sink,
            notes,
        )
        .await
    }

    /// The volume path of an input key (`enumerate = "listing"`).
    pub fn listed_path(&self, key: &str) -> String {
        let root = self.settings.listing_root.trim_end_matches('/');
        format!("{root}/{}", key.trim_start_matches('/'))
    }

    /// One path's permissions; `Ok(Err)` is a reject, `Err` stops the run.
    pub async fn collect(
        &self,
        path: &str,
        found: &Found,
    ) -> std::result::Result<std::result::Result<ObjectAcl, Failure>, ClientError> {
        if let Some(why) = refused_path(path) {
            return Ok(Err(Failure::new(
                Stage::Permissions,
                format!("refused before any request: {why}"),
            )));
        }
        let namespace_path = if path == "/" {
            if self.junction.is_empty() {
                "/".to_string()
            } else {
                self.junction.clone()
            }
        } else {
            format!("{}{path}", self.junction)
        };
        let target = format!(
            "/api/protocols/file-security/permissions/{}/{}{}",
            self.settings.svm_uuid,
            encode_path(&namespace_path),
            if self.settings.lookup_names {
                ""
            } else {
                "?lookup_names=false"
            }
        );
        Ok(match self.client.get(&target).await? {
            Answer::Ok(v) => {
                permissions::parse(path, &found.object_type, &v, &self.names).map_err(|why| {
                    Failure::new(
                        Stage::Permissions,
                        format!("an answer naslake cannot read: {why}"),
                    )
                })
            }
            Answer::Refused { status, message } => Err(Failure {
                stage: Stage::Permissions,
                http_status: status,
                reason: match status {
                    Some(404) => format!("vanished (or never there): {message}"),
                    Some(403) => format!("denied: {message}"),
                    _ => message,
                },
            }),
        })
    }

    pub fn requests_sent(&self) -> u64 {
        self.client.requests_sent()
    }

    /// The SVM's shares over this volume.
    pub async fn shares(&self) -> std::result::Result<Vec<shares::Share>, String> {
        let s = &self.settings;
        shares::shares(&self.client, &s.svm_uuid, &self.junction, s.page_size).await
    }

    /// The SVM's CIFS local groups.
    pub async fn local_groups(
        &self,
    ) -> std::result::Result<Vec<super::directory::LocalGroup>, String> {
        let s = &self.settings;
        shares::local_groups(&self.client, &s.svm_uuid, s.page_size).await
    }

    /// The SVM's UNIX groups.
    pub async fn unix_groups(
        &self,
    ) -> std::result::Result<Vec<super::directory::UnixGroup>, String> {
        let s = &self.settings;
        shares::unix_groups(&self.client, &s.svm_uuid, s.page_size).await
    }
}

/// The user name and password: from the environment, or the secret's
/// `{"username", "password"}`.
async fn login(login: &Login) -> Result<(String, Secret)> {
    match login {
        Login::Password { username, password } => Ok((username.clone(), password.clone())),
        Login::Secret(id) => {
            let value = crate::storage::sdk::secret_value(id, "the ONTAP credentials secret")
                .await
                .map_err(Error::Collect)?;
            #[derive(serde::Deserialize)]
            struct Credentials {
                username: String,
                password: String,
            }
            let c: Credentials = serde_json::from_str(&value).map_err(|_| {
                Error::Collect(format!(
                    "the ONTAP credentials secret `{id}` is not JSON with \"username\" and \"password\""
                ))
            })?;
            Ok((c.username, Secret::new(c.password)))
        }
    }
}

/// `nas.path` of the volume.
async fn junction_path(client: &Client, volume: &str) -> Result<String> {
    let target = format!("/api/storage/volumes/{volume}?fields=nas.path");
    match client.get(&target).await.map_err(|e| Error::Collect(e.to_string()))? {
        Answer::Ok(v) => v
            .pointer("/nas/path")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| {
                Error::config(format!(
                    "volume {volume} has no junction path (nas.path): it is not mounted in the SVM namespace; set `ontap.junction_path`"
                ))
            }),
        // A 404: no such volume, or a filer (a stand-in) without the volumes
        // endpoint. If the volume's root can be listed it exists: the permissions
        // API is then asked with the volume's own paths. Said, since on a real
        // filer mounted elsewhere every path would be a 404 reject.
        Answer::Refused {
            status: Some(404),
            message,
        } => {
            let root = walk::files_target(volume, "/", 1);
            match client.get(&root).await.map_err(|e| Error::Collect(e.to_string()))? {
                Answer::Ok(_) => {
                    tracing::warn!(
                        volume,
                        "no junction path for the volume ({message}): asking for permissions by the volume's own paths; set `ontap.junction_path` if the volume is mounted elsewhere in the SVM namespace"
                    );
                    Ok("/".to_string())
                }
                Answer::Refused { message, .. } => Err(Error::config(format!(
                    "volume {volume} not found on the filer: {message}"
                ))),
            }
        }
        Answer::Refused { message, .. } => Err(Error::config(format!(
            "cannot read volume {volume}'s junction path: {message}; set `ontap.junction_path`"
        ))),
    }
}
