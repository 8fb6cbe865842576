//! Writes a plan's operations, in the plan's order, each on its entry's **full xpath**: a create
//! or update is an `edit` of `…/address/entry[@name='x']` whose element is that `<entry>`, a
//! delete a `delete` of it. Never a write on a container or its parent: on Panorama that takes
//! ownership of the whole node, so our admin-scoped partial commit would sweep in every other
//! admin's pending changes beneath it, or (11.x) leave ours behind (facts §11.1:
//! pan-os-ansible#628, pan-os-python#570, pan-os-codegen#119). terraform-provider-panos v2 writes
//! the same way.
//!
//! Transport follows the Panorama (facts §11.2): multi-config batches packed by sub-operation
//! count and bytes on PAN-OS 10+; one call per operation (≤ 5 in flight, the client's limit)
//! before 10.0, and as the fallback when a Panorama refuses multi-config itself (10.0 until
//! `request multi-config enabled`). Detected from the answer, never assumed from the version.
//!
//! A refused operation blocks nothing else: a refused batch (all-or-nothing, so nothing of it
//! was applied) is split at the sub-operation Panorama names, or in halves when it names none,
//! and re-sent until every refused operation stands alone; the rest is written. Each refusal
//! comes back with PAN-OS's own message for the core to report (`pano_eks_core::panorama::refusals`).

use std::collections::VecDeque;
use std::ops::Range;
use std::time::Duration;

use futures::StreamExt;
use pano_eks_core::{Kind, Operation, Refusal};

use super::client::{MultiAction, MultiOp, PanoramaClient, PanosError};
use super::codec;
use super::locations::Locations;
use super::xml::Element;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// `action=multi-config`: at most `batch` sub-operations and `MAX_REQUEST_BYTES` per call.
    MultiConfig { batch: usize },
    /// One `edit`/`delete` per call, up to [`IN_FLIGHT`] at once within a run of one kind.
    OnePerCall,
}

impl WriteMode {
    /// multi-config from PAN-OS 10.0 (10.0 only once enabled: a refusal is detected and falls
    /// back); PAN-OS 9.x has none.
    pub fn for_version(sw_version: &str, batch: usize) -> WriteMode {
        let major: u32 = sw_version.split('.').next().and_then(|m| m.parse().ok()).unwrap_or(0);
        if major >= 10 { WriteMode::MultiConfig { batch } } else { WriteMode::OnePerCall }
    }
}

/// Calls in flight in one-per-call mode: PAN-OS asks for at most 5 concurrent API calls
/// (facts §8); the client enforces the same bound for everything it sends.
pub const IN_FLIGHT: usize = 5;

/// Upper bound of one request's raw XML: PAN-OS publishes no limit, so stay well below sizes seen
/// to work (the form encoding on the wire adds up to about half again).
pub const MAX_REQUEST_BYTES: usize = 2 * 1024 * 1024;

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
pub async fn with_lock_wait<T, F, Fut>(wait: LockWait, what: &str, f: F) -> Result<T, PanosError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, PanosError>>,
{
    let judge = |e: PanosError| async move {
        match e {
            PanosError::Locked(_) | PanosError::CommitInProgress(_) => Ok(Blocked { error: e, by: "Panorama".to_owned() }),
            other => Err(other),
        }
    };
    wait_out(wait, what, f, judge, |secs, b| {
        format!("{what}: gave up after {secs:.1}s: {} (pano-eks never removes another admin's lock)", b.error)
    })
    .await
}

/// A refusal worth waiting out: Panorama's error and what it waits for (`by`, for the log).
pub(crate) struct Blocked {
    pub error: PanosError,
    pub by: String,
}

/// The bounded wait with backoff behind every lock wait (writes here, commits and pushes in
/// `commit`): runs `f` until it succeeds; `judge` turns each failure into an error that ends the
/// wait or a [`Blocked`] to wait out, with pauses from 250 ms doubling to 10 s, for at most
/// `wait.bound`; then fails with `PanosError::Locked(gave_up(seconds waited, what blocked))`.
pub(crate) async fn wait_out<T, F, Fut, J, JFut>(
    wait: LockWait,
    what: &str,
    mut f: F,
    mut judge: J,
    gave_up: impl FnOnce(f64, Blocked) -> String,
) -> Result<T, PanosError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, PanosError>>,
    J: FnMut(PanosError) -> JFut,
    JFut: std::future::Future<Output = Result<Blocked, PanosError>>,
{
    let start = tokio::time::Instant::now();
    let mut pause = Duration::from_millis(250);
    loop {
        let blocked = match f().await {
            Ok(v) => return Ok(v),
            Err(e) => judge(e).await?,
        };
        let left = wait.bound.saturating_sub(start.elapsed());
        if left.is_zero() {
            return Err(PanosError::Locked(gave_up(start.elapsed().as_secs_f64(), blocked)));
        }
        tracing::info!(error = %blocked.error, "{what}: waiting for {}", blocked.by);
        tokio::time::sleep(pause.min(left)).await;
        pause = (pause * 2).min(Duration::from_secs(10));
    }
}

