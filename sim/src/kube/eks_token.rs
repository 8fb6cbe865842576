//! EKS bearer tokens: `k8s-aws-v1.` + base64url (no padding) of a presigned STS
//! `GetCallerIdentity` URL whose signed headers include `x-k8s-aws-id: <cluster name>`.
//!
//! The real authenticator (aws-iam-authenticator) forwards the URL to STS with the header set
//! to *its* cluster name; STS then checks the HMAC, which binds the token to that cluster. kube-sim
//! has no secret key, so it cannot verify the HMAC and therefore cannot see which cluster name the
//! client signed. It checks everything else that can be checked offline: the shape, the STS host,
//! the action, that `x-k8s-aws-id` (and `host`) are among the signed headers, that a signature
//! of 64 lower-case hex digits is present, and the expiry (`X-Amz-Date` + `X-Amz-Expires`, with
//! `X-Amz-Expires` at most 900 s as AWS caps presigned STS tokens at 15 minutes).

use base64::Engine;

pub const PREFIX: &str = "k8s-aws-v1.";
/// AWS refuses presigned GetCallerIdentity URLs valid for longer than this.
pub const MAX_EXPIRES: i64 = 900;
/// Accepted clock skew for a token dated in the future.
const SKEW: i64 = 300;

/// What a valid token told us (never the signature or credential).
#[derive(Debug, PartialEq)]
pub struct EksToken {
    pub host: String,
    pub access_key_id: String,
    pub expires_at: i64,
}

fn is_sts_host(h: &str) -> bool {
    h == "sts.amazonaws.com"
        || h.strip_prefix("sts.")
            .and_then(|r| r.strip_suffix(".amazonaws.com").or_else(|| r.strip_suffix(".amazonaws.com.cn")))
            .is_some_and(|region| !region.is_empty() && region.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'))
}

/// Checks an EKS token at Unix time `now`. Errors say what is wrong without echoing secrets.
pub fn verify(token: &str, now: i64) -> Result<EksToken, String> {
    let b64 = token.strip_prefix(PREFIX).ok_or("not an EKS token (missing k8s-aws-v1. prefix)")?;
    if b64.contains('=') {
        return Err("EKS token must be base64url without padding".into());
    }
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(b64).map_err(|_| "EKS token is not base64url")?;
    let url = String::from_utf8(raw).map_err(|_| "EKS token URL is not UTF-8")?;
    let rest = url.strip_prefix("https://").ok_or("EKS token URL must be https")?;
    let (authority, path_query) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    if !is_sts_host(authority) {
        return Err(format!("EKS token URL host {authority:?} is not an STS endpoint"));
    }
    let (path, query) = path_query.split_once('?').unwrap_or((path_query, ""));
    if !(path.is_empty() || path == "/") {
        return Err(format!("EKS token URL path must be /, got {path:?}"));
    }
    let params: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    let get = |k: &str| {
        let mut it = params.iter().filter(|(a, _)| a.eq_ignore_ascii_case(k));
        match (it.next(), it.next()) {
            (Some((_, v)), None) => Ok(v.as_str()),
            (None, _) => Err(format!("EKS token URL lacks {k}")),
            _ => Err(format!("EKS token URL repeats {k}")),
        }
    };
    if get("Action")? != "GetCallerIdentity" {
        return Err("EKS token must presign Action=GetCallerIdentity".into());
    }
    if get("Version")? != "2011-06-15" {
        return Err("EKS token must use STS Version=2011-06-15".into());
    }
    if get("X-Amz-Algorithm")? != "AWS4-HMAC-SHA256" {
        return Err("EKS token must be signed with AWS4-HMAC-SHA256".into());
    }
    let cred = get("X-Amz-Credential")?;
    let parts: Vec<&str> = cred.split('/').collect();
    if parts.len() != 5 || parts[0].is_empty() || parts[3] != "sts" || parts[4] != "aws4_request" {
        return Err("EKS token X-Amz-Credential must be KEY/DATE/REGION/sts/aws4_request".into());
    }
    let signed: Vec<&str> = get("X-Amz-SignedHeaders")?.split(';').collect();
    if !signed.contains(&"x-k8s-aws-id") {
        return Err("EKS token does not sign the x-k8s-aws-id header (the cluster name)".into());
    }
    if !signed.contains(&"host") {
        return Err("EKS token does not sign the host header".into());
    }
    let sig = get("X-Amz-Signature")?;
    if sig.len() != 64 || !sig.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)) {
        return Err("EKS token X-Amz-Signature must be 64 lower-case hex digits".into());
    }
    let date_s = get("X-Amz-Date")?;
    let date = super::clock::parse_amz_date(date_s).ok_or("EKS token X-Amz-Date must be YYYYMMDDTHHMMSSZ")?;
    if !date_s.starts_with(parts[1]) {
        return Err("EKS token credential scope date differs from X-Amz-Date".into());
    }
    let expires: i64 = get("X-Amz-Expires")?.parse().map_err(|_| "EKS token X-Amz-Expires must be a number of seconds")?;
    if !(1..=MAX_EXPIRES).contains(&expires) {
        return Err(format!("EKS token X-Amz-Expires must be 1..={MAX_EXPIRES} seconds, got {expires}"));
    }
    if date > now + SKEW {
        return Err("EKS token is dated in the future".into());
    }
    if date + expires < now {
        return Err("EKS token has expired".into());
    }
    Ok(EksToken { host: authority.to_string(), access_key_id: parts[0].to_string(), expires_at: date + expires })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A token shaped like `aws eks get-token` output (signature is not a real HMAC).
    pub fn make(date: &str, expires: &str, signed: &str, sig: &str) -> String {
        let url = format!(
            "https://sts.us-east-1.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15&X-Amz-Algorithm=AWS4-HMAC-SHA256\
             &X-Amz-Credential=AKIAEXAMPLE%2F{}%2Fus-east-1%2Fsts%2Faws4_request&X-Amz-Date={date}&X-Amz-Expires={expires}\
             &X-Amz-SignedHeaders={signed}&X-Amz-Signature={sig}",
            &date[..8]
        );
        format!("{PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(url))
    }

    const SIG: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn accepts_a_well_formed_token_and_rejects_each_defect() {
        let now = super::super::clock::parse_amz_date("20240301T120000Z").unwrap();
        let ok = make("20240301T115900Z", "60", "host%3Bx-k8s-aws-id", SIG);
        assert_eq!(verify(&ok, now).unwrap().access_key_id, "AKIAEXAMPLE");
        let cases = [
            (make("20240301T115800Z", "60", "host%3Bx-k8s-aws-id", SIG), "expired"),
            (make("20240301T115900Z", "901", "host%3Bx-k8s-aws-id", SIG), "X-Amz-Expires"),
            (make("20240301T115900Z", "60", "host", SIG), "x-k8s-aws-id"),
            (make("20240301T115900Z", "60", "host%3Bx-k8s-aws-id", &SIG[1..]), "X-Amz-Signature"),
            (make("20240301T125900Z", "60", "host%3Bx-k8s-aws-id", SIG), "future"),
            (format!("{ok}="), "padding"),
            ("k8s-aws-v2.abc".to_string(), "prefix"),
        ];
        for (tok, why) in cases {
            let err = verify(&tok, now).unwrap_err();
            assert!(err.contains(why), "{why}: {err}");
        }
    }
}
