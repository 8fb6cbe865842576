//! Panorama prerequisites over the XML API: reads the template, template stack and device group,
//! lets the planning core ([`pano_eks_core::prepare`]) decide, writes its writes (one
//! multi-config call on PAN-OS 10+), records what was created, and commits our admin's changes
//! (one partial commit). [`unprepare`] is the reverse for `down`, driven by that record only.

use std::path::{Path, PathBuf};
use std::time::Duration;

use pano_eks_core::prepare::{self, Item, Node, PreparePlan, PrepareSettings, Record, Removal, Seg, UnpreparePlan, Write};

use super::apply::{self, LockWait, OnRefusal, WriteMode};
use super::client::{MultiAction, MultiOp, PanoramaClient, PanosError};
use super::commit::{self, CommitError};
use super::xml::{Element, Node as XNode};
use super::xpath;
use crate::config::Config;

const DEVICES: &str = "/config/devices/entry[@name='localhost.localdomain']";

/// The record file: `.pano-eks/<name>/panorama-prepare.json` beside the config.
pub fn record_path(config_dir: &Path, deployment: &str) -> PathBuf {
    config_dir.join(".pano-eks").join(deployment).join("panorama-prepare.json")
}

/// The prerequisites the config asks for.
pub fn settings(cfg: &Config, allow_all: bool, adopt: bool) -> PrepareSettings {
    let p = &cfg.panorama;
    PrepareSettings {
        deployment: cfg.name.clone(),
        template: p.template.clone(),
        template_stack: p.template_stack.clone(),
        device_group: p.device_group.clone(),
        virtual_router: p.virtual_router.clone(),
        untrust_interface: p.untrust_interface.clone(),
        trust_interface: p.trust_interface.clone(),
        untrust_zone: p.untrust_zone.clone(),
        trust_zone: p.trust_zone.clone(),
        dns_primary: prepare::AWS_DNS.to_string(),
        untrust_subnets: cfg.network.untrust_subnets.iter().map(ToString::to_string).collect(),
        allow_all,
        adopt,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error(transparent)]
    Api(#[from] PanosError),
    #[error(transparent)]
    Commit(#[from] CommitError),
    #[error("{0}")]
    Record(String),
}

/// Who writes, and how patiently.
#[derive(Debug, Clone)]
pub struct Writer<'a> {
    pub client: &'a PanoramaClient,
    /// Our administrator: only this admin's changes are committed.
    pub admin: &'a str,
    pub sw_version: &'a str,
    pub lock_wait: LockWait,
    pub job_timeout: Duration,
}

/// What `prepare` did.
#[derive(Debug)]
pub struct PrepareReport {
    pub plan: PreparePlan,
    pub write_calls: usize,
    pub commit_job: Option<u64>,
    pub record: PathBuf,
}

/// What `unprepare` did.
#[derive(Debug, Default)]
pub struct UnprepareReport {
    pub plan: UnpreparePlan,
    pub commit_job: Option<u64>,
}

fn xpath_of(path: &[Seg]) -> String {
    let mut s = DEVICES.to_string();
    for seg in path {
        s.push('/');
        match seg {
            Seg::Tag(t) => s.push_str(t),
            Seg::Entry(n) => s.push_str(&xpath::entry(n)),
            Seg::Member(m) => s.push_str(&format!("member[text()={}]", xpath::literal(m))),
            Seg::Value(_) => unreachable!("values are never part of a location"),
        }
    }
    s
}

fn to_element(n: &Node) -> Element {
    let mut e = Element::new(n.tag.clone());
    if let Some(name) = &n.name {
        e = e.attr("name", name.clone());
    }
    if !n.text.is_empty() {
        e = e.text(n.text.clone());
    }
    for c in &n.children {
        e = e.child(to_element(c));
    }
    e
}

/// PAN-OS element → core node: only the `name` attribute is kept (`admin`, `dirtyId`, `time`,
/// `uuid` say nothing about the config).
fn from_element(e: &Element) -> Node {
    let mut n = Node::new(&e.name);
    n.name = e.get_attr("name").map(str::to_string);
    for c in &e.children {
        match c {
            XNode::Element(x) => n.children.push(from_element(x)),
            XNode::Text(t) => n.text.push_str(t),
        }
    }
    if !n.children.is_empty() {
        n.text = n.text.trim().to_string();
    }
    n
}

/// Reads the named templates, stacks and device groups (candidate with `running = false`) into
/// one tree rooted at the Panorama device.
async fn observe(
    client: &PanoramaClient,
    templates: &[String],
    stacks: &[String],
    dgs: &[String],
    running: bool,
) -> Result<Node, PanosError> {
    let mut root = Node::new("devices");
    for (container, names) in [("template", templates), ("template-stack", stacks), ("device-group", dgs)] {
        let mut list = Node::new(container);
        for name in names {
            let xp = format!("{DEVICES}/{container}/{}", xpath::entry(name));
            let got = if running { client.show(&xp).await? } else { client.get(&xp).await? };
            if let Some(result) = got {
                list.children.extend(result.elements().filter(|c| c.name == "entry").map(from_element));
            }
        }
        root.children.push(list);
    }
    Ok(root)
}

async fn write(w: &Writer<'_>, writes: &[Write]) -> Result<usize, PanosError> {
    if writes.is_empty() {
        return Ok(0);
    }
    let ops: Vec<MultiOp> = writes
        .iter()
        .map(|wr| match wr {
            Write::Set { parent, element } => {
                MultiOp { action: MultiAction::Set, xpath: xpath_of(parent), element: Some(to_element(element)) }
            }
            Write::Edit { path, element } => {
                MultiOp { action: MultiAction::Edit, xpath: xpath_of(path), element: Some(to_element(element)) }
            }
            Write::Delete { path } => MultiOp { action: MultiAction::Delete, xpath: xpath_of(path), element: None },
        })
        .collect();
    // All or nothing on multi-config (a refused write leaves Panorama as it was); one write per
    // call, in order, where Panorama has no multi-config. Each write is on its node's own xpath
    // (pano_eks_core::prepare::Write).
    let mode = WriteMode::for_version(w.sw_version, usize::MAX);
    let runs: Vec<(std::ops::Range<usize>, usize)> = (0..ops.len()).map(|i| (i..i + 1, 1)).collect();
    let applied = apply::write(w.client, &ops, &runs, mode, w.lock_wait, OnRefusal::Fail).await?;
    Ok(applied.calls)
}

/// Our admin's pending changes, committed (partial commit); `None` when there was nothing.
async fn commit(w: &Writer<'_>, description: &str) -> Result<Option<u64>, CommitError> {
    Ok(commit::commit_partial(w.client, w.admin, description, w.lock_wait, w.job_timeout).await?.map(|j| j.id))
}

pub fn read_record(path: &Path) -> Result<Option<Record>, PrepareError> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| PrepareError::Record(format!("{}: not a prepare record: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(PrepareError::Record(format!("cannot read {}: {e}", path.display()))),
    }
}

fn write_record(path: &Path, record: &Record) -> Result<(), PrepareError> {
    let fail = |e: std::io::Error| PrepareError::Record(format!("cannot write {}: {e}", path.display()));
    if record.created.is_empty() {
        return match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(fail(e)),
            _ => Ok(()),
        };
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_string_pretty(record).expect("serializes") + "\n").map_err(fail)?;
    std::fs::rename(&tmp, path).map_err(fail)
}