/// What a write pass did.
#[derive(Debug, Default)]
pub struct Applied {
    /// XML API calls that wrote (refused ones included).
    pub calls: usize,
    /// Operations Panorama refused, by index into the operations given, with its message.
    pub refused: Vec<Refusal>,
    /// Set when Panorama refused multi-config itself and the pass went on one per call: its
    /// answer. The caller should stay in one-per-call mode.
    pub multi_config_unavailable: Option<String>,
}

/// How a refusal is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnRefusal {
    /// Find each refused operation, write the rest, return the refusals (sync).
    Isolate,
    /// Stop at the first refusal and fail (`prepare`: its writes depend on each other).
    Fail,
}

/// Operations whose sub-operations exist at once: each is an `Element` tree of its entry
/// (kilobytes), so the 48,000 entries of a large first converge are rendered a few batches at a
/// time instead of all before the first call (issue 18's memory bound).
const RENDER_CHUNK: usize = 5_000;

/// Applies `ops` in order; refused operations are isolated and returned, never fatal.
pub async fn apply(
    client: &PanoramaClient,
    locs: &Locations,
    ops: &[Operation],
    mode: WriteMode,
    wait: LockWait,
) -> Result<Applied, PanosError> {
    let mut out = Applied::default();
    let mut mode = mode;
    for chunk in chunks(locs, ops, mode) {
        let subs: Vec<MultiOp> = ops[chunk.clone()].iter().map(|op| sub_op(locs, op)).collect();
        let runs = runs(&ops[chunk.clone()]);
        let done = write(client, &subs, &runs, mode, wait, OnRefusal::Isolate).await?;
        out.calls += done.calls;
        out.refused.extend(done.refused.into_iter().map(|r| Refusal { operation: r.operation + chunk.start, ..r }));
        if let Some(msg) = done.multi_config_unavailable {
            // Detected once: the rest goes one per call without asking again.
            mode = WriteMode::OnePerCall;
            out.multi_config_unavailable = Some(msg);
        }
    }
    Ok(out)
}

/// Where `apply` cuts `ops` for rendering: at the boundaries of the multi-config batches one pass
/// over all of them would make (each entry's size measured and dropped), so cutting never adds a
/// call; one per call, every `RENDER_CHUNK` operations.
fn chunks(locs: &Locations, ops: &[Operation], mode: WriteMode) -> Vec<Range<usize>> {
    if ops.len() <= RENDER_CHUNK {
        return if ops.is_empty() { vec![] } else { vec![0..ops.len()] };
    }
    let batches = match mode {
        WriteMode::MultiConfig { batch } => pack_sizes(ops.iter().map(|op| sub_bytes(&sub_op(locs, op))), batch.max(1)),
        WriteMode::OnePerCall => (0..ops.len()).step_by(RENDER_CHUNK).map(|s| s..(s + RENDER_CHUNK).min(ops.len())).collect(),
    };
    let mut out: Vec<Range<usize>> = Vec::new();
    for b in batches {
        match out.last_mut() {
            Some(last) if last.len() + b.len() <= RENDER_CHUNK => last.end = b.end,
            _ => out.push(b),
        }
    }
    out
}

/// The sub-operation of one plan operation: the full-xpath `edit` or `delete` of its entry.
pub fn sub_op(locs: &Locations, op: &Operation) -> MultiOp {
    let xpath = locs.entry(op.kind(), op.name());
    match op {
        Operation::Create { object } | Operation::Update { object } => {
            MultiOp { action: MultiAction::Edit, xpath, element: Some(codec::encode(object)) }
        }
        Operation::Delete { .. } => MultiOp { action: MultiAction::Delete, xpath, element: None::<Element> },
        Operation::Move { to, .. } => {
            MultiOp { action: MultiAction::Move { where_: to.where_(), dst: to.dst().map(str::to_owned) }, xpath, element: None }
        }
    }
}

