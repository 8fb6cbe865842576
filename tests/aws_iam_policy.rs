//! The in-cluster sync's IAM policy (`pano_eks_core::aws::iam::sync_policy`, rendered into
//! cfn/sync-access.yaml.tera) against the AWS calls sync really makes, read from moto's request
//! recorder: sync's AWS steps — discovery (`sources::aws_facts`), the bootstrap vm-auth-key check
//! and renewal (`vm_auth_key::renew_if_due`) and the front and egress step
//! (`front_and_egress::after_sync`), the functions `sync --once` and `sync --watch` run — over
//! six converges that together take every path (create, change and delete a Service's target
//! group and rule, the listener default, a drifted health check; a second front for 130
//! Services, the firewalls registered directly past the autoscaling group's 50 target groups, a
//! replaced firewall, the second front removed; allocate, move and release EIPs, replace and
//! create the default route).
//!
//! Fails if sync calls an action the policy does not allow, and if the policy allows an action
//! no call needed. See docs/aws-access.md.

mod support;

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_autoscaling::types::LaunchTemplateSpecification;
use aws_sdk_ec2::types::{Filter, ResourceType, Tag, TagSpecification};
use aws_sdk_elasticloadbalancingv2::types as elb;
use base64::Engine as _;
use pano_eks::aws::alb::{self, ServiceKey};
use pano_eks::aws::{Aws, DEPLOYMENT_TAG, bucket, front_and_egress, outbound};
use pano_eks::config::{self, LoadOptions, LoadedConfig};
use pano_eks::secret::Secret;
use pano_eks::sync::{Credentials, Engine, EngineOptions, sources};
use pano_eks_core::aws::iam::{Call, Front, Scope, allowed_actions, permissions_for_call, sync_policy};
use support::aws_world::{MotoWorld, moto_world, protected_services};
use support::{PASSWORD, Sim, TestConfig};

const REGION: &str = "us-west-2";

/// A protected Service: name, port, annotations.
type Svc<'a> = (&'a str, u16, &'a [(&'a str, &'a str)]);

fn tagged(kind: ResourceType, extra: &[(&str, &str)]) -> TagSpecification {
    let mut t = TagSpecification::builder().resource_type(kind).tags(Tag::builder().key(DEPLOYMENT_TAG).value("demo").build());
    for (k, v) in extra {
        t = t.tags(Tag::builder().key(*k).value(*v).build());
    }
    t.build()
}

