//! The S3 buckets `up` fills: the bootstrap package (PAN-OS allows only its own folders there)
//! and the lambda code plus the stack templates (in their own bucket). Created when missing with
//! the region's location constraint, public access blocked, default encryption on, object
//! ownership `BucketOwnerEnforced` (ACLs off) and a policy statement denying any request not made
//! over TLS (merged into a policy the user's own bucket already has, never replacing it); objects
//! are uploaded only when their content differs (sha256 kept in object metadata), then listed back.

use std::collections::BTreeMap;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types as s3t;
use sha2::{Digest, Sha256};

use super::{AwsError, DEPLOYMENT_TAG, sdk_err};

/// Object metadata key holding the body's sha256 (ETags are not content hashes under SSE-KMS).
const SHA_META: &str = "pano-eks-sha256";

pub use pano_eks_core::aws::preflight::BucketState;

/// One object to put.
pub struct Object<'a> {
    pub key: String,
    pub body: &'a [u8],
}

pub fn sha256_hex(b: &[u8]) -> String {
    Sha256::digest(b).iter().map(|x| format!("{x:02x}")).collect()
}

/// The keys that must be (re)uploaded: missing, or with another content hash.
pub fn uploads_needed(desired: &[(String, String)], existing: &BTreeMap<String, Option<String>>) -> Vec<String> {
    desired.iter().filter(|(k, sha)| existing.get(k).and_then(|s| s.as_ref()) != Some(sha)).map(|(k, _)| k.clone()).collect()
}

