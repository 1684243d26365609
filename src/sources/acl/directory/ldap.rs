//! The directory read live (`[sources.NAME.ldap]`): a simple bind, then every
//! user, group, computer and foreign security principal under the base DN, a
//! page at a time (the paged results control, RFC 2696), each entry handed on as
//! the record an LDIF export of it would be. Values of a large attribute that
//! Active Directory returns in ranges (`member;range=0-1499`) are fetched range
//! by range. The NetBIOS domain is the `nETBIOSName` of the domain's `crossRef`
//! under `CN=Partitions` of the configuration naming context, when the server
//! has one (OpenLDAP has none: the names then take the first `DC=`).
//!
//! LDAPS is verified as the filer is: the system's roots, or `ca_bundle`
//! (chain or pinned certificate, `tls.rs`).

use std::sync::Arc;
use std::time::Duration;

use ldap3::adapters::{Adapter, EntriesOnly, PagedResults};
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError, Scope, SearchEntry};

use super::ldif::Record;
use crate::base::redact::Secret;
use crate::sources::acl::options::{LDAP_PASSWORD_VAR, LdapSpec};

/// What naslake asks of each entry.
const ATTRIBUTES: &[&str] = &[
    "objectClass",
    "objectSid",
    "sAMAccountName",
    "uid",
    "cn",
    "member",
    "uniqueMember",
    "memberOf",
    "primaryGroupID",
    "userAccountControl",
    "lastLogonTimestamp",
];

/// The entries that are principals, in Active Directory and in OpenLDAP.
const FILTER: &str = "(|(objectClass=user)(objectClass=group)(objectClass=computer)\
(objectClass=foreignSecurityPrincipal)(objectClass=person)(objectClass=groupOfNames)\
(objectClass=groupOfUniqueNames)(objectClass=posixGroup)(objectClass=posixAccount))";

/// Ranges of one attribute fetched at most (1,500 values each in AD).
const MAX_RANGES: usize = 100_000;

/// Entries read at most: a server that pages on and on stops the run.
const MAX_ENTRIES: u64 = 10_000_000;

/// A bound connection.
pub struct Session {
    ldap: Ldap,
    spec: LdapSpec,
    timeout: Duration,
}

/// The bind password: the environment, or the secret.
pub async fn password(spec: &LdapSpec) -> Result<Secret, String> {
    if let Some(p) = crate::sources::acl::options::env(LDAP_PASSWORD_VAR) {
        return Ok(Secret::new(p));
    }
    let id = spec.secret_id.as_deref().ok_or_else(|| {
        format!("no LDAP bind password: set {LDAP_PASSWORD_VAR} or `ldap.secret_id`")
    })?;
    let value = crate::storage::sdk::secret_value(id, "the LDAP bind password secret").await?;
    // A secret is the password itself, or JSON with a "password".
    let password = serde_json::from_str::<serde_json::Value>(&value)
        .ok()
        .and_then(|v| {
            v.get("password")
                .and_then(|p| p.as_str())
                .map(str::to_string)
        })
        .unwrap_or(value);
    Ok(Secret::new(password))
}

fn failed(spec: &LdapSpec, what: &str, e: LdapError) -> String {
    format!("LDAP server {}: {what}: {e}", spec.url)
}

impl Session {
    /// Connects and binds as `bind_dn`.
    pub async fn bind(spec: &LdapSpec, password: &Secret) -> Result<Session, String> {
        let timeout = Duration::from_secs(spec.timeout_secs);
        let mut settings = LdapConnSettings::new().set_conn_timeout(timeout);
        if let Some(path) = &spec.ca_bundle {
            let pem = std::fs::read(path).map_err(|e| format!("`ldap.ca_bundle` {path}: {e}"))?;
            let config = crate::sources::acl::tls::client_config(&pem, path)?;
            settings = settings.set_config(Arc::new(config));
        }
        let (conn, mut ldap) = LdapConnAsync::with_settings(settings, &spec.url)
            .await
            .map_err(|e| failed(spec, "cannot connect", e))?;
        ldap3::drive!(conn);
        let bound = ldap
            .with_timeout(timeout)
            .simple_bind(&spec.bind_dn, password.expose())
            .await
            .map_err(|e| failed(spec, "the bind failed", e))?;
        if bound.rc != 0 {
            return Err(format!(
                "LDAP server {}: the bind as `{}` was refused (result {}{}): check the bind DN and its password ({LDAP_PASSWORD_VAR} or `ldap.secret_id`)",
                spec.url,
                spec.bind_dn,
                bound.rc,
                if bound.text.is_empty() {
                    String::new()
                } else {
                    format!(", {}", bound.text)
                }
            ));
        }
        Ok(Session {
            ldap,
            spec: spec.clone(),
            timeout,
        })
    }

