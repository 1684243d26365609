//! The ONTAP REST client: basic auth over verified TLS, a bounded number of
//! requests in flight, retries with backoff, and answers read within a size limit.
//!
//! Rules, in the order a request meets them:
//! - a request waits for one of `max_in_flight` permits (walk and permissions
//!   share them; a retry gives its permit back while it sleeps);
//! - 401 stops the run at once, and no request still waiting for a permit is
//!   sent after it: retrying a wrong password only locks the account;
//! - 429 and 5xx are retried with exponential backoff and jitter (Retry-After,
//!   when the filer sends one, sets the wait, up to `MAX_WAIT`), as are lost
//!   connections and timeouts; after `max_retries` the path is a reject with the
//!   last status (or, timed out, with none: one slow path does not stop a
//!   snapshot), and a filer that cannot be connected to fails the run;
//! - any other status is the path's answer: the caller makes it a reject;
//! - the password is only ever in the Authorization header: no URL, error or log
//!   line holds it (`Secret`'s `Debug` is redacted).

use std::sync::Arc;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;
use tokio::sync::Semaphore;

use super::super::options::Ontap;
use crate::base::redact::Secret;

/// Bytes of one answer read at most (a page of 1000 records is about 200 KB, an
/// object with 4 096 entries about 1.5 MB); with `max_in_flight` this bounds the
/// answers held at once. A larger answer is the path's reject.
const MAX_BODY: usize = 4 * 1024 * 1024;
const MIN_WAIT: Duration = Duration::from_millis(100);
const MAX_WAIT: Duration = Duration::from_secs(20);
/// Characters of a filer's error message kept in a reject.
const MAX_MESSAGE: usize = 300;

/// Path characters sent as they are; everything else is percent-encoded, `/` as
/// `%2F` and `.` as `%2E`, as the files API asks.
const PATH_SET: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'~');

/// A path as one URL segment.
pub fn encode_path(path: &str) -> String {
    utf8_percent_encode(path, PATH_SET).to_string()
}

/// What the filer answered.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    Ok(Value),
    /// Any status but 2xx and 401, after retries where they apply, with ONTAP's
    /// error message when it sent one; no status when every attempt timed out.
    Refused {
        status: Option<u16>,
        message: String,
    },
}

/// Why the run must stop.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    #[error(
        "ONTAP refused the credentials (401) at {0}: check NASLAKE_ONTAP_USERNAME and the password or secret"
    )]
    Unauthorized(String),
    #[error("ONTAP at {at}: {why}")]
    Unreachable { at: String, why: String },
    #[error("ONTAP client: {0}")]
    Setup(String),
}

/// Where the answers come from.
enum Transport {
    Http {
        http: reqwest::Client,
        base: url::Url,
        username: String,
        /// `Basic base64(user:password)`, itself a secret (remembered, so a log
        /// line or a filer's error message that quotes it is scrubbed).
        authorization: Secret,
    },
    /// Recorded answers by request target (the bundled samples).
    Replay(std::collections::HashMap<String, (u16, Value)>),
}

pub struct Client {
    transport: Transport,
    gate: Arc<Semaphore>,
    max_retries: usize,
    /// Requests sent (attempts, retries included), for the report's log line.
    sent: std::sync::atomic::AtomicU64,
    /// Where the first 401 came from. It closes `gate`: requests waiting for a
    /// permit then fail with it rather than send (no storm while the run stops).
    refused: std::sync::OnceLock<String>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("Client");
        match &self.transport {
            Transport::Http { base, username, .. } => {
                d.field("base", &base.as_str()).field("username", username)
            }
            Transport::Replay(r) => d.field("replay", &r.len()),
        };
        d.finish_non_exhaustive()
    }
}

