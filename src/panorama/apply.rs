//! Writes a plan's operations, in the plan's order, in as few calls as the Panorama allows:
//! multi-config batches (all-or-nothing per batch) where the version has it (PAN-OS 10+),
//! else bulk `set` of new entries per container and `delete` with `or` predicates; or one call
//! per operation (the baseline the benchmark compares against). Every create and update is an
//! `edit` of the entry (idempotent, so a retried or repeated call converges to the same state).

use std::time::Duration;

use pano_eks_core::{Kind, Object, Operation};

use super::client::{MultiAction, MultiOp, PanoramaClient, PanosError};
use super::codec;
use super::locations::Locations;
use super::xml::Element;
use super::xpath;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// `action=multi-config`: at most `batch` sub-operations per call (and at most
    /// `MAX_REQUEST_BYTES`); consecutive creates of one kind share one bulk `set` sub-operation.
    MultiConfig { batch: usize },
    /// For Panorama before 10.0: bulk `set` per container, `edit` per update, `delete` with `or`.
    Bulk { batch: usize },
    /// One `edit`/`delete` call per operation.
    OnePerCall,
}

impl WriteMode {
    /// multi-config arrived in PAN-OS 10.0 (and is on by default from 10.1).
    pub fn for_version(sw_version: &str, batch: usize) -> WriteMode {
        let major: u32 = sw_version.split('.').next().and_then(|m| m.parse().ok()).unwrap_or(0);
        if major >= 10 { WriteMode::MultiConfig { batch } } else { WriteMode::Bulk { batch } }
    }
}

/// How long to wait for another admin's config lock or a running commit before giving up.
#[derive(Debug, Clone, Copy)]
pub struct LockWait {
    pub bound: Duration,
}

impl Default for LockWait {
    fn default() -> Self {
        LockWait { bound: Duration::from_secs(120) }
    }
}

/// Runs `f`, waiting with backoff while Panorama reports a lock held by someone else or a commit
/// in progress, up to `wait.bound`; then fails naming what blocked. Never touches the lock.
pub async fn with_lock_wait<T, F, Fut>(wait: LockWait, what: &str, mut f: F) -> Result<T, PanosError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, PanosError>>,
{
    let start = tokio::time::Instant::now();
    let mut pause = Duration::from_millis(250);
    loop {
        match f().await {
            Err(e @ (PanosError::Locked(_) | PanosError::CommitInProgress(_))) => {
                let left = wait.bound.saturating_sub(start.elapsed());
                if left.is_zero() {
                    return Err(PanosError::Locked(format!(
                        "{what}: gave up after {:.1}s: {e} (pano-eks never removes another admin's lock)",
                        start.elapsed().as_secs_f64()
                    )));
                }
                tracing::info!(error = %e, "{what}: waiting for Panorama");
                tokio::time::sleep(pause.min(left)).await;
                pause = (pause * 2).min(Duration::from_secs(10));
            }
            other => return other,
        }
    }
}

/// Applies `ops` in order. Returns the number of write calls made.
pub async fn apply(
    client: &PanoramaClient,
    locs: &Locations,
    ops: &[Operation],
    mode: WriteMode,
    wait: LockWait,
) -> Result<usize, PanosError> {
    let mut calls = 0;
    match mode {
        WriteMode::MultiConfig { batch } => {
            for call in multi_config_calls(locs, ops, batch.max(1)) {
                let chunk = &ops[call.ops.clone()];
                with_lock_wait(wait, "writing to Panorama", || client.multi_config(&call.sub)).await.map_err(|e| in_batch(e, chunk))?;
                calls += 1;
            }
        }
        WriteMode::OnePerCall => {
            for op in ops {
                let m = multi_op(locs, op);
                with_lock_wait(wait, "writing to Panorama", || async {
                    match &m.element {
                        Some(el) => client.edit(&m.xpath, el).await,
                        None => client.delete(&m.xpath).await,
                    }
                })
                .await
                .map_err(|e| in_batch(e, std::slice::from_ref(op)))?;
                calls += 1;
            }
        }
        WriteMode::Bulk { batch } => {
            // Consecutive operations of one kind and verb form a group; order between groups is kept.
            let mut i = 0;
            while i < ops.len() {
                let j = ops[i..].iter().position(|o| !same_group(&ops[i], o)).map_or(ops.len(), |p| i + p);
                for chunk in ops[i..j].chunks(batch.max(1)) {
                    calls += bulk(client, locs, chunk, wait).await?;
                }
                i = j;
            }
        }
    }
    Ok(calls)
}