/// What the firewall and cluster stacks leave in AWS, made with the SDK: VPC, IGW, subnets, the
/// cluster route table (0.0.0.0/0 → IGW), the ALB with its listener and target group, the firewall
/// ASG with one firewall and its trust ENI (as the lifecycle lambda adds it), the EKS cluster, and
/// the two stacks' outputs sync reads. Returns the route table.
async fn world(aws: &Aws, cfg: &config::Config, front: Front) -> String {
    let ec2 = &aws.ec2;
    let vpc = ec2.create_vpc().cidr_block("192.168.0.0/16").tag_specifications(tagged(ResourceType::Vpc, &[])).send().await.unwrap();
    let vpc = vpc.vpc().unwrap().vpc_id().unwrap().to_string();
    let igw = ec2.create_internet_gateway().send().await.unwrap().internet_gateway().unwrap().internet_gateway_id().unwrap().to_string();
    ec2.attach_internet_gateway().internet_gateway_id(&igw).vpc_id(&vpc).send().await.unwrap();
    let mut subnets = BTreeMap::new();
    for (name, cidr, az) in [
        ("untrust-a", "192.168.1.0/24", "us-west-2a"),
        ("untrust-b", "192.168.11.0/24", "us-west-2b"),
        ("trust", "192.168.2.0/24", "us-west-2a"),
        ("cluster", "192.168.110.0/24", "us-west-2a"),
    ] {
        let s = ec2.create_subnet().vpc_id(&vpc).cidr_block(cidr).availability_zone(az).send().await.unwrap();
        subnets.insert(name, s.subnet().unwrap().subnet_id().unwrap().to_string());
    }
    let rt = ec2.create_route_table().vpc_id(&vpc).tag_specifications(tagged(ResourceType::RouteTable, &[])).send().await.unwrap();
    let rt = rt.route_table().unwrap().route_table_id().unwrap().to_string();
    ec2.create_route().route_table_id(&rt).destination_cidr_block("0.0.0.0/0").gateway_id(&igw).send().await.unwrap();
    ec2.associate_route_table().route_table_id(&rt).subnet_id(&subnets["cluster"]).send().await.unwrap();

    // The load balancer's own security group (the stack's ElbSecurityGroup, with the stack tags).
    let sg = ec2
        .create_security_group()
        .group_name("demo-elb")
        .description("public load balancer")
        .vpc_id(&vpc)
        .tag_specifications(tagged(ResourceType::SecurityGroup, &[]))
        .send()
        .await
        .unwrap();
    let elb_sg = sg.group_id().unwrap().to_string();
    let (lb_type, proto) = match front {
        Front::Alb => (elb::LoadBalancerTypeEnum::Application, elb::ProtocolEnum::Http),
        Front::Nlb => (elb::LoadBalancerTypeEnum::Network, elb::ProtocolEnum::Tcp),
    };
    let lb = aws
        .elbv2
        .create_load_balancer()
        .name(cfg.elb_name())
        .r#type(lb_type)
        .scheme(elb::LoadBalancerSchemeEnum::InternetFacing)
        .subnets(&subnets["untrust-a"])
        .subnets(&subnets["untrust-b"])
        .security_groups(&elb_sg)
        .tags(elb::Tag::builder().key(DEPLOYMENT_TAG).value("demo").build())
        .send()
        .await;
    let lb_arn = lb.unwrap().load_balancers()[0].load_balancer_arn().unwrap().to_string();
    let tg = aws
        .elbv2
        .create_target_group()
        .name("demo-fw-public")
        .protocol(proto.clone())
        .port(81)
        .vpc_id(&vpc)
        .target_type(elb::TargetTypeEnum::Instance)
        .send()
        .await
        .unwrap();
    let public_tg = tg.target_groups()[0].target_group_arn().unwrap().to_string();
    let forward = elb::Action::builder().r#type(elb::ActionTypeEnum::Forward).target_group_arn(&public_tg).build();
    let l = aws.elbv2.create_listener().load_balancer_arn(&lb_arn).port(80).protocol(proto).default_actions(forward);
    let listener = l.send().await.unwrap().listeners()[0].listener_arn().unwrap().to_string();

    let ami = ec2.describe_images().send().await.unwrap().images().iter().find_map(|i| i.image_id().map(str::to_string)).unwrap();
    let data = aws_sdk_ec2::types::RequestLaunchTemplateData::builder()
        .image_id(ami)
        .instance_type(aws_sdk_ec2::types::InstanceType::M5Xlarge)
        .build();
    let lt = ec2.create_launch_template().launch_template_name("demo-fw").launch_template_data(data).send().await.unwrap();
    let lt_id = lt.launch_template().unwrap().launch_template_id().unwrap().to_string();
    aws.asg
        .create_auto_scaling_group()
        .auto_scaling_group_name(cfg.firewall_asg())
        .launch_template(LaunchTemplateSpecification::builder().launch_template_id(lt_id).version("$Latest").build())
        .min_size(1)
        .max_size(1)
        .desired_capacity(1)
        .vpc_zone_identifier(format!("{},{}", subnets["untrust-a"], subnets["untrust-b"]))
        .target_group_arns(&public_tg)
        .send()
        .await
        .unwrap();
    let g = aws.asg.describe_auto_scaling_groups().auto_scaling_group_names(cfg.firewall_asg()).send().await.unwrap();
    let instance = g.auto_scaling_groups()[0].instances()[0].instance_id().unwrap().to_string();
    let eni = ec2.create_network_interface().subnet_id(&subnets["trust"]).send().await.unwrap();
    let eni = eni.network_interface().unwrap().network_interface_id().unwrap().to_string();
    ec2.attach_network_interface().network_interface_id(&eni).instance_id(&instance).device_index(2).send().await.unwrap();

    let vpc_config = aws_sdk_eks::types::VpcConfigRequest::builder().subnet_ids(&subnets["cluster"]).build();
    let role = "arn:aws:iam::123456789012:role/eks-cluster";
    aws.eks.create_cluster().name("shop").role_arn(role).resources_vpc_config(vpc_config).send().await.unwrap();

    let outputs = |o: &[(&str, &str)]| {
        let outs: serde_json::Map<String, serde_json::Value> =
            o.iter().map(|(k, v)| (k.to_string(), serde_json::json!({"Value": v}))).collect();
        serde_json::json!({"Resources": {"Handle": {"Type": "AWS::CloudFormation::WaitConditionHandle"}}, "Outputs": outs}).to_string()
    };
    let asg = cfg.firewall_asg();
    let fw = outputs(&[
        ("VpcId", vpc.as_str()),
        ("PublicListenerArn", listener.as_str()),
        ("PublicTargetGroupArn", public_tg.as_str()),
        ("FirewallAsgName", asg.as_str()),
        ("InternetGatewayId", igw.as_str()),
        ("PublicElbArn", lb_arn.as_str()),
        ("ElbSecurityGroup", elb_sg.as_str()),
    ]);
    aws.cfn.create_stack().stack_name(cfg.firewall_stack()).template_body(fw).send().await.unwrap();
    let cl = outputs(&[("ClusterRouteTable", rt.as_str())]);
    aws.cfn.create_stack().stack_name(cfg.cluster_stack("shop")).template_body(cl).send().await.unwrap();
    rt
}

