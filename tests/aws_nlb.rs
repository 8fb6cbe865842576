//! The NLB front against moto (issue 13 item 6): with `firewalls.elb_type = "network"`, every
//! protected Service port gets its own TCP listener and target group (TCP health check on the
//! traffic port), attached to the firewall ASG; a Service on 80 takes the stack's listener; a
//! re-run does nothing; `down` (nothing wanted) leaves the stack's NLB as it was. The fixture
//! has the firewall stack's NLB shape: listener TCP 80 → target group TCP 81 probed on 443.
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
    let lb = aws
        .elbv2
        .create_load_balancer()
        .name("demo-exlb")
        .r#type(elb::LoadBalancerTypeEnum::Network)
        .set_subnets(Some(subnets.clone()))
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
    let sg = ec2.create_security_group().group_name("demo-elb").description("NLB").vpc_id(&vpc).send().await.unwrap();
    let security_group = sg.group_id().unwrap().to_string();
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

fn wanted(ctx: &nlb::Context, services: &[(&str, u16)]) -> Vec<pano_eks_core::front::nlb::NlbWanted> {
    let w: Vec<Wanted> = services
        .iter()
        .map(|(n, port)| Wanted {
            key: ServiceKey { cluster: "shop".into(), namespace: "default".into(), name: n.to_string() },
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
