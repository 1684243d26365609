//! `[sources.NAME]` of `format = "acl"`: what to collect from, and how.
//!
//! ```toml
//! [sources.acl]
//! format = "acl"
//! collect = "ontap"          # or "posix" (the job's input is the local root)
//! enumerate = "walk"         # ontap: walk the volume, or "listing": the job's input objects
//! sensitive = ["/hr"]        # paths whose read access is itself a finding
//! group_names = ["CORP\\*-team"]
//! [sources.acl.ontap]
//! url = "https://filer.example.com"
//! svm_uuid = "…"
//! volume_uuid = "…"
//! ```
//!
//! Every ONTAP connection setting can come from the environment instead, as an ECS
//! task definition injects them (`NASLAKE_ONTAP_URL`, …); the environment wins.
//! The password is never read from the spec: `NASLAKE_ONTAP_PASSWORD` or a
//! Secrets Manager secret (`NASLAKE_ONTAP_SECRET_ID`).

use std::time::Duration;

use serde::Deserialize;

use super::found::Limits;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Collect {
    #[default]
    Ontap,
    Posix,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Enumerate {
    /// The ONTAP files API (or, for posix, the local tree), directories included.
    #[default]
    Walk,
    /// The objects of the job's input (an S3 access point of the volume), mapped to
    /// volume paths under `listing_root`; files only.
    Listing,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AclOptions {
    #[serde(default)]
    pub collect: Collect,
    #[serde(default)]
    pub enumerate: Enumerate,
    /// Path prefixes (inside the volume) whose data is sensitive: read access by a
    /// broad principal there is a finding too.
    #[serde(default)]
    pub sensitive: Vec<String>,
    /// Glob patterns (without case) of principal names that are groups, beyond the
    /// well-known and domain groups naslake knows.
    #[serde(default)]
    pub group_names: Vec<String>,
    #[serde(default = "default_max_depth")]
    pub max_depth: usize,
    #[serde(default = "default_max_paths")]
    pub max_paths: u64,
    /// Readers for posix (stat and attribute calls).
    #[serde(default = "default_posix_readers")]
    pub posix_readers: usize,
    #[serde(default)]
    pub ontap: OntapSpec,
    /// The directory export (LDIF, as `ldifde` or `ldapsearch -LLL` write it): a
    /// path under the job's input, or any address `run` reads.
    pub identities: Option<String>,
    /// The directory read live over LDAP instead of an export.
    pub ldap: Option<LdapSpec>,
    /// The NetBIOS domain of the directory's names (`CORP` in `CORP\alice`);
    /// by default the export's first `DC=` component, upper-cased (over LDAP,
    /// the domain's `nETBIOSName` under `CN=Partitions`, when the server has one).
    pub identity_domain: Option<String>,
    /// Which paths `SOURCE.effective_access` covers.
    #[serde(default)]
    pub effective_access: EffectiveScope,
    /// Rows of effective access at most: more stops the run.
    #[serde(default = "default_effective_access_limit")]
    pub effective_access_limit: u64,
}

/// `[sources.NAME.ldap]`: the directory, live. The bind password comes from
/// `NASLAKE_LDAP_PASSWORD` or a Secrets Manager secret (`secret_id`), never from
/// the spec.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LdapSpec {
    /// `ldaps://dc1.corp.example.com` (or `ldap://` on a loopback address, or
    /// with `plaintext = true`).
    pub url: String,
    /// Where users and groups are searched (`DC=corp,DC=example,DC=com`).
    pub base_dn: String,
    pub bind_dn: String,
    pub secret_id: Option<String>,
    /// PEM certificates the server's must chain to (or be), as for the filer.
    pub ca_bundle: Option<String>,
    /// Send the bind password over plain `ldap://` to a host that is not this one.
    #[serde(default)]
    pub plaintext: bool,
    /// Entries per page (the paged results control; Active Directory's
    /// MaxPageSize is 1000).
    #[serde(default = "default_ldap_page_size")]
    pub page_size: i32,
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// The whole directory read at most.
    #[serde(default = "default_ldap_deadline")]
    pub deadline_secs: u64,
}

fn default_ldap_deadline() -> u64 {
    3600
}

/// The environment variable that holds the LDAP bind password.
pub const LDAP_PASSWORD_VAR: &str = "NASLAKE_LDAP_PASSWORD";

fn default_ldap_page_size() -> i32 {
    500
}

impl LdapSpec {
    fn check(&self) -> Result<(), String> {
        let url =
            url::Url::parse(&self.url).map_err(|e| format!("`ldap.url` `{}`: {e}", self.url))?;
        let loopback = match url.host() {
            Some(url::Host::Ipv4(a)) => a.is_loopback(),
            Some(url::Host::Ipv6(a)) => a.is_loopback(),
            // `ldap:` is not a special scheme: its host is opaque text.
            Some(url::Host::Domain(d)) => {
                d == "localhost"
                    || d.trim_start_matches('[')
                        .trim_end_matches(']')
                        .parse::<std::net::IpAddr>()
                        .is_ok_and(|a| a.is_loopback())
            }
            None => false,
        };
        match url.scheme() {
            "ldaps" => {}
            "ldap" if loopback || self.plaintext => {}
            "ldap" => {
                return Err(format!(
                    "`ldap.url` `{}` would send the bind password in clear text: use ldaps:// (or set `ldap.plaintext = true`)",
                    self.url
                ));
            }
            other => return Err(format!("`ldap.url`: scheme `{other}` (ldaps or ldap)")),
        }
        if self.base_dn.trim().is_empty() || self.bind_dn.trim().is_empty() {
            return Err(
                "`ldap.base_dn` and `ldap.bind_dn` name the search base and the account to bind as"
                    .into(),
            );
        }
        if !(1..=100_000).contains(&self.page_size)
            || self.timeout_secs == 0
            || self.deadline_secs == 0
        {
            return Err(
                "`ldap.page_size` is 1 to 100000, `ldap.timeout_secs` and `ldap.deadline_secs` at least 1".into(),
            );
        }
        if self.secret_id.is_none() && env(LDAP_PASSWORD_VAR).is_none() {
            return Err(format!(
                "`ldap`: no bind password: set {LDAP_PASSWORD_VAR} or `ldap.secret_id` (a Secrets Manager secret)"
            ));
        }
        Ok(())
    }
}

/// `effective_access`: the paths effective access is computed for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EffectiveScope {
    /// The paths under `sensitive`.
    #[default]
    Sensitive,
    /// Every path.
    All,
}

