//! Parsing the address forms of DESIGN.md ("Addresses") into what they name. Pure
//! functions, no I/O: every form is unit- and property-tested here.

use std::path::PathBuf;

use crate::base::redact::{has_user_info, redact_url};

/// What an address names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// `./dir`, `/abs/dir`, `file:///abs/dir`
    Local(PathBuf),
    /// `s3://bucket/prefix`; an access point alias (`…-s3alias`, `…-ext-s3alias`) is
    /// used exactly like a bucket name.
    Bucket { bucket: String, prefix: String },
    /// `arn:aws:s3:REGION:ACCOUNT:accesspoint/NAME[/prefix]` (also behind `s3://`).
    AccessPoint(AccessPointArn),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessPointArn {
    pub partition: String,
    pub region: String,
    pub account: String,
    pub name: String,
    pub prefix: String,
}

impl AccessPointArn {
    /// The virtual host S3 answers the access point on:
    /// `NAME-ACCOUNT.s3-accesspoint.REGION.amazonaws.com` (HTTPS), or, with a custom
    /// endpoint (tests, S3-compatible stores), `NAME-ACCOUNT.s3-accesspoint.` + its host.
    pub fn endpoint(&self, custom: Option<&str>) -> Result<String, String> {
        let label = format!("{}-{}.s3-accesspoint", self.name, self.account);
        match custom {
            None => {
                let suffix = if self.partition == "aws-cn" {
                    "amazonaws.com.cn"
                } else {
                    "amazonaws.com"
                };
                Ok(format!("https://{label}.{}.{suffix}", self.region))
            }
            Some(ep) => {
                let url = url::Url::parse(ep)
                    .map_err(|e| format!("endpoint `{}`: {e}", redact_url(ep)))?;
                let host = url
                    .host_str()
                    .ok_or_else(|| format!("endpoint `{}` has no host", redact_url(ep)))?;
                let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
                Ok(format!("{}://{label}.{host}{port}", url.scheme()))
            }
        }
    }

    /// The ARN itself (without a prefix).
    pub fn arn(&self) -> String {
        format!(
            "arn:{}:s3:{}:{}:accesspoint/{}",
            self.partition, self.region, self.account, self.name
        )
    }
}

/// `http://localhost:5000` + `label` → `http://label.localhost:5000`: how virtual hosts
/// (access points, aliases) are derived from a custom endpoint.
pub fn prefix_host(endpoint: &str, label: &str) -> Result<String, String> {
    let url = url::Url::parse(endpoint)
        .map_err(|e| format!("endpoint `{}`: {e}", redact_url(endpoint)))?;
    let host = url
        .host_str()
        .ok_or_else(|| format!("endpoint `{}` has no host", redact_url(endpoint)))?;
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    Ok(format!("{}://{label}.{host}{port}", url.scheme()))
}

/// True for bucket names that are access point aliases.
pub fn is_access_point_alias(bucket: &str) -> bool {
    bucket.ends_with("-s3alias")
}

/// Parses an address; the error says what is wrong (the caller adds the accepted forms).
pub fn parse(url: &str) -> Result<Address, String> {
    let url = url.trim();
    if url.is_empty() {
        return Err("empty address".into());
    }
    if has_user_info(url) {
        // Said without quoting the address: the caller shows it redacted.
        return Err(
            "an address takes no user name or password: S3 requests are signed \
with AWS credentials (the environment, AWS_PROFILE, a role)"
                .into(),
        );
    }
    if let Some(arn) = url.strip_prefix("s3://arn:").map(|r| format!("arn:{r}")) {
        return parse_arn(&arn).map(Address::AccessPoint);
    }
    if url.starts_with("arn:") {
        return parse_arn(url).map(Address::AccessPoint);
    }
    if let Some(rest) = url.strip_prefix("s3://") {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        check_bucket(bucket)?;
        return Ok(Address::Bucket {
            bucket: bucket.to_string(),
            prefix: clean_prefix(prefix),
        });
    }
    if let Some(path) = url.strip_prefix("file://") {
        if !path.starts_with('/') {
            return Err("a file:// URL needs an absolute path (file:///abs/dir)".into());
        }
        return Ok(Address::Local(PathBuf::from(path)));
    }
    if url.contains("://") {
        return Err(format!(
            "unknown scheme `{}`",
            url.split("://").next().unwrap_or_default()
        ));
    }
    Ok(Address::Local(PathBuf::from(url)))
}