/// One sync's AWS steps, as `sync --once` runs them after its converge.
async fn sync_aws_steps(aws: &Aws, loaded: &LoadedConfig, engine: &Engine, services: &[Svc<'_>]) {
    let facts = sources::aws_facts(loaded, aws).await.unwrap();
    assert_eq!(facts.firewalls.len(), 1, "the firewall is discovered: {facts:?}");
    assert_eq!(facts.clusters[0].subnets.len(), 1, "the cluster's subnet is discovered");
    let lines = pano_eks::commands::vm_auth_key::renew_if_due(aws, &loaded.config, &engine.client, true).await.unwrap();
    eprintln!("vm-auth-key: {lines:?}");
    let (plan, facts) = protected_services(services);
    let r = front_and_egress::after_sync(aws, &loaded.config, &plan, &facts).await;
    eprintln!("front and egress: {:#?}", r.lines());
    assert!(r.errors.is_empty(), "{:?}", r.errors);
}

/// A recorded request as the call it is: the signing name from the SigV4 credential scope, the
/// operation from the query protocol's `Action`, or for the REST APIs (S3, EKS) from method and path.
fn call_of(req: &serde_json::Value) -> Call {
    let headers = req["headers"].as_object().unwrap();
    let auth = headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("authorization")).map(|(_, v)| v.as_str().unwrap()).unwrap_or_default();
    let scope = auth.split("Credential=").nth(1).and_then(|c| c.split(',').next()).unwrap_or_default();
    let service = scope.split('/').nth(3).unwrap_or_default().to_string();
    let raw = req["body"].as_str().unwrap_or_default();
    let body = if req["body_encoded"].as_bool() == Some(true) {
        String::from_utf8_lossy(&base64::engine::general_purpose::STANDARD.decode(raw).unwrap()).into_owned()
    } else {
        raw.to_string()
    };
    let method = req["method"].as_str().unwrap();
    let url = req["url"].as_str().unwrap();
    let path_and_query = url.splitn(4, '/').nth(3).map(|p| format!("/{p}")).unwrap_or_else(|| "/".into());
    let (path, query) = path_and_query.split_once('?').unwrap_or((&path_and_query, ""));
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let operation = match service.as_str() {
        "s3" => match (method, segments.len()) {
            ("HEAD", n) if n >= 2 => "HeadObject",
            ("GET", n) if n >= 2 => "GetObject",
            ("PUT", n) if n >= 2 => "PutObject",
            ("GET", 1) if query.contains("list-type=2") => "ListObjectsV2",
            _ => panic!("an S3 request this test does not know: {method} {url}"),
        }
        .to_string(),
        "eks" => match (method, segments.as_slice()) {
            ("GET", ["clusters", _]) => "DescribeCluster".to_string(),
            _ => panic!("an EKS request this test does not know: {method} {url}"),
        },
        _ => body
            .split('&')
            .find_map(|kv| kv.strip_prefix("Action="))
            .unwrap_or_else(|| panic!("a query-protocol request without Action: {service} {method} {url} {body}"))
            .to_string(),
    };
    // Tags given on create: ELBv2's `Tags.member.N`, EC2's `TagSpecification.N`.
    let tags_on_create = body.contains("Tags.member.1.Key=") || body.contains("TagSpecification.1.");
    Call { service, operation, tags_on_create }
}