/// Upper bound of one request's body: PAN-OS publishes no limit, so stay well below sizes seen to work.
pub const MAX_REQUEST_BYTES: usize = 2 * 1024 * 1024;
/// Entries per bulk `set` sub-operation.
const ENTRIES_PER_SET: usize = 1000;

/// One multi-config call: its sub-operations and the plan operations they carry.
struct Call {
    sub: Vec<MultiOp>,
    ops: std::ops::Range<usize>,
}

/// Packs the plan into multi-config calls, keeping the plan's order: runs of creates of one kind
/// become bulk `set`s on the container's parent; updates are `edit`s; deletes are `delete`s.
fn multi_config_calls(locs: &Locations, ops: &[Operation], batch: usize) -> Vec<Call> {
    let mut calls: Vec<Call> = Vec::new();
    let mut cur = Call { sub: Vec::new(), ops: 0..0 };
    let mut bytes = 0;
    let mut i = 0;
    while i < ops.len() {
        // The next sub-operation: a run of creates of one kind, or a single update/delete.
        let (sub, end) = match &ops[i] {
            Operation::Create { object } => {
                let kind = object.kind();
                let (parent, tag) = locs.container_parent(kind);
                let mut container = Element::new(tag);
                let mut j = i;
                let mut size = 0;
                while j < ops.len() && j - i < ENTRIES_PER_SET && size < MAX_REQUEST_BYTES / 4 {
                    let Operation::Create { object } = &ops[j] else { break };
                    if object.kind() != kind {
                        break;
                    }
                    let e = codec::encode(object);
                    size += e.to_xml().len();
                    container = container.child(e);
                    j += 1;
                }
                (MultiOp { action: MultiAction::Set, xpath: parent, element: Some(container) }, j)
            }
            op => (multi_op(locs, op), i + 1),
        };
        let sub_bytes = sub.xpath.len() + sub.element.as_ref().map_or(0, |e| e.to_xml().len()) + 64;
        if !cur.sub.is_empty() && (cur.sub.len() >= batch || bytes + sub_bytes > MAX_REQUEST_BYTES) {
            calls.push(std::mem::replace(&mut cur, Call { sub: Vec::new(), ops: i..i }));
            bytes = 0;
        }
        if cur.sub.is_empty() {
            cur.ops = i..i;
        }
        cur.sub.push(sub);
        cur.ops.end = end;
        bytes += sub_bytes;
        i = end;
    }
    if !cur.sub.is_empty() {
        calls.push(cur);
    }
    calls
}

fn same_group(a: &Operation, b: &Operation) -> bool {
    let verb = |o: &Operation| match o {
        Operation::Create { .. } => 0,
        Operation::Update { .. } => 1,
        Operation::Delete { .. } => 2,
    };
    a.kind() == b.kind() && verb(a) == verb(b)
}

async fn bulk(client: &PanoramaClient, locs: &Locations, chunk: &[Operation], wait: LockWait) -> Result<usize, PanosError> {
    let kind = chunk[0].kind();
    match &chunk[0] {
        Operation::Create { .. } => {
            // One `set` on the container with every new entry (pan-os-python's create_similar).
            let body: String = chunk.iter().filter_map(object).map(|o| codec::encode(o).to_xml()).collect();
            let xp = locs.container(kind);
            with_lock_wait(wait, "writing to Panorama", || client.set(&xp, &body)).await.map_err(|e| in_batch(e, chunk))?;
            Ok(1)
        }
        Operation::Update { .. } => {
            // `set` would merge and keep stale children, so updates replace each entry.
            for op in chunk {
                let m = multi_op(locs, op);
                let el = m.element.clone().expect("update has an element");
                with_lock_wait(wait, "writing to Panorama", || client.edit(&m.xpath, &el))
                    .await
                    .map_err(|e| in_batch(e, std::slice::from_ref(op)))?;
            }
            Ok(chunk.len())
        }
        Operation::Delete { .. } => {
            // `entry[@name='a' or @name='b' …]`, chunked well under PAN-OS's request size.
            let mut calls = 0;
            let mut names: Vec<&str> = Vec::new();
            let mut size = 0;
            for op in chunk {
                names.push(op.name());
                size += op.name().len() + 12;
                if size > 20_000 {
                    delete_many(client, locs, kind, &names, wait).await?;
                    calls += 1;
                    names.clear();
                    size = 0;
                }
            }
            if !names.is_empty() {
                delete_many(client, locs, kind, &names, wait).await?;
                calls += 1;
            }
            Ok(calls)
        }
    }
}