pub async fn probe(s3: &aws_sdk_s3::Client, bucket: &str, deployment: &str) -> Result<BucketState, AwsError> {
    match s3.head_bucket().bucket(bucket).send().await {
        Ok(_) => {}
        Err(e) => {
            let status = e.raw_response().map(|r| r.status().as_u16());
            return match status {
                Some(404) => Ok(BucketState::Missing),
                Some(403) => Ok(BucketState::Foreign(format!("bucket {bucket} exists and belongs to another account (403)"))),
                _ => {
                    let err = sdk_err("s3:HeadBucket", e);
                    if err.is_code("NotFound") || err.is_code("NoSuchBucket") { Ok(BucketState::Missing) } else { Err(err) }
                }
            };
        }
    }
    // Ours unless it is tagged for another deployment.
    if let Ok(t) = s3.get_bucket_tagging().bucket(bucket).send().await {
        if let Some(other) = t.tag_set().iter().find(|t| t.key() == DEPLOYMENT_TAG && t.value() != deployment) {
            return Ok(BucketState::Foreign(format!("bucket {bucket} belongs to deployment {}", other.value())));
        }
    }
    Ok(BucketState::Ours)
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

/// Creates the bucket if missing and (re)applies its settings. Returns whether it was created.
pub async fn ensure(s3: &aws_sdk_s3::Client, bucket: &str, region: &str, deployment: &str) -> Result<bool, AwsError> {
    let created = match probe(s3, bucket, deployment).await? {
        BucketState::Ours => false,
        BucketState::Foreign(why) => return Err(AwsError::new("s3:HeadBucket", why)),
        BucketState::Missing => {
            let mut req = s3.create_bucket().bucket(bucket);
            if region != "us-east-1" {
                req = req.create_bucket_configuration(
                    s3t::CreateBucketConfiguration::builder().location_constraint(s3t::BucketLocationConstraint::from(region)).build(),
                );
            }
            match req.send().await {
                Ok(_) => true,
                Err(e) => {
                    let err = sdk_err("s3:CreateBucket", e);
                    if !err.is_code("BucketAlreadyOwnedByYou") {
                        return Err(err);
                    }
                    false
                }
            }
        }
    };
    let pab = s3t::PublicAccessBlockConfiguration::builder()
        .block_public_acls(true)
        .ignore_public_acls(true)
        .block_public_policy(true)
        .restrict_public_buckets(true)
        .build();
    s3.put_public_access_block()
        .bucket(bucket)
        .public_access_block_configuration(pab)
        .send()
        .await
        .map_err(|e| sdk_err("s3:PutPublicAccessBlock", e))?;
    let rule = s3t::ServerSideEncryptionRule::builder()
        .apply_server_side_encryption_by_default(
            s3t::ServerSideEncryptionByDefault::builder()
                .sse_algorithm(s3t::ServerSideEncryption::Aes256)
                .build()
                .map_err(|e| AwsError::new("s3:PutBucketEncryption", e.to_string()))?,
        )
        .build();
    let sse = s3t::ServerSideEncryptionConfiguration::builder()
        .rules(rule)
        .build()
        .map_err(|e| AwsError::new("s3:PutBucketEncryption", e.to_string()))?;
    s3.put_bucket_encryption()
        .bucket(bucket)
        .server_side_encryption_configuration(sse)
        .send()
        .await
        .map_err(|e| sdk_err("s3:PutBucketEncryption", e))?;
    let tag = s3t::Tag::builder()
        .key(DEPLOYMENT_TAG)
        .value(deployment)
        .build()
        .map_err(|e| AwsError::new("s3:PutBucketTagging", e.to_string()))?;
    let tagging = s3t::Tagging::builder().tag_set(tag).build().map_err(|e| AwsError::new("s3:PutBucketTagging", e.to_string()))?;
    s3.put_bucket_tagging().bucket(bucket).tagging(tagging).send().await.map_err(|e| sdk_err("s3:PutBucketTagging", e))?;
    // ACLs off: every object belongs to the bucket owner, whoever wrote it.
    let ownership = s3t::OwnershipControls::builder()
        .rules(
            s3t::OwnershipControlsRule::builder()
                .object_ownership(s3t::ObjectOwnership::BucketOwnerEnforced)
                .build()
                .map_err(|e| AwsError::new("s3:PutBucketOwnershipControls", e.to_string()))?,
        )
        .build()
        .map_err(|e| AwsError::new("s3:PutBucketOwnershipControls", e.to_string()))?;
    s3.put_bucket_ownership_controls()
        .bucket(bucket)
        .ownership_controls(ownership)
        .send()
        .await
        .map_err(|e| sdk_err("s3:PutBucketOwnershipControls", e))?;
    let existing = match s3.get_bucket_policy().bucket(bucket).send().await {
        Ok(r) => r.policy().map(str::to_string),
        Err(e) => {
            let err = sdk_err("s3:GetBucketPolicy", e);
            if !err.is_code("NoSuchBucketPolicy") {
                return Err(err);
            }
            None
        }
    };
    if let Some(policy) =
        policy_with_tls_only(existing.as_deref(), bucket, partition(region)).map_err(|e| AwsError::new("s3:GetBucketPolicy", e))?
    {
        s3.put_bucket_policy().bucket(bucket).policy(policy).send().await.map_err(|e| sdk_err("s3:PutBucketPolicy", e))?;
    }
    Ok(created)
}

/// What `put_objects` did, by key.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct UploadReport {
    pub uploaded: Vec<String>,
    pub unchanged: Vec<String>,
}

