use std::cell::RefCell;
use std::collections::BTreeMap;
use std::time::Duration;

use super::*;
use crate::aws::progress::Progress;
use crate::render::cfn::StackRole;

fn spec(role: StackRole, name: &str, cluster: Option<&str>, params: &[(&str, ParamValue)]) -> StackSpec {
    StackSpec {
        role,
        cluster: cluster.map(str::to_string),
        stack_name: name.into(),
        template_file: format!("{name}.yaml"),
        template_body: format!("# {name}\n"),
        parameters: params.iter().map(|(k, v)| (k.to_string(), v.clone())).collect(),
        tags: BTreeMap::from([("pano-eks:deployment".to_string(), "demo".to_string())]),
    }
}

fn res(stack: &str, l: &str) -> ParamValue {
    ParamValue::StackResource { stack: stack.into(), logical_id: l.into() }
}

#[test]
fn parameters_resolve_from_the_wiring_or_name_what_is_missing() {
    let s = spec(
        StackRole::Nodes,
        "demo-shop-nodes",
        Some("shop"),
        &[
            ("A", ParamValue::Value("x".into())),
            ("Vpc", res("demo-firewall", "Vpc")),
            ("Subnets", ParamValue::StackOutput { stack: "demo-shop-cluster".into(), output: "ClusterSubnets".into() }),
            ("Endpoint", ParamValue::EksCluster { cluster: "shop".into(), field: EksField::Endpoint }),
        ],
    );
    let mut w = Wiring::default();
    let err = resolve_parameters(&s, &w).unwrap_err();
    assert_eq!(err.len(), 3, "{err:?}");
    assert!(err.iter().any(|m| m.contains("output ClusterSubnets of stack demo-shop-cluster")));
    w.resources.insert(("demo-firewall".into(), "Vpc".into()), "vpc-1".into());
    w.outputs.insert(("demo-shop-cluster".into(), "ClusterSubnets".into()), "subnet-1,subnet-2".into());
    w.eks.insert(("shop".into(), "endpoint"), "https://k".into());
    let got = resolve_parameters(&s, &w).unwrap();
    assert_eq!(got["Vpc"], "vpc-1");
    assert_eq!(got["Subnets"], "subnet-1,subnet-2");
    assert_eq!(got["Endpoint"], "https://k");
    assert_eq!(got["A"], "x");
}

// ---------------------------------------------------------------------------------------------
// The lab: an in-memory CloudFormation on tokio's virtual clock, where each resource of a stack
// completes at a fixed delay after the stack's creation started.

/// The lab's virtual clock: `sleep` registers a wake-up time and yields; when every task is
/// asleep, the driver (`drive`) jumps the clock to the earliest wake-up.
#[derive(Default)]
struct Clock {
    now: std::cell::Cell<Duration>,
    wakes: RefCell<Vec<Duration>>,
}

impl Clock {
    async fn sleep(&self, d: Duration) {
        let wake = self.now.get() + d;
        while self.now.get() < wake {
            self.wakes.borrow_mut().push(wake);
            YieldOnce(false).await;
        }
    }
    fn advance(&self) {
        let mut w = self.wakes.borrow_mut();
        let next = w.iter().copied().min().expect("every task is blocked and none sleeps: deadlock");
        w.retain(|t| *t > next);
        self.now.set(next);
    }
}

struct YieldOnce(bool);
impl std::future::Future for YieldOnce {
    type Output = ();
    fn poll(mut self: std::pin::Pin<&mut Self>, _cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        if self.0 {
            std::task::Poll::Ready(())
        } else {
            self.0 = true;
            std::task::Poll::Pending
        }
    }
}

/// Runs a future to completion on the lab clock (everything is polled on each turn).
fn drive<F: std::future::Future>(clock: &Clock, fut: F) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    let waker = futures::task::noop_waker();
    let mut cx = std::task::Context::from_waker(&waker);
    loop {
        if let std::task::Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        clock.advance();
    }
}

