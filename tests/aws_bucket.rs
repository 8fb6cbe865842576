//! The buckets against moto (issue 13 hardening): a bucket `up` makes denies non-TLS access and
//! enforces bucket-owner object ownership; a bucket the user brings keeps its own policy
//! statements (ours is added beside them, once); a versioned bucket is emptied and deleted.

mod support;

use aws_sdk_s3::types as s3t;
use pano_eks::aws::bucket;
use support::aws_world::{MotoWorld, moto_world};

const REGION: &str = "us-west-2";

async fn policy(s3: &aws_sdk_s3::Client, b: &str) -> serde_json::Value {
    let p = s3.get_bucket_policy().bucket(b).send().await.unwrap();
    serde_json::from_str(p.policy().unwrap()).unwrap()
}

fn sids(p: &serde_json::Value) -> Vec<String> {
    p["Statement"].as_array().unwrap().iter().map(|s| s["Sid"].as_str().unwrap_or_default().to_string()).collect()
}

#[test]
fn buckets_are_tls_only_owner_enforced_and_versioned_ones_are_deleted() {
    let Some(MotoWorld { rt, moto: _moto, aws }) = moto_world(REGION) else { return };
    rt.block_on(async {
        let s3 = &aws.s3;

        // Made by `up`.
        assert!(bucket::ensure(s3, "demo-panw-bootstrap", REGION, "demo").await.unwrap());
        let p = policy(s3, "demo-panw-bootstrap").await;
        assert_eq!(p["Statement"][0], bucket::tls_only_statement("demo-panw-bootstrap", "aws"));
        let own = s3.get_bucket_ownership_controls().bucket("demo-panw-bootstrap").send().await.unwrap();
        let rule = &own.ownership_controls().unwrap().rules()[0];
        assert_eq!(rule.object_ownership(), &s3t::ObjectOwnership::BucketOwnerEnforced);

        // Brought by the user, with a policy and versioning: their statement stays, ours once.
        let theirs = r#"{"Version":"2012-10-17","Statement":[{"Sid":"Theirs","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::mine/*"}]}"#;
        let cfg = s3t::CreateBucketConfiguration::builder().location_constraint(s3t::BucketLocationConstraint::from(REGION)).build();
        s3.create_bucket().bucket("mine").create_bucket_configuration(cfg).send().await.unwrap();
        s3.put_bucket_policy().bucket("mine").policy(theirs).send().await.unwrap();
        let on = s3t::VersioningConfiguration::builder().status(s3t::BucketVersioningStatus::Enabled).build();
        s3.put_bucket_versioning().bucket("mine").versioning_configuration(on).send().await.unwrap();
        assert!(!bucket::ensure(s3, "mine", REGION, "demo").await.unwrap());
        assert!(!bucket::ensure(s3, "mine", REGION, "demo").await.unwrap());
        assert_eq!(sids(&policy(s3, "mine").await), ["Theirs", bucket::TLS_ONLY_SID]);

        // Two versions of one key, and a delete marker on another: all go with the bucket.
        for body in ["one", "two"] {
            let o = bucket::Object { key: "config/init-cfg.txt".into(), body: body.as_bytes() };
            bucket::put_objects(s3, "mine", &[o]).await.unwrap();
        }
        bucket::put_objects(s3, "mine", &[bucket::Object { key: "gone".into(), body: b"x" }]).await.unwrap();
        s3.delete_object().bucket("mine").key("gone").send().await.unwrap();
        let v = s3.list_object_versions().bucket("mine").send().await.unwrap();
        assert!(v.versions().len() >= 3 && !v.delete_markers().is_empty(), "{v:?}");
        assert!(bucket::delete(s3, "mine").await.unwrap());
        assert!(s3.head_bucket().bucket("mine").send().await.is_err(), "the versioned bucket is gone");
        assert!(!bucket::delete(s3, "mine").await.unwrap(), "twice: already gone");
    });
}