    /// The domain's NetBIOS name, when the server keeps Active Directory's
    /// partitions (`None` otherwise, or when it cannot be read).
    pub async fn netbios_name(&mut self) -> Result<Option<String>, String> {
        let attrs = ["configurationNamingContext", "defaultNamingContext"];
        let Some(root) = self.one("", Scope::Base, "(objectClass=*)", &attrs).await? else {
            return Ok(None);
        };
        let Some(config) = root
            .attrs
            .get("configurationNamingContext")
            .and_then(|c| c.first().cloned())
        else {
            return Ok(None);
        };
        // The domain's own partition: the base DN may be an OU inside it.
        let domain = root
            .attrs
            .get("defaultNamingContext")
            .and_then(|d| d.first().cloned())
            .unwrap_or_else(|| self.spec.base_dn.clone());
        let filter = format!(
            "(&(objectClass=crossRef)(nETBIOSName=*)(nCName={}))",
            ldap3::ldap_escape(&domain)
        );
        let partitions = format!("CN=Partitions,{config}");
        let found = self
            .one(&partitions, Scope::OneLevel, &filter, &["nETBIOSName"])
            .await?;
        Ok(found.and_then(|entry| {
            entry
                .attrs
                .get("nETBIOSName")?
                .first()
                .map(|n| n.to_uppercase())
        }))
    }

    /// The first entry a search of `dn` finds (`""`: the root DSE), or none;
    /// the server's refusal or a lost connection as an error that says so.
    async fn one(
        &mut self,
        dn: &str,
        scope: Scope,
        filter: &str,
        attrs: &[&str],
    ) -> Result<Option<SearchEntry>, String> {
        let what = format!("the search of `{dn}` for {filter}");
        let (entries, _) = self
            .ldap
            .with_timeout(self.timeout)
            .search(dn, scope, filter, attrs.to_vec())
            .await
            .and_then(|r| r.success())
            .map_err(|e| failed(&self.spec, &what, e))?;
        Ok(entries.into_iter().next().map(SearchEntry::construct))
    }

    /// Every principal under the base DN, as records, in the order the server
    /// sends them (an entry with a ranged attribute once its ranges are read,
    /// after the search); returns how many.
    pub async fn each_entry(&mut self, mut take: impl FnMut(Record)) -> Result<u64, String> {
        let adapters: Vec<Box<dyn Adapter<_, _>>> = vec![
            Box::new(EntriesOnly::new()),
            Box::new(PagedResults::new(self.spec.page_size)),
        ];
        let mut stream = self
            .ldap
            .with_timeout(self.timeout)
            .streaming_search_with(
                adapters,
                &self.spec.base_dn,
                Scope::Subtree,
                FILTER,
                ATTRIBUTES.to_vec(),
            )
            .await
            .map_err(|e| failed(&self.spec, "the search failed", e))?;
        let mut n = 0u64;
        let mut partial = Vec::new();
        while let Some(entry) = stream
            .next()
            .await
            .map_err(|e| failed(&self.spec, "the search failed", e))?
        {
            let (record, ranged) = record(SearchEntry::construct(entry));
            n += 1;
            if n > MAX_ENTRIES {
                return Err(format!(
                    "LDAP server {}: more than {MAX_ENTRIES} entries under `{}`: a server that pages on and on, or a base DN too wide",
                    self.spec.url, self.spec.base_dn
                ));
            }
            match ranged.is_empty() {
                true => take(record),
                false => partial.push((record, ranged)),
            }
        }
        let done = stream.finish().await;
        if done.rc != 0 {
            return Err(format!(
                "LDAP server {}: the search under `{}` ended with result {}{}",
                self.spec.url,
                self.spec.base_dn,
                done.rc,
                if done.text.is_empty() {
                    String::new()
                } else {
                    format!(", {}", done.text)
                }
            ));
        }
        for (mut record, ranged) in partial {
            for r in ranged {
                self.rest_of_range(&mut record, &r.name, r.from).await?;
            }
            take(record);
        }
        Ok(n)
    }