/// Consecutive operations of one kind and verb, each with how many may be in flight at once in
/// one-per-call mode: entries of one run never depend on each other, but NAT rules are created
/// one at a time so the rulebase order stays the plan's (deterministic).
fn runs(ops: &[Operation]) -> Vec<(Range<usize>, usize)> {
    let verb = |o: &Operation| match o {
        Operation::Create { .. } => 0,
        Operation::Update { .. } => 1,
        Operation::Delete { .. } => 2,
        Operation::Move { .. } => 3,
    };
    let mut out = Vec::new();
    let mut i = 0;
    while i < ops.len() {
        let j = ops[i..].iter().position(|o| o.kind() != ops[i].kind() || verb(o) != verb(&ops[i])).map_or(ops.len(), |p| i + p);
        // Rules are created and moved one at a time: rulebase order is policy.
        let ordered = matches!(ops[i].kind(), Kind::NatRule | Kind::SecurityRule) && verb(&ops[i]) != 2;
        let parallel = if ordered { 1 } else { IN_FLIGHT };
        out.push((i..j, parallel));
        i = j;
    }
    out
}

/// Writes `subs` in order. `runs` covers `subs` with ranges whose members are independent (how
/// many of each may be in flight in one-per-call mode); prepare passes runs of one.
pub async fn write(
    client: &PanoramaClient,
    subs: &[MultiOp],
    runs: &[(Range<usize>, usize)],
    mode: WriteMode,
    wait: LockWait,
    on_refusal: OnRefusal,
) -> Result<Applied, PanosError> {
    let mut out = Applied::default();
    let start = match mode {
        WriteMode::MultiConfig { batch } => match multi_config(client, subs, batch.max(1), wait, on_refusal, &mut out).await? {
            None => return Ok(out),
            Some(rest) => rest,
        },
        WriteMode::OnePerCall => 0,
    };
    for (run, parallel) in runs {
        if run.end <= start {
            continue;
        }
        let run = run.start.max(start)..run.end;
        one_per_call(client, subs, run, *parallel, wait, on_refusal, &mut out).await?;
    }
    Ok(out)
}

