//! S3 stores for buckets, access point aliases and access point ARNs.
//!
//! `object_store` has no access point support: an ARN becomes the virtual host
//! `NAME-ACCOUNT.s3-accesspoint.REGION.amazonaws.com`, requests are signed for the
//! ARN's region, and an alias is addressed virtual-host style like a bucket.
//! Credentials come from the default chain: the environment, a named profile of
//! the shared config files ([`super::profile`]; role, SSO and credential-process
//! profiles through the AWS SDK, [`super::sdk`]), then what `object_store`
//! implements (web identity as on EMR and EKS, ECS container credentials, instance
//! metadata); endpoints from `AWS_ENDPOINT_URL_S3` or `AWS_ENDPOINT_URL`. An
//! endpoint with a user name or password is refused (S3 signs requests with the
//! credentials above; user-info would only end up in error messages).
//!
//! A host under `localhost` (what an access point host derived from
//! `http://localhost:PORT` looks like) is resolved to the loopback address by
//! naslake itself, as RFC 6761 asks, because many resolvers do not.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use datafusion::execution::object_store::ObjectStoreUrl;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::client::{ClientOptions, HttpClient, HttpConnector};
use object_store::path::Path as ObjPath;
use object_store::{BackoffConfig, RetryConfig};

use super::Location;
use super::address::{Address, is_access_point_alias, prefix_host};
use crate::base::redact::has_user_info;
use crate::base::redact::redact_url;

