//! Referential integrity (facts §11.4, §7 code 10): PAN-OS refuses to delete an address,
//! address group, service, service group or tag that another entry still references, and a
//! rename rewrites the references. References resolve like PAN-OS resolves names: from the
//! referrer's device group up its `parent-dg` ancestry, then `shared`; a reference counts
//! against the object it resolves to (a nearer object of the same name shadows ours).
//!
//! Refusal text, from a captured PAN-OS answer (code 10, first line then one line per
//! referencing path, each path line starting with a space):
//! `<line> NAME cannot be deleted because of references from:</line><line> certificate-profile -> P -> CA -> NAME</line>`
//! (Keyfactor PAN-OS orchestrator fixture; terraform-provider-panos#238; pan-os-php#791; a
//! firewall path reads ` vsys -> vsys1 -> rulebase -> security -> rules -> R -> source`). On
//! Panorama the sim writes ` device-group -> DG -> pre-rulebase -> …` and ` shared -> …`
//! (pan-os-php splits on a leading `shared -> `).

use super::response::ApiError;
use super::schema::{Kind, LD, Loc, classify, parent_dg};
use super::xml_tree::{Key, Node};
use std::collections::HashMap;

/// Name spaces a reference resolves in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Class {
    /// address and address-group
    Addr,
    /// service and service-group
    Svc,
    Tag,
}

impl Class {
    fn containers(self) -> &'static [&'static str] {
        match self {
            Class::Addr => &["address", "address-group"],
            Class::Svc => &["service", "service-group"],
            Class::Tag => &["tag"],
        }
    }
    pub fn of(kind: Kind) -> Option<Class> {
        match kind {
            Kind::Address | Kind::AddressGroup => Some(Class::Addr),
            Kind::Service | Kind::ServiceGroup => Some(Class::Svc),
            Kind::Tag => Some(Class::Tag),
            _ => None,
        }
    }
}

/// One place that names an object.
#[derive(Clone, Debug)]
pub struct Ref {
    /// Where the referrer lives (names resolve from here).
    pub scope: Loc,
    /// Path of the node holding the name: a `member` (key = Member(name)) or a text leaf.
    pub node: Vec<Key>,
    /// The PAN-OS style path line (without the leading space).
    pub line: String,
}

/// Every reference in the tree, by (class, name).
#[derive(Default)]
pub struct RefIndex {
    map: HashMap<(Class, String), Vec<Ref>>,
    /// Subtrees deleted since the index was built (their references are gone).
    gone: Vec<Vec<Key>>,
}

fn dg_node<'a>(root: &'a Node, dg: &str) -> Option<&'a Node> {
    root.child("devices")?.entry_child(LD)?.child("device-group")?.entry_child(dg)
}

/// The DG, its ancestors, then shared.
fn chain(root: &Node, loc: &Loc) -> Vec<Loc> {
    let mut out = Vec::new();
    if let Loc::Dg(dg) = loc {
        let mut cur = Some(dg.clone());
        while let Some(n) = cur {
            if out.len() > 16 || out.contains(&Loc::Dg(n.clone())) {
                break;
            }
            out.push(Loc::Dg(n.clone()));
            cur = parent_dg(root, &n);
        }
    }
    out.push(Loc::Shared);
    out
}

fn scope_node<'a>(root: &'a Node, loc: &Loc) -> Option<&'a Node> {
    match loc {
        Loc::Shared => root.child("shared"),
        Loc::Dg(d) => dg_node(root, d),
        _ => None,
    }
}

/// The location whose object `name` a reference from `from` means.
pub fn resolve(root: &Node, from: &Loc, class: Class, name: &str) -> Option<Loc> {
    chain(root, from).into_iter().find(|l| {
        scope_node(root, l).is_some_and(|n| class.containers().iter().any(|c| n.child(c).and_then(|c| c.entry_child(name)).is_some()))
    })
}

fn scope_path(loc: &Loc) -> Vec<Key> {
    match loc {
        Loc::Shared => vec![Key::Tag("shared".into())],
        Loc::Dg(d) => vec![Key::Tag("devices".into()), Key::Entry(LD.into()), Key::Tag("device-group".into()), Key::Entry(d.clone())],
        _ => vec![],
    }
}

fn scope_label(loc: &Loc) -> String {
    match loc {
        Loc::Dg(d) => format!("device-group -> {d}"),
        _ => "shared".into(),
    }
}