/// Uploads the objects whose content differs, then lists the bucket to check every key is there.
pub async fn put_objects(s3: &aws_sdk_s3::Client, bucket: &str, objects: &[Object<'_>]) -> Result<UploadReport, AwsError> {
    let mut existing = BTreeMap::new();
    for o in objects {
        let sha = match s3.head_object().bucket(bucket).key(&o.key).send().await {
            Ok(h) => Some(h.metadata().and_then(|m| m.get(SHA_META)).cloned()),
            Err(e) if e.raw_response().map(|r| r.status().as_u16()) == Some(404) => None,
            Err(e) => return Err(sdk_err("s3:HeadObject", e)),
        };
        if let Some(sha) = sha {
            existing.insert(o.key.clone(), sha);
        }
    }
    let desired: Vec<(String, String)> = objects.iter().map(|o| (o.key.clone(), sha256_hex(o.body))).collect();
    let needed = uploads_needed(&desired, &existing);
    let mut report = UploadReport::default();
    for o in objects {
        if !needed.contains(&o.key) {
            report.unchanged.push(o.key.clone());
            continue;
        }
        s3.put_object()
            .bucket(bucket)
            .key(&o.key)
            .body(ByteStream::from(o.body.to_vec()))
            .metadata(SHA_META, sha256_hex(o.body))
            .server_side_encryption(s3t::ServerSideEncryption::Aes256)
            .send()
            .await
            .map_err(|e| sdk_err(&format!("s3:PutObject {}", o.key), e))?;
        report.uploaded.push(o.key.clone());
    }
    let listed = list_keys(s3, bucket).await?;
    let missing: Vec<&str> = objects.iter().map(|o| o.key.as_str()).filter(|k| !listed.iter().any(|l| l == k)).collect();
    if !missing.is_empty() {
        return Err(AwsError::new("s3:ListObjectsV2", format!("uploaded but not listed in {bucket}: {}", missing.join(", "))));
    }
    Ok(report)
}

pub async fn list_keys(s3: &aws_sdk_s3::Client, bucket: &str) -> Result<Vec<String>, AwsError> {
    let mut keys = Vec::new();
    let mut token = None;
    loop {
        let r = s3
            .list_objects_v2()
            .bucket(bucket)
            .set_continuation_token(token.take())
            .send()
            .await
            .map_err(|e| sdk_err("s3:ListObjectsV2", e))?;
        keys.extend(r.contents().iter().filter_map(|o| o.key().map(str::to_string)));
        match r.next_continuation_token() {
            Some(t) if r.is_truncated() == Some(true) => token = Some(t.to_string()),
            _ => return Ok(keys),
        }
    }
}

/// An object's body as text; `None` when the bucket or the object does not exist.
pub async fn get_text(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Result<Option<String>, AwsError> {
    match s3.get_object().bucket(bucket).key(key).send().await {
        Ok(o) => {
            let bytes = o.body.collect().await.map_err(|e| AwsError::new("s3:GetObject", e.to_string()))?.into_bytes();
            Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
        }
        Err(e) => {
            let e = sdk_err("s3:GetObject", e);
            if e.is_code("NoSuchKey") || e.is_code("NoSuchBucket") { Ok(None) } else { Err(e) }
        }
    }
}

/// Empties and deletes a bucket; `false` when it did not exist. Every object version and delete
/// marker goes, so a versioned bucket (one the user brought) is emptied too: deleting only the
/// current keys leaves versions behind and DeleteBucket fails with BucketNotEmpty.
pub async fn delete(s3: &aws_sdk_s3::Client, bucket: &str) -> Result<bool, AwsError> {
    let keys = match list_keys(s3, bucket).await {
        Ok(k) => k,
        Err(e) if e.is_code("NoSuchBucket") => return Ok(false),
        Err(e) => return Err(e),
    };
    delete_ids(s3, bucket, keys.iter().filter_map(|k| s3t::ObjectIdentifier::builder().key(k).build().ok()).collect()).await?;
    // Then whatever versions and delete markers are left (none in an unversioned bucket).
    loop {
        let r = s3.list_object_versions().bucket(bucket).send().await.map_err(|e| sdk_err("s3:ListObjectVersions", e))?;
        let mut ids: Vec<s3t::ObjectIdentifier> = Vec::new();
        for (key, version) in
            r.versions().iter().map(|v| (v.key(), v.version_id())).chain(r.delete_markers().iter().map(|m| (m.key(), m.version_id())))
        {
            if let Some(key) = key {
                ids.extend(s3t::ObjectIdentifier::builder().key(key).set_version_id(version.map(str::to_string)).build().ok());
            }
        }
        if ids.is_empty() {
            break;
        }
        delete_ids(s3, bucket, ids).await?;
    }
    s3.delete_bucket().bucket(bucket).send().await.map_err(|e| sdk_err("s3:DeleteBucket", e))?;
    Ok(true)
}

async fn delete_ids(s3: &aws_sdk_s3::Client, bucket: &str, ids: Vec<s3t::ObjectIdentifier>) -> Result<(), AwsError> {
    for chunk in ids.chunks(1000) {
        let del = s3t::Delete::builder()
            .set_objects(Some(chunk.to_vec()))
            .quiet(true)
            .build()
            .map_err(|e| AwsError::new("s3:DeleteObjects", e.to_string()))?;
        s3.delete_objects().bucket(bucket).delete(del).send().await.map_err(|e| sdk_err("s3:DeleteObjects", e))?;
    }
    Ok(())
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
}