/// The chain's container step as ECS gives it (`AWS_CONTAINER_CREDENTIALS_FULL_URI`
/// and a token in `AWS_CONTAINER_AUTHORIZATION_TOKEN`), which object_store does not
/// read: when nothing earlier in the chain (keys, a profile, web identity) has
/// credentials, and object_store has no relative URI or token file to go by.
fn ecs_full_uri_needs_the_sdk(
    var: impl Fn(&str) -> Option<String>,
    profile_has_credentials: bool,
) -> bool {
    let set = |k: &str| var(k).is_some_and(|v| !v.is_empty());
    set("AWS_CONTAINER_CREDENTIALS_FULL_URI")
        && !set("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")
        && !set("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
        && !set("AWS_ACCESS_KEY_ID")
        && !set("AWS_WEB_IDENTITY_TOKEN_FILE")
        && !profile_has_credentials
}

/// Opens a bucket, alias or access point address.
pub fn open(url: &str, address: Address) -> Result<Location, String> {
    let custom = custom_endpoint()?;
    let mut builder = AmazonS3Builder::from_env().with_retry(retry_config());
    // The SDK chain's profile step, between the environment and web identity.
    let profile = super::profile::from_environment()?;
    let profile_has_credentials = profile
        .as_ref()
        .is_some_and(|p| p.delegated.is_some() || p.access_key_id.is_some());
    if ecs_full_uri_needs_the_sdk(|k| std::env::var(k).ok(), profile_has_credentials) {
        builder = builder.with_credentials(Arc::new(super::sdk::SdkCredentials::container()));
    }
    if let Some(p) = profile {
        if p.delegated.is_some() {
            // Role, SSO or credential-process profiles: the SDK resolves them.
            // STS and SSO calls need a region: the environment's wins, as for S3.
            let region = ["AWS_REGION", "AWS_DEFAULT_REGION"]
                .iter()
                .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
                .or_else(|| p.region.clone());
            builder = builder.with_credentials(Arc::new(super::sdk::SdkCredentials::profile(
                &p.name, region,
            )));
        }
        if let (Some(id), Some(secret)) = (&p.access_key_id, &p.secret_access_key) {
            builder = builder
                .with_access_key_id(id.expose())
                .with_secret_access_key(secret.expose());
            if let Some(token) = &p.session_token {
                builder = builder.with_token(token.expose());
            }
        }
        let region_set = ["AWS_REGION", "AWS_DEFAULT_REGION"]
            .iter()
            .any(|k| std::env::var(k).is_ok());
        if let (Some(region), false) = (&p.region, region_set) {
            builder = builder.with_region(region);
        }
    }
    let (endpoint, store_url, base_url, prefix) = match address {
        Address::Bucket { bucket, prefix } if is_access_point_alias(&bucket) => {
            // An alias works only virtual-host style.
            builder = builder
                .with_bucket_name(&bucket)
                .with_virtual_hosted_style_request(true);
            let endpoint = custom
                .as_deref()
                .map(|ep| prefix_host(ep, &bucket))
                .transpose()?;
            (
                endpoint,
                format!("s3://{bucket}"),
                format!("s3://{bucket}/"),
                prefix,
            )
        }
        Address::Bucket { bucket, prefix } => {
            builder = builder.with_bucket_name(&bucket);
            (
                custom.clone(),
                format!("s3://{bucket}"),
                format!("s3://{bucket}/"),
                prefix,
            )
        }
        Address::AccessPoint(ap) => {
            let endpoint = ap.endpoint(custom.as_deref())?;
            builder = builder
                .with_bucket_name(&ap.name)
                .with_region(&ap.region)
                .with_virtual_hosted_style_request(true);
            let store_url = format!("s3ap://{}-{}.{}", ap.name, ap.account, ap.region);
            (
                Some(endpoint),
                store_url,
                format!("s3://{}/", ap.arn()),
                ap.prefix.clone(),
            )
        }
        Address::Local(_) => unreachable!("local paths are opened by Location::open"),
    };
    if let Some(ep) = &endpoint {
        // The S3-specific endpoint setting wins over the generic one inside
        // object_store, so both are set to the endpoint chosen here.
        builder = builder
            .with_endpoint(ep)
            .with_config(AmazonS3ConfigKey::S3Endpoint, ep);
        let parsed =
            url::Url::parse(ep).map_err(|e| format!("endpoint `{}`: {e}", redact_url(ep)))?;
        if parsed.scheme() == "http" {
            // Only an endpoint the user configured as http:// is spoken to in clear.
            builder = builder.with_allow_http(true);
        }
        if let Some(host) = parsed
            .host_str()
            .filter(|h| h.ends_with(".localhost") || *h == "localhost")
        {
            let port = parsed.port_or_known_default().unwrap_or(80);
            builder = builder.with_http_connector(LoopbackConnector {
                host: host.to_string(),
                port,
            });
        }
    }
    // What object_store read from the environment itself (`AWS_ENDPOINT`, the STS
    // endpoint of web identity) is held to the same rule.
    for key in [
        AmazonS3ConfigKey::Endpoint,
        AmazonS3ConfigKey::S3Endpoint,
        AmazonS3ConfigKey::StsEndpoint,
    ] {
        if let Some(ep) = builder.get_config_value(&key) {
            check_no_user_info(&key.as_ref().to_uppercase(), &ep)?;
        }
    }
    let store = builder
        .build()
        .map_err(|e| redact_url(&e.to_string()).into_owned())?;
    Ok(Location {
        store: Arc::new(store),
        store_url: ObjectStoreUrl::parse(&store_url).map_err(|e| e.to_string())?,
        base_url,
        prefix: ObjPath::from(prefix.as_str()),
        display: redact_url(url).into_owned(),
    })
}

/// `AWS_ENDPOINT_URL_S3`, else `AWS_ENDPOINT_URL` (the SDKs' order).
fn custom_endpoint() -> Result<Option<String>, String> {
    let found = ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]
        .iter()
        .find_map(|k| Some((*k, std::env::var(k).ok().filter(|v| !v.is_empty())?)));
    match found {
        Some((var, ep)) => check_no_user_info(var, &ep).map(|()| Some(ep)),
        None => Ok(None),
    }
}

/// An endpoint takes no user name or password: requests are signed with the AWS
/// credentials, and user-info would only be sent along or quoted in errors. The
/// message shows the endpoint redacted.
pub(crate) fn check_no_user_info(setting: &str, endpoint: &str) -> Result<(), String> {
    if has_user_info(endpoint) {
        return Err(format!(
            "{setting} `{}`: an endpoint takes no user name or password \
(requests are signed with the AWS credentials: the environment, AWS_PROFILE, a role)",
            redact_url(endpoint)
        ));
    }
    Ok(())
}

/// Throttling (`SlowDown`, 503), 5xx and timeouts are retried with exponential
/// backoff and jitter; `AccessDenied` is not. FSx for ONTAP answers `SlowDown` when
/// its throughput is shared with NFS/SMB clients, hence the patient defaults.
/// `NASLAKE_RETRY_BASE_MS` shortens the first backoff (the fault-injection tests).
fn retry_config() -> RetryConfig {
    let base_ms = std::env::var("NASLAKE_RETRY_BASE_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000u64);
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(base_ms),
            max_backoff: Duration::from_secs(30),
            base: 2.0,
        },
        max_retries: 10,
        retry_timeout: Duration::from_secs(300),
    }
}