struct Builder<'a> {
    idx: &'a mut RefIndex,
    scope: Loc,
    label: String,
}

impl Builder<'_> {
    fn add(&mut self, class: Class, name: &str, node: Vec<Key>, line: String) {
        if name.is_empty() || name == "any" {
            return;
        }
        self.idx.map.entry((class, name.to_string())).or_default().push(Ref { scope: self.scope.clone(), node, line });
    }
    /// `field` is a member list (or, with `text`, a leaf) at `sub` below the entry.
    fn field(&mut self, entry: &Node, epath: &[Key], eline: &str, sub: &[&str], class: Class) {
        let Some(n) = entry.descend(sub) else { return };
        let mut base = epath.to_vec();
        base.extend(sub.iter().map(|s| Key::Tag(s.to_string())));
        let line = format!("{eline} -> {}", sub.join(" -> "));
        if n.children.is_empty() {
            let t = n.text.trim().to_string();
            self.add(class, &t, base, line);
        } else {
            for m in n.members() {
                let mut p = base.clone();
                p.push(Key::Member(m.to_string()));
                self.add(class, m, p, line.clone());
            }
        }
    }
    /// Entries of the container at `cp` (all, or only the one `only` names below it).
    fn pick<'n>(c: &'n Node, cp: &[Key], only: Option<&[Key]>) -> Vec<&'n Node> {
        match only {
            Some(o) if o.len() > cp.len() => c.children.get(&o[cp.len()]).filter(|n| n.tag == "entry").into_iter().collect(),
            _ => c.entries().collect(),
        }
    }
    /// Scans the scope `base` at `bpath`; with `only`, just what is at or below that path.
    fn scan(&mut self, base: &Node, bpath: &[Key], only: Option<&[Key]>) {
        let sub = |p: &[Key], tags: &[&str]| {
            let mut v = p.to_vec();
            v.extend(tags.iter().map(|t| Key::Tag(t.to_string())));
            v
        };
        let wanted = |cp: &[Key]| only.is_none_or(|o| o.starts_with(cp) || cp.starts_with(o));
        for rb in ["pre-rulebase", "post-rulebase"] {
            for rt in ["security", "nat"] {
                let cp = sub(bpath, &[rb, rt, "rules"]);
                if !wanted(&cp) {
                    continue;
                }
                let Some(rules) = base.descend(&[rb, rt, "rules"]) else { continue };
                for r in Self::pick(rules, &cp, only) {
                    let name = r.name().unwrap_or_default();
                    let mut ep = cp.clone();
                    ep.push(Key::Entry(name.to_string()));
                    let el = format!("{} -> {rb} -> {rt} -> rules -> {name}", self.label);
                    self.field(r, &ep, &el, &["source"], Class::Addr);
                    self.field(r, &ep, &el, &["destination"], Class::Addr);
                    self.field(r, &ep, &el, &["service"], Class::Svc);
                    self.field(r, &ep, &el, &["tag"], Class::Tag);
                    if rt == "nat" {
                        for st in [
                            &["source-translation", "dynamic-ip-and-port", "translated-address"][..],
                            &["source-translation", "dynamic-ip", "translated-address"],
                            &["source-translation", "static-ip", "translated-address"],
                            &["destination-translation", "translated-address"],
                            &["dynamic-destination-translation", "translated-address"],
                        ] {
                            self.field(r, &ep, &el, st, Class::Addr);
                        }
                    }
                }
            }
        }
        for (cont, lists) in [
            ("address-group", &[(&["static"][..], Class::Addr), (&["tag"], Class::Tag)][..]),
            ("service-group", &[(&["members"][..], Class::Svc), (&["tag"], Class::Tag)]),
            ("address", &[(&["tag"][..], Class::Tag)]),
            ("service", &[(&["tag"][..], Class::Tag)]),
        ] {
            let cp = sub(bpath, &[cont]);
            if !wanted(&cp) {
                continue;
            }
            let Some(c) = base.child(cont) else { continue };
            for e in Self::pick(c, &cp, only) {
                let name = e.name().unwrap_or_default();
                let mut ep = cp.clone();
                ep.push(Key::Entry(name.to_string()));
                let el = format!("{} -> {cont} -> {name}", self.label);
                for (f, class) in lists {
                    self.field(e, &ep, &el, f, *class);
                }
            }
        }
    }
}