/// One attempt's failure.
#[derive(Debug)]
enum Attempt {
    Retryable {
        status: Option<u16>,
        /// No answer in time (the request may have reached the filer).
        timed_out: bool,
        why: String,
        retry_after: Option<Duration>,
    },
    Unauthorized,
    /// An answer naslake will not read (too large): the path's reject.
    Unreadable(String),
    Fatal(String),
}

impl Client {
    /// A client for `ontap`, logged in as `username` / `password`.
    pub fn new(ontap: &Ontap, username: String, password: Secret) -> Result<Self, ClientError> {
        install_crypto_provider();
        let mut b = reqwest::Client::builder()
            .timeout(ontap.timeout)
            .connect_timeout(
                (ontap.timeout / 2).clamp(Duration::from_millis(500), Duration::from_secs(10)),
            )
            .pool_max_idle_per_host(ontap.max_in_flight)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("naslake/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = ontap.ca_bundle.as_ref().filter(|_| !ontap.insecure) {
            let pem = std::fs::read(path)
                .map_err(|e| ClientError::Setup(format!("the CA bundle {path}: {e}")))?;
            // The bundle is what the filer's certificate must chain to, or is.
            let tls =
                crate::sources::acl::tls::client_config(&pem, path).map_err(ClientError::Setup)?;
            b = b.use_preconfigured_tls(tls);
        }
        if ontap.insecure {
            tracing::warn!(
                url = %ontap.url,
                "ONTAP certificates are NOT verified (`ontap.insecure = true`): anyone on the path can read the credentials; use `ca_bundle` with the filer's CA instead"
            );
            b = b.danger_accept_invalid_certs(true);
        }
        let http = b
            .build()
            .map_err(|e| ClientError::Setup(format!("cannot build the HTTPS client: {e}")))?;
        use base64::Engine as _;
        let token = base64::engine::general_purpose::STANDARD
            .encode(format!("{username}:{}", password.expose()));
        Ok(Self::with(
            Transport::Http {
                http,
                base: ontap.url.clone(),
                username,
                // The bare token too: a filer may quote it without the scheme.
                authorization: {
                    crate::base::redact::remember(&token);
                    Secret::new(format!("Basic {token}"))
                },
            },
            ontap,
        ))
    }

    /// A client answering from a recording: `{"answers": {"TARGET": {"status", "body"}}}`.
    pub fn replay(recording: &[u8], ontap: &Ontap) -> Result<Self, ClientError> {
        #[derive(serde::Deserialize)]
        struct Recorded {
            status: u16,
            body: Value,
        }
        #[derive(serde::Deserialize)]
        struct Recording {
            answers: std::collections::HashMap<String, Recorded>,
        }
        let r: Recording = serde_json::from_slice(recording)
            .map_err(|e| ClientError::Setup(format!("the ONTAP recording: {e}")))?;
        let answers = r
            .answers
            .into_iter()
            .map(|(k, v)| (k, (v.status, v.body)))
            .collect();
        Ok(Self::with(Transport::Replay(answers), ontap))
    }

    fn with(transport: Transport, ontap: &Ontap) -> Self {
        Client {
            transport,
            gate: Arc::new(Semaphore::new(ontap.max_in_flight)),
            refused: std::sync::OnceLock::new(),
            max_retries: ontap.max_retries,
            sent: Default::default(),
        }
    }

