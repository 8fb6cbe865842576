//! What a CloudFormation stack's state means: create, update, delete-and-recreate
//! (ROLLBACK_COMPLETE), wait, or stop with a message; when an operation has settled and whether
//! it succeeded; whether a deployed stack already is what we would deploy; and the failed
//! resources of the latest operation with their reasons. The vocabulary (`StackState`,
//! `StackEvent`, `ChangeSet`, …) is what the adapter observes into.

use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StackState {
    pub id: String,
    pub status: String,
    pub reason: Option<String>,
    pub outputs: BTreeMap<String, String>,
    pub parameters: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackEvent {
    pub id: String,
    pub logical_id: String,
    pub resource_type: String,
    pub status: String,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackResource {
    pub logical_id: String,
    pub physical_id: Option<String>,
    pub resource_type: String,
    pub status: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub action: String,
    pub logical_id: String,
    pub resource_type: String,
    pub replacement: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeSet {
    pub id: String,
    pub status: String,
    pub execution_status: String,
    pub reason: Option<String>,
    pub changes: Vec<Change>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateSource {
    Body(String),
    Url(String),
}

/// What to deploy: a stack's template and its resolved parameters and tags.
#[derive(Debug, Clone)]
pub struct DeployRequest {
    pub name: String,
    pub template: TemplateSource,
    /// The template text itself (compared with the deployed one to detect "no change").
    pub body: String,
    pub parameters: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeSetKind {
    Create,
    Update,
}

/// What to do with a stack, given what exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Create,
    Update,
    /// ROLLBACK_COMPLETE / ROLLBACK_FAILED: only deletion helps; then create.
    Recreate,
    /// An operation is under way: wait for it to settle, then decide again.
    Wait,
    /// A state the runner will not touch; the message says what to do.
    Blocked(String),
}

pub fn decide(state: Option<&StackState>) -> Action {
    let Some(s) = state else { return Action::Create };
    match s.status.as_str() {
        "DELETE_COMPLETE" | "REVIEW_IN_PROGRESS" => Action::Create,
        "ROLLBACK_COMPLETE" | "ROLLBACK_FAILED" | "CREATE_FAILED" => Action::Recreate,
        "UPDATE_ROLLBACK_FAILED" => Action::Blocked(format!(
            "stack {} is UPDATE_ROLLBACK_FAILED; continue the rollback in the CloudFormation console (or `aws cloudformation continue-update-rollback`), then re-run",
            s.id
        )),
        "DELETE_FAILED" => Action::Blocked("the stack is DELETE_FAILED from an earlier `down`; run `pano-eks down` again first".into()),
        st if st.ends_with("_IN_PROGRESS") => Action::Wait,
        st if st.ends_with("_COMPLETE") => Action::Update,
        other => Action::Blocked(format!("unexpected stack status {other}")),
    }
}

/// Terminal states of an operation, and whether they mean success.
pub fn settled(status: &str) -> Option<bool> {
    match status {
        "CREATE_COMPLETE" | "UPDATE_COMPLETE" | "IMPORT_COMPLETE" | "DELETE_COMPLETE" => Some(true),
        s if s.ends_with("_IN_PROGRESS") => None,
        // ROLLBACK_COMPLETE, UPDATE_ROLLBACK_COMPLETE, *_FAILED
        _ => Some(false),
    }
}

/// Whether the deployed stack already is what we would deploy (no change set needed).
pub fn unchanged(deployed: &StackState, deployed_body: Option<&str>, req: &DeployRequest) -> bool {
    deployed_body.map(str::trim) == Some(req.body.trim()) && deployed.parameters == req.parameters && tags_cover(&deployed.tags, &req.tags)
}

fn tags_cover(have: &BTreeMap<String, String>, want: &BTreeMap<String, String>) -> bool {
    want.iter().all(|(k, v)| have.get(k) == Some(v))
}

/// The failed resources of an operation and why, oldest first (eksctl's most useful output).
/// `events` are newest first; only those after the operation's start marker count.
pub fn failure_reasons(events_newest_first: &[StackEvent], stack_name: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in events_newest_first {
        let is_stack = e.resource_type == "AWS::CloudFormation::Stack" && e.logical_id == stack_name;
        if is_stack && e.reason.as_deref() == Some("User Initiated") {
            break; // the start of the latest operation
        }
        if !e.status.ends_with("_FAILED") {
            continue;
        }
        let reason = e.reason.clone().unwrap_or_default();
        if reason.contains("Resource creation cancelled") || reason.contains("Resource update cancelled") {
            continue; // a consequence, not a cause
        }
        let what = if is_stack { format!("stack {}", e.logical_id) } else { format!("{} ({})", e.logical_id, e.resource_type) };
        out.push(format!("{what}: {} {reason}", e.status).trim_end().to_string());
    }
    out.reverse();
    out.dedup();
    out
}

/// A change set that failed only because it holds nothing to do (CloudFormation reports "no
/// change" as a FAILED change set); it is deleted and the stack counts as unchanged.
pub fn change_set_is_empty(reason: &str) -> bool {
    reason.contains("didn't contain changes") || reason.contains("No updates are to be performed")
}

/// Before a delete: an operation under way (other than a delete, or a change set under review)
/// must settle first, or DeleteStack is refused.
pub fn delete_waits_first(status: &str) -> bool {
    status.ends_with("_IN_PROGRESS") && status != "DELETE_IN_PROGRESS" && status != "REVIEW_IN_PROGRESS"
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteOutcome {
    Deleted,
    Failed(Vec<String>),
}

/// A resource another stack waits for (early start): created, or updated (even mid-update).
pub fn is_resource_done(status: &str) -> bool {
    matches!(status, "CREATE_COMPLETE" | "UPDATE_COMPLETE" | "UPDATE_IN_PROGRESS" | "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS")
}

pub fn format_event(e: &StackEvent) -> String {
    let reason = e.reason.as_deref().filter(|r| !r.is_empty()).map(|r| format!(": {r}")).unwrap_or_default();
    format!("{} {} {}{reason}", e.status, e.resource_type, e.logical_id)
}

/// "2 to add, 1 to modify (1 replaced), 0 to remove".
pub fn summarize(changes: &[Change]) -> String {
    let count = |a: &str| changes.iter().filter(|c| c.action == a).count();
    let replaced = changes.iter().filter(|c| c.replacement.as_deref() == Some("True")).count();
    format!("{} to add, {} to modify ({replaced} replaced), {} to remove", count("Add"), count("Modify"), count("Remove"))
}

#[cfg(test)]
#[path = "stacks_tests.rs"]
mod tests;