impl RefIndex {
    pub fn build(root: &Node) -> RefIndex {
        let mut idx = RefIndex::default();
        let mut locs = vec![Loc::Shared];
        if let Some(dgs) = root.child("devices").and_then(|d| d.entry_child(LD)).and_then(|d| d.child("device-group")) {
            locs.extend(dgs.entries().filter_map(|e| e.name()).map(|n| Loc::Dg(n.to_string())));
        }
        for loc in locs {
            let Some(base) = scope_node(root, &loc) else { continue };
            let bpath = scope_path(&loc);
            let mut b = Builder { idx: &mut idx, label: scope_label(&loc), scope: loc };
            b.scan(base, &bpath, None);
        }
        idx
    }

    /// Adds the references at or below `path` (just written). Returns false when the path is
    /// too broad to scan on its own (above a scope): the caller rebuilds instead. Stale and
    /// duplicate entries are filtered at lookup.
    pub fn add_path(&mut self, root: &Node, path: &[Key]) -> bool {
        let (loc, i) = super::schema::locate(path);
        let loc = match (loc, path.first()) {
            (Loc::Dg(d), _) => Loc::Dg(d),
            (_, Some(Key::Tag(t))) if t == "shared" => Loc::Shared,
            (Loc::Template(_), _) => return true,
            _ => {
                // Under a template (no references there) or above every scope.
                let under_template = path.len() >= 3 && matches!(&path[2], Key::Tag(t) if t == "template" || t == "template-stack");
                return under_template;
            }
        };
        let _ = i;
        let Some(base) = scope_node(root, &loc) else { return true };
        let bpath = scope_path(&loc);
        let mut b = Builder { idx: self, label: scope_label(&loc), scope: loc };
        b.scan(base, &bpath, Some(path));
        true
    }

    pub fn forget(&mut self, gone: Vec<Key>) {
        self.gone.push(gone);
    }

    /// Many deletes since the build make lookups slow: time to rebuild.
    pub fn worn(&self) -> bool {
        self.gone.len() > 256
    }

    /// References (still present, not below `excluded`) to the object `name` of `class` at `at`.
    pub fn refs_to<'a>(&'a self, root: &Node, class: Class, name: &str, at: &Loc, excluded: &[Vec<Key>]) -> Vec<&'a Ref> {
        let Some(v) = self.map.get(&(class, name.to_string())) else { return vec![] };
        let mut seen = std::collections::HashSet::new();
        v.iter()
            .filter(|r| !self.gone.iter().chain(excluded).any(|g| r.node.starts_with(g)))
            .filter(|r| match root.get_path(&r.node) {
                // A member's key is its text; a leaf must still hold the name.
                Some(n) => matches!(r.node.last(), Some(Key::Member(_))) || n.text.trim() == name,
                None => false,
            })
            .filter(|r| seen.insert(r.node.clone()))
            .filter(|r| resolve(root, &r.scope, class, name).as_ref() == Some(at))
            .collect()
    }
}

/// Referenceable objects at or below `path`: (class, name, location).
pub fn objects_under(root: &Node, path: &[Key]) -> Vec<(Class, String, Loc)> {
    let mut out = Vec::new();
    let Some(n) = root.get_path(path) else { return out };
    let mut stack: Vec<(Vec<Key>, &Node)> = vec![(path.to_vec(), n)];
    while let Some((p, node)) = stack.pop() {
        if let Some((kind, loc)) = classify(&p) {
            if let Some(c) = Class::of(kind) {
                out.push((c, node.name().unwrap_or_default().to_string(), loc));
                continue;
            }
            if !matches!(kind, Kind::DeviceGroup) {
                continue;
            }
        }
        // Only descend where objects can live (shared, device groups and their containers).
        if p.len() >= 6 {
            continue;
        }
        for (k, c) in &node.children {
            if c.children.is_empty() && c.tag != "entry" {
                continue;
            }
            let mut cp = p.clone();
            cp.push(k.clone());
            stack.push((cp, c));
        }
    }
    out
}

/// The PAN-OS refusal for deleting `name` while `refs` point at it.
pub fn refusal(name: &str, refs: &[&Ref]) -> ApiError {
    let mut lines = vec![format!(" {name} cannot be deleted because of references from:")];
    let mut seen = std::collections::BTreeSet::new();
    for r in refs {
        if seen.insert(r.line.clone()) {
            lines.push(format!(" {}", r.line));
        }
    }
    ApiError { code: Some(10), lines, cdata: false }
}