    pub fn requests_sent(&self) -> u64 {
        self.sent.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// GETs `target` (a path and query under the base URL, already encoded).
    pub async fn get(&self, target: &str) -> Result<Answer, ClientError> {
        let backoff = ExponentialBuilder::default()
            .with_min_delay(MIN_WAIT)
            .with_max_delay(MAX_WAIT)
            .with_max_times(self.max_retries)
            .with_jitter();
        let outcome = (|| self.attempt(target))
            .retry(backoff)
            .when(|e| matches!(e, Attempt::Retryable { .. }))
            .adjust(|e, wait| match e {
                Attempt::Retryable {
                    retry_after: Some(after),
                    ..
                } => wait.map(|_| (*after).min(MAX_WAIT)),
                _ => wait,
            })
            .notify(|e, wait| {
                if let Attempt::Retryable { why, .. } = e {
                    tracing::debug!(target = %target, ?wait, "ONTAP retry: {why}");
                }
            })
            .await;
        match outcome {
            Ok(answer) => Ok(answer),
            Err(Attempt::Unauthorized) => Err(ClientError::Unauthorized(
                self.refused
                    .get()
                    .cloned()
                    .unwrap_or_else(|| self.at(target)),
            )),
            Err(Attempt::Unreadable(why)) => Ok(Answer::Refused {
                status: None,
                message: why,
            }),
            Err(Attempt::Retryable {
                status,
                timed_out,
                why,
                ..
            }) if status.is_some() || timed_out => Ok(Answer::Refused {
                status,
                message: format!("{why} (after {} retries)", self.max_retries),
            }),
            Err(Attempt::Retryable { why, .. }) | Err(Attempt::Fatal(why)) => {
                Err(ClientError::Unreachable {
                    at: self.at(target),
                    why,
                })
            }
        }
    }

    /// `https://host[:port]` of the filer (absolute links are followed only to it).
    pub fn origin(&self) -> String {
        match &self.transport {
            Transport::Http { base, .. } => base.origin().ascii_serialization(),
            Transport::Replay(_) => "replay:".into(),
        }
    }

    /// Where a request went, for messages (never with credentials: the URL has none).
    fn at(&self, target: &str) -> String {
        match &self.transport {
            Transport::Http { base, .. } => {
                format!("{}{}", base.as_str().trim_end_matches('/'), target)
            }
            Transport::Replay(_) => format!("(recording){target}"),
        }
    }

    /// A 401 from `target`: no request waiting for a permit is sent after it.
    fn refuse(&self, target: &str) -> Attempt {
        self.refused.get_or_init(|| self.at(target));
        self.gate.close();
        Attempt::Unauthorized
    }

    async fn attempt(&self, target: &str) -> Result<Answer, Attempt> {
        // The gate closes at the first 401 (`refuse`), and only then.
        let _permit = self
            .gate
            .acquire()
            .await
            .map_err(|_| Attempt::Unauthorized)?;
        self.sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (status, body, retry_after) = match &self.transport {
            Transport::Replay(answers) => match answers.get(target) {
                Some((status, body)) => (*status, body.clone(), None),
                None => (
                    404,
                    serde_json::json!({"error": {"message": "not in the recording"}}),
                    None,
                ),
            },
            Transport::Http {
                http,
                base,
                authorization,
                ..
            } => {
                let url = format!("{}{}", base.as_str().trim_end_matches('/'), target);
                let mut auth = reqwest::header::HeaderValue::from_str(authorization.expose())
                    .map_err(|_| {
                        Attempt::Fatal(
                            "a user name or password that cannot be sent in a header".into(),
                        )
                    })?;
                auth.set_sensitive(true);
                let resp = http
                    .get(&url)
                    .header(reqwest::header::AUTHORIZATION, auth)
                    .header("accept", "application/json")
                    .send()
                    .await
                    .map_err(|e| Attempt::Retryable {
                        status: None,
                        // A connect timeout is a filer not reached: the run fails.
                        timed_out: e.is_timeout() && !e.is_connect(),
                        why: transport_error(&e),
                        retry_after: None,
                    })?;
                let status = resp.status().as_u16();
                if status == 401 {
                    // Stop before anything else: not a byte more is read or sent.
                    return Err(self.refuse(target));
                }
                let retry_after = resp
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                let body = read_body(resp).await?;
                (status, body, retry_after)
            }
        };
        match status {
            200..=299 => Ok(Answer::Ok(body)),
            401 => Err(self.refuse(target)),
            429 | 500..=599 => Err(Attempt::Retryable {
                status: Some(status),
                timed_out: false,
                why: describe(status, &body),
                retry_after,
            }),
            _ => Ok(Answer::Refused {
                status: Some(status),
                message: describe(status, &body),
            }),
        }
    }
}

/// The answer's JSON, read within `MAX_BODY`; a body that is not JSON is `Null`
/// (an error page from a proxy, say).
async fn read_body(mut resp: reqwest::Response) -> Result<Value, Attempt> {
    if resp.content_length().is_some_and(|n| n > MAX_BODY as u64) {
        return Err(Attempt::Unreadable(format!(
            "an answer larger than {MAX_BODY} bytes"
        )));
    }
    let mut buf = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                if buf.len() + chunk.len() > MAX_BODY {
                    return Err(Attempt::Unreadable(format!(
                        "an answer larger than {MAX_BODY} bytes"
                    )));
                }
                buf.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(e) => {
                return Err(Attempt::Retryable {
                    status: None,
                    timed_out: e.is_timeout() && !e.is_connect(),
                    why: transport_error(&e),
                    retry_after: None,
                });
            }
        }
    }
    Ok(serde_json::from_slice(&buf).unwrap_or(Value::Null))
}