fn clean_prefix(p: &str) -> String {
    p.split('/')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("/")
}

/// S3 bucket naming rules (and so alias rules: aliases are valid bucket names).
fn check_bucket(b: &str) -> Result<(), String> {
    let ok = (3..=63).contains(&b.len())
        && b.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && b.starts_with(|c: char| c.is_ascii_alphanumeric())
        && b.ends_with(|c: char| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{b}` is not a valid bucket name or access point alias (3-63 characters: a-z, 0-9, '-', '.')"
        ))
    }
}

fn parse_arn(arn: &str) -> Result<AccessPointArn, String> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    if parts.len() != 6 || parts[0] != "arn" {
        return Err("an ARN has six ':'-separated parts".into());
    }
    let (partition, service, region, account, resource) =
        (parts[1], parts[2], parts[3], parts[4], parts[5]);
    if !matches!(partition, "aws" | "aws-cn" | "aws-us-gov") {
        return Err(format!(
            "unknown partition `{partition}` (aws, aws-cn, aws-us-gov)"
        ));
    }
    if service != "s3" {
        return Err(format!("service is `{service}`, not s3"));
    }
    if region.is_empty()
        || !region
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return Err(format!(
            "`{region}` is not a region (an access point ARN names its region)"
        ));
    }
    if account.len() != 12 || !account.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!("`{account}` is not a 12-digit account id"));
    }
    let rest = resource
        .strip_prefix("accesspoint/")
        .ok_or_else(|| format!("resource `{resource}` is not `accesspoint/NAME`"))?;
    let (name, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let name_ok = (3..=50).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if !name_ok {
        return Err(format!(
            "`{name}` is not an access point name (3-50 characters: a-z, 0-9, '-')"
        ));
    }
    // An object ARN (`…/NAME/object/KEY`) names a key under the access point.
    let prefix = prefix.strip_prefix("object/").unwrap_or(prefix);
    Ok(AccessPointArn {
        partition: partition.into(),
        region: region.into(),
        account: account.into(),
        name: name.into(),
        prefix: clean_prefix(prefix),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn every_documented_form_parses() {
        assert_eq!(parse("./in").unwrap(), Address::Local("./in".into()));
        assert_eq!(
            parse("file:///data/in").unwrap(),
            Address::Local("/data/in".into())
        );
        assert_eq!(
            parse("s3://lake/raw//2024/").unwrap(),
            Address::Bucket {
                bucket: "lake".into(),
                prefix: "raw/2024".into()
            }
        );
        let alias = "vol1-ap-abcdefghijklmnopqrstuvwxyz0123-ext-s3alias";
        match parse(&format!("s3://{alias}/sensor")).unwrap() {
            Address::Bucket { bucket, prefix } => {
                assert!(is_access_point_alias(&bucket));
                assert_eq!(prefix, "sensor");
            }
            other => panic!("{other:?}"),
        }
        let want = AccessPointArn {
            partition: "aws".into(),
            region: "eu-west-1".into(),
            account: "123456789012".into(),
            name: "sensors".into(),
            prefix: "line1/2024".into(),
        };
        assert_eq!(
            parse("arn:aws:s3:eu-west-1:123456789012:accesspoint/sensors/line1/2024").unwrap(),
            Address::AccessPoint(want.clone())
        );
        assert_eq!(
            parse("s3://arn:aws:s3:eu-west-1:123456789012:accesspoint/sensors/line1/2024/")
                .unwrap(),
            Address::AccessPoint(want.clone())
        );
        assert_eq!(
            parse("arn:aws:s3:eu-west-1:123456789012:accesspoint/sensors/object/line1/2024")
                .unwrap(),
            Address::AccessPoint(want)
        );
    }

    #[test]
    fn malformed_addresses_say_what_is_wrong() {
        for (bad, why) in [
            ("arn:aws:s3:eu-west-1:12345:accesspoint/x1y", "12-digit"),
            ("arn:aws:s3::123456789012:accesspoint/sensors", "region"),
            (
                "arn:aws:s3:eu-west-1:123456789012:bucket/sensors",
                "accesspoint/NAME",
            ),
            (
                "arn:aws:sqs:eu-west-1:123456789012:accesspoint/sensors",
                "not s3",
            ),
            (
                "arn:aws:s3:eu-west-1:123456789012:accesspoint/Sensors",
                "access point name",
            ),
            ("s3://Bad_Bucket/x", "bucket name"),
            ("s3://", "bucket name"),
            ("gs://bucket/x", "unknown scheme"),
            ("file://relative/x", "absolute"),
        ] {
            let err = parse(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn access_point_endpoints() {
        let Address::AccessPoint(ap) =
            parse("arn:aws:s3:us-east-1:123456789012:accesspoint/sensors").unwrap()
        else {
            panic!()
        };
        assert_eq!(
            ap.endpoint(None).unwrap(),
            "https://sensors-123456789012.s3-accesspoint.us-east-1.amazonaws.com"
        );
        assert_eq!(
            ap.endpoint(Some("http://localhost:5000")).unwrap(),
            "http://sensors-123456789012.s3-accesspoint.localhost:5000"
        );
        // Aliases are virtual hosts too, derived from a custom endpoint the same way.
        assert_eq!(
            prefix_host("http://localhost:5000", "vol1-abc-ext-s3alias").unwrap(),
            "http://vol1-abc-ext-s3alias.localhost:5000"
        );
        let Address::AccessPoint(cn) =
            parse("arn:aws-cn:s3:cn-north-1:123456789012:accesspoint/logs").unwrap()
        else {
            panic!()
        };
        assert!(
            cn.endpoint(None)
                .unwrap()
                .ends_with(".cn-north-1.amazonaws.com.cn")
        );
    }

    #[test]
    fn addresses_with_user_info_are_refused_without_echoing_it() {
        for bad in [
            "s3://user:hunter2-SECRET@bucket/x",
            "s3://hunter2-SECRET@bucket",
            "file://user:hunter2-SECRET@host/x",
            "s3://arn:hunter2-SECRET@aws:s3:eu-west-1:123456789012:accesspoint/sensors",
        ] {
            let err = parse(bad).unwrap_err();
            assert!(err.contains("no user name or password"), "{bad}: {err}");
            assert!(!err.contains("hunter2"), "{bad}: {err}");
        }
        let ep = AccessPointArn {
            partition: "aws".into(),
            region: "eu-west-1".into(),
            account: "123456789012".into(),
            name: "sensors".into(),
            prefix: String::new(),
        }
        .endpoint(Some("http://u:hunter2-SECRET@[::1"))
        .unwrap_err();
        assert!(!ep.contains("hunter2") && ep.contains("***@"), "{ep}");
        let ep = prefix_host("http://u:hunter2-SECRET@[::1", "alias").unwrap_err();
        assert!(!ep.contains("hunter2") && ep.contains("***@"), "{ep}");
    }

    proptest! {
        #[test]
        fn arn_round_trips(
            region in "[a-z]{2}-[a-z]{4,9}-[1-9]",
            account in "[0-9]{12}",
            name in "[a-z0-9][a-z0-9-]{1,48}[a-z0-9]",
            prefix in proptest::collection::vec("[a-zA-Z0-9_.=]{1,12}", 0..4),
        ) {
            let prefix = prefix.join("/");
            let arn = format!("arn:aws:s3:{region}:{account}:accesspoint/{name}");
            let text = if prefix.is_empty() { arn.clone() } else { format!("{arn}/{prefix}") };
            for form in [text.clone(), format!("s3://{text}")] {
                let Address::AccessPoint(ap) = parse(&form).unwrap() else { panic!("{form}") };
                prop_assert_eq!(ap.arn(), arn.clone());
                prop_assert_eq!(&ap.prefix, &prefix);
                let ep = ap.endpoint(None).unwrap();
                let host = format!("https://{name}-{account}.s3-accesspoint.{region}.");
                prop_assert!(ep.starts_with(&host));
            }
        }

        #[test]
        fn parse_never_panics(s in ".{0,80}") {
            let _ = parse(&s);
        }
    }
}
