//! Commit our own admin's changes to Panorama, then push to the device group and/or the
//! template stack, and check every firewall's result: a push that failed anywhere is a failure.

use std::time::Duration;

use super::apply::{LockWait, with_lock_wait};
use super::client::{PanoramaClient, PanosError};
use super::jobs::{self, Job};
use super::xml::Element;

#[derive(Debug, Clone)]
pub struct Outcome {
    /// `None` when Panorama had nothing of ours to commit.
    pub commit: Option<Job>,
    pub pushes: Vec<Job>,
}

#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    #[error(transparent)]
    Api(#[from] PanosError),
    #[error("commit job {job} failed: {}", failures.join("; "))]
    CommitFailed { job: u64, failures: Vec<String> },
    #[error("push to {target} did not succeed on every firewall:\n  {}", failures.join("\n  "))]
    PushFailed { target: String, job: u64, failures: Vec<String> },
}

/// `<commit><partial><admin><member>USER</member></admin></partial></commit>`: only `admin`'s
/// changes go to the running config; another administrator's pending work stays pending.
pub async fn commit_partial(
    client: &PanoramaClient,
    admin: &str,
    description: &str,
    wait: LockWait,
    timeout: Duration,
) -> Result<Option<Job>, CommitError> {
    let cmd = Element::new("commit")
        .leaf("description", description)
        .child(Element::new("partial").child(Element::new("admin").leaf("member", admin)));
    let id = with_lock_wait(wait, "committing", || client.commit(&cmd, None)).await?;
    let Some(id) = id else { return Ok(None) };
    let job = jobs::wait(client, id, timeout, |j| tracing::debug!(job = j.id, progress = j.progress, "commit")).await?;
    if !job.ok() {
        return Err(CommitError::CommitFailed { job: id, failures: job.failures() });
    }
    Ok(Some(job))
}

pub enum PushTarget<'a> {
    DeviceGroup(&'a str),
    TemplateStack(&'a str),
}

impl PushTarget<'_> {
    fn describe(&self) -> String {
        match self {
            PushTarget::DeviceGroup(n) => format!("device group {n}"),
            PushTarget::TemplateStack(n) => format!("template stack {n}"),
        }
    }

    fn command(&self, description: &str) -> Element {
        let inner = match self {
            PushTarget::DeviceGroup(dg) => Element::new("shared-policy")
                .child(Element::new("device-group").child(Element::new("entry").attr("name", *dg)))
                .leaf("description", description)
                .leaf("include-template", "no")
                .leaf("force-template-values", "no"),
            PushTarget::TemplateStack(ts) => {
                Element::new("template-stack").leaf("name", *ts).leaf("description", description).leaf("force-template-values", "no")
            }
        };
        Element::new("commit-all").child(inner)
    }
}

/// Pushes Panorama's running config to the target's firewalls and verifies each device's result.
pub async fn push(
    client: &PanoramaClient,
    target: PushTarget<'_>,
    description: &str,
    wait: LockWait,
    timeout: Duration,
) -> Result<Job, CommitError> {
    let cmd = target.command(description);
    let id = with_lock_wait(wait, "pushing", || client.commit(&cmd, Some("all"))).await?;
    let Some(id) = id else {
        return Err(CommitError::PushFailed { target: target.describe(), job: 0, failures: vec!["Panorama enqueued no push job".into()] });
    };
    let job = jobs::wait(client, id, timeout, |j| tracing::debug!(job = j.id, progress = j.progress, "push")).await?;
    if !job.ok() {
        return Err(CommitError::PushFailed { target: target.describe(), job: id, failures: job.failures() });
    }
    if job.devices.is_empty() {
        tracing::warn!("push to {} reached no firewall (none connected in it yet)", target.describe());
    }
    Ok(job)
}