async fn delete_many(client: &PanoramaClient, locs: &Locations, kind: Kind, names: &[&str], wait: LockWait) -> Result<(), PanosError> {
    let xp = format!("{}/{}", locs.container(kind), xpath::entries_or(names));
    with_lock_wait(wait, "writing to Panorama", || client.delete(&xp)).await
}

fn object(op: &Operation) -> Option<&Object> {
    match op {
        Operation::Create { object } | Operation::Update { object } => Some(object),
        Operation::Delete { .. } => None,
    }
}

fn multi_op(locs: &Locations, op: &Operation) -> MultiOp {
    let xpath = locs.entry(op.kind(), op.name());
    match object(op) {
        Some(o) => MultiOp { action: MultiAction::Edit, xpath, element: Some(codec::encode(o)) },
        None => MultiOp { action: MultiAction::Delete, xpath, element: None::<Element> },
    }
}

/// Names the batch an API error happened in, so the user knows which objects were refused.
fn in_batch(e: PanosError, chunk: &[Operation]) -> PanosError {
    match e {
        PanosError::Api { code, msg } => {
            let first = chunk.first().map(|o| format!("{:?} {}", o.kind(), o.name())).unwrap_or_default();
            let what = if chunk.len() == 1 { first } else { format!("{} operations starting with {first}", chunk.len()) };
            PanosError::Api { code, msg: format!("{msg} (while writing {what})") }
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use pano_eks_core::{Address, AddressValue, Object, Tag};

    fn locs() -> Locations {
        Locations { device_group: "dg".into(), template: "t".into(), virtual_router: "vr-default".into() }
    }

    fn addr(i: usize) -> Operation {
        Operation::Create {
            object: Object::Address(Address {
                name: format!("a{i}"),
                value: AddressValue::Fqdn(format!("h{i}.example")),
                description: None,
                tags: vec![],
                unmodelled: vec![],
            }),
        }
    }

    #[test]
    fn runs_of_creates_pack_into_bulk_sets_in_plan_order() {
        let tag = Operation::Create { object: Object::Tag(Tag { name: "t".into(), color: None, comments: None, unmodelled: vec![] }) };
        let mut ops = vec![tag];
        ops.extend((0..2500).map(addr));
        ops.push(Operation::Delete { kind: Kind::Address, name: "gone".into() });
        let calls = multi_config_calls(&locs(), &ops, 500);
        assert_eq!(calls.len(), 1);
        let sub = &calls[0].sub;
        // tag set, 3 address sets (1000, 1000, 500), then the delete.
        let actions: Vec<MultiAction> = sub.iter().map(|s| s.action).collect();
        assert_eq!(actions, [MultiAction::Set, MultiAction::Set, MultiAction::Set, MultiAction::Set, MultiAction::Delete]);
        assert!(sub[1].xpath.ends_with("device-group/entry[@name='dg']"), "{}", sub[1].xpath);
        assert_eq!(sub[1].element.as_ref().unwrap().name, "address");
        assert_eq!(sub[1].element.as_ref().unwrap().elements().count(), 1000);
        assert_eq!(calls[0].ops, 0..ops.len());
    }

    #[test]
    fn calls_respect_the_sub_operation_and_byte_limits() {
        let ops: Vec<Operation> = (0..7).map(|i| Operation::Delete { kind: Kind::Address, name: format!("a{i}") }).collect();
        let calls = multi_config_calls(&locs(), &ops, 3);
        assert_eq!(calls.iter().map(|c| c.sub.len()).collect::<Vec<_>>(), [3, 3, 1]);
        assert_eq!(calls.iter().map(|c| c.ops.clone()).collect::<Vec<_>>(), [0..3, 3..6, 6..7]);
        let big: Vec<Operation> = (0..40_000).map(addr).collect();
        let calls = multi_config_calls(&locs(), &big, 500);
        assert!(calls.len() > 1);
        for c in &calls {
            let bytes: usize = c.sub.iter().map(|s| s.element.as_ref().unwrap().to_xml().len()).sum();
            assert!(bytes <= MAX_REQUEST_BYTES, "{bytes}");
        }
        assert_eq!(calls.last().unwrap().ops.end, 40_000);
    }

    #[test]
    fn multi_config_from_pan_os_10() {
        assert_eq!(WriteMode::for_version("10.1.5-h2", 500), WriteMode::MultiConfig { batch: 500 });
        assert_eq!(WriteMode::for_version("11.2.0", 7), WriteMode::MultiConfig { batch: 7 });
        assert_eq!(WriteMode::for_version("9.0.3", 500), WriteMode::Bulk { batch: 500 });
        assert_eq!(WriteMode::for_version("garbage", 500), WriteMode::Bulk { batch: 500 });
    }
}