    /// The values of `name` from `from` on, range by range, into `record`.
    async fn rest_of_range(
        &mut self,
        record: &mut Record,
        name: &str,
        mut from: String,
    ) -> Result<(), String> {
        for _ in 0..MAX_RANGES {
            let want = format!("{name};range={from}-*");
            let more = self
                .one(&record.dn, Scope::Base, "(objectClass=*)", &[want.as_str()])
                .await?
                .ok_or_else(|| {
                    format!(
                        "LDAP server {}: the values of `{name}` of an entry from {from} on could not be read",
                        self.spec.url
                    )
                })?;
            let (more, next) = record_parts(more);
            record
                .attrs
                .extend(more.into_iter().filter(|(n, _)| n == name));
            match next.into_iter().find(|r| r.name == name) {
                Some(r) => from = r.from,
                None => return Ok(()),
            }
        }
        Err(format!(
            "LDAP server {}: more than {MAX_RANGES} ranges of `{name}`",
            self.spec.url
        ))
    }

    pub async fn unbind(mut self) {
        if let Err(e) = self.ldap.unbind().await {
            tracing::debug!(error = %e, "LDAP unbind");
        }
    }
}

/// An attribute Active Directory gave in part: the rest starts at `from`.
struct Ranged {
    name: String,
    from: String,
}

/// An entry as the record an LDIF export of it would be, and its ranged
/// attributes.
fn record(entry: SearchEntry) -> (Record, Vec<Ranged>) {
    let dn = entry.dn.clone();
    let (attrs, ranged) = record_parts(entry);
    (Record { line: 0, dn, attrs }, ranged)
}

/// (name, value) pairs, text and binary, as a record holds them, and the
/// ranged attributes.
fn record_parts(entry: SearchEntry) -> (Vec<(String, Vec<u8>)>, Vec<Ranged>) {
    let mut attrs = Vec::new();
    let mut ranged = Vec::new();
    let text = entry
        .attrs
        .into_iter()
        .map(|(k, v)| (k, v.into_iter().map(String::into_bytes).collect::<Vec<_>>()));
    for (key, values) in text.chain(entry.bin_attrs) {
        let (name, next) = range_of(&key);
        if let Some(from) = next {
            ranged.push(Ranged {
                name: name.clone(),
                from,
            });
        }
        attrs.extend(values.into_iter().map(|v| (name.clone(), v)));
    }
    (attrs, ranged)
}

/// An attribute's name, lower case without options, and for a range that is not
/// the last (`member;range=0-1499`) where the next one starts (`1500`).
fn range_of(key: &str) -> (String, Option<String>) {
    let mut parts = key.split(';');
    let name = parts.next().unwrap_or(key).to_ascii_lowercase();
    let next = parts.find_map(|p| {
        let range = p.to_ascii_lowercase();
        let (_, high) = range.strip_prefix("range=")?.split_once('-')?;
        high.parse::<u64>().ok().map(|h| (h + 1).to_string())
    });
    (name, next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_say_where_the_next_starts() {
        assert_eq!(
            range_of("member;range=0-1499"),
            ("member".into(), Some("1500".into()))
        );
        assert_eq!(range_of("member;range=1500-*"), ("member".into(), None));
        assert_eq!(range_of("objectSid"), ("objectsid".into(), None));
        assert_eq!(range_of("cn;lang-en"), ("cn".into(), None));
    }
}
