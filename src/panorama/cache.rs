//! The watch cache (issue 18): `sync --watch` keeps in memory what it last read and wrote of the
//! five containers (every entry, owned or not, and the referrers), so that a converge costs what
//! its change costs instead of two reads of the whole estate.
//!
//! A converge plans against the cache (the planner stays a pure function of facts and observed
//! state), then confirms what the plan is about to touch: those entries are read back by name,
//! one `get` per kind (`…/entry[@name='a' or @name='b' …]`, [`observe::read_named`]). An entry
//! that differs from the cache (someone else edited, created or deleted it) makes that kind be
//! read whole, and the plan is made again, until every entry it touches was confirmed. A plan that
//! deletes an address, service or tag, or holds one, reads the referrers again first: a new
//! foreign reference must hold the delete, a gone one must release it. Successful writes go into
//! the cache as Panorama will answer them (encoded and decoded again; a created NAT rule's `uuid`,
//! which Panorama assigns, is learnt the first time the rule is read back).
//!
//! Everything is read again on `sync.resync`, after an error or a refusal, after a restart and
//! after lost leadership (the watch loop asks for [`Read::Full`] or calls [`Cache::forget`]).
//!
//! What only the next full read sees (the resync's drift repair, as before the cache): a foreign
//! edit of an entry no plan touches; foreign entries added to the five containers under names we
//! do not want (they count towards capacity, and one that uses our tag or object makes PAN-OS
//! refuse our delete of it: that converge reports the refusal, and its retry reads everything and
//! holds the object, as a full read would have from the start).
//!
//! [`observe::read_named`]: super::observe::read_named

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;

use pano_eks_core::{Kind, Object, Observed, Operation, Plan, ProblemKind, Referrer, Scope};

use super::client::{PanoramaClient, PanosError};
use super::codec;
use super::kinds;
use super::locations::Locations;
use super::observe::{self, Which};
use super::xml::Element;

/// How a converge of `sync --watch` reads Panorama.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    /// Everything, as `sync --once` does (first converge, resync, retry after a failure).
    Full,
    /// From the cache, confirming what the plan touches.
    Cached,
}

/// Where the cache reads from: Panorama's candidate config ([`Candidate`]), or an in-memory one
/// in tests.
pub trait Source {
    /// The five containers, with the referrers.
    fn everything(&self) -> impl Future<Output = Result<Observed, PanosError>> + Send;
    /// One container, whole.
    fn kind(&self, kind: Kind) -> impl Future<Output = Result<Observed, PanosError>> + Send;
    /// The entries of one kind with these names (absent names are not in the answer).
    fn named(&self, kind: Kind, names: &[String]) -> impl Future<Output = Result<Observed, PanosError>> + Send;
    /// What may reference our entries ([`observe::read_referrers`]).
    fn referrers(&self) -> impl Future<Output = Result<Vec<Referrer>, PanosError>> + Send;
}

/// Panorama's candidate config.
pub struct Candidate<'a> {
    pub client: &'a PanoramaClient,
    pub locs: &'a Locations,
    /// Read the security profile groups too (`[sync.security]`).
    pub profile_groups: bool,
}

impl Source for Candidate<'_> {
    async fn everything(&self) -> Result<Observed, PanosError> {
        let profiles =
            async { if self.profile_groups { observe::read_profile_groups(self.client, self.locs).await } else { Ok(Vec::new()) } };
        // What shared and the ancestor device groups hold counts against the firewalls' limits
        // (capacity::elsewhere); a cached plan keeps the counts of the last full read.
        let (seen, referrers, profiles, elsewhere) = tokio::join!(
            observe::read(self.client, self.locs, Which::Candidate),
            observe::read_referrers(self.client, self.locs),
            profiles,
            crate::panorama::capacity::elsewhere(self.client, self.locs)
        );
        let mut seen = seen?;
        seen.referrers = referrers?;
        seen.profile_groups = profiles?;
        seen.elsewhere = elsewhere?;
        Ok(seen)
    }

    async fn kind(&self, kind: Kind) -> Result<Observed, PanosError> {
        observe::read_kind(self.client, self.locs, Which::Candidate, kind).await
    }

    async fn named(&self, kind: Kind, names: &[String]) -> Result<Observed, PanosError> {
        observe::read_named(self.client, self.locs, kind, names).await
    }

    async fn referrers(&self) -> Result<Vec<Referrer>, PanosError> {
        observe::read_referrers(self.client, self.locs).await
    }
}

