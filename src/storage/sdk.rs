//! What naslake takes from the AWS SDK for Rust: its HTTPS client (shared by the
//! Glue client and the credential providers) and two credential providers, which
//! resolve what `object_store` cannot: profiles that assume a role (with a source
//! profile or web identity), use SSO, or run a `credential_process`; and an ECS
//! task's `AWS_CONTAINER_CREDENTIALS_FULL_URI` with its token in
//! `AWS_CONTAINER_AUTHORIZATION_TOKEN` (object_store reads that address only with a
//! token file, as EKS Pod Identity gives it).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_config::ecs::EcsCredentialsProvider;
use aws_config::profile::ProfileFileCredentialsProvider;
use aws_config::provider_config::ProviderConfig;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_smithy_http_client::tls;
use object_store::aws::AwsCredential;
use object_store::{CredentialProvider, Error as StoreError};

use crate::base::redact::REDACTED;

/// The SDK's HTTPS client: rustls with ring (the provider `object_store`'s reqwest
/// already uses) and the platform's roots; certificates are always verified.
pub fn http_client() -> aws_sdk_glue::config::SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https()
}

/// The SDK's configuration for an AWS service client (Glue, Secrets Manager): the
/// default credential chain and region, naslake's HTTPS client, and retries with
/// backoff for throttling. `endpoint_vars` are the service's endpoint variables:
/// the SDK logs the endpoint it resolves (at debug) and errors may quote it, so
/// one with a user name or password is refused before it is used.
pub async fn load_config(
    endpoint_vars: &[&str],
) -> crate::base::error::Result<aws_config::SdkConfig> {
    use crate::base::error::Error;
    for var in endpoint_vars {
        if let Some(ep) = std::env::var(var).ok().filter(|v| !v.is_empty()) {
            super::s3::check_no_user_info(var, &ep).map_err(Error::config)?;
        }
    }
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(http_client())
        .retry_config(
            aws_config::retry::RetryConfig::standard()
                .with_max_attempts(10)
                .with_initial_backoff(Duration::from_millis(500)),
        )
        .load()
        .await;
    if let Some(ep) = config.endpoint_url() {
        // A profile's `endpoint_url`.
        super::s3::check_no_user_info("endpoint_url", ep).map_err(Error::config)?;
    }
    Ok(config)
}

/// A secret's value from AWS Secrets Manager; `what` names it in errors (the SDK's credential chain and
/// region; `AWS_ENDPOINT_URL_SECRETS_MANAGER` or `AWS_ENDPOINT_URL` for another
/// endpoint). The error names the secret, never its value.
pub async fn secret_value(id: &str, what: &str) -> Result<String, String> {
    let config = load_config(&["AWS_ENDPOINT_URL_SECRETS_MANAGER", "AWS_ENDPOINT_URL"])
        .await
        .map_err(|e| e.to_string())?;
    let client = aws_sdk_secretsmanager::Client::new(&config);
    let out = client
        .get_secret_value()
        .secret_id(id)
        .send()
        .await
        .map_err(|e| {
            use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
            format!(
                "{what} `{id}` from AWS Secrets Manager: {}",
                e.code().map(str::to_string).unwrap_or_else(|| {
                    aws_sdk_secretsmanager::error::DisplayErrorContext(&e).to_string()
                })
            )
        })?;
    if let Some(s) = out.secret_string() {
        return Ok(s.to_string());
    }
    match out.secret_binary() {
        Some(b) => String::from_utf8(b.as_ref().to_vec())
            .map_err(|_| format!("{what} `{id}` is binary and not UTF-8")),
        None => Err(format!("{what} `{id}` has no value")),
    }
}

/// Credentials are renewed this long before they expire.
const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(300);

/// `object_store` credentials resolved by an SDK provider (a named profile, or the
/// container's credentials endpoint) and cached until shortly before they expire.
pub struct SdkCredentials {
    /// Where they come from, for errors and `Debug`: "the AWS profile lake".
    source: String,
    provider: SharedCredentialsProvider,
    cached: tokio::sync::Mutex<Option<(Arc<AwsCredential>, Option<SystemTime>)>>,
}