/// Builds HTTP clients that resolve one `*.localhost` host to 127.0.0.1.
#[derive(Debug)]
struct LoopbackConnector {
    host: String,
    port: u16,
}

impl HttpConnector for LoopbackConnector {
    fn connect(&self, _options: &ClientOptions) -> object_store::Result<HttpClient> {
        let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), self.port);
        let client = reqwest::Client::builder()
            .resolve(&self.host, addr)
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| object_store::Error::Generic {
                store: "S3",
                source: Box::new(e),
            })?;
        Ok(HttpClient::new(client))
    }
}

#[cfg(test)]
mod tests {
    //! Against the moto server scripts/test starts (NASLAKE_TEST_MOTO); in CI a
    //! missing server is a failure, not a skip.
    use super::*;
    use object_store::ObjectStoreExt;

    #[test]
    fn an_ecs_full_uri_uses_the_sdk_only_when_nothing_earlier_in_the_chain_applies() {
        let needs = |pairs: &[(&str, &str)], profile: bool| {
            let vars: Vec<(String, String)> = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            let var = move |k: &str| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
            ecs_full_uri_needs_the_sdk(var, profile)
        };
        let full = (
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            "http://127.0.0.1:9/creds",
        );
        assert!(needs(&[full], false));
        assert!(!needs(&[full], true), "a profile comes first");
        for earlier in [
            ("AWS_ACCESS_KEY_ID", "AKIA"),
            ("AWS_WEB_IDENTITY_TOKEN_FILE", "/t"),
            ("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/x"),
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "/var/run/token"),
        ] {
            assert!(!needs(&[full, earlier], false), "{earlier:?}");
        }
        assert!(!needs(&[], false));
    }

    fn moto() -> Option<String> {
        let url = std::env::var("NASLAKE_TEST_MOTO").ok();
        assert!(
            url.is_some() || std::env::var("CI").is_err(),
            "CI runs need NASLAKE_TEST_MOTO"
        );
        url
    }

    #[test]
    fn redact_endpoints_with_user_info_are_refused() {
        let err = check_no_user_info("AWS_ENDPOINT_URL", "http://u:hunter2-SECRET@localhost:5000")
            .unwrap_err();
        assert!(!err.contains("hunter2"), "{err}");
        assert!(
            err.contains("AWS_ENDPOINT_URL `http://***@localhost:5000`"),
            "{err}"
        );
        assert!(check_no_user_info("AWS_ENDPOINT_URL", "http://localhost:5000").is_ok());
    }

    #[tokio::test]
    async fn ranged_reads_and_writes_through_a_real_s3_api() {
        let Some(url) = moto() else {
            eprintln!("skipped: no NASLAKE_TEST_MOTO (run scripts/test)");
            return;
        };
        let port = url.rsplit(':').next().unwrap();
        // SAFETY: nextest runs each test in its own process; nothing else reads the
        // environment concurrently.
        unsafe {
            std::env::set_var("AWS_ENDPOINT_URL", format!("http://localhost:{port}"));
            std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
            std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
            std::env::set_var("AWS_REGION", "us-east-1");
        }
        let bucket = format!("rust-{}", ulid::Ulid::new().to_string().to_lowercase());
        let created = reqwest::Client::new()
            .put(format!("{url}/{bucket}"))
            .send()
            .await
            .unwrap();
        assert!(created.status().is_success(), "{}", created.status());

        let loc = Location::open(&format!("s3://{bucket}/raw")).unwrap();
        let key = loc.child("a/b.bin");
        let body: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        loc.store.put(&key, body.clone().into()).await.unwrap();
        let head = loc.read_head(&key, body.len() as u64, 132).await.unwrap();
        assert_eq!(&head[..], &body[..132]);
        assert_eq!(loc.url_of(&key), format!("s3://{bucket}/raw/a/b.bin"));
        let denied = Location::open("s3://no-such-bucket-here/x").unwrap();
        assert!(denied.read_head(&denied.child("k"), 10, 10).await.is_err());
    }
}
