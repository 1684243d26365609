//! What naslake takes from the AWS SDK for Rust: its HTTPS client (shared by the
//! Glue client and the credential providers) and its profile credential provider,
//! which resolves what `object_store` cannot: profiles that assume a role (with a
//! source profile or web identity), use SSO, or run a `credential_process`.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_config::profile::ProfileFileCredentialsProvider;
use aws_config::provider_config::ProviderConfig;
use aws_credential_types::provider::ProvideCredentials;
use aws_smithy_http_client::tls;
use object_store::aws::AwsCredential;
use object_store::{CredentialProvider, Error as StoreError};

/// The SDK's HTTPS client: rustls with ring (the provider `object_store`'s reqwest
/// already uses) and the platform's roots; certificates are always verified.
pub fn http_client() -> aws_sdk_glue::config::SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https()
}

/// Credentials are renewed this long before they expire.
const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(300);

/// `object_store` credentials from a named profile, resolved by the SDK and cached
/// until shortly before they expire.
#[derive(Debug)]
pub struct ProfileCredentials {
    provider: ProfileFileCredentialsProvider,
    cached: tokio::sync::Mutex<Option<(Arc<AwsCredential>, Option<SystemTime>)>>,
}

impl ProfileCredentials {
    pub fn new(profile: &str, region: Option<String>) -> Self {
        let config = ProviderConfig::default()
            .with_http_client(http_client())
            .with_region(region.map(aws_config::Region::new));
        ProfileCredentials {
            provider: ProfileFileCredentialsProvider::builder()
                .configure(&config)
                .profile_name(profile)
                .build(),
            cached: tokio::sync::Mutex::new(None),
        }
    }
}

#[async_trait]
impl CredentialProvider for ProfileCredentials {
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
                    "credentials from the AWS profile: {}",
                    aws_sdk_glue::error::DisplayErrorContext(&e)
                )
                .into(),
            })?;
        let credential = Arc::new(AwsCredential {
            key_id: c.access_key_id().to_string(),
            secret_key: c.secret_access_key().to_string(),
            token: c.session_token().map(str::to_string),
        });
        *cached = Some((credential.clone(), c.expiry()));
        Ok(credential)
    }
}
