//! The NLB front against moto (issue 13 item 6): with `firewalls.elb_type = "network"`, every
//! protected Service port gets its own TCP listener and target group (TCP health check on the
//! traffic port), attached to the firewall ASG; a Service on 80 takes the stack's listener; a
//! re-run does nothing; `down` (nothing wanted) leaves the stack's NLB as it was; 60 Services
//! shard over two NLBs (issue 16). The fixture has the firewall stack's NLB shape: listener TCP
//! 80 → target group TCP 81 probed on 443, its own security group.
//! (moto's CloudFormation makes every load balancer an ALB, but its ELBv2 API does NLBs.)

mod support;

use std::collections::BTreeMap;

use aws_sdk_autoscaling::types::LaunchTemplateSpecification;
use aws_sdk_elasticloadbalancingv2::types as elb;
use pano_eks::aws::alb::{ServiceKey, Wanted};
use pano_eks::aws::{Aws, DEPLOYMENT_TAG, nlb};
use pano_eks_core::front::nlb::NlbState;
use support::aws_world::{MotoWorld, moto_world};

const REGION: &str = "us-west-2";
const DEPLOYMENT: &str = "demo";
const ASG: &str = "demo-firewall-PANW-Firewall-ASG";

async fn fixture(aws: &Aws) -> nlb::Context {
    let ec2 = &aws.ec2;
    let vpc = ec2.create_vpc().cidr_block("192.168.0.0/16").send().await.unwrap().vpc().unwrap().vpc_id().unwrap().to_string();
    let mut subnets = Vec::new();
    for (cidr, az) in [("192.168.1.0/24", "us-west-2a"), ("192.168.11.0/24", "us-west-2b")] {
        let s = ec2.create_subnet().vpc_id(&vpc).cidr_block(cidr).availability_zone(az).send().await.unwrap();
        subnets.push(s.subnet().unwrap().subnet_id().unwrap().to_string());
    }
    let elb_tag = elb::Tag::builder().key(DEPLOYMENT_TAG).value(DEPLOYMENT).build();
    let sg = ec2.create_security_group().group_name("demo-elb").description("NLB").vpc_id(&vpc).send().await.unwrap();
    let security_group = sg.group_id().unwrap().to_string();
    let lb = aws
        .elbv2
        .create_load_balancer()
        .name("demo-exlb")
        .r#type(elb::LoadBalancerTypeEnum::Network)
        .scheme(elb::LoadBalancerSchemeEnum::InternetFacing)
        .set_subnets(Some(subnets.clone()))
        .security_groups(&security_group)
        .tags(elb_tag.clone())
        .send()
        .await
        .unwrap();
    let lb_arn = lb.load_balancers()[0].load_balancer_arn().unwrap().to_string();
    let tg = aws
        .elbv2
        .create_target_group()
        .name("demo-fw-public")
        .protocol(elb::ProtocolEnum::Tcp)
        .port(81)
        .vpc_id(&vpc)
        .target_type(elb::TargetTypeEnum::Instance)
        .health_check_protocol(elb::ProtocolEnum::Tcp)
        .health_check_port(pano_eks_core::prepare::PROBE_PORT.to_string())
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
        .protocol(elb::ProtocolEnum::Tcp)
        .default_actions(elb::Action::builder().r#type(elb::ActionTypeEnum::Forward).target_group_arn(&public_tg).build())
        .tags(elb_tag)
        .send()
        .await
        .unwrap();
    let listener_arn = listener.listeners()[0].listener_arn().unwrap().to_string();
    let ami = ec2.describe_images().send().await.unwrap().images().iter().find_map(|i| i.image_id().map(str::to_string)).unwrap();
    let lt = ec2
        .create_launch_template()
        .launch_template_name("demo-fw")
        .launch_template_data(aws_sdk_ec2::types::RequestLaunchTemplateData::builder().image_id(ami).build())
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
        .vpc_zone_identifier(subnets.join(","))
        .target_group_arns(&public_tg)
        .send()
        .await
        .unwrap();
    nlb::Context {
        deployment: DEPLOYMENT.into(),
        vpc_id: vpc,
        lb_arn,
        listener_arn,
        public_tg_arn: public_tg,
        asg_name: ASG.into(),
        security_group,
    }
}

fn wanted<S: AsRef<str>>(ctx: &nlb::Context, services: &[(S, u16)]) -> Vec<pano_eks_core::front::nlb::NlbWanted> {
    let w: Vec<Wanted> = services
        .iter()
        .map(|(n, port)| Wanted {
            key: ServiceKey { cluster: "shop".into(), namespace: "default".into(), name: n.as_ref().to_string() },
            port: *port,
            host: None,
            path: None,
        })
        .collect();
    nlb::wanted(ctx, &w)
}

/// Listener port → (protocol, forwarded target group's name, port, health check protocol/port).
async fn listeners(aws: &Aws, ctx: &nlb::Context) -> BTreeMap<i32, (String, String, i32, String, String)> {
    let ls = aws.elbv2.describe_listeners().load_balancer_arn(&ctx.lb_arn).send().await.unwrap();
    let mut out = BTreeMap::new();
    for l in ls.listeners() {
        let tg_arn = l.default_actions()[0].target_group_arn().unwrap();
        let tg = aws.elbv2.describe_target_groups().target_group_arns(tg_arn).send().await.unwrap().target_groups()[0].clone();
        out.insert(
            l.port().unwrap(),
            (
                l.protocol().unwrap().as_str().to_string(),
                tg.target_group_name().unwrap().to_string(),
                tg.port().unwrap(),
                tg.health_check_protocol().unwrap().as_str().to_string(),
                tg.health_check_port().unwrap().to_string(),
            ),
        );
    }
    out
}

/// The tcp ports opened on the NLB's group, sorted.
async fn ingress_ports(aws: &Aws, ctx: &nlb::Context) -> Vec<i32> {
    let g = aws.ec2.describe_security_groups().group_ids(&ctx.security_group).send().await.unwrap();
    let mut ports: Vec<i32> = g.security_groups()[0].ip_permissions().iter().filter_map(|p| p.from_port()).collect();
    ports.sort();
    ports
}

#[test]
fn each_protected_service_port_gets_a_listener_and_target_group_and_down_removes_them() {
    let Some(MotoWorld { rt, moto: _moto, aws }) = moto_world(REGION) else { return };
    rt.block_on(async {
        let ctx = fixture(&aws).await;
        let before = listeners(&aws, &ctx).await;
        let services = [("shop", 443), ("api", 8443), ("web", 80)];

        let r = nlb::reconcile(&aws, &ctx, &wanted(&ctx, &services)).await.unwrap();
        eprintln!("nlb: {:#?}", r.done);
        assert!(r.plan.conflicts().next().is_none(), "{:?}", r.plan.services);
        let states: Vec<(u16, NlbState)> = r.plan.services.iter().map(|s| (s.port, s.state)).collect();
        assert_eq!(states, [(8443, NlbState::Listening), (443, NlbState::Listening), (80, NlbState::Default)]);
        let now = listeners(&aws, &ctx).await;
        assert_eq!(now.len(), 3, "{now:?}");
        for (port, svc) in [(443, "shop"), (8443, "api"), (80, "web")] {
            let (proto, tg, tg_port, hc_proto, hc_port) = &now[&port];
            assert_eq!((proto.as_str(), *tg_port), ("TCP", port), "listener {port}");
            assert!(tg.starts_with(&format!("pk-{svc}-{port}-")), "{tg}");
            // Probed through the Service's own path: its port on the firewall, its NAT rule.
            assert_eq!((hc_proto.as_str(), hc_port.as_str()), ("TCP", "traffic-port"), "{tg}");
        }
        assert_eq!(ingress_ports(&aws, &ctx).await, [443, 8443], "the NLB's group opens the Service listeners' ports");
        let attached = aws.asg.describe_load_balancer_target_groups().auto_scaling_group_name(ASG).send().await.unwrap();
        assert_eq!(attached.load_balancer_target_groups().len(), 4, "the stack's group and three");

        // Re-run: nothing to do.
        let again = nlb::reconcile(&aws, &ctx, &wanted(&ctx, &services)).await.unwrap();
        assert!(again.done.is_empty(), "{:?}", again.done);

        // `down`: nothing wanted; the NLB is as the stack made it.
        let gone = nlb::reconcile(&aws, &ctx, &[]).await.unwrap();
        eprintln!("nlb: {:#?}", gone.done);
        assert_eq!(listeners(&aws, &ctx).await, before);
        assert!(ingress_ports(&aws, &ctx).await.is_empty(), "their ports are closed again");
        let tgs = aws.elbv2.describe_target_groups().send().await.unwrap();
        assert_eq!(tgs.target_groups().len(), 1, "only the stack's group is left");
    });
}

/// Load balancers with their tags and listener count: (name, arn, dns, tags, listeners).
async fn load_balancers(aws: &Aws) -> Vec<(String, String, String, BTreeMap<String, String>, usize)> {
    let lbs = aws.elbv2.describe_load_balancers().send().await.unwrap();
    let mut out = Vec::new();
    for lb in lbs.load_balancers() {
        let arn = lb.load_balancer_arn().unwrap().to_string();
        let t = aws.elbv2.describe_tags().resource_arns(&arn).send().await.unwrap();
        let tags = t.tag_descriptions()[0].tags().iter().map(|t| (t.key().unwrap().to_string(), t.value().unwrap().to_string())).collect();
        let listeners = aws.elbv2.describe_listeners().load_balancer_arn(&arn).send().await.unwrap().listeners().len();
        out.push((lb.load_balancer_name().unwrap().to_string(), arn, lb.dns_name().unwrap_or_default().to_string(), tags, listeners));
    }
    out.sort();
    out
}

#[test]
fn sixty_nlb_services_shard_over_two_nlbs_served_by_the_firewalls_and_down_removes_both() {
    let Some(MotoWorld { rt, moto: _moto, aws }) = moto_world(REGION) else { return };
    rt.block_on(async {
        let ctx = fixture(&aws).await;
        let before = listeners(&aws, &ctx).await;
        let g = aws.asg.describe_auto_scaling_groups().auto_scaling_group_names(ASG).send().await.unwrap();
        let firewall: Vec<String> =
            g.auto_scaling_groups()[0].instances().iter().filter_map(|i| i.instance_id().map(str::to_string)).collect();
        let services = |n: usize| -> Vec<(String, u16)> { (0..n).map(|i| (format!("svc{i:03}"), 2000 + i as u16)).collect() };

        let r = nlb::reconcile(&aws, &ctx, &wanted(&ctx, &services(60))).await.unwrap();
        assert!(r.plan.conflicts().next().is_none(), "{:?}", r.plan.conflicts().collect::<Vec<_>>());
        assert!(r.plan.services.iter().all(|s| s.state == NlbState::Listening));
        // Two NLBs: the stack's with 50 listeners (49 Services and its own), demo-front-2 with
        // 11, a copy of the stack's scheme, subnets and security group, tagged as ours.
        let lbs = load_balancers(&aws).await;
        assert_eq!(lbs.iter().map(|l| (l.0.as_str(), l.4)).collect::<Vec<_>>(), [("demo-exlb", 50), ("demo-front-2", 11)]);
        let (primary, extra) = (&lbs[0], &lbs[1]);
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
        assert_eq!(shapes[0].2, std::slice::from_ref(&ctx.security_group));
        // Every Service port is open on the shared group, once.
        assert_eq!(ingress_ports(&aws, &ctx).await, (2000..2060).collect::<Vec<i32>>());
        // The moto bridge refuses a 51st listener, as AWS does.
        let tg = aws.elbv2.describe_target_groups().names("demo-fw-public").send().await.unwrap().target_groups()[0].clone();
        let refused = aws
            .elbv2
            .create_listener()
            .load_balancer_arn(&ctx.lb_arn)
            .port(9999)
            .protocol(elb::ProtocolEnum::Tcp)
            .default_actions(
                elb::Action::builder().r#type(elb::ActionTypeEnum::Forward).target_group_arn(tg.target_group_arn().unwrap()).build(),
            )
            .send()
            .await;
        let code = refused.err().and_then(|e| {
            e.as_service_error().and_then(|s| aws_sdk_elasticloadbalancingv2::error::ProvideErrorMetadata::code(s)).map(str::to_string)
        });
        assert_eq!(code.as_deref(), Some("TooManyListeners"));
        // The firewall group takes 50 target groups (the stack's and 49); the other 11 have the
        // firewall registered directly.
        let attached = aws.asg.describe_load_balancer_target_groups().auto_scaling_group_name(ASG).send().await.unwrap();
        let attached: Vec<String> =
            attached.load_balancer_target_groups().iter().filter_map(|t| t.load_balancer_target_group_arn().map(str::to_string)).collect();
        assert_eq!(attached.len(), 50);
        let tgs = aws.elbv2.describe_target_groups().send().await.unwrap();
        let direct: Vec<String> =
            tgs.target_groups().iter().filter_map(|t| t.target_group_arn().map(str::to_string)).filter(|a| !attached.contains(a)).collect();
        assert_eq!(direct.len(), 11);
        for arn in &direct {
            let h = aws.elbv2.describe_target_health().target_group_arn(arn).send().await.unwrap();
            let ids: Vec<String> = h.target_health_descriptions().iter().filter_map(|d| d.target()?.id().map(str::to_string)).collect();
            assert_eq!(ids, firewall, "{arn}");
        }
        // Each Service's public DNS name: its NLB's; `status` reads the same back.
        assert_eq!(r.public.len(), 60);
        assert_eq!(r.public.iter().filter(|p| p.front == "demo-front-2" && p.dns_name == extra.2).count(), 11);
        assert!(r.public.iter().filter(|p| p.front != "demo-front-2").all(|p| p.dns_name == primary.2));
        assert_eq!(nlb::public_names(&aws, &ctx).await.unwrap(), r.public);

        // Converged.
        let again = nlb::reconcile(&aws, &ctx, &wanted(&ctx, &services(60))).await.unwrap();
        assert!(again.done.is_empty(), "{:?}", again.done);

        // 11 go (the second NLB's): it is deleted, nobody else moved.
        let fewer = nlb::reconcile(&aws, &ctx, &wanted(&ctx, &services(49))).await.unwrap();
        assert!(fewer.done.iter().any(|d| d.contains("deleted front demo-front-2")), "{:?}", fewer.done);
        assert_eq!(load_balancers(&aws).await.iter().map(|l| (l.0.as_str(), l.4)).collect::<Vec<_>>(), [("demo-exlb", 50)]);
        assert_eq!(ingress_ports(&aws, &ctx).await.len(), 49);
        assert!(fewer.public.iter().all(|p| p.dns_name == primary.2) && fewer.public.len() == 49);

        // `down`: the stack's NLB as it was, nothing of ours left.
        let gone = nlb::reconcile(&aws, &ctx, &[]).await.unwrap();
        eprintln!("down: {} lines", gone.done.len());
        assert_eq!(listeners(&aws, &ctx).await, before);
        assert!(ingress_ports(&aws, &ctx).await.is_empty());
        assert_eq!(load_balancers(&aws).await.len(), 1);
        let tgs = aws.elbv2.describe_target_groups().send().await.unwrap();
        assert_eq!(tgs.target_groups().len(), 1, "only the stack's group is left");
        let attached = aws.asg.describe_load_balancer_target_groups().auto_scaling_group_name(ASG).send().await.unwrap();
        assert_eq!(attached.load_balancer_target_groups().len(), 1);
    });
}
