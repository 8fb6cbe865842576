//! `up` and `down` end to end against moto (with the harness bridges of tests/moto/),
//! panorama-sim and kube-sim, all on 127.0.0.1: greenfield up, re-run changes nothing, down
//! sweeps an injected orphan ENI and reports clean, down twice; brownfield up into a VPC the
//! test made; pre-flight failures create nothing (Kubernetes versions, a same-named cluster, account
//! limits, an unsubscribed Marketplace AMI); `up` after an interrupted `down` restores the firewalls.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};
use support::aws_world::{KubeSim, Moto, MotoWorld, moto_world};
use support::{PASSWORD, Sim};

const REGION: &str = "us-west-2";

struct World {
    moto: Moto,
    panorama: Sim,
    kube: KubeSim,
    dir: tempfile::TempDir,
    ami: String,
}

/// The deployment's three stacks.
const STACKS: [&str; 3] = ["demo-firewall", "demo-shop-cluster", "demo-shop-nodes"];

impl World {
    /// moto (with key pair `ops`), panorama-sim and kube-sim, with the runtime and an SDK client
    /// for moto; `None` (the test is skipped) when moto is not installed.
    fn start() -> Option<(tokio::runtime::Runtime, pano_eks::aws::Aws, World)> {
        let m = moto_world(REGION)?;
        let panorama = Sim::start(&["--job-step-ms", "0"]);
        let kube = KubeSim::start("shop");
        let ami = m.key_pair_and_ami("ops");
        let MotoWorld { rt, moto, aws } = m;
        Some((rt, aws, World { moto, panorama, kube, dir: tempfile::tempdir().unwrap(), ami }))
    }

    /// Writes the config; `extra_network` goes into [network], `key` names the key pair.
    fn config(&self, extra_network: &str, key: &str) -> PathBuf {
        self.config_with(extra_network, key, "")
    }

    /// As `config`, with `extra_cluster` added to the cluster's table.
    fn config_with(&self, extra_network: &str, key: &str, extra_cluster: &str) -> PathBuf {
        self.config_full(extra_network, key, extra_cluster, "")
    }

    /// As `config_with`, with `extra_firewalls` added to [firewalls].
    fn config_full(&self, extra_network: &str, key: &str, extra_cluster: &str, extra_firewalls: &str) -> PathBuf {
        let d = self.dir.path();
        std::fs::copy(self.panorama.ca(), d.join("panorama-ca.pem")).unwrap();
        let clusters = format!(
            "[[clusters]]\nname = \"shop\"\nsubnets = [\"192.168.110.0/24\", \"192.168.111.0/24\"]\n\
             nodes = {{ ami = \"{ami}\", min = 1, max = 1, desired = 1 }}\napi_server = \"{kurl}\"\nca_cert = \"{kca}\"\n{extra_cluster}\n",
            ami = self.ami,
            kurl = self.kube.url,
            kca = self.kube.ca.display(),
        );
        support::TestConfig {
            panorama_url: &self.panorama.url,
            panorama_ca: "panorama-ca.pem",
            ami: &self.ami,
            key_name: key,
            extra_network,
            extra_firewalls,
            clusters: &clusters,
            ..Default::default()
        }
        .write(d, "pano-eks.toml")
    }

