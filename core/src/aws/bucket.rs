//! The deployment's buckets: whether a bucket of our name is ours to use, which objects must be
//! (re)uploaded, the TLS-only statement merged into the bucket policy (every other statement
//! kept), and which object versions and delete markers emptying it must delete.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::front::alb::DEPLOYMENT_TAG;

/// What a bucket of the deployment's name is to us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BucketState {
    Missing,
    /// Exists and we can use it.
    Ours,
    /// Exists but belongs to someone else (403), or another deployment's tag.
    Foreign(String),
}

/// What HeadBucket's HTTP status says (404: missing, 403: another account's); `None`: it exists
/// and is readable (its tags decide), or the status says nothing (the error code decides).
pub fn state_from_head(bucket: &str, status: Option<u16>) -> Option<BucketState> {
    match status {
        Some(404) => Some(BucketState::Missing),
        Some(403) => Some(BucketState::Foreign(format!("bucket {bucket} exists and belongs to another account (403)"))),
        _ => None,
    }
}

/// An existing bucket is ours unless it is tagged for another deployment (unreadable or no tags: ours).
pub fn state_from_tags(bucket: &str, tags: &[(String, String)], deployment: &str) -> BucketState {
    match tags.iter().find(|(k, v)| k == DEPLOYMENT_TAG && v != deployment) {
        Some((_, other)) => BucketState::Foreign(format!("bucket {bucket} belongs to deployment {other}")),
        None => BucketState::Ours,
    }
}

pub fn sha256_hex(b: &[u8]) -> String {
    Sha256::digest(b).iter().map(|x| format!("{x:02x}")).collect()
}

/// The keys that must be (re)uploaded: missing, or with another content hash.
pub fn uploads_needed(desired: &[(String, String)], existing: &BTreeMap<String, Option<String>>) -> Vec<String> {
    desired.iter().filter(|(k, sha)| existing.get(k).and_then(|s| s.as_ref()) != Some(sha)).map(|(k, _)| k.clone()).collect()
}

/// Sid of the statement pano-eks adds to a bucket policy.
pub const TLS_ONLY_SID: &str = "PanoEksDenyInsecureTransport";

/// The AWS partition of a region (`arn:<partition>:s3:::…`).
pub fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// The statement denying every request to the bucket and its objects that is not over TLS
/// (Amazon S3 user guide, "Security best practices": enforce encryption in transit with
/// `aws:SecureTransport`).
pub fn tls_only_statement(bucket: &str, partition: &str) -> serde_json::Value {
    serde_json::json!({
        "Sid": TLS_ONLY_SID,
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [format!("arn:{partition}:s3:::{bucket}"), format!("arn:{partition}:s3:::{bucket}/*")],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    })
}

/// The bucket policy to put so that it holds our TLS-only statement: `Ok(None)` when `existing`
/// already has it as wanted; otherwise `existing` with ours added (or replaced, by Sid), every
/// other statement kept as it was.
pub fn policy_with_tls_only(existing: Option<&str>, bucket: &str, partition: &str) -> Result<Option<String>, String> {
    let want = tls_only_statement(bucket, partition);
    let mut doc: serde_json::Value = match existing.map(str::trim).filter(|s| !s.is_empty()) {
        None => serde_json::json!({"Version": "2012-10-17", "Statement": []}),
        Some(text) => serde_json::from_str(text).map_err(|e| format!("the bucket policy of {bucket} is not JSON: {e}"))?,
    };
    let obj = doc.as_object_mut().ok_or_else(|| format!("the bucket policy of {bucket} is not a JSON object"))?;
    let statements = obj.entry("Statement").or_insert_with(|| serde_json::json!([]));
    if statements.is_object() {
        *statements = serde_json::Value::Array(vec![statements.take()]);
    }
    let list = statements.as_array_mut().ok_or_else(|| format!("the bucket policy of {bucket} has a Statement that is not a list"))?;
    match list.iter_mut().find(|s| s.get("Sid").and_then(|v| v.as_str()) == Some(TLS_ONLY_SID)) {
        Some(s) if *s == want => return Ok(None),
        Some(s) => *s = want,
        None => list.push(want),
    }
    Ok(Some(doc.to_string()))
}

