//! Reads the containers pano-eks writes into, from the candidate or the running config, and
//! (for planning) the entries elsewhere that may reference ours ([`read_referrers`]).
//! Every entry is returned, owned or not: ownership and holds are the planning core's decisions.

use pano_eks_core::{Kind, Object, Observed, Referrer, ReferrerKind, descendants};

use super::client::{PanoramaClient, PanosError};
use super::codec;
use super::kinds;
use super::locations::{KINDS, Locations};
use super::xml::Element;
use super::xpath;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// `action=get`: the candidate config, including uncommitted changes.
    Candidate,
    /// `action=show`: the running (committed) config.
    Running,
}

pub async fn read(client: &PanoramaClient, locs: &Locations, which: Which) -> Result<Observed, PanosError> {
    // The five reads run concurrently; the client keeps them within its in-flight limit.
    let results = futures_join(KINDS.map(|kind| read_kind(client, locs, which, kind))).await;
    let mut seen = Observed::default();
    for (kind, r) in KINDS.into_iter().zip(results) {
        kinds::append(&mut seen, &mut r?, kind);
    }
    Ok(seen)
}

async fn futures_join<F: std::future::Future>(futs: [F; 7]) -> Vec<F::Output> {
    futures::future::join_all(futs).await
}

/// The names of the security profile groups the device group can use: its own, its ancestor
/// device groups' and `shared`'s (a rule may name any object the device group inherits; the
/// hierarchy from Panorama's read-only `parent-dg` nodes, as [`super::capacity::elsewhere`]
/// reads it). `[sync.security]` checks a Service's `pano-eks/profile-group` against them. Names
/// only (`…/profile-group/entry/@name`), concurrent within the client's in-flight limit.
pub async fn read_profile_groups(client: &PanoramaClient, locs: &Locations) -> Result<Vec<String>, PanosError> {
    let hierarchy = client.get(&xpath::dg_hierarchy()).await?;
    let parents = hierarchy.as_ref().map(parse_hierarchy).unwrap_or_default();
    let mut at: Vec<String> = vec!["/config/shared".into(), xpath::device_group(&locs.device_group)];
    at.extend(pano_eks_core::ancestors(&parents, &locs.device_group).iter().map(|dg| xpath::device_group(dg)));
    let names: Vec<String> = at.iter().map(|prefix| format!("{prefix}/profile-group/entry/@name")).collect();
    let answers = futures::future::join_all(names.iter().map(|xp| client.get(xp))).await;
    let mut out = Vec::new();
    for answer in answers {
        if let Some(r) = answer? {
            out.extend(r.elements().filter(|e| e.name == "entry").filter_map(|e| e.get_attr("name").map(str::to_string)));
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Every entry of one container (the other kinds stay empty), decoded as the answer is parsed
/// (`<response><result><container><entry>`: the entries are at depth 4).
pub async fn read_kind(client: &PanoramaClient, locs: &Locations, which: Which, kind: Kind) -> Result<Observed, PanosError> {
    let mut seen = Observed::default();
    let mut each = |e: Element| decode_one(kind, e, &mut seen);
    client.read_entries(which == Which::Running, &locs.container(kind), 4, &mut each).await?;
    Ok(seen)
}

/// Every entry of one container, each handed to `each` decoded as it is parsed (the container
/// is never held: the running config's fingerprint, `sync::owned`).
pub async fn read_kind_each(
    client: &PanoramaClient,
    locs: &Locations,
    which: Which,
    kind: Kind,
    each: &mut (dyn FnMut(Object) + Send),
) -> Result<(), PanosError> {
    let mut one = |e: Element| {
        let mut seen = Observed::default();
        decode_one(kind, e, &mut seen);
        let mut objects = kinds::objects(&seen, kind);
        objects.drain(..).for_each(&mut *each);
    };
    client.read_entries(which == Which::Running, &locs.container(kind), 4, &mut one).await?;
    Ok(())
}

fn decode_one(kind: Kind, e: Element, into: &mut Observed) {
    codec::decode_container(kind, &Element::new("c").child(e), into);
}

/// The xpath names of one `get` stay below this many characters (pan-os-python chunks its
/// `entry[@name='a' or …]` deletes at about 25,000: `chunk_instances_for_delete_similar`).
const NAMED_XPATH_CHARS: usize = 20_000;

/// The entries of `kind` with these names, from the candidate config: one `get` of
/// `…/entry[@name='a' or @name='b' …]` per chunk of names (PAN-OS answers every matching node
/// in `<result>`; absent names are simply not there).
pub async fn read_named(client: &PanoramaClient, locs: &Locations, kind: Kind, names: &[String]) -> Result<Observed, PanosError> {
    let mut chunks: Vec<&[String]> = Vec::new();
    let (mut start, mut chars) = (0, 0);
    for (i, n) in names.iter().enumerate() {
        if chars + n.len() + 12 > NAMED_XPATH_CHARS && i > start {
            chunks.push(&names[start..i]);
            (start, chars) = (i, 0);
        }
        chars += n.len() + 12;
    }
    if start < names.len() {
        chunks.push(&names[start..]);
    }
    let container = locs.container(kind);
    let reads = chunks.into_iter().map(|c| {
        let xp = format!("{container}/{}", xpath::entries_or(c));
        async move {
            let mut seen = Observed::default();
            // The matched entries are <result>'s children (depth 3).
            let mut each = |e: Element| decode_one(kind, e, &mut seen);
            client.read_entries(false, &xp, 3, &mut each).await?;
            Ok::<_, PanosError>(seen)
        }
    });
    let mut seen = Observed::default();
    for r in futures::future::join_all(reads).await {
        kinds::append(&mut seen, &mut r?, kind);
    }
    Ok(seen)
}

/// Reads what could reference our entries, for the planner's hold decision (facts §11.4): the
/// device-group hierarchy (one `get`), then for `shared`, our device group and each of its
/// descendants one `get` per container: security rules of the pre- and post-rulebase, NAT rules of
/// the post-rulebase (and of the pre-rulebase, except ours: that is the NAT container [`read`]
/// already returns), address groups and service groups. Candidate config; concurrent within the
/// client's in-flight limit.
pub async fn read_referrers(client: &PanoramaClient, locs: &Locations) -> Result<Vec<Referrer>, PanosError> {
    let hierarchy = client.get(&xpath::dg_hierarchy()).await?;
    let parents = hierarchy.as_ref().map(parse_hierarchy).unwrap_or_default();
    let mut places: Vec<(String, String, bool)> = vec![("/config/shared".into(), "shared".into(), false)];
    places.push((xpath::device_group(&locs.device_group), format!("device group {}", locs.device_group), true));
    for dg in descendants(&parents, &locs.device_group) {
        places.push((xpath::device_group(&dg), format!("device group {dg}"), false));
    }
    let mut reads = Vec::new();
    for (prefix, label, ours) in &places {
        for (path, kind, base) in CONTAINERS {
            if *ours && path == "pre-rulebase/nat/rules" {
                continue;
            }
            let location = if base.is_empty() { label.clone() } else { format!("{label} {base}") };
            reads.push(async move { client.get(&format!("{prefix}/{path}")).await.map(|r| (kind, location, r)) });
        }
    }
    let mut out = Vec::new();
    for r in futures::future::join_all(reads).await {
        let (kind, location, result) = r?;
        for container in result.iter().flat_map(Element::elements) {
            out.extend(container.elements().filter(|e| e.name == "entry").filter_map(|e| referrer(kind, &location, e)));
        }
    }
    out.sort();
    Ok(out)
}

/// (container below a location, kind, rulebase for the location label).
const CONTAINERS: [(&str, ReferrerKind, &str); 6] = [
    ("pre-rulebase/security/rules", ReferrerKind::SecurityRule, "pre-rulebase"),
    ("post-rulebase/security/rules", ReferrerKind::SecurityRule, "post-rulebase"),
    ("pre-rulebase/nat/rules", ReferrerKind::NatRule, "pre-rulebase"),
    ("post-rulebase/nat/rules", ReferrerKind::NatRule, "post-rulebase"),
    ("address-group", ReferrerKind::AddressGroup, ""),
    ("service-group", ReferrerKind::ServiceGroup, ""),
];

/// `<device-group><entry name=X><parent-dg>P</parent-dg>…` → (X, P); no `parent-dg` = under shared.
pub(crate) fn parse_hierarchy(result: &Element) -> Vec<(String, Option<String>)> {
    let list = result.find("device-group").unwrap_or(result);
    list.elements()
        .filter(|e| e.name == "entry")
        .filter_map(|e| Some((e.get_attr("name")?.to_string(), e.text_at("parent-dg").filter(|p| !p.is_empty()))))
        .collect()
}

/// An entry as a [`Referrer`]: every text it holds except free text (description, comments),
/// so any field naming one of our objects counts, whatever the schema version calls it.
fn referrer(kind: ReferrerKind, location: &str, e: &Element) -> Option<Referrer> {
    fn texts(e: &Element, out: &mut Vec<String>) {
        if matches!(e.name.as_str(), "description" | "comments") {
            return;
        }
        if e.elements().next().is_none() {
            let t = e.text_content();
            if !t.is_empty() {
                out.push(t);
            }
        }
        for c in e.elements() {
            texts(c, out);
        }
    }
    let name = e.get_attr("name")?.to_string();
    let mut names = Vec::new();
    for c in e.elements() {
        texts(c, &mut names);
    }
    names.sort();
    names.dedup();
    let tags = e.member_list("tag");
    Some(Referrer { kind, name, location: location.to_owned(), names, tags })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::panorama::xml;

    #[test]
    fn a_security_rule_or_group_becomes_the_names_it_holds() {
        let rule = xml::parse(
            "<entry name='allow-web' uuid='u'><from><member>untrust</member></from><to><member>trust</member></to>\
             <source><member>any</member></source><destination><member>demo.shop.default.web</member></destination>\
             <service><member>demo.tcp-82</member></service><action>allow</action><description>demo.not.a.reference</description>\
             <tag><member>corp</member></tag></entry>",
        )
        .unwrap();
        let r = referrer(ReferrerKind::SecurityRule, "device group eks-dg pre-rulebase", &rule).unwrap();
        assert_eq!(r.name, "allow-web");
        assert_eq!(r.tags, vec!["corp".to_string()]);
        for want in ["demo.shop.default.web", "demo.tcp-82", "untrust", "corp", "allow"] {
            assert!(r.names.iter().any(|n| n == want), "{want}: {:?}", r.names);
        }
        assert!(!r.names.iter().any(|n| n.contains("not.a.reference")), "free text is not a reference");
        let group = xml::parse("<entry name='g'><static><member>a</member><member>b</member></static></entry>").unwrap();
        assert_eq!(referrer(ReferrerKind::AddressGroup, "shared", &group).unwrap().names, vec!["a".to_string(), "b".to_string()]);
    }

    #[test]
    fn the_hierarchy_is_read_from_parent_dg() {
        let r = xml::parse(
            "<result><device-group><entry name='eks-dg'><id>11</id></entry><entry name='west'><parent-dg>eks-dg</parent-dg></entry></device-group></result>",
        )
        .unwrap();
        assert_eq!(parse_hierarchy(&r), vec![("eks-dg".to_string(), None), ("west".to_string(), Some("eks-dg".to_string()))]);
    }
}