    fn run(&self, config: &Path, args: &[&str]) -> Output {
        let out = Command::new(env!("CARGO_BIN_EXE_pano-eks"))
            .arg("--config")
            .arg(config)
            .args(args)
            .env_remove("AWS_PROFILE")
            .env("PANO_EKS_TEST_PANORAMA_PASSWORD", PASSWORD)
            .env("KUBECONFIG", self.dir.path().join("kubeconfig"))
            .envs(self.moto.env())
            .output()
            .unwrap();
        let (o, e) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        eprintln!("--- pano-eks {args:?}: {}\n{o}\n{e}", out.status);
        for secret in [PASSWORD, "I1234567", "testing\n"] {
            assert!(!o.contains(secret) && !e.contains(secret), "a secret leaked into the output of {args:?}");
        }
        assert!(!e.contains("k8s-aws-v1."), "an EKS token leaked");
        out
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

async fn stack_status(aws: &pano_eks::aws::Aws, name: &str) -> Option<String> {
    use pano_eks::aws::stacks::{AwsCfn, CfnApi};
    AwsCfn { client: &aws.cfn }.describe(name).await.unwrap().map(|s| s.status)
}

#[test]
fn greenfield_up_rerun_then_down_sweeps_an_orphan_eni_and_down_twice() {
    let Some((rt, aws, w)) = World::start() else { return };
    let cfg = w.config("", "ops");

    let up = w.run(&cfg, &["up", "--yes"]);
    assert!(up.status.success(), "up failed");
    let err = stderr(&up);
    assert!(
        err.find("1. pre-flight").unwrap() < err.find("demo-shop-nodes [").unwrap_or(usize::MAX) || err.contains("demo-shop-nodes ["),
        "step list first"
    );
    for s in STACKS {
        assert_eq!(rt.block_on(stack_status(&aws, s)).as_deref(), Some("CREATE_COMPLETE"), "{s}");
        assert!(stdout(&up).contains(&format!("stack {s}: created")), "{s}");
    }
    let cluster = rt.block_on(pano_eks::aws::eks::describe_cluster(&aws.eks, "shop")).unwrap().expect("the EKS cluster exists");
    assert_eq!(cluster.subnet_ids.len(), 2);
    let cred = w.dir.path().join(".pano-eks/demo/shop");
    assert!(cred.is_dir(), "pan-user credential files in {}", cred.display());
    let kc = std::fs::read_to_string(w.dir.path().join("kubeconfig")).unwrap();
    assert!(kc.contains("pano-eks-demo-shop") && kc.contains("token") && !kc.contains("k8s-aws-v1."), "exec-credential kubeconfig:\n{kc}");
    let keys = rt.block_on(pano_eks::aws::bucket::list_keys(&aws.s3, "demo-panw-bootstrap")).unwrap();
    for k in ["config/", "config/init-cfg.txt", "license/authcodes", "content/", "software/", "plugins/"] {
        assert!(keys.iter().any(|x| x == k), "{k} in {keys:?}");
    }

    // The exec credential kubectl would run works without any AWS CLI.
    let tok = w.run(&cfg, &["token", "--cluster", "shop"]);
    assert!(tok.status.success());
    let v: serde_json::Value = serde_json::from_slice(&tok.stdout).unwrap();
    assert!(v["status"]["token"].as_str().unwrap().starts_with("k8s-aws-v1."));

    // Re-running changes nothing.
    let again = w.run(&cfg, &["up", "--yes"]);
    assert!(again.status.success(), "second up failed");
    for s in STACKS {
        assert!(stdout(&again).contains(&format!("stack {s}: up to date")), "{s} changed on re-run");
    }
    assert!(stderr(&again).contains("0 uploaded"), "objects re-uploaded");

    // An orphan ENI in a cluster subnet with the node security group (PLUG-2253).
    let orphan = rt.block_on(async {
        use pano_eks::aws::stacks::{AwsCfn, CfnApi};
        let cfn = AwsCfn { client: &aws.cfn };
        let nodes = cfn.describe("demo-shop-nodes").await.unwrap().unwrap();
        let cl = cfn.describe("demo-shop-cluster").await.unwrap().unwrap();
        let subnet = cl.outputs["ClusterSubnets"].split(',').next().unwrap().to_string();
        let sg = nodes.outputs["NodeSecurityGroup"].clone();
        let eni = aws
            .ec2
            .create_network_interface()
            .subnet_id(subnet)
            .groups(sg)
            .description("orphan of a deleted NLB")
            .tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::NetworkInterface)
                    .tags(Tag::builder().key("pano-eks:deployment").value("demo").build())
                    .build(),
            )
            .send()
            .await
            .unwrap();
        eni.network_interface().unwrap().network_interface_id().unwrap().to_string()
    });

    let down = w.run(&cfg, &["down", "--yes"]);
    assert!(down.status.success(), "down failed:\n{}", stderr(&down));
    assert!(stderr(&down).contains(&orphan), "the orphan ENI was swept:\n{}", stderr(&down));
    assert!(stdout(&down).contains("down: clean"), "residue report clean");
    for s in STACKS {
        assert_eq!(rt.block_on(stack_status(&aws, s)), None, "{s}");
    }
    let down2 = w.run(&cfg, &["down", "--yes"]);
    assert!(down2.status.success(), "second down failed");
    assert!(stdout(&down2).contains("down: clean"));
}