/// What confirming one plan read, for the log and the tests.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Confirmed {
    /// Names read back, per kind (one `get` per kind and round).
    pub named: BTreeMap<Kind, usize>,
    /// Kinds read whole because an entry differed from the cache: someone else's edit.
    pub reread: Vec<Kind>,
    /// The referrers were read again (the plan deletes or holds a referenceable object).
    pub referrers: bool,
    /// Plans made (1 when the cache was right).
    pub plans: usize,
    /// Too many rounds: everything was read.
    pub fell_back: bool,
    /// Milliseconds spent planning (the rest of the step is reading back).
    pub planning_ms: u128,
}

/// After this many plans, a confirmation still finding foreign edits reads everything.
const MAX_PLANS: usize = 4;

/// A kind holding more than this share of names to confirm is read whole instead (a burst that
/// touches most of a container; also keeps the xpaths short).
const WHOLE_KIND_SHARE: usize = 4;

/// The observed state of `sync --watch` between converges (see the module documentation).
#[derive(Debug, Default)]
pub struct Cache {
    seen: Option<Observed>,
    /// Scopes (device group, template) our writes changed since the last commit and push.
    unpushed: (bool, bool),
}

impl Cache {
    /// Nothing cached: the next converge reads everything.
    pub fn is_cold(&self) -> bool {
        self.seen.is_none()
    }

    /// Drops what is cached (an error, a refusal, lost leadership).
    pub fn forget(&mut self) {
        *self = Cache::default();
    }

    /// Starts from a full read.
    pub fn fill(&mut self, seen: Observed) {
        self.seen = Some(seen);
    }

    /// What the cache holds.
    pub fn observed(&self) -> Option<&Observed> {
        self.seen.as_ref()
    }

    /// Plans with `plan` against the cache and confirms the plan against `src` (module docs):
    /// returns a plan equal to the one a full read would give, unless a foreign edit lies outside
    /// everything the plan touches. With `fresh` (the cache was just filled) nothing is read.
    pub async fn plan<S: Source, E: From<PanosError>>(
        &mut self,
        src: &S,
        fresh: bool,
        plan: impl Fn(&Observed) -> Result<Plan, E>,
    ) -> Result<(Plan, Confirmed), E> {
        let seen = self.seen.get_or_insert_with(Observed::default);
        let mut confirmed = Confirmed::default();
        let mut done: BTreeMap<Kind, BTreeSet<String>> = BTreeMap::new();
        let mut whole: BTreeSet<Kind> = BTreeSet::new();
        let mut referrers_read = fresh;
        while confirmed.plans < MAX_PLANS {
            let t = std::time::Instant::now();
            let p = plan(seen)?;
            confirmed.planning_ms += t.elapsed().as_millis();
            confirmed.plans += 1;
            if fresh {
                return Ok((p, confirmed));
            }
            let wanted = to_confirm(&p, &done, &whole);
            let want_referrers = !referrers_read && needs_referrers(&p);
            if wanted.is_empty() && !want_referrers {
                return Ok((p, confirmed));
            }
            let (big, small): (Vec<_>, Vec<_>) =
                wanted.into_iter().partition(|(k, names)| names.len() * WHOLE_KIND_SHARE > kinds::count(seen, *k).max(8));
            let named = futures::future::join_all(small.iter().map(|(k, names)| src.named(*k, names)));
            let referrers = async { if want_referrers { Some(src.referrers().await) } else { None } };
            let (named, referrers) = tokio::join!(named, referrers);
            let mut changed = false;
            let mut learned = Vec::new();
            let mut differ: Vec<Kind> = big.iter().map(|(k, _)| *k).collect();
            for ((kind, names), read) in small.into_iter().zip(named) {
                *confirmed.named.entry(kind).or_default() += names.len();
                match agree(seen, kind, &names, &read?) {
                    Agreement::Same => {}
                    Agreement::Learned(ops) => learned.extend(ops),
                    Agreement::Differs => differ.push(kind),
                }
                done.entry(kind).or_default().extend(names);
            }
            seen.apply(&learned);
            let fresh_kinds = futures::future::join_all(differ.iter().map(|k| src.kind(*k))).await;
            for (kind, read) in differ.into_iter().zip(fresh_kinds) {
                let read = read?;
                if by_name(kinds::objects(&read, kind)) != by_name(kinds::objects(seen, kind)) {
                    changed = true;
                    confirmed.reread.push(kind);
                }
                kinds::replace(seen, read, kind);
                whole.insert(kind);
            }
            if let Some(r) = referrers {
                let r = r?;
                confirmed.referrers = true;
                referrers_read = true;
                if r != seen.referrers {
                    seen.referrers = r;
                    changed = true;
                }
            }
            if !changed {
                // Only uuids were learnt: the plan stands, its rule updates carry them (what the
                // planner does with an observed uuid; planning 16,000 Services again costs more).
                return Ok((with_uuids(p, &learned), confirmed));
            }
        }
        tracing::info!("the cache kept meeting foreign edits; reading everything");
        confirmed.fell_back = true;
        *seen = src.everything().await?;
        let p = plan(seen)?;
        confirmed.plans += 1;
        Ok((p, confirmed))
    }