fn default_effective_access_limit() -> u64 {
    10_000_000
}

fn default_max_depth() -> usize {
    64
}
fn default_max_paths() -> u64 {
    10_000_000
}
fn default_posix_readers() -> usize {
    4
}

/// `[sources.NAME.ontap]`, as written in the spec.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OntapSpec {
    pub url: Option<String>,
    pub username: Option<String>,
    pub secret_id: Option<String>,
    pub svm_uuid: Option<String>,
    pub volume_uuid: Option<String>,
    pub ca_bundle: Option<String>,
    /// Accept any certificate (logged as a warning on every run).
    #[serde(default)]
    pub insecure: bool,
    /// The volume's junction path in the SVM namespace; asked of the filer when unset.
    pub junction_path: Option<String>,
    /// The volume path the job's input root maps to (`enumerate = "listing"`).
    #[serde(default = "default_listing_root")]
    pub listing_root: String,
    /// Requests in flight at most, walk and permissions together.
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// Retries of a request answered 429 or 5xx, or lost on the way.
    #[serde(default = "default_max_retries")]
    pub max_retries: usize,
    /// Records per page of a directory listing (`max_records`).
    #[serde(default = "default_page_size")]
    pub page_size: usize,
    /// Ask ONTAP to translate SIDs to names (`lookup_names`).
    #[serde(default = "default_true")]
    pub lookup_names: bool,
    /// Recorded answers (a JSON file under the job's input) instead of a filer:
    /// the bundled samples run without one.
    pub replay: Option<String>,
}

