//! The CloudFormation runner: create-or-update through change sets, per-resource events while
//! waiting (never silent more than 10 s), bounded waits, and on failure the failed resources
//! with their reasons. A stack left in ROLLBACK_COMPLETE is deleted and recreated (after the
//! caller confirmed). What a stack's state means (`decide`, `settled`, `unchanged`,
//! `failure_reasons`) is decided in `pano_eks_core::aws::stacks` (re-exported here);
//! `resolve_parameters` stays with the render types it reads. `CfnApi` is the only thing that
//! talks to CloudFormation, so the runner also runs against the in-memory lab in the tests
//! (per-resource delays on a virtual clock).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

pub use pano_eks_core::aws::stacks::{
    Action, Change, ChangeSet, ChangeSetKind, DeleteOutcome, DeployRequest, StackEvent, StackResource, StackState, TemplateSource, decide,
    failure_reasons, format_event, settled, summarize, unchanged,
};
use pano_eks_core::aws::stacks::{change_set_is_empty, delete_waits_first, is_resource_done};

use super::AwsError;
use super::progress::Task;
use crate::render::cfn::{EksField, ParamValue, StackSpec};

/// CloudFormation refuses inline template bodies above this size; larger ones go by S3 URL.
pub const MAX_TEMPLATE_BODY: usize = 51_200;

/// CloudFormation as the runner sees it.
#[allow(async_fn_in_trait)]
pub trait CfnApi {
    async fn describe(&self, name: &str) -> Result<Option<StackState>, AwsError>;
    /// Newest first, as CloudFormation returns them.
    async fn events(&self, name: &str) -> Result<Vec<StackEvent>, AwsError>;
    async fn resources(&self, name: &str) -> Result<Vec<StackResource>, AwsError>;
    async fn template(&self, name: &str) -> Result<Option<String>, AwsError>;
    async fn create_change_set(&self, req: &DeployRequest, kind: ChangeSetKind, cs_name: &str) -> Result<String, AwsError>;
    async fn describe_change_set(&self, id: &str) -> Result<ChangeSet, AwsError>;
    async fn execute_change_set(&self, id: &str) -> Result<(), AwsError>;
    async fn delete_change_set(&self, id: &str) -> Result<(), AwsError>;
    async fn delete_stack(&self, name: &str) -> Result<(), AwsError>;
    /// Waits between polls (the lab advances a virtual clock).
    async fn sleep(&self, d: Duration);
}

/// Values wired between stacks/// Values wired between stacks, filled in as stacks and clusters come up.
#[derive(Debug, Clone, Default)]
pub struct Wiring {
    /// (stack, logical id) → physical id.
    pub resources: BTreeMap<(String, String), String>,
    /// (stack, output) → value.
    pub outputs: BTreeMap<(String, String), String>,
    /// (cluster, field) → value.
    pub eks: BTreeMap<(String, &'static str), String>,
}

pub fn eks_field_key(f: EksField) -> &'static str {
    match f {
        EksField::Endpoint => "endpoint",
        EksField::CertificateAuthority => "certificate_authority",
        EksField::ServiceCidr => "service_cidr",
    }
}

/// A stack's parameters with every reference replaced by its value; the error lists what is
/// not known yet.
pub fn resolve_parameters(spec: &StackSpec, w: &Wiring) -> Result<BTreeMap<String, String>, Vec<String>> {
    let mut out = BTreeMap::new();
    let mut missing = Vec::new();
    for (k, v) in &spec.parameters {
        let got = match v {
            ParamValue::Value(s) => Some(s.clone()),
            ParamValue::StackResource { stack, logical_id } => w.resources.get(&(stack.clone(), logical_id.clone())).cloned(),
            ParamValue::StackOutput { stack, output } => w.outputs.get(&(stack.clone(), output.clone())).cloned(),
            ParamValue::EksCluster { cluster, field } => w.eks.get(&(cluster.clone(), eks_field_key(*field))).cloned(),
        };
        match got {
            Some(s) => {
                out.insert(k.clone(), s);
            }
            None => missing.push(format!("{k} ({})", describe_ref(v))),
        }
    }
    if missing.is_empty() { Ok(out) } else { Err(missing) }
}