async fn asg_size(aws: &pano_eks::aws::Aws) -> (i32, i32, usize) {
    let r = aws.asg.describe_auto_scaling_groups().auto_scaling_group_names("demo-firewall-PANW-Firewall-ASG").send().await.unwrap();
    let g = &r.auto_scaling_groups()[0];
    let in_service = g.instances().iter().filter(|i| i.lifecycle_state().map(|s| s.as_str()) == Some("InService")).count();
    (g.min_size().unwrap(), g.desired_capacity().unwrap(), in_service)
}

/// Issue 13 item 10: `down` scales the firewall group to 0 outside CloudFormation; interrupted
/// there, the stack still reads "up to date" and `up` used to leave zero firewalls.
#[test]
fn up_after_an_interrupted_down_restores_the_firewall_group() {
    let Some((rt, aws, w)) = World::start() else { return };
    let cfg = w.config("", "ops");
    assert!(w.run(&cfg, &["up", "--yes"]).status.success(), "up failed");
    assert_eq!(rt.block_on(asg_size(&aws)), (2, 2, 2));
    // What `down` does before it deletes the firewall stack, then the interruption.
    rt.block_on(async {
        aws.asg
            .update_auto_scaling_group()
            .auto_scaling_group_name("demo-firewall-PANW-Firewall-ASG")
            .min_size(0)
            .desired_capacity(0)
            .send()
            .await
            .unwrap();
    });
    assert_eq!(rt.block_on(asg_size(&aws)), (0, 0, 0), "moto scales in synchronously");
    let up = w.run(&cfg, &["up", "--yes"]);
    assert!(up.status.success(), "up after the interrupted down");
    assert!(stdout(&up).contains("stack demo-firewall: up to date"), "CloudFormation sees no change");
    assert!(stderr(&up).contains("demo-firewall-PANW-Firewall-ASG: size restored to 2 (found min 0, max 2, desired 0"), "reported");
    assert_eq!(rt.block_on(asg_size(&aws)), (2, 2, 2), "two InService firewalls again");
}

/// Issue 13 item 12: the cluster cannot be reached, so its LoadBalancer Services cannot be
/// deleted through Kubernetes; `down` finds what Kubernetes made by its AWS tags, deletes the load
/// balancer, waits for its interface to drain (harness bridge 10), then the security group.
#[test]
fn down_with_an_unreachable_cluster_removes_what_kubernetes_made_from_the_aws_side() {
    let Some((rt, aws, mut w)) = World::start() else { return };
    let cfg = w.config("", "ops");
    assert!(w.run(&cfg, &["up", "--yes"]).status.success(), "up failed");
    let (lb, sg, eni) = rt.block_on(async {
        use pano_eks::aws::stacks::{AwsCfn, CfnApi};
        let cl = AwsCfn { client: &aws.cfn }.describe("demo-shop-cluster").await.unwrap().unwrap();
        let subnets: Vec<String> = cl.outputs["ClusterSubnets"].split(',').map(str::to_string).collect();
        let vpc = cl.outputs["VpcId"].clone();
        // What the in-tree cloud provider makes for a Service of type LoadBalancer (NLB).
        let owned = Tag::builder().key("kubernetes.io/cluster/shop").value("owned").build();
        let sg = aws
            .ec2
            .create_security_group()
            .group_name("k8s-elb-a1b2c3")
            .description("Security group for Kubernetes ELB a1b2c3 (shop/frontend)")
            .vpc_id(&vpc)
            .tag_specifications(TagSpecification::builder().resource_type(ResourceType::SecurityGroup).tags(owned.clone()).build())
            .send()
            .await
            .unwrap()
            .group_id()
            .unwrap()
            .to_string();
        let elb_tag = |k: &str, v: &str| aws_sdk_elasticloadbalancingv2::types::Tag::builder().key(k).value(v).build();
        let lb = aws
            .elbv2
            .create_load_balancer()
            .name("a1b2c3")
            .r#type(aws_sdk_elasticloadbalancingv2::types::LoadBalancerTypeEnum::Network)
            .scheme(aws_sdk_elasticloadbalancingv2::types::LoadBalancerSchemeEnum::Internal)
            .set_subnets(Some(subnets.clone()))
            .security_groups(&sg)
            .tags(elb_tag("kubernetes.io/cluster/shop", "owned"))
            .tags(elb_tag("kubernetes.io/service-name", "shop/frontend"))
            .send()
            .await
            .unwrap();
        let lb = lb.load_balancers()[0].load_balancer_arn().unwrap().to_string();
        // Its interface, as ELB describes it.
        let description = format!("ELB {}", lb.split(":loadbalancer/").nth(1).unwrap());
        let eni = aws.ec2.create_network_interface().subnet_id(&subnets[0]).groups(&sg).description(description).send().await.unwrap();
        (lb, sg, eni.network_interface().unwrap().network_interface_id().unwrap().to_string())
    });
    w.kube.stop();

    let started = std::time::Instant::now();
    let down = w.run(&cfg, &["down", "--yes"]);
    eprintln!("down took {:?}", started.elapsed());
    let err = stderr(&down);
    assert!(down.status.success(), "down failed");
    assert!(err.contains("cluster shop: cannot delete its LoadBalancer Services"), "the cluster was unreachable");
    assert!(err.contains(&format!("load balancer {lb} of Service shop/frontend deleted (tagged for cluster shop)")), "LB deleted");
    assert!(err.contains("their network interfaces are gone"), "waited for the ENI");
    assert!(err.contains(&format!("security group {sg} deleted")), "SG deleted");
    assert!(stdout(&down).contains("down: clean"), "residue report clean");
    rt.block_on(async {
        assert!(aws.elbv2.describe_load_balancers().send().await.unwrap().load_balancers().is_empty(), "no load balancer left");
        let r = aws.ec2.describe_network_interfaces().network_interface_ids(&eni).send().await;
        assert!(r.is_err() || r.unwrap().network_interfaces().is_empty(), "the LB's ENI is gone");
        let r = aws.ec2.describe_security_groups().group_ids(&sg).send().await;
        assert!(r.is_err() || r.unwrap().security_groups().is_empty(), "the Kubernetes security group is gone");
    });
}

