//! The AWS edge against moto: the ALB per protected Service (`sync.manage_alb`) and egress
//! through a firewall (`network.outbound_via_firewall`), on a fixture made with the SDK that has
//! the firewall stack's shape (VPC, IGW, untrust/trust/cluster subnets, the public ALB with its
//! port-80 listener and port-81 target group, the firewall ASG attached to it, the cluster route
//! table with 0.0.0.0/0 → IGW). The lifecycle lambda does not run in moto, so the test attaches
//! each firewall's trust ENI (device index 2) itself, as the lambda would.

mod support;

use std::collections::BTreeMap;

use aws_sdk_autoscaling::types::LaunchTemplateSpecification;
use aws_sdk_ec2::types::{Filter, ResourceType, Tag, TagSpecification};
use aws_sdk_elasticloadbalancingv2::types as elb;
use pano_eks::aws::alb::{self, AlbState, ServiceKey};
use pano_eks::aws::{Aws, DEPLOYMENT_TAG, outbound};
use pano_eks_core::{ClusterFacts, Facts, Plan, ServiceFacts, ServiceState, ServiceStatus};
use support::aws_world::{MotoWorld, moto_world};

const REGION: &str = "us-west-2";
const DEPLOYMENT: &str = "demo";
const ASG: &str = "demo-firewall-PANW-Firewall-ASG";

struct Fixture {
    alb: alb::Context,
    outbound: outbound::Context,
    trust_subnet: String,
    igw: String,
    route_table: String,
}

fn tags(kind: ResourceType) -> TagSpecification {
    TagSpecification::builder().resource_type(kind).tags(Tag::builder().key(DEPLOYMENT_TAG).value(DEPLOYMENT).build()).build()
}