pub fn describe_ref(v: &ParamValue) -> String {
    match v {
        ParamValue::Value(s) => s.clone(),
        ParamValue::StackResource { stack, logical_id } => format!("resource {logical_id} of stack {stack}"),
        ParamValue::StackOutput { stack, output } => format!("output {output} of stack {stack}"),
        ParamValue::EksCluster { cluster, field } => format!("{} of EKS cluster {cluster}", eks_field_key(*field)),
    }
}

/// Bounds and cadence of the waits.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub poll: Duration,
    pub change_set: Duration,
    pub operation: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing { poll: Duration::from_secs(5), change_set: Duration::from_secs(300), operation: Duration::from_secs(45 * 60) }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error("stack {stack} failed ({status}):\n  {}", reasons.join("\n  "))]
    Failed { stack: String, status: String, reasons: Vec<String> },
    #[error("stack {stack}: still {status} after {waited:?} (the operation goes on in CloudFormation; re-run to resume)")]
    Timeout { stack: String, status: String, waited: Duration },
    #[error("stack {stack}: {message}")]
    Blocked { stack: String, message: String },
    #[error(
        "stack {stack} is in ROLLBACK_COMPLETE from a failed create: it must be deleted and created again (re-run with --yes, or confirm)"
    )]
    NeedsRecreate { stack: String },
}

/// What `deploy` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Created,
    Updated(Vec<Change>),
    Unchanged,
}

pub struct Runner<'a, A: CfnApi> {
    pub api: &'a A,
    pub timing: Timing,
}

impl<'a, A: CfnApi> Runner<'a, A> {
    pub fn new(api: &'a A, timing: Timing) -> Self {
        Runner { api, timing }
    }

    /// Brings one stack to `req`: create or update via a change set, or nothing when it already
    /// matches. `recreate_ok` says the user agreed to delete a ROLLBACK_COMPLETE stack.
    pub async fn deploy(&self, req: &DeployRequest, task: &mut Task, recreate_ok: bool) -> Result<(Outcome, StackState), StackError> {
        let name = req.name.as_str();
        loop {
            let state = self.api.describe(name).await?;
            match decide(state.as_ref()) {
                Action::Wait => {
                    let st = state.map(|s| s.status).unwrap_or_default();
                    task.event(format!("waiting for the operation in progress ({st}) to finish"));
                    self.wait_settled(name, task).await.ok();
                }
                Action::Blocked(message) => return Err(StackError::Blocked { stack: name.into(), message }),
                Action::Recreate => {
                    if !recreate_ok {
                        return Err(StackError::NeedsRecreate { stack: name.into() });
                    }
                    task.event("ROLLBACK_COMPLETE: deleting the failed stack before creating it again");
                    match self.delete(name, task).await? {
                        DeleteOutcome::Deleted => {}
                        DeleteOutcome::Failed(reasons) => {
                            return Err(StackError::Failed { stack: name.into(), status: "DELETE_FAILED".into(), reasons });
                        }
                    }
                }
                Action::Create => {
                    let cs = self.change_set(req, ChangeSetKind::Create, task).await?;
                    let cs = cs.expect("a create change set always has changes");
                    task.event(format!("creating: {} resource(s)", cs.changes.len()));
                    self.api.execute_change_set(&cs.id).await?;
                    let st = self.wait_settled(name, task).await?;
                    return Ok((Outcome::Created, st));
                }
                Action::Update => {
                    let deployed = state.expect("Update implies a stack");
                    let body = self.api.template(name).await?;
                    if unchanged(&deployed, body.as_deref(), req) {
                        return Ok((Outcome::Unchanged, deployed));
                    }
                    let Some(cs) = self.change_set(req, ChangeSetKind::Update, task).await? else {
                        return Ok((Outcome::Unchanged, deployed));
                    };
                    task.event(format!("updating: {}", summarize(&cs.changes)));
                    self.api.execute_change_set(&cs.id).await?;
                    let st = self.wait_settled(name, task).await?;
                    return Ok((Outcome::Updated(cs.changes), st));
                }
            }
        }
    }