/// What emptying a bucket deletes after its current keys: every listed object version and
/// delete marker (key, version id), so that DeleteBucket does not fail with BucketNotEmpty.
pub fn versions_to_delete<'a>(
    versions: impl IntoIterator<Item = (Option<&'a str>, Option<&'a str>)>,
    delete_markers: impl IntoIterator<Item = (Option<&'a str>, Option<&'a str>)>,
) -> Vec<(String, Option<String>)> {
    versions.into_iter().chain(delete_markers).filter_map(|(k, v)| Some((k?.to_string(), v.map(str::to_string)))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_missing_or_changed_objects_are_uploaded() {
        let desired = vec![
            ("a".to_string(), "1".to_string()),
            ("b".to_string(), "2".to_string()),
            ("c".to_string(), "3".to_string()),
            ("d/".to_string(), "e".to_string()),
        ];
        let existing = BTreeMap::from([
            ("a".to_string(), Some("1".to_string())),
            ("b".to_string(), Some("old".to_string())),
            ("d/".to_string(), None), // uploaded by someone else: no hash, so rewritten
        ]);
        assert_eq!(uploads_needed(&desired, &existing), vec!["b", "c", "d/"]);
        assert!(uploads_needed(&desired[..1], &existing).is_empty());
    }

    #[test]
    fn sha_is_hex_of_the_body() {
        assert_eq!(sha256_hex(b""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }

    #[test]
    fn the_tls_only_statement_is_added_kept_or_repaired_never_replacing_the_users() {
        let ours = tls_only_statement("b", "aws");
        let fresh: serde_json::Value = serde_json::from_str(&policy_with_tls_only(None, "b", "aws").unwrap().unwrap()).unwrap();
        assert_eq!(fresh["Statement"], serde_json::json!([ours.clone()]));
        assert_eq!(ours["Condition"]["Bool"]["aws:SecureTransport"], "false");
        assert_eq!(ours["Resource"], serde_json::json!(["arn:aws:s3:::b", "arn:aws:s3:::b/*"]));
        // Already there: nothing to put.
        assert_eq!(policy_with_tls_only(Some(&fresh.to_string()), "b", "aws").unwrap(), None);
        // The user's own statement (one object, not a list) stays; ours is added.
        let theirs = r#"{"Version":"2012-10-17","Statement":{"Sid":"Theirs","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::1:root"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}}"#;
        let merged: serde_json::Value = serde_json::from_str(&policy_with_tls_only(Some(theirs), "b", "aws").unwrap().unwrap()).unwrap();
        let sids: Vec<&str> = merged["Statement"].as_array().unwrap().iter().map(|s| s["Sid"].as_str().unwrap()).collect();
        assert_eq!(sids, ["Theirs", TLS_ONLY_SID]);
        // A stale copy of ours (another partition) is repaired in place.
        let stale = policy_with_tls_only(None, "b", "aws-cn").unwrap().unwrap();
        let fixed: serde_json::Value = serde_json::from_str(&policy_with_tls_only(Some(&stale), "b", "aws").unwrap().unwrap()).unwrap();
        assert_eq!(fixed["Statement"], serde_json::json!([ours]));
        assert!(policy_with_tls_only(Some("not json"), "b", "aws").is_err());
        assert_eq!((partition("us-west-2"), partition("cn-north-1"), partition("us-gov-west-1")), ("aws", "aws-cn", "aws-us-gov"));
    }

    #[test]
    fn a_bucket_of_our_name_is_ours_unless_another_account_or_deployment_holds_it() {
        assert_eq!(state_from_head("b", Some(404)), Some(BucketState::Missing));
        assert!(matches!(state_from_head("b", Some(403)), Some(BucketState::Foreign(m)) if m.contains("another account (403)")));
        assert_eq!(state_from_head("b", Some(200)), None);
        assert_eq!(state_from_head("b", None), None);
        let t = |k: &str, v: &str| (k.to_string(), v.to_string());
        assert_eq!(state_from_tags("b", &[], "demo"), BucketState::Ours);
        assert_eq!(state_from_tags("b", &[t("pano-eks:deployment", "demo"), t("team", "x")], "demo"), BucketState::Ours);
        assert_eq!(
            state_from_tags("b", &[t("pano-eks:deployment", "other")], "demo"),
            BucketState::Foreign("bucket b belongs to deployment other".into())
        );
    }

    #[test]
    fn emptying_deletes_every_version_and_delete_marker() {
        let got = versions_to_delete(
            [(Some("a"), Some("v1")), (Some("a"), Some("v2")), (None, Some("v3"))],
            [(Some("b"), Some("m1")), (Some("c"), None)],
        );
        assert_eq!(
            got,
            vec![
                ("a".to_string(), Some("v1".to_string())),
                ("a".to_string(), Some("v2".to_string())),
                ("b".to_string(), Some("m1".to_string())),
                ("c".to_string(), None),
            ]
        );
        assert!(versions_to_delete([], []).is_empty());
    }
}