/// The world of `front`, moto recording nothing yet, Panorama's sim, the config (`manage_alb`,
/// egress with `outbound`), an engine, and the bootstrap package with a key due for renewal.
fn start(rt: &tokio::runtime::Runtime, aws: &Aws, front: Front, outbound: bool) -> (Sim, LoadedConfig, Engine) {
    let sim = Sim::start(&["--job-step-ms", "0"]);
    let path = TestConfig {
        panorama_url: &sim.url,
        extra_network: if outbound { "outbound_via_firewall = true" } else { "" },
        extra_firewalls: if front == Front::Nlb { "elb_type = \"network\"" } else { "" },
        extra_sync: "manage_alb = true",
        ..TestConfig::default()
    }
    .write(sim.dir.path(), "pano-eks.toml");
    let loaded = config::load(&path, LoadOptions::runtime()).unwrap_or_else(|d| panic!("{d}"));
    let cfg = loaded.config.clone();
    let scope = pano_eks::render::cfn::sync_scope(&cfg);
    assert_eq!(scope, Scope { clusters: 1, front: Some(front), outbound });
    let engine = rt.block_on(async {
        let route_table = world(aws, &cfg, front).await;
        assert!(!route_table.is_empty());
        let engine = Engine::connect_with(&cfg, sim.dir.path(), EngineOptions::default(), Credentials::Password(Secret::new(PASSWORD)))
            .await
            .unwrap();
        // The bootstrap package with a key that expires within the renewal window (1 hour).
        let key = pano_eks::commands::vm_auth_key::generate(&engine.client, 1).await.unwrap();
        let body = pano_eks::render::bootstrap::init_cfg(&cfg, Some(&key)).unwrap();
        aws.s3
            .create_bucket()
            .bucket(cfg.bootstrap_bucket())
            .create_bucket_configuration(aws_sdk_s3::types::CreateBucketConfiguration::builder().location_constraint(REGION.into()).build())
            .send()
            .await
            .unwrap();
        bucket::put_objects(
            &aws.s3,
            &cfg.bootstrap_bucket(),
            &[bucket::Object { key: "config/init-cfg.txt".into(), body: body.as_bytes() }],
        )
        .await
        .unwrap();
        engine
    });
    (sim, loaded, engine)
}

/// The firewall group replaces its firewall; the lifecycle lambda gives the new one its trust
/// ENI (device index 2).
async fn replace_firewall(aws: &Aws, cfg: &config::Config) {
    let g = aws.asg.describe_auto_scaling_groups().auto_scaling_group_names(cfg.firewall_asg()).send().await.unwrap();
    let old = g.auto_scaling_groups()[0].instances()[0].instance_id().unwrap().to_string();
    aws.asg.terminate_instance_in_auto_scaling_group().instance_id(&old).should_decrement_desired_capacity(false).send().await.unwrap();
    let g = aws.asg.describe_auto_scaling_groups().auto_scaling_group_names(cfg.firewall_asg()).send().await.unwrap();
    let new = g.auto_scaling_groups()[0].instances().iter().filter_map(|i| i.instance_id()).find(|i| *i != old).unwrap().to_string();
    let subnet =
        aws.ec2.describe_subnets().filters(Filter::builder().name("cidr-block").values("192.168.2.0/24").build()).send().await.unwrap();
    let eni = aws.ec2.create_network_interface().subnet_id(subnet.subnets()[0].subnet_id().unwrap()).send().await.unwrap();
    let eni = eni.network_interface().unwrap().network_interface_id().unwrap().to_string();
    aws.ec2.attach_network_interface().network_interface_id(&eni).instance_id(&new).device_index(2).send().await.unwrap();
}