/// A spec without `[sources.NAME.ontap]` has every default (its settings then
/// come from the environment).
impl Default for OntapSpec {
    fn default() -> Self {
        OntapSpec {
            url: None,
            username: None,
            secret_id: None,
            svm_uuid: None,
            volume_uuid: None,
            ca_bundle: None,
            insecure: false,
            junction_path: None,
            listing_root: default_listing_root(),
            max_in_flight: default_max_in_flight(),
            timeout_secs: default_timeout(),
            max_retries: default_max_retries(),
            page_size: default_page_size(),
            lookup_names: true,
            replay: None,
        }
    }
}

fn default_listing_root() -> String {
    "/".into()
}
/// A shared filer serves other clients too; ONTAP's own per-user REST limits are
/// of this order.
fn default_max_in_flight() -> usize {
    32
}
fn default_timeout() -> u64 {
    30
}
fn default_max_retries() -> usize {
    5
}
fn default_page_size() -> usize {
    1000
}
fn default_true() -> bool {
    true
}

/// Requests (and reader threads) at most.
const MAX_IN_FLIGHT: usize = 256;

/// A UUID as ONTAP writes them: it goes into request paths as it is, so nothing
/// but hex digits and dashes.
fn uuid(v: String, key: &str) -> Result<String, String> {
    let ok = v.len() == 36
        && v.chars().enumerate().all(|(i, c)| {
            if [8, 13, 18, 23].contains(&i) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        });
    if ok {
        Ok(v)
    } else {
        Err(format!("`ontap.{key}` `{v}` is not a UUID"))
    }
}

pub const URL_VAR: &str = "NASLAKE_ONTAP_URL";
pub const USERNAME_VAR: &str = "NASLAKE_ONTAP_USERNAME";
pub const PASSWORD_VAR: &str = "NASLAKE_ONTAP_PASSWORD";
pub const SECRET_VAR: &str = "NASLAKE_ONTAP_SECRET_ID";
pub const SVM_VAR: &str = "NASLAKE_ONTAP_SVM_UUID";
pub const VOLUME_VAR: &str = "NASLAKE_ONTAP_VOLUME_UUID";
pub const CA_VAR: &str = "NASLAKE_ONTAP_CA_BUNDLE";

/// How to log in.
#[derive(Debug, Clone)]
pub enum Login {
    /// A user name and a password (from `NASLAKE_ONTAP_PASSWORD`).
    Password {
        username: String,
        password: crate::base::redact::Secret,
    },
    /// A Secrets Manager secret holding `{"username", "password"}`.
    Secret(String),
}

/// The ONTAP settings of a run: the spec's, with the environment over them.
#[derive(Debug, Clone)]
pub struct Ontap {
    pub url: url::Url,
    /// `None` when answers come from a recording.
    pub login: Option<Login>,
    pub svm_uuid: String,
    pub volume_uuid: String,
    pub ca_bundle: Option<String>,
    pub insecure: bool,
    pub junction_path: Option<String>,
    pub listing_root: String,
    pub max_in_flight: usize,
    pub timeout: Duration,
    pub max_retries: usize,
    pub page_size: usize,
    pub lookup_names: bool,
}

/// An environment variable's value, unless it is unset or blank (a blank
/// value is taken as not given, here and where the value is used).
pub(crate) fn env(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|v| !v.trim().is_empty())
}

impl AclOptions {
    pub fn limits(&self) -> Limits {
        Limits {
            max_depth: self.max_depth,
            max_paths: self.max_paths,
        }
    }

    pub fn check(&self) -> Result<(), String> {
        if self.max_depth == 0 || self.max_paths == 0 || self.posix_readers == 0 {
            return Err("`max_depth`, `max_paths` and `posix_readers` must be at least 1".into());
        }
        for p in &self.sensitive {
            if super::found::refused_path(p).is_some() {
                return Err(format!(
                    "`sensitive`: `{p}` is not a path starting at / without . or .. segments"
                ));
            }
        }
        if let Some(l) = &self.ldap {
            if self.identities.is_some() {
                return Err("`identities` (an export) and `ldap` (the directory, live) are two ways to the same directory: name one".into());
            }
            l.check()?;
        }
        if self.effective_access_limit == 0 {
            return Err("`effective_access_limit` must be at least 1".into());
        }
        if let Some(d) = &self.identity_domain
            && (d.is_empty() || d.contains('\\'))
        {
            return Err(format!(
                "`identity_domain`: `{d}` is not a NetBIOS domain name (CORP, without a backslash)"
            ));
        }
        if self.collect == Collect::Posix && self.enumerate == Enumerate::Listing {
            return Err("`enumerate = \"listing\"` is for ontap; posix walks its root".into());
        }
        Ok(())
    }

