//! Commit our own admin's changes to Panorama, then push to the device group and/or the
//! template stack, and check every firewall's result: a push that failed anywhere is a failure.

use std::time::Duration;

use pano_eks_core::panorama::locks::{CommitRefusal, judge_commit_refusal};

use super::apply::{Blocked, LockWait, wait_out};
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
    PushFailed {
        target: String,
        job: u64,
        failures: Vec<String>,
        /// What /metrics counts: the target as `device-group/NAME` or `template-stack/NAME` and
        /// (serial, device name, result) per firewall the job reported.
        metric_target: String,
        devices: Vec<(String, String, String)>,
    },
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
    let id = with_commit_lock_wait(client, admin, wait, "committing", || client.commit(&cmd, None)).await?;
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
    /// `device-group/NAME` or `template-stack/NAME`: the push's `target` label on /metrics.
    pub fn metric_target(&self) -> String {
        match self {
            PushTarget::DeviceGroup(n) => format!("device-group/{n}"),
            PushTarget::TemplateStack(n) => format!("template-stack/{n}"),
        }
    }

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
/// `admin` is who we are (a commit lock of our own does not block us).
pub async fn push(
    client: &PanoramaClient,
    admin: &str,
    target: PushTarget<'_>,
    description: &str,
    wait: LockWait,
    timeout: Duration,
) -> Result<Job, CommitError> {
    let cmd = target.command(description);
    let id = with_commit_lock_wait(client, admin, wait, "pushing", || client.commit(&cmd, Some("all"))).await?;
    let Some(id) = id else {
        return Err(CommitError::PushFailed {
            target: target.describe(),
            job: 0,
            failures: vec!["Panorama enqueued no push job".into()],
            metric_target: target.metric_target(),
            devices: Vec::new(),
        });
    };
    let job = jobs::wait(client, id, timeout, |j| tracing::debug!(job = j.id, progress = j.progress, "push")).await?;
    if !job.ok() {
        return Err(CommitError::PushFailed {
            target: target.describe(),
            job: id,
            failures: job.failures(),
            metric_target: target.metric_target(),
            devices: job.devices.iter().map(|d| (d.serial.clone(), d.name.clone(), d.result.clone())).collect(),
        });
    }
    if job.devices.is_empty() {
        tracing::warn!("push to {} reached no firewall (none connected in it yet)", target.describe());
    }
    Ok(job)
}

/// Runs a commit or push; when Panorama refuses it, asks who holds which lock (`show
/// commit-locks`, then `show config-locks`) and lets the planning core decide
/// ([`judge_commit_refusal`]): wait, bounded by `wait`, for another admin's lock or a running
/// commit, else fail with Panorama's own message. Never matches lock texts; never removes a lock.
async fn with_commit_lock_wait<T, F, Fut>(client: &PanoramaClient, admin: &str, wait: LockWait, what: &str, f: F) -> Result<T, PanosError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, PanosError>>,
{
    let judge = move |e: PanosError| async move {
        if !matches!(e, PanosError::Locked(_) | PanosError::CommitInProgress(_) | PanosError::Api { .. }) {
            return Err(e);
        }
        let in_progress = matches!(e, PanosError::CommitInProgress(_));
        let commit_owners = lock_owners(client, "commit-locks").await?;
        let config_owners = if commit_owners.iter().any(|o| o != admin) { Vec::new() } else { lock_owners(client, "config-locks").await? };
        let by = match judge_commit_refusal(&commit_owners, &config_owners, admin, in_progress) {
            CommitRefusal::Fail { own_lock: false } => return Err(e),
            CommitRefusal::Fail { own_lock: true } => {
                return Err(PanosError::Locked(format!(
                    "{what}: {e} (administrator {admin} itself holds a commit lock, which pano-eks never takes: another \
                     process using the same administrator is the usual cause; pano-eks does not remove it)"
                )));
            }
            CommitRefusal::WaitForLock { lock, owners } => format!("the {lock} held by {}", owners.join(", ")),
            CommitRefusal::WaitForCommit => "the commit in progress".to_owned(),
        };
        Ok(Blocked { error: e, by })
    };
    wait_out(wait, what, f, judge, |secs, b| {
        format!(
            "{what}: gave up after {secs:.1}s waiting for {} (Panorama: {}); pano-eks never removes another admin's lock",
            b.by, b.error
        )
    })
    .await
}

/// The owners Panorama lists for `<show><commit-locks/></show>` or `<show><config-locks/></show>`
/// (`result/<list>/entry[@name=owner]`).
async fn lock_owners(client: &PanoramaClient, list: &str) -> Result<Vec<String>, PanosError> {
    let r = client.op(&Element::new("show").child(Element::new(list))).await?;
    Ok(parse_lock_owners(&r, list))
}

fn parse_lock_owners(result: &Element, list: &str) -> Vec<String> {
    let entries = result.find(list).unwrap_or(result);
    entries.elements().filter(|e| e.name == "entry").filter_map(|e| e.get_attr("name").map(str::to_string)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::panorama::xml;

    #[test]
    fn lock_owners_are_read_from_both_lists() {
        let r = xml::parse(
            "<result><commit-locks><entry name='alice'><name>shared</name><type>commit</type><loggedin>yes</loggedin><comment>change window</comment></entry>\
             <entry name='bob'><name>shared</name></entry></commit-locks></result>",
        )
        .unwrap();
        assert_eq!(parse_lock_owners(&r, "commit-locks"), vec!["alice".to_string(), "bob".to_string()]);
        let r = xml::parse("<result><config-locks/></result>").unwrap();
        assert!(parse_lock_owners(&r, "config-locks").is_empty());
    }
}
