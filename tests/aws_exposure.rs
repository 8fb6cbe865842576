//! A Service's own load balancer as AWS reports it (issue 19, "A Service that bypasses the
//! firewalls is not protected"), against moto: discovery lists the region's load balancers with
//! one `DescribeLoadBalancers` per page, and the planner judges each Service by the load balancer
//! that has its published DNS name, over what its annotations claim.

mod support;

use std::collections::BTreeMap;

use aws_sdk_elasticloadbalancingv2::types as elb;
use base64::Engine as _;
use pano_eks::aws::{Aws, discovery};
use pano_eks_core::{ClusterFacts, Facts, Observed, PlanSettings, PortFacts, ServiceFacts, ServiceState, Timestamp};
use support::aws_world::{MotoWorld, moto_world};

const REGION: &str = "us-west-2";

/// An NLB as the cloud provider or the AWS Load Balancer Controller makes one for a Service.
async fn nlb(aws: &Aws, subnets: &[String], name: &str, scheme: elb::LoadBalancerSchemeEnum) -> String {
    let r = aws
        .elbv2
        .create_load_balancer()
        .name(name)
        .r#type(elb::LoadBalancerTypeEnum::Network)
        .scheme(scheme)
        .set_subnets(Some(subnets.to_vec()))
        .send()
        .await
        .unwrap();
    r.load_balancers()[0].dns_name().unwrap().to_string()
}

fn service(name: &str, port: &str, hostname: &str, annotations: &[(&str, &str)]) -> ServiceFacts {
    ServiceFacts {
        namespace: "default".into(),
        name: name.into(),
        labels: BTreeMap::from([("panw-tg-port".to_owned(), port.to_owned())]),
        annotations: annotations
            .iter()
            .map(|(k, v)| (format!("service.beta.kubernetes.io/aws-load-balancer-{k}"), (*v).to_owned()))
            .collect(),
        service_type: "LoadBalancer".into(),
        load_balancer_class: None,
        lb_hostname: Some(hostname.to_owned()),
        ports: vec![PortFacts { port: 80, protocol: "TCP".into() }],
        created: Timestamp::parse("2026-11-26T10:00:00Z").unwrap(),
    }
}

#[test]
fn the_load_balancer_aws_reports_decides_whether_a_service_is_exposed() {
    let Some(MotoWorld { rt, moto, aws }) = moto_world(REGION) else { return };
    let (internal, public) = rt.block_on(async {
        let vpc = aws.ec2.create_vpc().cidr_block("192.168.0.0/16").send().await.unwrap();
        let vpc = vpc.vpc().unwrap().vpc_id().unwrap().to_string();
        let mut subnets = Vec::new();
        for (cidr, az) in [("192.168.110.0/24", "us-west-2a"), ("192.168.111.0/24", "us-west-2b")] {
            let s = aws.ec2.create_subnet().vpc_id(&vpc).cidr_block(cidr).availability_zone(az).send().await.unwrap();
            subnets.push(s.subnet().unwrap().subnet_id().unwrap().to_string());
        }
        let internal = nlb(&aws, &subnets, "k8s-default-cart", elb::LoadBalancerSchemeEnum::Internal).await;
        let public = nlb(&aws, &subnets, "k8s-default-shop", elb::LoadBalancerSchemeEnum::InternetFacing).await;
        (internal, public)
    });

    moto.start_recording();
    let lbs = rt.block_on(discovery::load_balancers(&aws)).unwrap();
    let calls = moto.stop_recording();
    {
        // ELBv2 is a query API: the action is the form body's `Action=` (moto's recorder keeps
        // the body as sent, base64 when `body_encoded`).
        let sent: Vec<String> = calls
            .iter()
            .map(|c| {
                let raw = c["body"].as_str().unwrap_or_default();
                let body = if c["body_encoded"].as_bool() == Some(true) {
                    String::from_utf8_lossy(&base64::engine::general_purpose::STANDARD.decode(raw).unwrap()).into_owned()
                } else {
                    raw.to_owned()
                };
                body.split('&').find_map(|kv| kv.strip_prefix("Action=")).unwrap_or("?").to_owned()
            })
            .collect();
        assert_eq!(sent, ["DescribeLoadBalancers"], "one page, one call: {calls:#?}");
        let seen: Vec<(&str, &str, &str)> = lbs.iter().map(|l| (l.name.as_str(), l.dns_name.as_str(), l.scheme.as_str())).collect();
        assert_eq!(seen, [("k8s-default-cart", internal.as_str(), "internal"), ("k8s-default-shop", public.as_str(), "internet-facing")]);

        let internal_nlb: &[(&str, &str)] = &[("type", "nlb"), ("internal", "true")];
        let facts = Facts {
            clusters: vec![ClusterFacts {
                name: "shop".into(),
                subnets: vec![],
                services: vec![
                    // No annotation (the cloud provider's default is internet-facing), but AWS
                    // reports its load balancer internal: protected.
                    service("cart", "82", &internal, &[]),
                    // Annotated internal, but its load balancer is internet-facing (made before
                    // the annotation, which the controllers do not apply to an existing NLB).
                    service("shop", "83", &public.to_ascii_uppercase(), internal_nlb),
                    // Not one AWS lists (a Classic Load Balancer): the annotations decide.
                    service("legacy", "84", "internal-legacy-1.us-west-2.elb.amazonaws.com", internal_nlb),
                ],
            }],
            load_balancers: lbs,
            ..Default::default()
        };
        let plan = pano_eks_core::plan(&PlanSettings::new("demo", "dg", "tpl"), &facts, &Observed::default()).unwrap();
        let state = |n: &str| plan.services.iter().find(|s| s.name == n).map(|s| (s.state, s.reason.clone())).unwrap();
        assert_eq!(state("cart").0, ServiceState::Planned);
        assert_eq!(state("legacy").0, ServiceState::Planned);
        let (st, why) = state("shop");
        assert_eq!(st, ServiceState::Exposed);
        assert!(why.contains("AWS reports load balancer k8s-default-shop") && why.contains(&public), "{why}");
    }
}