/// The vm-auth-key in the bootstrap package, as a secret (never printed).
async fn bootstrap_key(aws: &pano_eks::aws::Aws) -> String {
    let text = pano_eks::aws::bucket::get_text(&aws.s3, "demo-panw-bootstrap", "config/init-cfg.txt").await.unwrap().unwrap();
    text.lines().find_map(|l| l.strip_prefix("vm-auth-key=")).unwrap().trim().to_string()
}

/// Issue 13 item 11: the key `up` generated expires (a year by default) and firewalls the group
/// launches after that never register: `sync` warns ahead of expiry and renews it in the
/// bootstrap package; `status` shows the expiry.
#[test]
fn sync_renews_the_bootstrap_vm_auth_key_ahead_of_expiry_and_status_shows_it() {
    let Some((rt, aws, w)) = World::start() else { return };
    // `up` with a one-hour key: it expires within the 30 days `sync` renews ahead of.
    let short = w.config_full("", "ops", "", "vm_auth_key_lifetime_hours = 1");
    assert!(w.run(&short, &["up", "--yes"]).status.success(), "up failed");
    let first = rt.block_on(bootstrap_key(&aws));
    let cfg = w.config("", "ops"); // the default lifetime, a year
    let sync = w.run(&cfg, &["sync", "--once"]);
    assert!(sync.status.success(), "sync failed");
    let err = stderr(&sync);
    assert!(err.contains("warning: bootstrap vm-auth-key: the vm-auth-key expires at"), "warned ahead of expiry");
    assert!(
        err.contains("renewed: a new vm-auth-key (8760 hours) is in s3://demo-panw-bootstrap/config/init-cfg.txt, expires "),
        "renewed"
    );
    let second = rt.block_on(bootstrap_key(&aws));
    assert_ne!(first, second, "a new key in the package");
    assert!(!err.contains(&first) && !err.contains(&second), "no key in the output");
    // Valid for a year now: the next sync changes nothing; status shows the expiry.
    let again = w.run(&cfg, &["sync", "--once"]);
    assert!(again.status.success() && !stderr(&again).contains("vm-auth-key"), "nothing to renew");
    assert_eq!(rt.block_on(bootstrap_key(&aws)), second);
    let status = w.run(&cfg, &["status"]);
    assert!(status.status.success(), "status failed");
    let year = (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() / 31_556_952 + 1970 + 1).to_string();
    let line = stdout(&status).lines().find(|l| l.starts_with("vm-auth-key (bootstrap package): ")).map(str::to_string);
    let line = line.expect("status shows the key");
    assert!(line.starts_with(&format!("vm-auth-key (bootstrap package): valid, expires {year}/")), "{line}");
    assert!(!stdout(&status).contains(&second), "no key in the status");
    // `up` keeps the renewed key (no re-roll).
    assert!(w.run(&cfg, &["up", "--yes"]).status.success());
    assert_eq!(rt.block_on(bootstrap_key(&aws)), second);
}