/// Plans only (`--dry-run`): what is missing, what exists, what differs.
pub async fn plan(client: &PanoramaClient, s: &PrepareSettings) -> Result<PreparePlan, PanosError> {
    let devices = observe(
        client,
        std::slice::from_ref(&s.template),
        std::slice::from_ref(&s.template_stack),
        std::slice::from_ref(&s.device_group),
        false,
    )
    .await?;
    Ok(prepare::plan_prepare(s, &devices))
}

/// Creates what is missing (and, with `adopt`, changes what differs), records what it created in
/// `record`, and commits our admin's changes once.
pub async fn prepare(w: &Writer<'_>, s: &PrepareSettings, record: &Path) -> Result<PrepareReport, PrepareError> {
    let plan = plan(w.client, s).await?;
    let write_calls = write(w, &plan.writes).await?;
    // Recorded before the commit: what we wrote is in the candidate now, and `down` must be able
    // to find it even if the commit (or this process) fails.
    let created = plan.created();
    if !created.is_empty() {
        let previous = read_record(record)?.unwrap_or_default();
        write_record(record, &previous.merged(&s.deployment, &created))?;
    }
    // Commit when we wrote, or when an earlier run wrote and did not get to commit.
    let names = (std::slice::from_ref(&s.template), std::slice::from_ref(&s.template_stack), std::slice::from_ref(&s.device_group));
    let pending = write_calls > 0
        || observe(w.client, names.0, names.1, names.2, false).await? != observe(w.client, names.0, names.1, names.2, true).await?;
    let commit_job = if pending { commit(w, &format!("pano-eks {}: Panorama prerequisites", s.deployment)).await? } else { None };
    Ok(PrepareReport { plan, write_calls, commit_job, record: record.to_path_buf() })
}