async fn fixture(aws: &Aws) -> Fixture {
    let ec2 = &aws.ec2;
    let vpc = ec2
        .create_vpc()
        .cidr_block("192.168.0.0/16")
        .tag_specifications(tags(ResourceType::Vpc))
        .send()
        .await
        .unwrap()
        .vpc()
        .unwrap()
        .vpc_id()
        .unwrap()
        .to_string();
    let igw = ec2.create_internet_gateway().send().await.unwrap().internet_gateway().unwrap().internet_gateway_id().unwrap().to_string();
    ec2.attach_internet_gateway().internet_gateway_id(&igw).vpc_id(&vpc).send().await.unwrap();
    let subnet = |cidr: &'static str, az: &'static str| {
        let vpc = vpc.clone();
        async move {
            ec2.create_subnet()
                .vpc_id(vpc)
                .cidr_block(cidr)
                .availability_zone(az)
                .send()
                .await
                .unwrap()
                .subnet()
                .unwrap()
                .subnet_id()
                .unwrap()
                .to_string()
        }
    };
    let untrust_a = subnet("192.168.1.0/24", "us-west-2a").await;
    let untrust_b = subnet("192.168.11.0/24", "us-west-2b").await;
    let trust = subnet("192.168.2.0/24", "us-west-2a").await;
    let cluster = subnet("192.168.110.0/24", "us-west-2a").await;
    let route_table =
        ec2.create_route_table().vpc_id(&vpc).send().await.unwrap().route_table().unwrap().route_table_id().unwrap().to_string();
    ec2.create_route().route_table_id(&route_table).destination_cidr_block("0.0.0.0/0").gateway_id(&igw).send().await.unwrap();
    ec2.associate_route_table().route_table_id(&route_table).subnet_id(&cluster).send().await.unwrap();

    let elb_tag = elb::Tag::builder().key(DEPLOYMENT_TAG).value(DEPLOYMENT).build();
    let lb = aws
        .elbv2
        .create_load_balancer()
        .name("demo-public")
        .subnets(&untrust_a)
        .subnets(&untrust_b)
        .tags(elb_tag.clone())
        .send()
        .await
        .unwrap();
    let lb_arn = lb.load_balancers()[0].load_balancer_arn().unwrap().to_string();
    let tg = aws
        .elbv2
        .create_target_group()
        .name("demo-fw-public")
        .protocol(elb::ProtocolEnum::Http)
        .port(81)
        .vpc_id(&vpc)
        .target_type(elb::TargetTypeEnum::Instance)
        // As the firewall template makes it: probed on the firewall's own HTTPS (the port
        // `panorama prepare` opens on the untrust interface).
        .health_check_protocol(elb::ProtocolEnum::Https)
        .health_check_port(pano_eks_core::prepare::PROBE_PORT.to_string())
        .health_check_path("/")
        .tags(elb_tag.clone())
        .send()
        .await
        .unwrap();
    let public_tg = tg.target_groups()[0].target_group_arn().unwrap().to_string();
    let listener = aws
        .elbv2
        .create_listener()
        .load_balancer_arn(&lb_arn)
        .port(80)
        .protocol(elb::ProtocolEnum::Http)
        .default_actions(elb::Action::builder().r#type(elb::ActionTypeEnum::Forward).target_group_arn(&public_tg).build())
        .send()
        .await
        .unwrap();
    let listener_arn = listener.listeners()[0].listener_arn().unwrap().to_string();

    let ami = ec2.describe_images().send().await.unwrap().images().iter().find_map(|i| i.image_id().map(str::to_string)).unwrap();
    let lt = ec2
        .create_launch_template()
        .launch_template_name("demo-fw")
        .launch_template_data(
            aws_sdk_ec2::types::RequestLaunchTemplateData::builder()
                .image_id(ami)
                .instance_type(aws_sdk_ec2::types::InstanceType::M5Xlarge)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let lt_id = lt.launch_template().unwrap().launch_template_id().unwrap().to_string();
    aws.asg
        .create_auto_scaling_group()
        .auto_scaling_group_name(ASG)
        .launch_template(LaunchTemplateSpecification::builder().launch_template_id(lt_id).version("$Latest").build())
        .min_size(1)
        .max_size(1)
        .desired_capacity(1)
        .vpc_zone_identifier(format!("{untrust_a},{untrust_b}"))
        .target_group_arns(&public_tg)
        .send()
        .await
        .unwrap();
    Fixture {
        alb: alb::Context { deployment: DEPLOYMENT.into(), vpc_id: vpc, listener_arn, public_tg_arn: public_tg, asg_name: ASG.into() },
        outbound: outbound::Context {
            deployment: DEPLOYMENT.into(),
            asg_name: ASG.into(),
            route_tables: vec![route_table.clone()],
            igw: Some(igw.clone()),
        },
        trust_subnet: trust,
        igw,
        route_table,
    }
}

async fn asg_instances(aws: &Aws) -> Vec<String> {
    let r = aws.asg.describe_auto_scaling_groups().auto_scaling_group_names(ASG).send().await.unwrap();
    let mut ids: Vec<String> =
        r.auto_scaling_groups().iter().flat_map(|g| g.instances()).filter_map(|i| i.instance_id().map(str::to_string)).collect();
    ids.sort();
    ids
}

/// What the lifecycle lambda does at launch: a trust ENI at device index 2. Returns its id.
async fn attach_trust_eni(aws: &Aws, f: &Fixture, instance: &str) -> String {
    let eni = aws.ec2.create_network_interface().subnet_id(&f.trust_subnet).description(format!("{ASG}-eth2")).send().await.unwrap();
    let id = eni.network_interface().unwrap().network_interface_id().unwrap().to_string();
    aws.ec2.attach_network_interface().network_interface_id(&id).instance_id(instance).device_index(2).send().await.unwrap();
    id
}

async fn untrust_eni(aws: &Aws, instance: &str) -> String {
    let r = aws.ec2.describe_instances().instance_ids(instance).send().await.unwrap();
    let i = &r.reservations()[0].instances()[0];
    i.network_interfaces()
        .iter()
        .find(|n| n.attachment().and_then(|a| a.device_index()) == Some(0))
        .unwrap()
        .network_interface_id()
        .unwrap()
        .to_string()
}

async fn default_route(aws: &Aws, table: &str) -> (Option<String>, Option<String>) {
    let r = aws.ec2.describe_route_tables().route_table_ids(table).send().await.unwrap();
    let route = r.route_tables()[0].routes().iter().find(|r| r.destination_cidr_block() == Some("0.0.0.0/0")).cloned().unwrap();
    (route.gateway_id().map(str::to_string), route.network_interface_id().map(str::to_string))
}

async fn our_eips(aws: &Aws) -> Vec<(String, Option<String>)> {
    let r = aws
        .ec2
        .describe_addresses()
        .filters(Filter::builder().name(format!("tag:{DEPLOYMENT_TAG}")).values(DEPLOYMENT).build())
        .send()
        .await
        .unwrap();
    r.addresses().iter().map(|a| (a.allocation_id().unwrap().to_string(), a.network_interface_id().map(str::to_string))).collect()
}

/// Everything carrying `pano-eks:service` (target groups and listener rules), by tag value.
async fn service_tagged(aws: &Aws, f: &Fixture) -> BTreeMap<String, Vec<String>> {
    let mut arns: Vec<String> = aws
        .elbv2
        .describe_target_groups()
        .send()
        .await
        .unwrap()
        .target_groups()
        .iter()
        .map(|t| t.target_group_arn().unwrap().to_string())
        .collect();
    arns.extend(
        aws.elbv2
            .describe_rules()
            .listener_arn(&f.alb.listener_arn)
            .send()
            .await
            .unwrap()
            .rules()
            .iter()
            .map(|r| r.rule_arn().unwrap().to_string()),
    );
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let t = aws.elbv2.describe_tags().set_resource_arns(Some(arns)).send().await.unwrap();
    for d in t.tag_descriptions() {
        if let Some(v) = d.tags().iter().find(|t| t.key() == Some(alb::SERVICE_TAG)).and_then(|t| t.value()) {
            out.entry(v.to_string()).or_default().push(d.resource_arn().unwrap().to_string());
        }
    }
    out
}

/// The core's plan and facts for some protected Services: (name, port, annotations).
fn world(services: &[(&str, u16, &[(&str, &str)])]) -> (Plan, Facts) {
    let statuses = services
        .iter()
        .map(|(n, port, _)| ServiceStatus {
            cluster: "shop".into(),
            namespace: "default".into(),
            name: n.to_string(),
            port: Some(*port),
            state: ServiceState::Protected,
            reason: String::new(),
            nat_rule: Some(format!("{n}-{port}-inbound")),
            address: None,
            service_object: None,
            security_rule: None,
        })
        .collect();
    let facts = services
        .iter()
        .map(|(n, port, ann)| {
            let ann: BTreeMap<&str, &str> = ann.iter().copied().collect();
            serde_json::from_value::<ServiceFacts>(serde_json::json!({
                "namespace": "default", "name": n, "type": "LoadBalancer", "created": "2026-01-01T00:00:00Z",
                "labels": {"panw-tg-port": port.to_string()}, "annotations": ann,
            }))
            .unwrap()
        })
        .collect();
    let plan = Plan {
        operations: vec![],
        device_group_changed: false,
        template_changed: false,
        services: statuses,
        clusters: vec![],
        problems: vec![],
    };
    (
        plan,
        Facts {
            clusters: vec![ClusterFacts { name: "shop".into(), subnets: vec![], services: facts }],
            firewalls: vec![],
            ..Default::default()
        },
    )
}

async fn reconcile(aws: &Aws, f: &Fixture, services: &[(&str, u16, &[(&str, &str)])]) -> alb::AlbReport {
    let (plan, facts) = world(services);
    let r = alb::reconcile(aws, &f.alb, &alb::wanted(&plan, &facts)).await.unwrap();
    eprintln!("alb: {:#?}", r.done);
    r
}

#[test]
fn protected_services_get_target_group_attachment_and_rule_and_lose_them_when_they_go() {
    let Some(MotoWorld { rt, moto: _moto, aws }) = moto_world(REGION) else { return };
    rt.block_on(async {
        let f = fixture(&aws).await;
        let firewall = asg_instances(&aws).await;
        assert_eq!(firewall.len(), 1);
        let host: &[(&str, &str)] = &[(alb::HOST_ANNOTATION, "shop.example.com")];
        let path: &[(&str, &str)] = &[(alb::PATH_ANNOTATION, "/api/*")];

        // Two protected Services: each gets a target group (HTTP, its port, the VPC, health
        // check on its own traffic port, i.e. through its NAT rule, not a copy of the stack's
        // group), attached to the firewall ASG, and a rule.
        let r = reconcile(&aws, &f, &[("frontend", 82, host), ("api", 83, path)]).await;
        assert!(r.plan.services.iter().all(|s| s.state == AlbState::Routed), "{:?}", r.plan.services);
        let fe_key = ServiceKey { cluster: "shop".into(), namespace: "default".into(), name: "frontend".into() };
        let fe_name = alb::tg_name(DEPLOYMENT, &fe_key, 82);
        let tg = aws.elbv2.describe_target_groups().names(&fe_name).send().await.unwrap().target_groups()[0].clone();
        assert_eq!(
            (tg.port(), tg.vpc_id(), tg.protocol(), tg.health_check_port()),
            (Some(82), Some(f.alb.vpc_id.as_str()), Some(&elb::ProtocolEnum::Http), Some("traffic-port"))
        );
        assert_eq!(
            (tg.health_check_protocol(), tg.health_check_path(), tg.matcher().and_then(|m| m.http_code())),
            (Some(&elb::ProtocolEnum::Http), Some("/"), Some("200-499"))
        );
        assert_eq!(tg.target_type(), Some(&elb::TargetTypeEnum::Instance));
        let fe_arn = tg.target_group_arn().unwrap().to_string();
        let attached = aws.asg.describe_load_balancer_target_groups().auto_scaling_group_name(ASG).send().await.unwrap();
        assert!(
            attached.load_balancer_target_groups().iter().any(|t| t.load_balancer_target_group_arn() == Some(&fe_arn)),
            "attached to the ASG"
        );
        let health = aws.elbv2.describe_target_health().target_group_arn(&fe_arn).send().await.unwrap();
        let targets: Vec<&str> = health.target_health_descriptions().iter().filter_map(|d| d.target()?.id()).collect();
        assert_eq!(targets, vec![firewall[0].as_str()], "the ASG registered the firewall");
        let rules = aws.elbv2.describe_rules().listener_arn(&f.alb.listener_arn).send().await.unwrap();
        let fe_rule = rules
            .rules()
            .iter()
            .find(|r| r.actions().iter().any(|a| a.target_group_arn() == Some(&fe_arn)))
            .expect("a rule forwards to frontend");
        assert_eq!(fe_rule.priority(), Some(alb::home_priority(&fe_key).to_string().as_str()));
        let cond = &fe_rule.conditions()[0];
        assert_eq!(cond.field(), Some("host-header"));
        let tagged = service_tagged(&aws, &f).await;
        assert_eq!(tagged.get("shop/default/frontend").map(Vec::len), Some(2), "TG and rule tagged: {tagged:?}");
        assert_eq!(tagged.get("shop/default/api").map(Vec::len), Some(2));

        // Re-run: nothing to do; priorities unchanged.
        let again = reconcile(&aws, &f, &[("frontend", 82, host), ("api", 83, path)]).await;
        assert!(again.done.is_empty(), "{:?}", again.done);
        assert_eq!(again.plan.services, r.plan.services);

        // A foreign target group already serving the firewalls on port 84: conflict, untouched.
        let foreign = aws
            .elbv2
            .create_target_group()
            .name("manual-84")
            .protocol(elb::ProtocolEnum::Http)
            .port(84)
            .vpc_id(&f.alb.vpc_id)
            .target_type(elb::TargetTypeEnum::Instance)
            .send()
            .await
            .unwrap()
            .target_groups()[0]
            .target_group_arn()
            .unwrap()
            .to_string();
        aws.asg.attach_load_balancer_target_groups().auto_scaling_group_name(ASG).target_group_arns(&foreign).send().await.unwrap();
        let c =
            reconcile(&aws, &f, &[("frontend", 82, host), ("api", 83, path), ("cart", 84, &[(alb::HOST_ANNOTATION, "cart.example.com")])])
                .await;
        let cart = c.plan.services.iter().find(|s| s.service.name == "cart").unwrap();
        assert_eq!(cart.state, AlbState::Conflict);
        assert!(cart.reason.contains("manual-84"), "{}", cart.reason);
        assert!(c.done.is_empty(), "{:?}", c.done);

        // frontend leaves: its rule, attachment and target group go; api keeps its own.
        let gone = reconcile(&aws, &f, &[("api", 83, path)]).await;
        assert_eq!(gone.done.len(), 3, "{:?}", gone.done);
        let tagged = service_tagged(&aws, &f).await;
        assert!(!tagged.contains_key("shop/default/frontend"), "{tagged:?}");
        assert_eq!(tagged.get("shop/default/api").map(Vec::len), Some(2));
        let attached = aws.asg.describe_load_balancer_target_groups().auto_scaling_group_name(ASG).send().await.unwrap();
        assert!(!attached.load_balancer_target_groups().iter().any(|t| t.load_balancer_target_group_arn() == Some(&fe_arn)));
        assert!(aws.elbv2.describe_target_groups().names(&fe_name).send().await.is_err(), "frontend's TG deleted");

        // api alone, without annotations now: it becomes the listener's default action.
        let d = reconcile(&aws, &f, &[("api", 83, &[])]).await;
        assert_eq!(d.plan.services[0].state, AlbState::Default);
        let l = aws.elbv2.describe_listeners().listener_arns(&f.alb.listener_arn).send().await.unwrap();
        let api_name = d.plan.services[0].target_group.clone().unwrap();
        let api_arn = aws.elbv2.describe_target_groups().names(&api_name).send().await.unwrap().target_groups()[0]
            .target_group_arn()
            .unwrap()
            .to_string();
        assert_eq!(l.listeners()[0].default_actions()[0].target_group_arn(), Some(api_arn.as_str()));

        // `down`'s ALB part: everything ours goes, the default action is the stack's again, the
        // foreign target group and its attachment stay.
        let r = alb::reconcile(&aws, &f.alb, &[]).await.unwrap();
        eprintln!("down: {:#?}", r.done);
        assert!(service_tagged(&aws, &f).await.is_empty());
        let l = aws.elbv2.describe_listeners().listener_arns(&f.alb.listener_arn).send().await.unwrap();
        assert_eq!(l.listeners()[0].default_actions()[0].target_group_arn(), Some(f.alb.public_tg_arn.as_str()));
        let attached = aws.asg.describe_load_balancer_target_groups().auto_scaling_group_name(ASG).send().await.unwrap();
        let left: Vec<&str> = attached.load_balancer_target_groups().iter().filter_map(|t| t.load_balancer_target_group_arn()).collect();
        assert!(left.contains(&foreign.as_str()) && left.contains(&f.alb.public_tg_arn.as_str()) && left.len() == 2, "{left:?}");
    });
}

#[test]
fn the_default_route_follows_a_replaced_firewall_and_undo_restores_the_igw() {
    let Some(MotoWorld { rt, moto: _moto, aws }) = moto_world(REGION) else { return };
    rt.block_on(async {
        let f = fixture(&aws).await;
        let first = asg_instances(&aws).await.remove(0);

        // Still booting (no trust ENI): nothing changes, and the report says why.
        let r = outbound::ensure(&aws, &f.outbound).await.unwrap();
        assert!(r.done.is_empty() && r.plan.problems[0].contains(&first), "{:?}", r.plan);
        assert_eq!(default_route(&aws, &f.route_table).await, (Some(f.igw.clone()), None));

        // The lambda added eth2: EIP on eth0, cluster default route → eth2.
        let trust1 = attach_trust_eni(&aws, &f, &first).await;
        let untrust1 = untrust_eni(&aws, &first).await;
        let r = outbound::ensure(&aws, &f.outbound).await.unwrap();
        eprintln!("outbound: {:#?}", r.done);
        assert_eq!(r.plan.firewall.as_deref(), Some(first.as_str()));
        assert_eq!(default_route(&aws, &f.route_table).await.1.as_deref(), Some(trust1.as_str()));
        let eips = our_eips(&aws).await;
        assert_eq!(eips.len(), 1);
        assert_eq!(eips[0].1.as_deref(), Some(untrust1.as_str()));
        assert!(outbound::ensure(&aws, &f.outbound).await.unwrap().done.is_empty(), "converged: a re-run changes nothing");

        // The ASG replaces the firewall; the new one gets its trust ENI from the lambda.
        aws.asg
            .terminate_instance_in_auto_scaling_group()
            .instance_id(&first)
            .should_decrement_desired_capacity(false)
            .send()
            .await
            .unwrap();
        let second = asg_instances(&aws).await;
        assert_eq!(second.len(), 1);
        assert_ne!(second[0], first, "replaced");
        let trust2 = attach_trust_eni(&aws, &f, &second[0]).await;
        let untrust2 = untrust_eni(&aws, &second[0]).await;
        let r = outbound::ensure(&aws, &f.outbound).await.unwrap();
        eprintln!("outbound after replacement: {:#?}", r.done);
        assert_eq!(r.plan.firewall.as_deref(), Some(second[0].as_str()));
        assert_eq!(default_route(&aws, &f.route_table).await.1.as_deref(), Some(trust2.as_str()), "the route follows the new firewall");
        let eips = our_eips(&aws).await;
        assert_eq!(eips.len(), 1, "the same EIP moved: {eips:?}");
        assert_eq!(eips[0].1.as_deref(), Some(untrust2.as_str()));

        // `down`'s outbound part: 0.0.0.0/0 back to the IGW, the EIP released.
        let r = outbound::undo(&aws, &f.outbound).await.unwrap();
        eprintln!("undo: {:#?}", r.done);
        assert_eq!(default_route(&aws, &f.route_table).await, (Some(f.igw.clone()), None));
        assert!(our_eips(&aws).await.is_empty());
        assert!(outbound::undo(&aws, &f.outbound).await.unwrap().done.is_empty(), "undo twice is a no-op");
    });
}