    /// Records operations Panorama accepted, as it will answer them, and the scopes they changed.
    pub fn record(&mut self, written: &[Operation]) {
        let Some(seen) = self.seen.as_mut() else { return };
        let as_read: Vec<Operation> = written.iter().map(as_panorama_holds).collect();
        seen.apply(&as_read);
        for op in written {
            match op.kind().scope() {
                Scope::DeviceGroup => self.unpushed.0 = true,
                Scope::Template => self.unpushed.1 = true,
            }
        }
    }

    /// Scopes (device group, template) with writes of ours not yet committed and pushed.
    pub fn unpushed(&self) -> (bool, bool) {
        self.unpushed
    }

    /// Our writes so far are committed and pushed.
    pub fn pushed(&mut self) {
        self.unpushed = (false, false);
    }
}

/// Objects in name order (a container's order is Panorama's business, not a foreign edit).
fn by_name(mut v: Vec<Object>) -> Vec<Object> {
    v.sort_by(|a, b| a.name().cmp(b.name()));
    v
}

/// Per kind, the names `plan` writes or deletes that are not confirmed yet, sorted; with the
/// other entries of each Service it writes: a Service's address, service object and NAT rule are
/// admitted together (all or none), so an untouched sibling that someone else took over changes
/// what may be written for the touched ones.
fn to_confirm(plan: &Plan, done: &BTreeMap<Kind, BTreeSet<String>>, whole: &BTreeSet<Kind>) -> Vec<(Kind, Vec<String>)> {
    let mut touched: BTreeSet<(Kind, &str)> = plan.operations.iter().map(|op| (op.kind(), op.name())).collect();
    for st in &plan.services {
        let own = [(Kind::Address, &st.address), (Kind::Service, &st.service_object), (Kind::NatRule, &st.nat_rule)];
        let own: Vec<(Kind, &str)> = own.into_iter().filter_map(|(k, n)| Some((k, n.as_deref()?))).collect();
        if own.iter().any(|e| touched.contains(e)) {
            touched.extend(own);
        }
    }
    let mut by_kind: BTreeMap<Kind, Vec<String>> = BTreeMap::new();
    for (kind, name) in touched {
        if whole.contains(&kind) || done.get(&kind).is_some_and(|d| d.contains(name)) {
            continue;
        }
        by_kind.entry(kind).or_default().push(name.to_owned());
    }
    by_kind.into_iter().collect()
}