    /// Creates a change set and waits until it is ready. `None`: it holds no changes (deleted).
    pub async fn change_set(&self, req: &DeployRequest, kind: ChangeSetKind, task: &mut Task) -> Result<Option<ChangeSet>, StackError> {
        let cs_name = format!("pano-eks-{}", unix_secs());
        let id = self.api.create_change_set(req, kind, &cs_name).await?;
        let start = Instant::now();
        loop {
            let cs = self.api.describe_change_set(&id).await?;
            match cs.status.as_str() {
                "CREATE_COMPLETE" => return Ok(Some(cs)),
                "FAILED" => {
                    let reason = cs.reason.clone().unwrap_or_default();
                    if change_set_is_empty(&reason) {
                        self.api.delete_change_set(&id).await.ok();
                        return Ok(None);
                    }
                    return Err(StackError::Failed { stack: req.name.clone(), status: "change set FAILED".into(), reasons: vec![reason] });
                }
                _ => {}
            }
            if start.elapsed() > self.timing.change_set {
                return Err(StackError::Timeout {
                    stack: req.name.clone(),
                    status: format!("change set {}", cs.status),
                    waited: self.timing.change_set,
                });
            }
            task.heartbeat("preparing the change set");
            self.api.sleep(self.timing.poll.min(Duration::from_secs(2))).await;
        }
    }

    /// Polls until the stack's current operation settles, streaming new events. Success gives
    /// the final state; failure gives the failed resources and their reasons.
    pub async fn wait_settled(&self, name: &str, task: &mut Task) -> Result<StackState, StackError> {
        let mut seen: BTreeSet<String> = BTreeSet::new();
        let start = Instant::now();
        let mut first = true;
        loop {
            let events = self.api.events(name).await.unwrap_or_default();
            if first {
                // Events from before this wait were shown by an earlier run or step.
                let marker = events.iter().position(|e| e.reason.as_deref() == Some("User Initiated") && e.logical_id == name);
                let old = marker.map(|i| i + 1).unwrap_or(0);
                seen.extend(events[old.min(events.len())..].iter().map(|e| e.id.clone()));
                first = false;
            }
            for e in events.iter().rev().filter(|e| !seen.contains(&e.id)) {
                task.event(format_event(e));
            }
            seen.extend(events.iter().map(|e| e.id.clone()));
            let state = self.api.describe(name).await?;
            let Some(state) = state else {
                return Ok(StackState { status: "DELETE_COMPLETE".into(), ..Default::default() });
            };
            match settled(&state.status) {
                Some(true) => return Ok(state),
                Some(false) => {
                    let mut reasons = failure_reasons(&events, name);
                    if reasons.is_empty() {
                        reasons.push(state.reason.clone().unwrap_or_else(|| "no reason given".into()));
                    }
                    return Err(StackError::Failed { stack: name.into(), status: state.status, reasons });
                }
                None => {}
            }
            if start.elapsed() > self.timing.operation {
                return Err(StackError::Timeout { stack: name.into(), status: state.status, waited: self.timing.operation });
            }
            task.heartbeat(&state.status);
            self.api.sleep(self.timing.poll).await;
        }
    }

    /// Waits until the named resources of a stack being created are complete; their physical ids.
    /// This is how a greenfield cluster stack starts before the firewall stack is done.
    pub async fn wait_resources(&self, stack: &str, logical_ids: &[&str], task: &mut Task) -> Result<BTreeMap<String, String>, StackError> {
        let start = Instant::now();
        loop {
            let resources = self.api.resources(stack).await.unwrap_or_default();
            let done: BTreeMap<String, String> = resources
                .iter()
                .filter(|r| logical_ids.contains(&r.logical_id.as_str()) && is_resource_done(&r.status))
                .filter_map(|r| r.physical_id.clone().map(|p| (r.logical_id.clone(), p)))
                .collect();
            if done.len() == logical_ids.len() {
                return Ok(done);
            }
            if let Some(st) = self.api.describe(stack).await? {
                if settled(&st.status) == Some(false) {
                    return Err(StackError::Failed {
                        stack: stack.into(),
                        status: st.status,
                        reasons: vec![format!("needed {logical_ids:?} from it")],
                    });
                }
            }
            if start.elapsed() > self.timing.operation {
                return Err(StackError::Timeout {
                    stack: stack.into(),
                    status: format!("waiting for {logical_ids:?}"),
                    waited: self.timing.operation,
                });
            }
            task.heartbeat(&format!("waiting for {} of {stack}", logical_ids.join(", ")));
            self.api.sleep(self.timing.poll).await;
        }
    }