    /// Whether `path` is under one of the `sensitive` paths.
    pub fn is_sensitive(&self, path: &str) -> bool {
        self.sensitive
            .iter()
            .any(|dir| super::entry::is_within(path, dir))
    }
}

impl OntapSpec {
    /// The settings, with the environment over the spec; errors name what is
    /// missing. A recording (`replay`) needs no credentials.
    pub fn resolve(&self, replay: bool) -> Result<Ontap, String> {
        // A recording with the environment pointing at a filer: one of the two is
        // a leftover, and replaying would quietly ignore the filer.
        if replay {
            let live: Vec<&str> = [URL_VAR, USERNAME_VAR, PASSWORD_VAR, SECRET_VAR]
                .into_iter()
                .filter(|v| env(v).is_some())
                .collect();
            if !live.is_empty() {
                return Err(format!(
                    "`ontap.replay` answers from a recording, but the environment sets {} for a filer: drop `replay` from the spec to collect from the filer, or unset {} to replay",
                    live.join(", "),
                    live.join(" and ")
                ));
            }
        }
        let pick = |var: &str, spec: &Option<String>, key: &str| -> Result<String, String> {
            env(var).or_else(|| spec.clone()).ok_or_else(|| {
                format!("the ONTAP `{key}` is not set: set `ontap.{key}` in the spec or {var}")
            })
        };
        let raw_url = pick(URL_VAR, &self.url, "url")?;
        let url = url::Url::parse(&raw_url)
            .map_err(|e| format!("the ONTAP url `{raw_url}` is not a URL: {e}"))?;
        if url.scheme() != "https" {
            return Err(format!(
                "the ONTAP url must be https:// (it is {}://): the password goes in every request",
                url.scheme()
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("the ONTAP url must not hold a user name or password; set NASLAKE_ONTAP_USERNAME and NASLAKE_ONTAP_PASSWORD, or NASLAKE_ONTAP_SECRET_ID".into());
        }
        let login = match (
            env(SECRET_VAR).or_else(|| self.secret_id.clone()),
            env(PASSWORD_VAR),
        ) {
            _ if replay => None,
            (_, Some(password)) => Some(Login::Password {
                username: pick(USERNAME_VAR, &self.username, "username")?,
                password: crate::base::redact::Secret::new(password),
            }),
            (Some(id), None) => Some(Login::Secret(id)),
            (None, None) => {
                return Err(format!(
                    "no ONTAP credentials: set {USERNAME_VAR} and {PASSWORD_VAR}, or {SECRET_VAR} (a Secrets Manager secret holding {{\"username\", \"password\"}})"
                ));
            }
        };
        if self.max_in_flight == 0 || self.page_size == 0 || self.timeout_secs == 0 {
            return Err("`ontap.max_in_flight`, `ontap.page_size` and `ontap.timeout_secs` must be at least 1".into());
        }
        if self.max_in_flight > MAX_IN_FLIGHT {
            return Err(format!(
                "`ontap.max_in_flight` is at most {MAX_IN_FLIGHT} (it is also the number of reader threads)"
            ));
        }
        if super::found::refused_path(&self.listing_root).is_some() {
            return Err(format!(
                "`ontap.listing_root` `{}` is not a path starting at / without . or .. segments",
                self.listing_root
            ));
        }
        let svm_uuid = uuid(pick(SVM_VAR, &self.svm_uuid, "svm_uuid")?, "svm_uuid")?;
        let volume_uuid = uuid(
            pick(VOLUME_VAR, &self.volume_uuid, "volume_uuid")?,
            "volume_uuid",
        )?;
        Ok(Ontap {
            url,
            login,
            svm_uuid,
            volume_uuid,
            ca_bundle: env(CA_VAR).or_else(|| self.ca_bundle.clone()),
            insecure: self.insecure,
            junction_path: self.junction_path.clone(),
            listing_root: self.listing_root.clone(),
            max_in_flight: self.max_in_flight,
            timeout: Duration::from_secs(self.timeout_secs),
            max_retries: self.max_retries,
            page_size: self.page_size,
            lookup_names: self.lookup_names,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(toml_text: &str) -> AclOptions {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn sensitive_paths_match_whole_segments() {
        let o = options(r#"sensitive = ["/hr", "/finance/"]"#);
        assert!(o.is_sensitive("/hr"));
        assert!(o.is_sensitive("/hr/pay.xlsx"));
        assert!(!o.is_sensitive("/hrm/x"));
        assert!(o.is_sensitive("/finance/q1"));
        assert!(!o.is_sensitive("/"));
    }

    #[test]
    fn no_ontap_table_is_the_same_as_an_empty_one() {
        let none = options("");
        let empty = options("[ontap]");
        assert_eq!(none.ontap.max_in_flight, empty.ontap.max_in_flight);
        assert_eq!(none.ontap.page_size, 1000);
        assert_eq!(none.ontap.timeout_secs, 30);
        assert!(none.ontap.lookup_names && empty.ontap.lookup_names);
    }

    #[test]
    fn only_https_urls_and_real_uuids_are_taken() {
        let spec = |url: &str, svm: &str| {
            let o = options(&format!(
                "[ontap]\nurl = \"{url}\"\nsvm_uuid = \"{svm}\"\nvolume_uuid = \"7d2e9b4c-0000-4000-8000-0000000000b2\"\nreplay = \"r.json\""
            ));
            o.ontap.resolve(true)
        };
        let svm = "5f3c4a1e-0000-4000-8000-0000000000a1";
        assert!(spec("https://filer", svm).is_ok());
        assert!(spec("http://filer", svm).unwrap_err().contains("https://"));
        assert!(spec("https://u:p@filer", svm).is_err());
        assert!(
            spec("https://filer", "../x")
                .unwrap_err()
                .contains("not a UUID")
        );
        assert!(spec("https://filer", "5f3c4a1e-0000-4000-8000-0000000000a/").is_err());
    }

    #[test]
    fn unknown_keys_and_bad_paths_are_refused() {
        assert!(toml::from_str::<AclOptions>("colect = \"posix\"").is_err());
        assert!(toml::from_str::<AclOptions>("[ontap]\npassword = \"x\"").is_err());
        assert!(options(r#"sensitive = ["hr"]"#).check().is_err());
        assert!(
            options("collect = \"posix\"\nenumerate = \"listing\"")
                .check()
                .is_err()
        );
    }

    #[test]
    fn ldap_sends_a_password_only_over_tls_or_to_this_host() {
        let spec = |url: &str, extra: &str| {
            options(&format!(
                "[ldap]\nurl = \"{url}\"\nbase_dn = \"DC=corp\"\nbind_dn = \"CN=r\"\nsecret_id = \"s\"\n{extra}"
            ))
        };
        for ok in [
            "ldaps://dc1.corp.example.com",
            "ldap://127.0.0.1:3890",
            "ldap://[::1]:389",
            "ldap://localhost",
        ] {
            assert_eq!(spec(ok, "").check(), Ok(()), "{ok}");
        }
        let e = spec("ldap://dc1.corp.example.com", "").check().unwrap_err();
        assert!(e.contains("clear text"), "{e}");
        assert_eq!(
            spec("ldap://dc1.corp.example.com", "plaintext = true").check(),
            Ok(())
        );
        assert!(
            spec("http://dc1", "")
                .check()
                .unwrap_err()
                .contains("scheme")
        );
        assert!(spec("ldaps://dc1", "page_size = 0").check().is_err());
        let both = options(
            "identities = \"d.ldif\"\n[ldap]\nurl = \"ldaps://dc1\"\nbase_dn = \"DC=c\"\nbind_dn = \"CN=r\"\nsecret_id = \"s\"",
        );
        assert!(both.check().unwrap_err().contains("name one"));
        assert!(options("identity_domain = \"CORP\\\\X\"").check().is_err());
    }
}