struct LabStack {
    started: Option<Duration>,
    resources: Vec<(String, Duration)>,
    parameters: BTreeMap<String, String>,
    body: String,
    deleted: bool,
}

struct Lab {
    clock: Clock,
    scripts: BTreeMap<String, Vec<(&'static str, u64)>>,
    stacks: RefCell<BTreeMap<String, LabStack>>,
    change_sets: RefCell<BTreeMap<String, (String, BTreeMap<String, String>, String)>>,
    /// (stack, parameters it was created with), in creation order.
    created: RefCell<Vec<(String, BTreeMap<String, String>)>>,
}

impl Lab {
    fn new(scripts: &[(&str, Vec<(&'static str, u64)>)]) -> Lab {
        Lab {
            clock: Clock::default(),
            scripts: scripts.iter().map(|(n, r)| (n.to_string(), r.clone())).collect(),
            stacks: RefCell::default(),
            change_sets: RefCell::default(),
            created: RefCell::default(),
        }
    }

    fn total(s: &LabStack) -> Duration {
        s.resources.iter().map(|(_, d)| *d).max().unwrap_or_default()
    }
}

impl CfnApi for Lab {
    async fn describe(&self, name: &str) -> Result<Option<StackState>, AwsError> {
        let stacks = self.stacks.borrow();
        let Some(s) = stacks.get(name).filter(|s| !s.deleted) else { return Ok(None) };
        let status = match s.started {
            None => "REVIEW_IN_PROGRESS",
            Some(t) if self.clock.now.get() - t >= Lab::total(s) => "CREATE_COMPLETE",
            Some(_) => "CREATE_IN_PROGRESS",
        };
        let outputs = if status == "CREATE_COMPLETE" {
            BTreeMap::from([("ClusterSubnets".to_string(), "subnet-a,subnet-b".to_string())])
        } else {
            BTreeMap::new()
        };
        Ok(Some(StackState {
            id: name.into(),
            status: status.into(),
            reason: None,
            outputs,
            parameters: s.parameters.clone(),
            tags: BTreeMap::from([("pano-eks:deployment".to_string(), "demo".to_string())]),
        }))
    }
    async fn events(&self, _name: &str) -> Result<Vec<StackEvent>, AwsError> {
        Ok(Vec::new())
    }
    async fn resources(&self, name: &str) -> Result<Vec<StackResource>, AwsError> {
        let stacks = self.stacks.borrow();
        let Some(s) = stacks.get(name) else { return Ok(Vec::new()) };
        let Some(t) = s.started else { return Ok(Vec::new()) };
        Ok(s.resources
            .iter()
            .map(|(l, d)| StackResource {
                logical_id: l.clone(),
                physical_id: Some(format!("{}-id", l.to_lowercase())),
                resource_type: "AWS::Lab".into(),
                status: if self.clock.now.get() - t >= *d { "CREATE_COMPLETE" } else { "CREATE_IN_PROGRESS" }.into(),
            })
            .collect())
    }
    async fn template(&self, name: &str) -> Result<Option<String>, AwsError> {
        Ok(self.stacks.borrow().get(name).map(|s| s.body.clone()))
    }
    async fn create_change_set(&self, req: &DeployRequest, _kind: ChangeSetKind, cs_name: &str) -> Result<String, AwsError> {
        let id = format!("{}/{cs_name}", req.name);
        self.change_sets.borrow_mut().insert(id.clone(), (req.name.clone(), req.parameters.clone(), req.body.clone()));
        self.stacks.borrow_mut().entry(req.name.clone()).or_insert_with(|| LabStack {
            started: None,
            resources: self.scripts[&req.name].iter().map(|(l, s)| (l.to_string(), Duration::from_secs(*s))).collect(),
            parameters: BTreeMap::new(),
            body: String::new(),
            deleted: false,
        });
        Ok(id)
    }
    async fn describe_change_set(&self, id: &str) -> Result<ChangeSet, AwsError> {
        let (name, _, _) = self.change_sets.borrow()[id].clone();
        let changes = self.scripts[&name]
            .iter()
            .map(|(l, _)| Change { action: "Add".into(), logical_id: l.to_string(), resource_type: "AWS::Lab".into(), replacement: None })
            .collect();
        Ok(ChangeSet { id: id.into(), status: "CREATE_COMPLETE".into(), execution_status: "AVAILABLE".into(), reason: None, changes })
    }
    async fn execute_change_set(&self, id: &str) -> Result<(), AwsError> {
        let (name, params, body) = self.change_sets.borrow()[id].clone();
        let mut stacks = self.stacks.borrow_mut();
        let s = stacks.get_mut(&name).unwrap();
        s.started = Some(self.clock.now.get());
        s.parameters = params.clone();
        s.body = body;
        self.created.borrow_mut().push((name, params));
        Ok(())
    }
    async fn delete_change_set(&self, _id: &str) -> Result<(), AwsError> {
        Ok(())
    }
    async fn delete_stack(&self, name: &str) -> Result<(), AwsError> {
        if let Some(s) = self.stacks.borrow_mut().get_mut(name) {
            s.deleted = true;
        }
        Ok(())
    }
    async fn sleep(&self, d: Duration) {
        self.clock.sleep(d).await;
    }
}

struct LabEks;
impl EksLookup for LabEks {
    async fn fields(&self, _cluster: &str) -> Result<BTreeMap<&'static str, String>, AwsError> {
        Ok(BTreeMap::from([
            ("endpoint", "https://k".to_string()),
            ("certificate_authority", "Q0E=".to_string()),
            ("service_cidr", "10.100.0.0/16".to_string()),
        ]))
    }
}

/// Delays modelled on AWS (guide and eksctl figures): the firewall stack's VPC/IGW come in the
/// first minute, the whole stack (NAT gateways, lambda, ASG of VM-Series) takes ~10 min; the EKS
/// control plane ~10 min; a node group ~3 min.
fn lab() -> Lab {
    Lab::new(&[
        (
            "demo-firewall",
            vec![
                ("Vpc", 15),
                ("InternetGateway", 10),
                ("InternetGatewayAttachment", 30),
                ("NatGateway1", 150),
                ("LifecycleFunction", 60),
                ("FirewallAsg", 600),
            ],
        ),
        ("demo-shop-cluster", vec![("ClusterSubnet1", 10), ("ClusterDefaultRoute", 20), ("Cluster", 600)]),
        ("demo-shop-nodes", vec![("NodeRole", 20), ("NodeAsg", 180)]),
    ])
}

fn lab_specs() -> Vec<StackSpec> {
    vec![
        spec(StackRole::Firewall, "demo-firewall", None, &[("DeploymentName", ParamValue::Value("demo".into()))]),
        spec(
            StackRole::Cluster,
            "demo-shop-cluster",
            Some("shop"),
            &[("VpcId", res("demo-firewall", "Vpc")), ("InternetGatewayId", res("demo-firewall", "InternetGateway"))],
        ),
        spec(
            StackRole::Nodes,
            "demo-shop-nodes",
            Some("shop"),
            &[
                ("Subnets", ParamValue::StackOutput { stack: "demo-shop-cluster".into(), output: "ClusterSubnets".into() }),
                ("ServiceCidr", ParamValue::EksCluster { cluster: "shop".into(), field: EksField::ServiceCidr }),
            ],
        ),
    ]
}

fn run_lab(early: bool) -> (Duration, Lab) {
    let lab = lab();
    let specs = lab_specs();
    let elapsed = drive(&lab.clock, async {
        let start = lab.clock.now.get();
        let runner = Runner::new(&lab, Timing { poll: Duration::from_secs(5), ..Timing::default() });
        let tpl = |s: &StackSpec| TemplateSource::Body(s.template_body.clone());
        let out = deploy_all(&runner, &specs, &tpl, &LabEks, &Progress::plain(), false, early).await.unwrap();
        assert_eq!(out.len(), 3);
        lab.clock.now.get() - start
    });
    (elapsed, lab)
}

/// The figure behind "start the cluster stack as soon as the VPC and IGW exist": on the lab's
/// delays, sequential = 600 + 600 + 180 s; early start = 30 (attachment) + 600 + 180 s.
#[test]
fn early_cluster_start_overlaps_the_control_plane_with_the_firewall_stack() {
    let (sequential, _) = run_lab(false);
    let (early, lab) = run_lab(true);
    eprintln!("lab: sequential {sequential:?}, early start {early:?}, saved {:?}", sequential - early);
    assert!(sequential >= Duration::from_secs(1380) && sequential < Duration::from_secs(1400), "{sequential:?}");
    assert!(early >= Duration::from_secs(810) && early < Duration::from_secs(830), "{early:?}");
    // The cluster stack got the physical ids, and started before the firewall stack finished.
    let created = lab.created.borrow();
    let order: Vec<&str> = created.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(order, vec!["demo-firewall", "demo-shop-cluster", "demo-shop-nodes"]);
    assert_eq!(created[1].1["VpcId"], "vpc-id");
    assert_eq!(created[1].1["InternetGatewayId"], "internetgateway-id");
    assert_eq!(created[2].1["ServiceCidr"], "10.100.0.0/16");
}

/// The in-cluster sync's access stack (`in_cluster = true`) is deployed after its cluster's node
/// stack: the Pod Identity agent add-on needs nodes to run on.
#[test]
fn the_access_stack_comes_after_its_clusters_nodes() {
    let lab = Lab::new(&[
        ("demo-firewall", vec![("Vpc", 15), ("InternetGateway", 10), ("InternetGatewayAttachment", 30), ("FirewallAsg", 600)]),
        ("demo-shop-cluster", vec![("Cluster", 600)]),
        ("demo-shop-nodes", vec![("NodeAsg", 180)]),
        ("demo-shop-sync-access", vec![("PodIdentityAgent", 60), ("SyncRole", 10), ("SyncPodIdentity", 5)]),
    ]);
    let mut specs = lab_specs();
    specs.push(spec(StackRole::SyncAccess, "demo-shop-sync-access", Some("shop"), &[("ClusterName", ParamValue::Value("shop".into()))]));
    drive(&lab.clock, async {
        let runner = Runner::new(&lab, Timing { poll: Duration::from_secs(5), ..Timing::default() });
        let tpl = |s: &StackSpec| TemplateSource::Body(s.template_body.clone());
        let out = deploy_all(&runner, &specs, &tpl, &LabEks, &Progress::plain(), false, true).await.unwrap();
        assert_eq!(out.len(), 4, "{out:?}");
    });
    let created = lab.created.borrow();
    let order: Vec<&str> = created.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(order, vec!["demo-firewall", "demo-shop-cluster", "demo-shop-nodes", "demo-shop-sync-access"]);
    let stacks = lab.stacks.borrow();
    let (nodes, access) = (&stacks["demo-shop-nodes"], &stacks["demo-shop-sync-access"]);
    assert!(access.started.unwrap() >= nodes.started.unwrap() + Duration::from_secs(180), "started once the nodes were complete");
}

#[test]
fn a_second_deploy_of_the_same_stacks_changes_nothing() {
    let lab = lab();
    let specs = lab_specs();
    drive(&lab.clock, async {
        let runner = Runner::new(&lab, Timing::default());
        let tpl = |s: &StackSpec| TemplateSource::Body(s.template_body.clone());
        deploy_all(&runner, &specs, &tpl, &LabEks, &Progress::plain(), false, true).await.unwrap();
        let again = deploy_all(&runner, &specs, &tpl, &LabEks, &Progress::plain(), false, true).await.unwrap();
        assert!(again.iter().all(|(_, o)| *o == Outcome::Unchanged), "{again:?}");
    });
    assert_eq!(lab.created.borrow().len(), 3);
}
