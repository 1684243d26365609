//! How the filer's (or the directory server's) certificate is trusted when the
//! job names a `ca_bundle`.
//!
//! The bundle is what the filer's certificate must chain to, verified as rustls
//! and webpki verify any server. One more way in: a certificate the filer
//! presents that is byte for byte one of the bundle's is trusted as it is
//! (pinned), even when it is marked as a CA. ONTAP management endpoints often
//! carry a self-signed certificate made the way `openssl req -x509` makes one
//! (basicConstraints CA:TRUE), which webpki refuses as an end entity
//! (`CaUsedAsEndEntity`) although Python's and curl's clients take it as its own
//! trust anchor. On that path this verifier checks what the chain would have:
//! the certificate's validity period and the server name (webpki's name check);
//! the handshake signatures are checked by the crypto provider as on the other.

use std::sync::Arc;

use rustls::DigitallySignedStruct;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;

/// A TLS client configuration that trusts `pem` (a bundle of certificates) as
/// described above; `shown` names the bundle in messages.
pub fn client_config(pem: &[u8], shown: &str) -> Result<rustls::ClientConfig, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("the CA bundle {shown}: {e}"))?;
    if certs.is_empty() {
        return Err(format!("the CA bundle {shown} holds no certificate"));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for c in &certs {
        roots
            .add(c.clone())
            .map_err(|e| format!("the CA bundle {shown}: {e}"))?;
    }
    let chained = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| format!("the CA bundle {shown}: {e}"))?;
    let verifier = Pinned {
        chained,
        pinned: certs,
        provider: provider.clone(),
        shown: shown.to_string(),
    };
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth())
}

/// The bundle's certificates, as a chain's anchors and as pinned end entities.
#[derive(Debug)]
struct Pinned {
    chained: Arc<WebPkiServerVerifier>,
    pinned: Vec<CertificateDer<'static>>,
    provider: Arc<CryptoProvider>,
    shown: String,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if self
            .pinned
            .iter()
            .any(|c| c.as_ref() == end_entity.as_ref())
        {
            let parsed = ParsedCertificate::try_from(end_entity)?;
            rustls::client::verify_server_name(&parsed, server_name).map_err(|e| {
                rustls::Error::General(format!(
                    "{e}: the server's own certificate in ca_bundle ({}) does not name this host in its subjectAltName (webpki reads no common name); make it with -addext subjectAltName=DNS:HOST,IP:ADDRESS, or connect by a name it has",
                    self.shown
                ))
            })?;
            check_validity(end_entity, now)?;
            return Ok(ServerCertVerified::assertion());
        }
        self.chained
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            .map_err(|e| match &e {
                // Not anchored in the bundle: say what to put in it. Anything else
                // (expired, another name) stays as webpki says it.
                rustls::Error::InvalidCertificate(
                    rustls::CertificateError::UnknownIssuer | rustls::CertificateError::Other(_),
                ) => rustls::Error::General(format!(
                    "{e}: the server's certificate (the filer's, or the directory server's) is neither signed by a certificate in ca_bundle ({}) nor one of them; put the server's CA in it, or the server's own certificate (openssl s_client -connect HOST:PORT -showcerts prints it)",
                    self.shown
                )),
                _ => e,
            })
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The certificate's notBefore ≤ now ≤ notAfter (RFC 5280 4.1.2.5).
fn check_validity(cert: &CertificateDer<'_>, now: UnixTime) -> Result<(), rustls::Error> {
    use rustls::CertificateError;
    let (not_before, not_after) = validity(cert.as_ref()).ok_or(
        rustls::Error::InvalidCertificate(CertificateError::BadEncoding),
    )?;
    let now = now.as_secs() as i64;
    if now < not_before {
        return Err(rustls::Error::InvalidCertificate(
            CertificateError::NotValidYet,
        ));
    }
    if now > not_after {
        return Err(rustls::Error::InvalidCertificate(CertificateError::Expired));
    }
    Ok(())
}

/// One DER element at the start of `b`: its tag, its content and what follows.
fn element(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = b.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7F) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n].iter().fold(0usize, |a, &x| (a << 8) | x as usize);
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// notBefore and notAfter, in Unix seconds: Certificate → tbsCertificate →
/// (version) serialNumber signature issuer validity.
fn validity(der: &[u8]) -> Option<(i64, i64)> {
    let (_, cert, _) = element(der)?;
    let (_, tbs, _) = element(cert)?;
    let mut rest = tbs;
    let (tag, _, after) = element(rest)?;
    if tag == 0xA0 {
        rest = after; // the explicit version
    }
    for _ in 0..3 {
        rest = element(rest)?.2; // serialNumber, signature, issuer
    }
    let (_, validity, _) = element(rest)?;
    let (t1, v1, rest) = element(validity)?;
    let (t2, v2, _) = element(rest)?;
    Some((time(t1, v1)?, time(t2, v2)?))
}

/// UTCTime (YYMMDDHHMMSSZ, years 1950–2049) or GeneralizedTime (YYYYMMDDHHMMSSZ).
fn time(tag: u8, v: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(v).ok()?.strip_suffix('Z')?;
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (year, rest) = match (tag, s.len()) {
        (0x17, 12) => {
            let yy = digits(0..2)?;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, 2)
        }
        (0x18, 14) => (digits(0..4)?, 4),
        _ => return None,
    };
    let at = |i: usize| digits(rest + i..rest + i + 2);
    let (month, day, h, m, sec) = (at(0)?, at(2)?, at(4)?, at(6)?, at(8)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + h * 3600 + m * 60 + sec)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_rfc_5280_writes_them() {
        assert_eq!(time(0x17, b"700101000000Z"), Some(0));
        assert_eq!(time(0x17, b"491231235959Z"), Some(2_524_607_999));
        assert_eq!(time(0x18, b"20240229120000Z"), Some(1_709_208_000));
        assert_eq!(time(0x18, b"2024022912000Z"), None);
        assert_eq!(time(0x17, b"701301000000Z"), None);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }

    #[test]
    fn a_bundle_without_a_certificate_is_refused() {
        let e = client_config(b"not pem", "b.pem").unwrap_err();
        assert!(e.contains("no certificate"), "{e}");
    }
}