/// By hand: `AwsCredential`'s own `Debug` prints the whole access key id, and the
/// SDK provider's prints its parsed profile files (keys included). This shows the
/// source, whether a credential is cached, and until when.
impl std::fmt::Debug for SdkCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("SdkCredentials");
        d.field("source", &self.source);
        match self.cached.try_lock() {
            Ok(cached) => match cached.as_ref() {
                Some((c, expiry)) => d
                    .field(
                        "cached",
                        &format_args!(
                            "{{ key_id: {REDACTED}, secret_key: {REDACTED}, token: {} }}",
                            if c.token.is_some() { REDACTED } else { "None" }
                        ),
                    )
                    .field("expiry", expiry),
                None => d.field("cached", &None::<()>),
            },
            Err(_) => d.field("cached", &format_args!("<in use>")),
        };
        d.finish_non_exhaustive()
    }
}

impl SdkCredentials {
    /// A named profile's credentials.
    pub fn profile(profile: &str, region: Option<String>) -> Self {
        let config = ProviderConfig::default()
            .with_http_client(http_client())
            .with_region(region.map(aws_config::Region::new));
        let provider = ProfileFileCredentialsProvider::builder()
            .configure(&config)
            .profile_name(profile)
            .build();
        SdkCredentials::from_provider(format!("the AWS profile {profile}"), provider)
    }

    /// An ECS task's credentials, from the endpoint the environment names.
    pub fn container() -> Self {
        let config = ProviderConfig::default().with_http_client(http_client());
        let provider = EcsCredentialsProvider::builder().configure(&config).build();
        SdkCredentials::from_provider("the container credentials endpoint".into(), provider)
    }

    fn from_provider(source: String, provider: impl ProvideCredentials + 'static) -> Self {
        SdkCredentials {
            source,
            provider: SharedCredentialsProvider::new(provider),
            cached: tokio::sync::Mutex::new(None),
        }
    }
}

#[async_trait]
impl CredentialProvider for SdkCredentials {
    type Credential = AwsCredential;

    async fn get_credential(&self) -> object_store::Result<Arc<AwsCredential>> {
        let mut cached = self.cached.lock().await;
        if let Some((credential, expiry)) = cached.as_ref() {
            let fresh = expiry.is_none_or(|e| e > SystemTime::now() + REFRESH_BEFORE_EXPIRY);
            if fresh {
                return Ok(credential.clone());
            }
        }
        let c = self
            .provider
            .provide_credentials()
            .await
            .map_err(|e| StoreError::Generic {
                store: "S3",
                source: format!(
                    "credentials from {}: {}",
                    self.source,
                    aws_sdk_glue::error::DisplayErrorContext(&e)
                )
                .into(),
            })?;
        // Kept out of the logs, like the environment's and the profile's keys.
        for value in [c.access_key_id(), c.secret_access_key()]
            .into_iter()
            .chain(c.session_token())
        {
            crate::base::redact::remember(value);
        }
        let credential = Arc::new(AwsCredential {
            key_id: c.access_key_id().to_string(),
            secret_key: c.secret_access_key().to_string(),
            token: c.session_token().map(str::to_string),
        });
        *cached = Some((credential.clone(), c.expiry()));
        Ok(credential)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn redact_profile_credentials_debug_shows_no_key() {
        let creds = SdkCredentials::profile("lake", Some("eu-west-1".into()));
        let empty = format!("{creds:?}");
        assert!(
            empty.contains("lake") && empty.contains("cached: None"),
            "{empty}"
        );
        *creds.cached.lock().await = Some((
            Arc::new(AwsCredential {
                key_id: "AKIACACHEDKEYID98765".into(),
                secret_key: "cached-secret-hunter2".into(),
                token: Some("cached-token-xyzzy".into()),
            }),
            None,
        ));
        for text in [format!("{creds:?}"), format!("{creds:#?}")] {
            for secret in [
                "AKIACACHEDKEYID98765",
                "CACHEDKEYID",
                "cached-secret-hunter2",
                "cached-token-xyzzy",
            ] {
                assert!(!text.contains(secret), "{text}");
            }
            assert!(text.contains("key_id") && text.contains(REDACTED), "{text}");
        }
    }
}