/// Removes what the record says `prepare` created and nothing else (see
/// [`prepare::plan_unprepare`]), in one write and one partial commit. No record: nothing to do.
/// The record keeps only what was kept (so a later `down` tries again).
pub async fn unprepare(w: &Writer<'_>, record_file: &Path) -> Result<UnprepareReport, PrepareError> {
    let Some(record) = read_record(record_file)? else { return Ok(UnprepareReport::default()) };
    let (mut templates, mut stacks, mut dgs) = (Vec::new(), Vec::new(), Vec::new());
    for item in &record.created {
        let (list, name) = match item {
            Item::Template { name, .. } => (&mut templates, name),
            Item::TemplateStack { name, .. } | Item::StackMember { stack: name, .. } => (&mut stacks, name),
            Item::DeviceGroup { name, .. } | Item::AllowAll { device_group: name, .. } => (&mut dgs, name),
            Item::DnsPrimary { template, .. }
            | Item::Interface { template, .. }
            | Item::Zone { template, .. }
            | Item::ZoneMember { template, .. }
            | Item::VirtualRouter { template, .. }
            | Item::RouterInterface { template, .. }
            | Item::ImportInterface { template, .. }
            | Item::ImportRouter { template, .. }
            | Item::ProbeProfile { template, .. }
            | Item::ProbeProfileOnInterface { template, .. } => (&mut templates, template),
        };
        if !list.contains(name) {
            list.push(name.clone());
        }
    }
    let devices = observe(w.client, &templates, &stacks, &dgs, false).await?;
    let plan = prepare::plan_unprepare(&record, &devices);
    write(w, &plan.writes).await?;
    let commit_job = if plan.writes.is_empty() {
        None
    } else {
        commit(w, &format!("pano-eks {}: remove Panorama prerequisites", record.deployment)).await?
    };
    let kept: Vec<Item> = plan.items.iter().filter(|(_, r)| matches!(r, Removal::Kept(_))).map(|(i, _)| i.clone()).collect();
    write_record(record_file, &Record { version: 1, deployment: record.deployment.clone(), created: kept })?;
    Ok(UnprepareReport { plan, commit_job })
}

/// Report lines for a prepare plan (also `--dry-run`).
pub fn describe(plan: &PreparePlan) -> Vec<String> {
    plan.checks
        .iter()
        .map(|c| match &c.status {
            prepare::Status::Create => format!("create   {}", c.item.describe()),
            prepare::Status::Exists => format!("exists   {}", c.item.describe()),
            prepare::Status::Differs(r) => format!("DIFFERS  {}: {r}", c.item.describe()),
            prepare::Status::Adopted(r) => format!("adopt    {}: was: {r}", c.item.describe()),
        })
        .collect()
}

/// Report lines for an unprepare plan.
pub fn describe_removal(plan: &UnpreparePlan) -> Vec<String> {
    plan.items
        .iter()
        .map(|(i, r)| match r {
            Removal::Delete => format!("removed  {}", i.describe()),
            Removal::Gone => format!("gone     {} (already removed)", i.describe()),
            Removal::Kept(why) => format!("KEPT     {}: {why}", i.describe()),
        })
        .collect()
}

/// The vm-auth-keys Panorama lists (`request bootstrap vm-auth-key show`) as (key, expiry-time).
pub async fn vm_auth_keys(client: &PanoramaClient) -> Result<Vec<(String, String)>, PanosError> {
    let cmd = Element::new("request").child(Element::new("bootstrap").child(Element::new("vm-auth-key").child(Element::new("show"))));
    let r = client.op(&cmd).await?;
    let list = r.find("bootstrap-vm-auth-keys").unwrap_or(&r);
    Ok(list
        .elements()
        .filter(|e| e.name == "entry")
        .filter_map(|e| Some((e.text_at("vm-auth-key")?, e.text_at("expiry-time").unwrap_or_default())))
        .collect())
}

/// Panorama's own clock reading, for comparing with `expiry-time`s it prints (facts §11.5):
/// `<time>` of `show system info`, else the text of `show clock`. Read as printed, zone and all;
/// [`prepare::parse_panorama_clock`] decides what it means.
pub async fn panorama_clock(client: &PanoramaClient) -> Result<String, PanosError> {
    let info = client.op(&Element::new("show").child(Element::new("system").child(Element::new("info")))).await?;
    if let Some(t) = info.text_at("system/time").filter(|t| !t.trim().is_empty()) {
        return Ok(t);
    }
    Ok(client.op(&Element::new("show").child(Element::new("clock"))).await?.text_content())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_become_quoted_xpaths() {
        let item = Item::ZoneMember { template: "t'1".into(), zone: "untrust".into(), interface: "ethernet1/1".into() };
        assert_eq!(
            xpath_of(&item.path()),
            "/config/devices/entry[@name='localhost.localdomain']/template/entry[@name=\"t'1\"]/config/devices/entry[@name='localhost.localdomain']/vsys/entry[@name='vsys1']/zone/entry[@name='untrust']/network/layer3/member[text()='ethernet1/1']"
        );
    }

    #[test]
    fn elements_round_trip_without_panos_bookkeeping() {
        let x = super::super::xml::parse("<entry name='a' admin='x' dirtyId='3' uuid='u'><layer3><dhcp-client><enable>yes</enable></dhcp-client></layer3><m><member>b</member></m></entry>").unwrap();
        let n = from_element(&x);
        assert_eq!(
            n,
            Node::entry("a")
                .with(Node::new("layer3").with(Node::new("dhcp-client").with(Node::leaf("enable", "yes"))))
                .with(Node::new("m").with(Node::member("b")))
        );
        assert_eq!(
            to_element(&n).to_xml(),
            "<entry name=\"a\"><layer3><dhcp-client><enable>yes</enable></dhcp-client></layer3><m><member>b</member></m></entry>"
        );
    }
}
