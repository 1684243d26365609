//! Named profiles of the AWS shared config files (`AWS_PROFILE`), the step of the
//! SDKs' default credential chain that `object_store`'s chain lacks: after the
//! environment, before web identity, ECS container credentials and instance
//! metadata. Static keys and the region are read here; a profile that assumes a
//! role, uses SSO or runs a credential process is marked as such and resolved by
//! the AWS SDK's profile provider ([`super::sdk`]).

use std::path::PathBuf;

use crate::base::redact::Secret;

/// What a profile contributes. The keys are [`Secret`]s: `Debug` shows that they
/// are set, never what they are.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Profile {
    pub name: String,
    pub access_key_id: Option<Secret>,
    pub secret_access_key: Option<Secret>,
    pub session_token: Option<Secret>,
    pub region: Option<String>,
    /// The setting (`role_arn`, `sso_session`, …) that makes the SDK resolve this
    /// profile's credentials, when it has no static keys.
    pub delegated: Option<&'static str>,
}

fn env(k: &str) -> Option<String> {
    std::env::var(k).ok().filter(|v| !v.is_empty())
}

fn home_file(var: &str, rel: &str) -> Option<PathBuf> {
    env(var)
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|h| PathBuf::from(h).join(rel)))
}

/// The profile the environment selects, or `None` when there are no shared files or
/// the environment already holds credentials (which take precedence).
pub fn from_environment() -> Result<Option<Profile>, String> {
    if env("AWS_ACCESS_KEY_ID").is_some() {
        return Ok(None);
    }
    let explicit = env("AWS_PROFILE").or_else(|| env("AWS_DEFAULT_PROFILE"));
    let name = explicit.clone().unwrap_or_else(|| "default".into());
    let credentials = home_file("AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials");
    let config = home_file("AWS_CONFIG_FILE", ".aws/config");
    let profile = read(&name, credentials, config)?;
    match profile {
        None if explicit.is_some() => Err(format!(
            "AWS_PROFILE={name}: no such profile in the shared credentials or config file"
        )),
        other => Ok(other),
    }
}

/// Reads profile `name` from the credentials file (section `[name]`) and the config
/// file (section `[profile name]`, or `[default]`).
pub fn read(
    name: &str,
    credentials: Option<PathBuf>,
    config: Option<PathBuf>,
) -> Result<Option<Profile>, String> {
    let load = |p: &Option<PathBuf>| -> Result<Option<ini::Ini>, String> {
        match p {
            Some(p) if p.exists() => ini::Ini::load_from_file(p)
                .map(Some)
                .map_err(|e| format!("{}: {e}", p.display())),
            _ => Ok(None),
        }
    };
    let creds = load(&credentials)?;
    let conf = load(&config)?;
    let config_section = if name == "default" {
        "default".to_string()
    } else {
        format!("profile {name}")
    };
    let from_creds = creds.as_ref().and_then(|c| c.section(Some(name)));
    let from_conf = conf
        .as_ref()
        .and_then(|c| c.section(Some(config_section.as_str())));
    if from_creds.is_none() && from_conf.is_none() {
        return Ok(None);
    }
    let get = |k: &str| {
        from_creds
            .and_then(|s| s.get(k))
            .or_else(|| from_conf.and_then(|s| s.get(k)))
            .map(|v| v.trim().to_string())
    };
    let secret = |k: &str| get(k).map(Secret::from);
    let mut profile = Profile {
        name: name.into(),
        access_key_id: secret("aws_access_key_id"),
        secret_access_key: secret("aws_secret_access_key"),
        session_token: secret("aws_session_token"),
        region: get("region"),
        delegated: None,
    };
    if profile.access_key_id.is_none() {
        profile.delegated = [
            "role_arn",
            "sso_session",
            "sso_start_url",
            "credential_process",
        ]
        .into_iter()
        .find(|k| get(k).is_some());
    }
    if profile.access_key_id.is_some() != profile.secret_access_key.is_some() {
        return Err(format!(
            "profile {name} must set both aws_access_key_id and aws_secret_access_key"
        ));
    }
    Ok(Some(profile))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_keys_from_credentials_and_region_from_config() {
        let dir = tempfile::tempdir().unwrap();
        let creds = dir.path().join("credentials");
        let conf = dir.path().join("config");
        std::fs::write(&creds, "[default]\naws_access_key_id = AKIADEFAULT\naws_secret_access_key = s0\n\n[lake]\naws_access_key_id=AKIALAKE\naws_secret_access_key=s1\naws_session_token=t1\n").unwrap();
        std::fs::write(&conf, "[default]\nregion = eu-west-1\n[profile lake]\nregion = ap-northeast-1\n[profile sso]\nsso_session = corp\n").unwrap();
        let lake = read("lake", Some(creds.clone()), Some(conf.clone()))
            .unwrap()
            .unwrap();
        assert_eq!(
            lake.access_key_id.as_ref().map(Secret::expose),
            Some("AKIALAKE")
        );
        assert_eq!(lake.session_token.as_ref().map(Secret::expose), Some("t1"));
        assert_eq!(lake.region.as_deref(), Some("ap-northeast-1"));
        let default = read("default", Some(creds.clone()), Some(conf.clone()))
            .unwrap()
            .unwrap();
        assert_eq!(default.region.as_deref(), Some("eu-west-1"));
        let sso = read("sso", Some(creds.clone()), Some(conf.clone()))
            .unwrap()
            .unwrap();
        assert_eq!(sso.delegated, Some("sso_session"));
        assert_eq!(sso.access_key_id, None);
        assert_eq!(read("nope", Some(creds), Some(conf)).unwrap(), None);
        assert_eq!(read("default", None, None).unwrap(), None);
    }

    #[test]
    fn redact_profile_debug_shows_no_key() {
        let dir = tempfile::tempdir().unwrap();
        let creds = dir.path().join("credentials");
        std::fs::write(
            &creds,
            "[lake]\naws_access_key_id = AKIAPROFILEKEYID1234\n\
aws_secret_access_key = profile-secret-hunter2\naws_session_token = profile-token-xyzzy\n",
        )
        .unwrap();
        let lake = read("lake", Some(creds), None).unwrap().unwrap();
        for text in [format!("{lake:?}"), format!("{lake:#?}")] {
            for secret in [
                "AKIAPROFILEKEYID1234",
                "profile-secret-hunter2",
                "profile-token-xyzzy",
            ] {
                assert!(!text.contains(secret), "{text}");
            }
            // The field names stay, so one can see which keys are set.
            assert!(
                text.contains("secret_access_key") && text.contains("<redacted>"),
                "{text}"
            );
            assert!(text.contains("lake"), "{text}");
        }
    }
}