    /// Deletes a stack and waits. `Failed` carries the reasons (DependencyViolation and the
    /// like) so the caller can clean up and call again.
    pub async fn delete(&self, name: &str, task: &mut Task) -> Result<DeleteOutcome, StackError> {
        let Some(before) = self.api.describe(name).await? else { return Ok(DeleteOutcome::Deleted) };
        if before.status == "DELETE_COMPLETE" {
            return Ok(DeleteOutcome::Deleted);
        }
        if delete_waits_first(&before.status) {
            task.event(format!("waiting for {} to finish before deleting", before.status));
            let _ = self.wait_settled(name, task).await;
        }
        task.event("deleting");
        self.api.delete_stack(name).await?;
        match self.wait_settled(name, task).await {
            Ok(_) => Ok(DeleteOutcome::Deleted),
            Err(StackError::Failed { reasons, .. }) => Ok(DeleteOutcome::Failed(reasons)),
            Err(e) => Err(e),
        }
    }
}

fn unix_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// The EKS facts a node stack is wired with (endpoint, CA, service CIDR), by field key.
#[allow(async_fn_in_trait)]
pub trait EksLookup {
    async fn fields(&self, cluster: &str) -> Result<BTreeMap<&'static str, String>, AwsError>;
}

/// How `deploy_all` gets each stack's template to CloudFormation (inline or by S3 URL).
pub type TemplateFor<'f> = &'f dyn Fn(&StackSpec) -> TemplateSource;