/// A transport error without its URL (reqwest's Display adds it; ours is added by
/// the caller) and with its cause, which is where TLS says what it refused.
fn transport_error(e: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut msg = if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "cannot connect".to_string()
    } else {
        "the request failed".to_string()
    };
    let mut cause = e.source();
    while let Some(c) = cause {
        msg.push_str(": ");
        msg.push_str(&c.to_string());
        cause = c.source();
    }
    msg
}

/// A status with ONTAP's error message (`{"error": {"message", "code"}}`), cut
/// short and without control characters.
fn describe(status: u16, body: &Value) -> String {
    let message = body
        .pointer("/error/message")
        .and_then(Value::as_str)
        .map(|m| {
            // A filer (or a proxy) may quote the request, credentials included:
            // masked before the message is cut, so no part of one is left.
            let scrubbed = crate::base::redact::scrub(m);
            scrubbed
                .chars()
                .filter(|c| !c.is_control())
                .take(MAX_MESSAGE)
                .collect::<String>()
        });
    let code = body.pointer("/error/code").and_then(|c| match c {
        Value::String(s) => Some(
            s.chars()
                .filter(|c| c.is_ascii_alphanumeric())
                .take(20)
                .collect::<String>(),
        ),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    });
    match (message, code) {
        (Some(m), Some(c)) => format!("HTTP {status}: {m} (error {c})"),
        (Some(m), None) => format!("HTTP {status}: {m}"),
        _ => format!("HTTP {status}"),
    }
}

/// reqwest's rustls has no crypto provider of its own in this build (object_store
/// asks for none): ring, which the rest of the process uses, is installed once.
fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Only fails when another thread installed one first, which does as well.
        if rustls::crypto::ring::default_provider()
            .install_default()
            .is_err()
        {
            tracing::debug!("a TLS crypto provider was already installed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_one_segment_with_slash_and_dot_encoded() {
        assert_eq!(encode_path("/vol1/a b/c.txt"), "%2Fvol1%2Fa%20b%2Fc%2Etxt");
        assert_eq!(encode_path("d1/d2"), "d1%2Fd2");
        assert_eq!(encode_path("ü?#%"), "%C3%BC%3F%23%25");
    }

    #[test]
    fn error_messages_are_cut_and_cleaned() {
        let body = serde_json::json!({"error": {"message": "no\nsuch file", "code": "917927"}});
        assert_eq!(describe(404, &body), "HTTP 404: nosuch file (error 917927)");
        assert_eq!(describe(503, &Value::Null), "HTTP 503");
        let long = serde_json::json!({"error": {"message": "x".repeat(5000)}});
        assert!(describe(400, &long).len() < MAX_MESSAGE + 20);
    }
}