/// The comparison: every recorded call's actions are allowed, every allowed action was needed,
/// and the paths the scenario promises (`must`) really ran.
fn compare(recorded: &[serde_json::Value], scope: &Scope, must: &[&str]) {
    let calls: BTreeSet<Call> = recorded.iter().map(call_of).collect();
    let needed: BTreeMap<String, Vec<String>> = calls.iter().fold(BTreeMap::new(), |mut m, c| {
        for p in permissions_for_call(c) {
            m.entry(p).or_default().push(format!("{}:{}{}", c.service, c.operation, if c.tags_on_create { " (tagged)" } else { "" }));
        }
        m
    });
    eprintln!("{} requests; the permissions they needed:", recorded.len());
    for (p, by) in &needed {
        eprintln!("  {p} <- {}", by.join(", "));
    }
    let policy = sync_policy(scope);
    let allowed: BTreeSet<String> = allowed_actions(&policy).into_iter().map(str::to_string).collect();
    let needed_set: BTreeSet<String> = needed.keys().cloned().collect();
    let not_allowed: Vec<&String> = needed_set.difference(&allowed).collect();
    assert!(not_allowed.is_empty(), "sync called actions the policy does not allow: {not_allowed:?}");
    let never_needed: Vec<&String> = allowed.difference(&needed_set).collect();
    assert!(never_needed.is_empty(), "the policy allows actions sync never needed: {never_needed:?}");
    for m in must {
        assert!(needed_set.contains(*m), "{m} never called");
    }
}

#[test]
fn every_aws_call_sync_makes_is_allowed_by_the_policy_and_the_policy_allows_nothing_else() {
    let Some(MotoWorld { rt, moto, aws }) = moto_world(REGION) else { return };
    let (_sim, loaded, engine) = start(&rt, &aws, Front::Alb, true);
    let cfg = loaded.config.clone();

    moto.start_recording();
    let host: &[(&str, &str)] = &[(alb::HOST_ANNOTATION, "shop.example.com")];
    let path_a: &[(&str, &str)] = &[(alb::PATH_ANNOTATION, "/api/*")];
    let path_b: &[(&str, &str)] = &[(alb::PATH_ANNOTATION, "/v2/*")];
    // 1. Two Services get target groups, attachments and rules; egress: a new EIP on the
    //    firewall, the default route replaced; the vm-auth-key renewed.
    rt.block_on(sync_aws_steps(&aws, &loaded, &engine, &[("frontend", 82, host), ("api", 83, path_a)]));
    let first = moto.stop_recording();

    // Between the two: api's health check drifts, the default route is gone, and two more of
    // our EIPs are on other interfaces (an interrupted earlier run).
    rt.block_on(async {
        let api = alb::tg_name("demo", &ServiceKey { cluster: "shop".into(), namespace: "default".into(), name: "api".into() }, 83);
        let tg =
            aws.elbv2.describe_target_groups().names(&api).send().await.unwrap().target_groups()[0].target_group_arn().unwrap().to_string();
        aws.elbv2.modify_target_group().target_group_arn(tg).health_check_path("/drifted").send().await.unwrap();
        let ctx = front_and_egress::outbound_context(&aws, &cfg).await.unwrap();
        aws.ec2.delete_route().route_table_id(&ctx.route_tables[0]).destination_cidr_block("0.0.0.0/0").send().await.unwrap();
        let subnet =
            aws.ec2.describe_subnets().filters(Filter::builder().name("cidr-block").values("192.168.2.0/24").build()).send().await.unwrap();
        let subnet = subnet.subnets()[0].subnet_id().unwrap().to_string();
        for _ in 0..2 {
            let eip = aws
                .ec2
                .allocate_address()
                .tag_specifications(tagged(ResourceType::ElasticIp, &[(outbound::OUTBOUND_TAG, outbound::OUTBOUND_TAG_VALUE)]));
            let eip = eip.send().await.unwrap().allocation_id().unwrap().to_string();
            let eni = aws.ec2.create_network_interface().subnet_id(&subnet).send().await.unwrap();
            let eni = eni.network_interface().unwrap().network_interface_id().unwrap().to_string();
            aws.ec2.associate_address().allocation_id(eip).network_interface_id(eni).send().await.unwrap();
        }
    });
    moto.start_recording();
    // 2. frontend goes (rule, attachment, target group deleted), api's path changes (rule
    //    modified, health check restored), web has no host or path (no rule: it is not alone);
    //    egress: the extra EIPs released, the default route created again.
    rt.block_on(sync_aws_steps(&aws, &loaded, &engine, &[("api", 83, path_b), ("web", 84, &[])]));
    // 3. web alone takes the listener's default action.
    rt.block_on(sync_aws_steps(&aws, &loaded, &engine, &[("web", 84, &[])]));
    // 4. 130 Services with a host each: a second front (load balancer, listener, rules, target
    //    groups), 49 groups attached to the firewall group (50 with the stack's), the rest with
    //    the firewall registered directly.
    let names: Vec<String> = (0..130).map(|i| format!("svc{i:03}")).collect();
    let hosts: Vec<[(&str, &str); 1]> =
        names.iter().map(|n| [(alb::HOST_ANNOTATION, Box::leak(format!("{n}.example.com").into_boxed_str()) as &str)]).collect();
    let many = |n: usize| -> Vec<Svc<'_>> { (0..n).map(|i| (names[i].as_str(), 2000 + i as u16, &hosts[i][..])).collect() };
    rt.block_on(sync_aws_steps(&aws, &loaded, &engine, &many(130)));
    let second = moto.stop_recording();

    // Between: the firewall group replaces the firewall.
    rt.block_on(replace_firewall(&aws, &cfg));
    moto.start_recording();
    // 5. The same 130: the directly registered groups get the new firewall, lose the old one.
    rt.block_on(sync_aws_steps(&aws, &loaded, &engine, &many(130)));
    // 6. 40 go (the second front's 31 among them): the second front is deleted.
    rt.block_on(sync_aws_steps(&aws, &loaded, &engine, &many(90)));
    let third = moto.stop_recording();
    let fronts = rt.block_on(aws.elbv2.describe_load_balancers().send()).unwrap();
    assert_eq!(fronts.load_balancers().len(), 1, "the second front is gone again");

    let recorded: Vec<serde_json::Value> = first.into_iter().chain(second).chain(third).collect();
    compare(
        &recorded,
        &pano_eks::render::cfn::sync_scope(&cfg),
        &[
            "elasticloadbalancing:DeleteRule",
            "elasticloadbalancing:ModifyTargetGroup",
            "ec2:ReleaseAddress",
            "ec2:CreateRoute",
            "s3:PutObject",
            "elasticloadbalancing:CreateLoadBalancer",
            "elasticloadbalancing:DeleteLoadBalancer",
            "elasticloadbalancing:RegisterTargets",
            "elasticloadbalancing:DeregisterTargets",
        ],
    );
}