#[test]
fn preflight_failures_create_nothing() {
    let Some((rt, aws, w)) = World::start() else { return };
    let cfg = w.config("existing_vpc_id = \"vpc-00000000000000000\"\nexisting_igw_id = \"igw-00000000000000000\"", "no-such-key");
    // Someone else's EKS cluster under our cluster's name (issue 13 item 2).
    rt.block_on(async {
        let vpc = aws_sdk_eks::types::VpcConfigRequest::builder().subnet_ids("subnet-00000000").build();
        aws.eks.create_cluster().name("shop").role_arn("arn:aws:iam::123456789012:role/x").resources_vpc_config(vpc).send().await.unwrap();
    });
    let up = w.run(&cfg, &["up", "--yes", "--existing-vpc"]);
    assert_preflight_failed(
        &up,
        &[
            "key pair `no-such-key` does not exist",
            "VPC vpc-00000000000000000 (network.existing_vpc_id) does not exist",
            "not attached",
            "clusters.0.name = \"shop\": an EKS cluster of that name already exists in us-west-2 and this deployment did not make it",
            "nothing was created",
        ],
    );
    assert_no_bucket_or_stack(&rt, &aws);
}

/// `up` stopped at pre-flight (exit 1), saying each of `wants`.
fn assert_preflight_failed(up: &Output, wants: &[&str]) {
    assert_eq!(up.status.code(), Some(1));
    let err = stderr(up);
    for want in wants {
        assert!(err.contains(want), "missing {want:?}");
    }
}

fn assert_no_bucket_or_stack(rt: &tokio::runtime::Runtime, aws: &pano_eks::aws::Aws) {
    rt.block_on(async {
        assert!(aws.s3.list_buckets().send().await.unwrap().buckets().is_empty(), "no bucket");
        assert!(aws.cfn.list_stacks().send().await.unwrap().stack_summaries().is_empty(), "no stack");
    });
}

fn assert_nothing_created(rt: &tokio::runtime::Runtime, aws: &pano_eks::aws::Aws) {
    assert_no_bucket_or_stack(rt, aws);
    rt.block_on(async {
        assert!(aws.eks.list_clusters().send().await.unwrap().clusters().is_empty(), "no cluster");
    });
}

/// Issue 13 item 1: EKS 1.31's extended support ended 2026-11-26; EKS (here the harness bridge
/// answering eks:DescribeClusterVersions from the release calendar) refuses it.
#[test]
fn an_unsupported_kubernetes_version_fails_preflight_with_its_dates() {
    let Some((rt, aws, w)) = World::start() else { return };
    let cfg = w.config_with("", "ops", "kubernetes_version = \"1.31\"");
    let up = w.run(&cfg, &["up", "--yes"]);
    assert_preflight_failed(
        &up,
        &[
            "clusters.0.kubernetes_version = \"1.31\" (cluster shop): EKS no longer supports this version",
            "standard support ended 2025-11-26, extended support ended 2026-11-26",
            "set kubernetes_version = \"1.35\"",
            "nothing was created",
        ],
    );
    assert_nothing_created(&rt, &aws);

    // Extended support: a warning with its cost, and the deployment goes ahead on that version.
    let cfg = w.config_with("", "ops", "kubernetes_version = \"1.33\"");
    let up = w.run(&cfg, &["up", "--yes"]);
    assert!(up.status.success(), "up on an extended-support version");
    assert!(stderr(&up).contains("warning: clusters.0.kubernetes_version = \"1.33\" (cluster shop) is in EKS extended support"));
    let cluster = rt.block_on(pano_eks::aws::eks::describe_cluster(&aws.eks, "shop")).unwrap().unwrap();
    assert_eq!(cluster.version.as_deref(), Some("1.33"));
}