/// Whether the hold decision matters to this plan: it deletes an object a foreign entry could
/// reference (address, service, tag), or holds one (the reference may be gone).
fn needs_referrers(plan: &Plan) -> bool {
    plan.operations.iter().any(|op| matches!(op, Operation::Delete { kind: Kind::Address | Kind::Service | Kind::Tag, .. }))
        || plan.problems.iter().any(|p| p.kind == ProblemKind::InUse)
}

/// How entries read back compare with the cache.
enum Agreement {
    Same,
    /// Equal but for what only Panorama knows (a created NAT rule's uuid): learnt, as upserts.
    Learned(Vec<Operation>),
    /// Someone else changed, created or deleted one of them.
    Differs,
}

fn agree(seen: &Observed, kind: Kind, names: &[String], read: &Observed) -> Agreement {
    let wanted: BTreeSet<&str> = names.iter().map(String::as_str).collect();
    let cached = kinds::named(seen, kind, &wanted);
    let fresh = kinds::named(read, kind, &wanted);
    if cached.len() != fresh.len() {
        return Agreement::Differs;
    }
    let by_name: BTreeMap<&str, &Object> = cached.iter().map(|o| (o.name(), o)).collect();
    let mut learned = Vec::new();
    for f in &fresh {
        match by_name.get(f.name()) {
            Some(c) if *c == f => {}
            Some(c) if learns_uuid(c, f) => learned.push(Operation::Update { object: f.clone() }),
            _ => return Agreement::Differs,
        }
    }
    if learned.is_empty() { Agreement::Same } else { Agreement::Learned(learned) }
}

/// A NAT rule we created (no uuid known) read back with the uuid Panorama gave it.
fn learns_uuid(cached: &Object, read: &Object) -> bool {
    matches!((cached, read), (Object::NatRule(c), Object::NatRule(r)) if c.uuid.is_none() && r.uuid.is_some() && c.same_content(r))
}

/// The plan's NAT rule updates with the uuids just learnt.
fn with_uuids(mut plan: Plan, learned: &[Operation]) -> Plan {
    if learned.is_empty() {
        return plan;
    }
    let uuids: BTreeMap<&str, &Option<String>> = learned
        .iter()
        .filter_map(|op| match op {
            Operation::Update { object: Object::NatRule(r) } => Some((r.name.as_str(), &r.uuid)),
            _ => None,
        })
        .collect();
    for op in &mut plan.operations {
        if let Operation::Update { object: Object::NatRule(r) } = op
            && let Some(u) = uuids.get(r.name.as_str())
        {
            r.uuid = (*u).clone();
        }
    }
    plan
}

/// An operation's entry as a read will return it: through the codec and back.
fn as_panorama_holds(op: &Operation) -> Operation {
    let (Operation::Create { object } | Operation::Update { object }) = op else { return op.clone() };
    let kind = object.kind();
    let mut back = Observed::default();
    codec::decode_container(kind, &Element::new("c").child(codec::encode(object)), &mut back);
    match kinds::objects(&back, kind).pop() {
        Some(object) => Operation::Update { object },
        None => op.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_reads_back_as_written() {
        let r = pano_eks_core::NatRule {
            name: "demo.in.shop.default.web".into(),
            from: vec!["untrust".into()],
            to: "untrust".into(),
            source: vec!["any".into()],
            destination: vec!["any".into()],
            service: "demo.tcp-8000".into(),
            to_interface: None,
            source_translation: None,
            destination_translation: None,
            description: Some("shop/default/web - x".into()),
            tags: vec!["pano-eks".into()],
            disabled: false,
            unmodelled: vec![],
            uuid: None,
        };
        let op = Operation::Create { object: Object::NatRule(r.clone()) };
        assert_eq!(as_panorama_holds(&op), Operation::Update { object: Object::NatRule(r) });
    }
}
