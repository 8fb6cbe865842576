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
use pano_eks::aws::alb_shards;
use pano_eks::aws::{Aws, DEPLOYMENT_TAG, outbound};
use support::aws_world::{MotoWorld, moto_world, protected_services};

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

async fn reconcile(aws: &Aws, f: &Fixture, services: &[(&str, u16, &[(&str, &str)])]) -> alb_shards::AlbReport {
    let (plan, facts) = protected_services(services);
    let r = alb_shards::reconcile(aws, &f.alb, &alb::wanted(&plan, &facts)).await.unwrap();
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
        let r = alb_shards::reconcile(&aws, &f.alb, &[]).await.unwrap();
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

/// Unique target groups the listeners of a load balancer forward to (default actions included).
async fn lb_target_groups(aws: &Aws, lb_arn: &str) -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    for l in aws.elbv2.describe_listeners().load_balancer_arn(lb_arn).send().await.unwrap().listeners() {
        let mut marker = None;
        loop {
            let page = aws.elbv2.describe_rules().listener_arn(l.listener_arn().unwrap()).set_marker(marker.take()).send().await.unwrap();
            for r in page.rules() {
                out.extend(r.actions().iter().filter_map(|a| a.target_group_arn().map(str::to_string)));
            }
            match page.next_marker() {
                Some(m) if !m.is_empty() => marker = Some(m.to_string()),
                _ => break,
            }
        }
    }
    out
}

/// Load balancers of the VPC with their tags: (name, arn, dns, tags).
async fn load_balancers(aws: &Aws) -> Vec<(String, String, String, BTreeMap<String, String>)> {
    let lbs = aws.elbv2.describe_load_balancers().send().await.unwrap();
    let mut out = Vec::new();
    for lb in lbs.load_balancers() {
        let arn = lb.load_balancer_arn().unwrap().to_string();
        let t = aws.elbv2.describe_tags().resource_arns(&arn).send().await.unwrap();
        let tags = t.tag_descriptions()[0].tags().iter().map(|t| (t.key().unwrap().to_string(), t.value().unwrap().to_string())).collect();
        out.push((lb.load_balancer_name().unwrap().to_string(), arn, lb.dns_name().unwrap_or_default().to_string(), tags));
    }
    out.sort();
    out
}