/// The same with an NLB front (no egress): 60 Service ports and one on the stack's port 80, so a
/// second NLB is made and 11 groups get the firewall registered directly; a replaced firewall;
/// then the second NLB's Services, the one on 80 and one attached go, and the second NLB is
/// deleted.
#[test]
fn the_nlb_front_and_its_shards_need_exactly_what_the_policy_allows() {
    let Some(MotoWorld { rt, moto, aws }) = moto_world(REGION) else { return };
    let (_sim, loaded, engine) = start(&rt, &aws, Front::Nlb, false);
    let cfg = loaded.config.clone();
    let names: Vec<String> = (0..60).map(|i| format!("svc{i:03}")).collect();
    let ports = |range: std::ops::Range<usize>, web: bool| -> Vec<Svc<'_>> {
        let mut v: Vec<Svc<'_>> = range.map(|i| (names[i].as_str(), 2000 + i as u16, &[][..])).collect();
        if web {
            v.push(("web", 80, &[]));
        }
        v
    };
    moto.start_recording();
    rt.block_on(sync_aws_steps(&aws, &loaded, &engine, &ports(0..60, true)));
    let first = moto.stop_recording();
    rt.block_on(replace_firewall(&aws, &cfg));
    moto.start_recording();
    rt.block_on(sync_aws_steps(&aws, &loaded, &engine, &ports(0..60, true)));
    rt.block_on(sync_aws_steps(&aws, &loaded, &engine, &ports(1..49, false)));
    let second = moto.stop_recording();
    let lbs = rt.block_on(aws.elbv2.describe_load_balancers().send()).unwrap();
    assert_eq!(lbs.load_balancers().len(), 1, "the second NLB is gone again");
    let recorded: Vec<serde_json::Value> = first.into_iter().chain(second).collect();
    compare(
        &recorded,
        &pano_eks::render::cfn::sync_scope(&cfg),
        &[
            "elasticloadbalancing:CreateLoadBalancer",
            "elasticloadbalancing:DeleteLoadBalancer",
            "elasticloadbalancing:DeleteListener",
            "elasticloadbalancing:RegisterTargets",
            "elasticloadbalancing:DeregisterTargets",
            "autoscaling:DetachLoadBalancerTargetGroups",
            "ec2:RevokeSecurityGroupIngress",
        ],
    );
}