/// Deploys every stack in order: the firewall stack, and per cluster its cluster stack then its
/// node stack. With `early_start`, a greenfield cluster stack starts as soon as the firewall
/// stack's VPC, IGW and IGW attachment are complete instead of when the whole firewall stack is
/// (the ~10 min EKS control plane then overlaps the firewall stack). Every failure is reported,
/// not just the first.
pub async fn deploy_all<A: CfnApi, E: EksLookup>(
    runner: &Runner<'_, A>,
    specs: &[StackSpec],
    template: TemplateFor<'_>,
    eks: &E,
    progress: &super::progress::Progress,
    recreate_ok: bool,
    early_start: bool,
) -> Result<Vec<(String, Outcome)>, Vec<StackError>> {
    use crate::render::cfn::{IGW_ATTACHMENT_LOGICAL_ID, IGW_LOGICAL_ID, StackRole, VPC_LOGICAL_ID};
    use std::cell::RefCell;

    let wiring = RefCell::new(Wiring::default());
    let outcomes = RefCell::new(Vec::new());
    let Some(fw) = specs.iter().find(|s| s.role == StackRole::Firewall) else { return Ok(Vec::new()) };
    let (fw_tx, fw_rx) = tokio::sync::watch::channel::<Option<bool>>(None);

    let request = |spec: &StackSpec| -> Result<DeployRequest, StackError> {
        let parameters = resolve_parameters(spec, &wiring.borrow()).map_err(|missing| StackError::Blocked {
            stack: spec.stack_name.clone(),
            message: format!("unresolved parameters: {}", missing.join(", ")),
        })?;
        Ok(DeployRequest {
            name: spec.stack_name.clone(),
            template: template(spec),
            body: spec.template_body.clone(),
            parameters,
            tags: spec.tags.clone(),
        })
    };
    let record = |spec: &StackSpec, outcome: Outcome, state: &StackState| {
        let mut w = wiring.borrow_mut();
        for (k, v) in &state.outputs {
            w.outputs.insert((spec.stack_name.clone(), k.clone()), v.clone());
        }
        outcomes.borrow_mut().push((spec.stack_name.clone(), outcome));
    };

    let fw_fut = async {
        let mut task = progress.task(&fw.stack_name);
        let r = async { request(fw) }.await;
        let r = match r {
            Ok(req) => runner.deploy(&req, &mut task, recreate_ok).await,
            Err(e) => Err(e),
        };
        match &r {
            Ok((o, st)) => {
                record(fw, o.clone(), st);
                task.finish(outcome_text(o));
            }
            Err(_) => task.finish("FAILED"),
        }
        let _ = fw_tx.send(Some(r.is_ok()));
        r.map(|_| ())
    };

    let (wiring, request, record) = (&wiring, &request, &record);
    let cluster_fut = |cluster| {
        let cluster: &StackSpec = cluster;
        let fw_rx = fw_rx.clone();
        let nodes = specs.iter().find(|s| s.role == StackRole::Nodes && s.cluster == cluster.cluster);
        let access = specs.iter().find(|s| s.role == StackRole::SyncAccess && s.cluster == cluster.cluster);
        async move {
            let mut task = progress.task(&cluster.stack_name);
            let wired_to_fw = cluster.parameters.values().any(|v| {
                matches!(v, ParamValue::StackResource { .. })
                    || matches!(v, ParamValue::StackOutput { stack, .. } if *stack == fw.stack_name)
            });
            if wired_to_fw {
                let mut rx = fw_rx.clone();
                if early_start {
                    let need = [VPC_LOGICAL_ID, IGW_LOGICAL_ID, IGW_ATTACHMENT_LOGICAL_ID];
                    let waited: Result<Option<BTreeMap<String, String>>, StackError> = {
                        let wait = runner.wait_resources(&fw.stack_name, &need, &mut task);
                        let fw_failed = async move {
                            let _ = rx.wait_for(|v| *v == Some(false)).await;
                        };
                        futures::pin_mut!(wait, fw_failed);
                        match futures::future::select(wait, fw_failed).await {
                            futures::future::Either::Left((r, _)) => r.map(Some),
                            futures::future::Either::Right(_) => Ok(None),
                        }
                    };
                    match waited {
                        Ok(Some(ids)) => {
                            let mut w = wiring.borrow_mut();
                            for (l, p) in ids {
                                w.resources.insert((fw.stack_name.clone(), l), p);
                            }
                            task.event(format!(
                                "{VPC_LOGICAL_ID}, {IGW_LOGICAL_ID} and {IGW_ATTACHMENT_LOGICAL_ID} of {} are ready: starting",
                                fw.stack_name
                            ));
                        }
                        Err(e) => {
                            task.finish("not started");
                            return Err(e);
                        }
                        Ok(None) => {
                            task.finish("not started: the firewall stack failed");
                            return Ok(());
                        }
                    }
                } else {
                    let _ = rx.wait_for(|v| v.is_some()).await;
                    if *rx.borrow() != Some(true) {
                        task.finish("not started: the firewall stack failed");
                        return Ok(());
                    }
                    let ids: Vec<(String, String)> = runner
                        .api
                        .resources(&fw.stack_name)
                        .await?
                        .into_iter()
                        .filter_map(|r| Some((r.logical_id, r.physical_id?)))
                        .collect();
                    let mut w = wiring.borrow_mut();
                    for (l, p) in ids {
                        w.resources.insert((fw.stack_name.clone(), l), p);
                    }
                }
            }
            let req = request(cluster)?;
            let (o, st) = match runner.deploy(&req, &mut task, recreate_ok).await {
                Ok(x) => x,
                Err(e) => {
                    task.finish("FAILED");
                    return Err(e);
                }
            };
            record(cluster, o.clone(), &st);
            task.finish(outcome_text(&o));
            let Some(nodes) = nodes else { return Ok(()) };
            let mut task = progress.task(&nodes.stack_name);
            let name = cluster.cluster.clone().unwrap_or_default();
            let fields = eks.fields(&name).await.map_err(StackError::Aws)?;
            {
                let mut w = wiring.borrow_mut();
                for (k, v) in fields {
                    w.eks.insert((name.clone(), k), v);
                }
            }
            let req = request(nodes)?;
            match runner.deploy(&req, &mut task, recreate_ok).await {
                Ok((o, st)) => {
                    record(nodes, o.clone(), &st);
                    task.finish(outcome_text(&o));
                }
                Err(e) => {
                    task.finish("FAILED");
                    return Err(e);
                }
            }
            // The in-cluster sync's access (its Pod Identity agent add-on runs on the nodes).
            let Some(access) = access else { return Ok(()) };
            let mut task = progress.task(&access.stack_name);
            let req = request(access)?;
            match runner.deploy(&req, &mut task, recreate_ok).await {
                Ok((o, st)) => {
                    record(access, o.clone(), &st);
                    task.finish(outcome_text(&o));
                    Ok(())
                }
                Err(e) => {
                    task.finish("FAILED");
                    Err(e)
                }
            }
        }
    };

    let clusters: Vec<_> = specs.iter().filter(|s| s.role == StackRole::Cluster).map(cluster_fut).collect();
    let (fw_res, cl_res) = futures::join!(fw_fut, futures::future::join_all(clusters));
    let mut errors: Vec<StackError> = Vec::new();
    if let Err(e) = fw_res {
        errors.push(e);
    }
    errors.extend(cl_res.into_iter().filter_map(Result::err));
    if errors.is_empty() { Ok(outcomes.take()) } else { Err(errors) }
}