#[test]
fn one_hundred_thirty_services_shard_over_two_albs_served_by_the_firewalls_and_down_removes_both() {
    let Some(MotoWorld { rt, moto: _moto, aws }) = moto_world(REGION) else { return };
    rt.block_on(async {
        let f = fixture(&aws).await;
        let firewall = asg_instances(&aws).await;
        let names: Vec<String> = (0..130).map(|i| format!("svc{i:03}")).collect();
        let hosts: Vec<[(&str, &str); 1]> =
            names.iter().map(|n| [(alb::HOST_ANNOTATION, Box::leak(format!("{n}.example.com").into_boxed_str()) as &str)]).collect();
        let services = |n: usize| -> Vec<(&str, u16, &[(&str, &str)])> {
            (0..n).map(|i| (names[i].as_str(), 2000 + i as u16, &hosts[i][..])).collect()
        };

        let r = reconcile(&aws, &f, &services(130)).await;
        assert!(r.plan.services.iter().all(|s| s.state == AlbState::Routed), "{:?}", r.plan.conflicts().collect::<Vec<_>>());
        // Two fronts: the stack's and demo-front-2, a copy of its scheme, subnets and security
        // groups, tagged as ours and numbered.
        let lbs = load_balancers(&aws).await;
        assert_eq!(lbs.iter().map(|l| l.0.as_str()).collect::<Vec<_>>(), ["demo-front-2", "demo-public"]);
        let (extra, primary) = (&lbs[0], &lbs[1]);
        assert_eq!(extra.3.get(DEPLOYMENT_TAG).map(String::as_str), Some(DEPLOYMENT));
        assert_eq!(extra.3.get(pano_eks_core::front::shards::FRONT_TAG).map(String::as_str), Some("2"));
        let described =
            aws.elbv2.describe_load_balancers().load_balancer_arns(&primary.1).load_balancer_arns(&extra.1).send().await.unwrap();
        let shape = |lb: &elb::LoadBalancer| {
            let mut subnets: Vec<String> = lb.availability_zones().iter().filter_map(|z| z.subnet_id().map(str::to_string)).collect();
            subnets.sort();
            (lb.scheme().cloned(), subnets, lb.security_groups().to_vec(), lb.r#type().cloned())
        };
        let shapes: Vec<_> = described.load_balancers().iter().map(shape).collect();
        assert_eq!(shapes[0], shapes[1], "same scheme, subnets, security groups and type");
        // 100 target groups on the stack's front (99 Services' and its own default group, which
        // counts towards the 100) and 31 on the second: the moto bridge refuses a 101st.
        let (on_primary, on_extra) = (lb_target_groups(&aws, &primary.1).await, lb_target_groups(&aws, &extra.1).await);
        assert_eq!((on_primary.len(), on_extra.len()), (100, 31));
        assert!(on_primary.contains(&f.alb.public_tg_arn));
        // Every Service's group serves the firewall: 49 attached to the ASG (50 with the stack's,
        // the Auto Scaling limit), the other 81 with the firewall registered directly.
        let attached = aws.asg.describe_load_balancer_target_groups().auto_scaling_group_name(ASG).send().await.unwrap();
        assert_eq!(attached.load_balancer_target_groups().len(), 50);
        let served = |arn: String| {
            let aws = aws.clone();
            async move {
                let h = aws.elbv2.describe_target_health().target_group_arn(&arn).send().await.unwrap();
                h.target_health_descriptions().iter().filter_map(|d| d.target()?.id().map(str::to_string)).collect::<Vec<_>>()
            }
        };
        for arn in on_primary.iter().chain(&on_extra).filter(|a| **a != f.alb.public_tg_arn) {
            assert_eq!(served(arn.clone()).await, firewall, "{arn}");
        }
        // Each Service's public DNS name: its front's.
        assert_eq!(r.public.len(), 130);
        assert_eq!(r.public.iter().filter(|p| p.dns_name == extra.2 && p.front == "demo-front-2").count(), 31);
        assert!(r.public.iter().filter(|p| p.front != "demo-front-2").all(|p| p.dns_name == primary.2));
        let status = alb_shards::public_names(&aws, &f.alb).await.unwrap();
        assert_eq!(status, r.public, "status reads the same names back");

        // Converged: a re-run does nothing.
        let again = reconcile(&aws, &f, &services(130)).await;
        assert!(again.done.is_empty(), "{:?}", again.done);

        // The firewall is replaced: attached groups get the new one from the ASG, the others at
        // the next converge.
        aws.asg
            .terminate_instance_in_auto_scaling_group()
            .instance_id(&firewall[0])
            .should_decrement_desired_capacity(false)
            .send()
            .await
            .unwrap();
        let replacement = asg_instances(&aws).await;
        assert_ne!(replacement, firewall);
        let moved = reconcile(&aws, &f, &services(130)).await;
        assert_eq!(moved.done.len(), 81 * 2, "register + deregister per direct group: {:?}", &moved.done[..2]);
        // (moto leaves a terminated instance registered in the ASG's attached groups; AWS
        // deregisters it: only the groups registered directly are compared whole.)
        let attached: Vec<String> =
            attached.load_balancer_target_groups().iter().filter_map(|t| t.load_balancer_target_group_arn().map(str::to_string)).collect();
        for arn in on_primary.iter().chain(&on_extra).filter(|a| **a != f.alb.public_tg_arn) {
            let now = served(arn.clone()).await;
            if attached.contains(arn) {
                assert!(now.contains(&replacement[0]), "{arn}: {now:?}");
            } else {
                assert_eq!(now, replacement, "{arn}");
            }
        }

        // The last 40 Services go: the second front's 31 and 9 of the first's; the second front
        // and its groups are removed, nobody else moved.
        let fewer = reconcile(&aws, &f, &services(90)).await;
        assert!(fewer.done.iter().any(|d| d.contains("deleted front demo-front-2")), "{:?}", fewer.done);
        assert_eq!(load_balancers(&aws).await.len(), 1);
        assert_eq!(lb_target_groups(&aws, &primary.1).await.len(), 91);
        assert!(fewer.public.iter().all(|p| p.dns_name == primary.2) && fewer.public.len() == 90);

        // `down`: everything of ours goes, on every front.
        let r = alb_shards::reconcile(&aws, &f.alb, &[]).await.unwrap();
        eprintln!("down: {} lines", r.done.len());
        let tagged = service_tagged(&aws, &f).await;
        assert!(tagged.is_empty(), "{tagged:?}");
        assert_eq!(load_balancers(&aws).await.len(), 1, "only the stack's front");
        let attached = aws.asg.describe_load_balancer_target_groups().auto_scaling_group_name(ASG).send().await.unwrap();
        let left: Vec<&str> = attached.load_balancer_target_groups().iter().filter_map(|t| t.load_balancer_target_group_arn()).collect();
        assert_eq!(left, [f.alb.public_tg_arn.as_str()]);
        let tgs = aws.elbv2.describe_target_groups().send().await.unwrap();
        assert_eq!(tgs.target_groups().len(), 1, "only the stack's target group is left");
    });
}