/// Issue 13 item 4: Elastic IPs (one per NAT gateway; quota from the EC2 account attribute
/// vpc-max-elastic-ips, 5 in moto as in a new account), VPCs per region and the Marketplace
/// subscription of the AMI (harness bridge 9) are all reported at once before anything exists.
#[test]
fn account_limits_and_an_unsubscribed_ami_fail_preflight_at_once() {
    let Some((rt, aws, w)) = World::start() else { return };
    rt.block_on(async {
        for _ in 0..4 {
            aws.ec2.allocate_address().domain(aws_sdk_ec2::types::DomainType::Vpc).send().await.unwrap();
        }
        // moto's default VPC + 4 = 5, the default quota: a greenfield `up` needs a sixth.
        for i in 0..4 {
            aws.ec2.create_vpc().cidr_block(format!("10.{i}.0.0/16")).send().await.unwrap();
        }
        let tag = |k: &str, v: &str| Tag::builder().key(k).value(v).build();
        aws.ec2
            .create_tags()
            .resources(&w.ami)
            .tags(tag("moto-pano:product-code", "6njl1pau431dv1qxipg63mvah"))
            .tags(tag("moto-pano:subscribed", "false"))
            .send()
            .await
            .unwrap();
    });
    let cfg = w.config("", "ops");
    let up = w.run(&cfg, &["up", "--yes"]);
    assert_preflight_failed(
        &up,
        &[
            "pre-flight found 3 problems; nothing was created",
            "Elastic IPs: this deployment needs 2 (2 for the NAT gateways of us-west-2a, us-west-2b), 2 of them new, but 4 of the account's 5",
            "VPCs: 5 exist in us-west-2 and the quota is 5",
            &format!("AMI {}: this account is not subscribed to its AWS Marketplace product", w.ami),
            "OptInRequired",
        ],
    );
    assert_no_bucket_or_stack(&rt, &aws);
}

#[test]
fn brownfield_up_into_an_existing_vpc() {
    let Some((rt, aws, w)) = World::start() else { return };
    let (vpc, igw) = rt.block_on(async {
        let vpc = aws.ec2.create_vpc().cidr_block("192.168.0.0/16").send().await.unwrap().vpc().unwrap().vpc_id().unwrap().to_string();
        let igw =
            aws.ec2.create_internet_gateway().send().await.unwrap().internet_gateway().unwrap().internet_gateway_id().unwrap().to_string();
        aws.ec2.attach_internet_gateway().vpc_id(&vpc).internet_gateway_id(&igw).send().await.unwrap();
        // Someone else's subnet, outside ours.
        aws.ec2.create_subnet().vpc_id(&vpc).cidr_block("192.168.200.0/24").send().await.unwrap();
        (vpc, igw)
    });
    let cfg = w.config(&format!("existing_vpc_id = \"{vpc}\"\nexisting_igw_id = \"{igw}\""), "ops");
    // A VPC made with the AWS defaults has DNS hostnames off, which EKS cannot work with.
    let up = w.run(&cfg, &["up", "--yes", "--existing-vpc"]);
    assert_eq!(up.status.code(), Some(1));
    assert!(stderr(&up).contains(&format!("VPC {vpc} has enableDnsHostnames off")), "DNS hostnames checked");
    rt.block_on(async {
        let on = aws_sdk_ec2::types::AttributeBooleanValue::builder().value(true).build();
        aws.ec2.modify_vpc_attribute().vpc_id(&vpc).enable_dns_hostnames(on).send().await.unwrap();
    });
    let up = w.run(&cfg, &["up", "--yes", "--existing-vpc"]);
    assert!(up.status.success(), "brownfield up failed");
    rt.block_on(async {
        for s in STACKS {
            assert_eq!(stack_status(&aws, s).await.as_deref(), Some("CREATE_COMPLETE"), "{s}");
        }
        let subnets = aws
            .ec2
            .describe_subnets()
            .filters(aws_sdk_ec2::types::Filter::builder().name("vpc-id").values(&vpc).build())
            .send()
            .await
            .unwrap();
        assert!(subnets.subnets().len() >= 11, "firewall and cluster subnets inside the given VPC");
    });
}
