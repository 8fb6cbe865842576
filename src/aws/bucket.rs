//! The S3 buckets `up` fills: the bootstrap package (PAN-OS allows only its own folders there)
//! and the lambda code plus the stack templates (in their own bucket). Created when missing with
//! the region's location constraint, public access blocked, default encryption on, object
//! ownership `BucketOwnerEnforced` (ACLs off) and a policy statement denying any request not made
//! over TLS (merged into a policy the user's own bucket already has, never replacing it); objects
//! are uploaded only when their content differs (sha256 kept in object metadata), then listed back.
//! Whether a bucket is ours, what to upload, the policy to put and the versions to delete are
//! decided in `pano_eks_core::aws::bucket` (re-exported here); this module makes the S3 calls.

use std::collections::BTreeMap;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types as s3t;

use super::{AwsError, DEPLOYMENT_TAG, sdk_err};

/// Object metadata key holding the body's sha256 (ETags are not content hashes under SSE-KMS).
const SHA_META: &str = "pano-eks-sha256";

pub use pano_eks_core::aws::bucket::{
    BucketState, TLS_ONLY_SID, partition, policy_with_tls_only, sha256_hex, tls_only_statement, uploads_needed,
};
use pano_eks_core::aws::bucket::{state_from_head, state_from_tags, versions_to_delete};

/// One object to put.
pub struct Object<'a> {
    pub key: String,
    pub body: &'a [u8],
}

pub async fn probe(s3: &aws_sdk_s3::Client, bucket: &str, deployment: &str) -> Result<BucketState, AwsError> {
    match s3.head_bucket().bucket(bucket).send().await {
        Ok(_) => {}
        Err(e) => {
            if let Some(state) = state_from_head(bucket, e.raw_response().map(|r| r.status().as_u16())) {
                return Ok(state);
            }
            let err = sdk_err("s3:HeadBucket", e);
            return if err.is_code("NotFound") || err.is_code("NoSuchBucket") { Ok(BucketState::Missing) } else { Err(err) };
        }
    }
    let tags: Vec<(String, String)> = match s3.get_bucket_tagging().bucket(bucket).send().await {
        Ok(t) => t.tag_set().iter().map(|t| (t.key().to_string(), t.value().to_string())).collect(),
        Err(_) => Vec::new(),
    };
    Ok(state_from_tags(bucket, &tags, deployment))
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
        let gone = versions_to_delete(
            r.versions().iter().map(|v| (v.key(), v.version_id())),
            r.delete_markers().iter().map(|m| (m.key(), m.version_id())),
        );
        let ids: Vec<s3t::ObjectIdentifier> = gone
            .into_iter()
            .filter_map(|(key, version)| s3t::ObjectIdentifier::builder().key(key).set_version_id(version).build().ok())
            .collect();
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