/// The multi-config pass. `Some(i)`: Panorama refused multi-config itself at sub-operation `i`
/// (nothing from `i` on was written); the caller goes on one per call from there.
async fn multi_config(
    client: &PanoramaClient,
    subs: &[MultiOp],
    batch: usize,
    wait: LockWait,
    on_refusal: OnRefusal,
    out: &mut Applied,
) -> Result<Option<usize>, PanosError> {
    let mut queue: VecDeque<Range<usize>> = pack(subs, batch).into();
    while let Some(r) = queue.pop_front() {
        let result = with_lock_wait(wait, "writing to Panorama", || client.multi_config(&subs[r.clone()])).await;
        out.calls += 1;
        match result {
            Ok(()) => {}
            Err(PanosError::MultiConfigUnavailable(msg)) => {
                tracing::warn!(
                    answer = %msg,
                    "Panorama refused multi-config itself: writing one entry per call from now on \
                     (on PAN-OS 10.0, `request multi-config enabled` on Panorama's CLI turns batching on)"
                );
                out.multi_config_unavailable = Some(msg);
                return Ok(Some(r.start));
            }
            Err(PanosError::MultiConfigRefused { op, code, msg }) => {
                if on_refusal == OnRefusal::Fail {
                    return Err(PanosError::Api {
                        code,
                        msg: format!("{msg} (while writing {})", describe(&subs[r.start + op.unwrap_or(0).min(r.len() - 1)])),
                    });
                }
                match op {
                    // Panorama names the failing sub-operation: it is refused; what came before
                    // it and what follows is sent again (nothing of the batch was applied).
                    Some(k) if k < r.len() => {
                        out.refused.push(Refusal { operation: r.start + k, message: msg });
                        if r.start + k + 1 < r.end {
                            queue.push_front(r.start + k + 1..r.end);
                        }
                        if k > 0 {
                            queue.push_front(r.start..r.start + k);
                        }
                    }
                    _ if r.len() == 1 => out.refused.push(Refusal { operation: r.start, message: msg }),
                    _ => {
                        let mid = r.start + r.len() / 2;
                        queue.push_front(mid..r.end);
                        queue.push_front(r.start..mid);
                    }
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

async fn one_per_call(
    client: &PanoramaClient,
    subs: &[MultiOp],
    run: Range<usize>,
    parallel: usize,
    wait: LockWait,
    on_refusal: OnRefusal,
    out: &mut Applied,
) -> Result<(), PanosError> {
    let results: Vec<(usize, Result<(), PanosError>)> = futures::stream::iter(run)
        .map(|i| async move {
            let m = &subs[i];
            let r = with_lock_wait(wait, "writing to Panorama", || async {
                match (&m.action, &m.element) {
                    (MultiAction::Set, Some(el)) => client.set(&m.xpath, &el.to_xml()).await,
                    (MultiAction::Edit, Some(el)) => client.edit(&m.xpath, el).await,
                    (MultiAction::Move { where_, dst }, _) => client.move_entry(&m.xpath, where_, dst.as_deref()).await,
                    _ => client.delete(&m.xpath).await,
                }
            })
            .await;
            (i, r)
        })
        .buffered(parallel.max(1))
        .collect()
        .await;
    for (i, r) in results {
        out.calls += 1;
        match r {
            Ok(()) => {}
            Err(PanosError::Api { msg, .. }) if on_refusal == OnRefusal::Isolate => {
                out.refused.push(Refusal { operation: i, message: msg })
            }
            Err(PanosError::Api { code, msg }) => {
                return Err(PanosError::Api { code, msg: format!("{msg} (while writing {})", describe(&subs[i])) });
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn describe(m: &MultiOp) -> String {
    format!("{} {}", m.action.as_str(), m.xpath)
}

fn sub_bytes(m: &MultiOp) -> usize {
    m.xpath.len() + m.element.as_ref().map_or(0, |e| e.to_xml().len()) + 64
}

/// Consecutive ranges of at most `batch` sub-operations and `MAX_REQUEST_BYTES`, in order.
fn pack(subs: &[MultiOp], batch: usize) -> Vec<Range<usize>> {
    pack_sizes(subs.iter().map(sub_bytes), batch)
}

/// [`pack`] over the sub-operations' sizes. Greedy from the first: packing from any of its
/// boundaries on gives the same ranges (what `chunks` relies on).
fn pack_sizes(sizes: impl Iterator<Item = usize>, batch: usize) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let (mut start, mut bytes, mut n) = (0, 0, 0);
    for (i, b) in sizes.enumerate() {
        if i > start && (i - start >= batch || bytes + b > MAX_REQUEST_BYTES) {
            out.push(start..i);
            (start, bytes) = (i, 0);
        }
        bytes += b;
        n = i + 1;
    }
    if start < n {
        out.push(start..n);
    }
    out
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
    fn every_sub_operation_is_a_full_entry_xpath_with_that_entry_as_element() {
        let tag = Operation::Create { object: Object::Tag(Tag { name: "t".into(), color: None, comments: None, unmodelled: vec![] }) };
        let ops = vec![tag, addr(1), Operation::Delete { kind: Kind::Address, name: "gone".into() }];
        let subs: Vec<MultiOp> = ops.iter().map(|o| sub_op(&locs(), o)).collect();
        assert_eq!(subs[0].action, MultiAction::Edit);
        assert!(subs[0].xpath.ends_with("/device-group/entry[@name='dg']/tag/entry[@name='t']"), "{}", subs[0].xpath);
        assert!(subs[1].xpath.ends_with("/address/entry[@name='a1']"), "{}", subs[1].xpath);
        let el = subs[1].element.as_ref().unwrap();
        assert_eq!((el.name.as_str(), el.get_attr("name")), ("entry", Some("a1")));
        assert_eq!((subs[2].action.clone(), subs[2].element.is_none()), (MultiAction::Delete, true));
        assert!(subs[2].xpath.ends_with("/address/entry[@name='gone']"));
    }

    #[test]
    fn packing_keeps_order_and_respects_count_and_bytes() {
        let subs: Vec<MultiOp> = (0..7).map(|i| sub_op(&locs(), &addr(i))).collect();
        assert_eq!(pack(&subs, 3), [0..3, 3..6, 6..7]);
        assert_eq!(pack(&subs, 100), [0..7]);
        let big: Vec<MultiOp> = (0..40_000).map(|i| sub_op(&locs(), &addr(i))).collect();
        let calls = pack(&big, 10_000);
        assert!(calls.len() > 4, "byte-bound, not count-bound: {}", calls.len());
        for c in &calls {
            let bytes: usize = big[c.clone()].iter().map(sub_bytes).sum();
            assert!(bytes <= MAX_REQUEST_BYTES, "{bytes}");
        }
        assert_eq!(calls.first().unwrap().start, 0);
        assert_eq!(calls.last().unwrap().end, 40_000);
        assert!(calls.windows(2).all(|w| w[0].end == w[1].start), "contiguous, in order");
    }

    #[test]
    fn rendering_in_chunks_cuts_only_at_the_batches_boundaries() {
        let ops: Vec<Operation> = (0..12_345).map(addr).collect();
        let subs: Vec<MultiOp> = ops.iter().map(|o| sub_op(&locs(), o)).collect();
        for batch in [2_500, 700, 10_000] {
            let all = pack(&subs, batch);
            let chunks = chunks(&locs(), &ops, WriteMode::MultiConfig { batch });
            assert_eq!((chunks[0].start, chunks.last().unwrap().end), (0, ops.len()));
            assert!(chunks.windows(2).all(|w| w[0].end == w[1].start), "in order, nothing left out");
            assert!(chunks.iter().all(|c| c.len() <= RENDER_CHUNK.max(batch)), "{chunks:?}");
            // Packing each chunk on its own gives the batches of one pass over everything.
            let again: Vec<Range<usize>> =
                chunks.iter().flat_map(|c| pack(&subs[c.clone()], batch).into_iter().map(|r| r.start + c.start..r.end + c.start)).collect();
            assert_eq!(again, all, "batch {batch}");
        }
        let one = chunks(&locs(), &ops, WriteMode::OnePerCall);
        assert_eq!(one.iter().map(|c| c.len()).collect::<Vec<_>>(), [5_000, 5_000, 2_345]);
        assert_eq!(chunks(&locs(), &ops[..10], WriteMode::MultiConfig { batch: 2_500 }), [0..10]);
        assert!(chunks(&locs(), &[], WriteMode::OnePerCall).is_empty());
    }

    #[test]
    fn runs_group_one_kind_and_verb_and_keep_nat_rules_in_order() {
        let rule = |n: &str| Operation::Delete { kind: Kind::NatRule, name: n.into() };
        let ops = vec![addr(1), addr(2), rule("r1"), rule("r2"), Operation::Delete { kind: Kind::Address, name: "x".into() }];
        assert_eq!(runs(&ops), [(0..2, IN_FLIGHT), (2..4, IN_FLIGHT), (4..5, IN_FLIGHT)]);
    }

    #[tokio::test]
    async fn a_lock_is_waited_out_another_error_ends_the_wait_and_the_bound_gives_up() {
        let calls = std::cell::Cell::new(0);
        let locked_once = || {
            calls.set(calls.get() + 1);
            let n = calls.get();
            async move { if n == 1 { Err(PanosError::Locked("config lock held by alice".into())) } else { Ok(n) } }
        };
        let r = with_lock_wait(LockWait { bound: Duration::from_secs(60) }, "writing", locked_once).await;
        assert_eq!((r.unwrap(), calls.get()), (2, 2), "waited once, then written");

        let api = || async { Err::<(), _>(PanosError::Api { code: Some(12), msg: "refused".into() }) };
        let r = with_lock_wait(LockWait { bound: Duration::from_secs(60) }, "writing", api).await;
        assert!(matches!(r, Err(PanosError::Api { code: Some(12), .. })), "not a lock: {r:?}");

        let held = || async { Err::<(), _>(PanosError::CommitInProgress("a commit is in progress".into())) };
        let err = with_lock_wait(LockWait { bound: Duration::ZERO }, "writing", held).await.unwrap_err().to_string();
        assert!(err.starts_with("writing: gave up after 0.") && err.contains(": a commit is in progress (pano-eks never removes"), "{err}");
    }

    #[test]
    fn multi_config_from_pan_os_10_one_per_call_before() {
        assert_eq!(WriteMode::for_version("10.1.5-h2", 500), WriteMode::MultiConfig { batch: 500 });
        assert_eq!(WriteMode::for_version("10.0.3", 500), WriteMode::MultiConfig { batch: 500 });
        assert_eq!(WriteMode::for_version("11.2.0", 7), WriteMode::MultiConfig { batch: 7 });
        assert_eq!(WriteMode::for_version("9.1.16", 500), WriteMode::OnePerCall);
        assert_eq!(WriteMode::for_version("garbage", 500), WriteMode::OnePerCall);
    }
}