pub fn outcome_text(o: &Outcome) -> String {
    match o {
        Outcome::Created => "created".into(),
        Outcome::Updated(c) => format!("updated ({})", summarize(c)),
        Outcome::Unchanged => "up to date".into(),
    }
}

// ---------------------------------------------------------------------------------------------
// The real CloudFormation.

pub struct AwsCfn<'a> {
    pub client: &'a aws_sdk_cloudformation::Client,
}

use aws_sdk_cloudformation::types as cfn;

impl CfnApi for AwsCfn<'_> {
    async fn describe(&self, name: &str) -> Result<Option<StackState>, AwsError> {
        let r = match self.client.describe_stacks().stack_name(name).send().await {
            Ok(r) => r,
            Err(e) => {
                let e = super::sdk_err("cloudformation:DescribeStacks", e);
                if e.message.contains("does not exist") {
                    return Ok(None);
                }
                return Err(e);
            }
        };
        let Some(s) = r.stacks().first() else { return Ok(None) };
        Ok(Some(StackState {
            id: s.stack_id().unwrap_or_default().to_string(),
            status: s.stack_status().map(|x| x.as_str().to_string()).unwrap_or_default(),
            reason: s.stack_status_reason().map(str::to_string),
            outputs: s
                .outputs()
                .iter()
                .filter_map(|o| Some((o.output_key()?.to_string(), o.output_value().unwrap_or_default().to_string())))
                .collect(),
            parameters: s
                .parameters()
                .iter()
                .filter_map(|p| Some((p.parameter_key()?.to_string(), p.parameter_value().unwrap_or_default().to_string())))
                .collect(),
            tags: s.tags().iter().filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string()))).collect(),
        }))
    }

    async fn events(&self, name: &str) -> Result<Vec<StackEvent>, AwsError> {
        let r = self
            .client
            .describe_stack_events()
            .stack_name(name)
            .send()
            .await
            .map_err(|e| super::sdk_err("cloudformation:DescribeStackEvents", e))?;
        Ok(r.stack_events()
            .iter()
            .map(|e| StackEvent {
                id: e.event_id().unwrap_or_default().to_string(),
                logical_id: e.logical_resource_id().unwrap_or_default().to_string(),
                resource_type: e.resource_type().unwrap_or_default().to_string(),
                status: e.resource_status().map(|s| s.as_str().to_string()).unwrap_or_default(),
                reason: e.resource_status_reason().map(str::to_string),
            })
            .collect())
    }

    async fn resources(&self, name: &str) -> Result<Vec<StackResource>, AwsError> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let r = self
                .client
                .list_stack_resources()
                .stack_name(name)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| super::sdk_err("cloudformation:ListStackResources", e))?;
            out.extend(r.stack_resource_summaries().iter().map(|s| StackResource {
                logical_id: s.logical_resource_id().unwrap_or_default().to_string(),
                physical_id: s.physical_resource_id().filter(|p| !p.is_empty()).map(str::to_string),
                resource_type: s.resource_type().unwrap_or_default().to_string(),
                status: s.resource_status().map(|x| x.as_str().to_string()).unwrap_or_default(),
            }));
            match r.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => return Ok(out),
            }
        }
    }

    async fn template(&self, name: &str) -> Result<Option<String>, AwsError> {
        let r = self.client.get_template().stack_name(name).send().await.map_err(|e| super::sdk_err("cloudformation:GetTemplate", e))?;
        Ok(r.template_body().map(str::to_string))
    }

    async fn create_change_set(&self, req: &DeployRequest, kind: ChangeSetKind, cs_name: &str) -> Result<String, AwsError> {
        let params: Vec<cfn::Parameter> =
            req.parameters.iter().map(|(k, v)| cfn::Parameter::builder().parameter_key(k).parameter_value(v).build()).collect();
        let mut tags = Vec::new();
        for (k, v) in &req.tags {
            tags.push(cfn::Tag::builder().key(k).value(v).build());
        }
        let mut b = self
            .client
            .create_change_set()
            .stack_name(&req.name)
            .change_set_name(cs_name)
            .change_set_type(match kind {
                ChangeSetKind::Create => cfn::ChangeSetType::Create,
                ChangeSetKind::Update => cfn::ChangeSetType::Update,
            })
            .set_parameters(Some(params))
            .set_tags(Some(tags))
            .capabilities(cfn::Capability::CapabilityIam)
            .capabilities(cfn::Capability::CapabilityNamedIam);
        b = match &req.template {
            TemplateSource::Body(t) => b.template_body(t),
            TemplateSource::Url(u) => b.template_url(u),
        };
        let r = b.send().await.map_err(|e| super::sdk_err("cloudformation:CreateChangeSet", e))?;
        Ok(r.id().unwrap_or(cs_name).to_string())
    }

    async fn describe_change_set(&self, id: &str) -> Result<ChangeSet, AwsError> {
        let r = self
            .client
            .describe_change_set()
            .change_set_name(id)
            .send()
            .await
            .map_err(|e| super::sdk_err("cloudformation:DescribeChangeSet", e))?;
        Ok(ChangeSet {
            id: r.change_set_id().unwrap_or(id).to_string(),
            status: r.status().map(|s| s.as_str().to_string()).unwrap_or_default(),
            execution_status: r.execution_status().map(|s| s.as_str().to_string()).unwrap_or_default(),
            reason: r.status_reason().map(str::to_string),
            changes: r
                .changes()
                .iter()
                .filter_map(|c| c.resource_change())
                .map(|rc| Change {
                    action: rc.action().map(|a| a.as_str().to_string()).unwrap_or_default(),
                    logical_id: rc.logical_resource_id().unwrap_or_default().to_string(),
                    resource_type: rc.resource_type().unwrap_or_default().to_string(),
                    replacement: rc.replacement().map(|x| x.as_str().to_string()),
                })
                .collect(),
        })
    }

    async fn execute_change_set(&self, id: &str) -> Result<(), AwsError> {
        self.client
            .execute_change_set()
            .change_set_name(id)
            .send()
            .await
            .map_err(|e| super::sdk_err("cloudformation:ExecuteChangeSet", e))?;
        Ok(())
    }

    async fn delete_change_set(&self, id: &str) -> Result<(), AwsError> {
        self.client
            .delete_change_set()
            .change_set_name(id)
            .send()
            .await
            .map_err(|e| super::sdk_err("cloudformation:DeleteChangeSet", e))?;
        Ok(())
    }

    async fn delete_stack(&self, name: &str) -> Result<(), AwsError> {
        self.client.delete_stack().stack_name(name).send().await.map_err(|e| super::sdk_err("cloudformation:DeleteStack", e))?;
        Ok(())
    }

    async fn sleep(&self, d: Duration) {
        tokio::time::sleep(d).await;
    }
}

#[cfg(test)]
#[path = "stacks_tests.rs"]
mod tests;
