//! `type=config` write and read actions on a tree, with an undo log so that a failed write
//! (schema error, or any failing sub-op of a multi-config) leaves the tree untouched without
//! cloning 20k-entry trees.

use super::refs::{self, RefIndex};
use super::response::ApiError;
use super::schema;
use super::schema::LD;
use super::xml_tree::{Key, Node};
use super::xpath::{self, XPath};

/// One undo step: put child `key` of the node at `parent` back to `prev` (at `index`).
#[derive(Debug)]
struct Undo {
    parent: Vec<Key>,
    key: Key,
    prev: Option<(usize, Node)>,
}

/// A write transaction over a tree: apply ops, then `commit` or `rollback`.
pub struct Txn<'a> {
    pub tree: &'a mut Node,
    undo: Vec<Undo>,
    /// Paths written (for validation and rule uuids).
    pub written: Vec<Vec<Key>>,
    /// Change attribution: the node each write wrote (the xpath's node for set/edit, each
    /// deleted node, both names of a rename, the moved entry, rewritten references), and
    /// whether it was a partial-xpath write (see [`partial_xpath`]).
    pub marked: Vec<(Vec<Key>, bool)>,
    /// References in the tree, built on the first delete or rename that needs them (the
    /// caller may hand in the one kept from earlier requests, and take it back on success).
    pub refs: Option<RefIndex>,
}

/// Location entries: a device group, template, template stack, vsys, or Panorama's own
/// `localhost.localdomain`. Writing one of them is writing a parent of objects.
fn location_entry(path: &[Key]) -> bool {
    let (Some(Key::Entry(n)), Some(Key::Tag(parent))) = (path.last(), path.len().checked_sub(2).map(|i| &path[i])) else {
        return false;
    };
    matches!(parent.as_str(), "device-group" | "template" | "template-stack" | "vsys") || (parent == "devices" && n == LD)
}

fn has_entry(n: &Node) -> bool {
    n.children.values().any(|c| c.tag == "entry" || has_entry(c))
}

/// A "partial xpath" write (facts §11.1; pan-os-python#570, pan-os-codegen#119,
/// pan-os-ansible#628): a set/edit whose xpath ends at a container or a parent (device group,
/// template, vsys) and whose element carries entries. Writes on an object's own entry xpath,
/// on a `member` or on a member list's own xpath (element = `<member>`s) are full-xpath writes.
pub fn partial_xpath(path: &[Key], nodes: &[Node], edit: bool) -> bool {
    match path.last() {
        Some(Key::Member(_)) => return false,
        Some(Key::Entry(_)) if !location_entry(path) => return false,
        _ => {}
    }
    if !nodes.is_empty() && nodes.iter().all(|n| n.tag == "member") {
        return false;
    }
    if edit { nodes.iter().any(has_entry) } else { nodes.iter().any(|n| n.tag == "entry" || has_entry(n)) }
}

#[derive(Debug, Clone)]
pub enum WriteOp {
    Set { xpath: String, element: String },
    Edit { xpath: String, element: String },
    Delete { xpath: String },
    Rename { xpath: String, newname: String },
    Move { xpath: String, where_: String, dst: Option<String> },
}

impl WriteOp {
    pub fn action(&self) -> &'static str {
        match self {
            WriteOp::Set { .. } => "set",
            WriteOp::Edit { .. } => "edit",
            WriteOp::Delete { .. } => "delete",
            WriteOp::Rename { .. } => "rename",
            WriteOp::Move { .. } => "move",
        }
    }
    pub fn xpath(&self) -> &str {
        match self {
            WriteOp::Set { xpath, .. }
            | WriteOp::Edit { xpath, .. }
            | WriteOp::Delete { xpath }
            | WriteOp::Rename { xpath, .. }
            | WriteOp::Move { xpath, .. } => xpath,
        }
    }
}

/// Success outcome of one write: PAN-OS code and message.
#[derive(Debug, Clone, PartialEq)]
pub struct Done {
    pub code: u16,
    pub msg: &'static str,
}

const OK: Done = Done { code: 20, msg: "command succeeded" };

pub fn parse_xpath(s: &str) -> Result<XPath, ApiError> {
    if s.is_empty() {
        return Err(ApiError::new(6, "No xpath specified"));
    }
    let xp = xpath::parse(s).map_err(|e| ApiError::new(6, format!("Invalid xpath {s}: {e}")))?;
    if xp.steps[0].tag != "config" {
        return Err(ApiError::new(6, format!("Could not find schema node for xpath {s}")));
    }
    let tags: Vec<(String, Option<String>)> = xp.steps.iter().map(|s| (s.tag.clone(), None)).collect();
    schema::check_schema_path(&tags, s)?;
    Ok(xp)
}

fn parse_element(element: &str) -> Result<Vec<Node>, ApiError> {
    let nodes = super::xml_tree::parse_fragment(element).map_err(|e| ApiError::new(18, format!("Malformed Request: {e}")))?;
    if nodes.is_empty() {
        return Err(ApiError::new(18, "Malformed Request: element is empty"));
    }
    Ok(nodes)
}

/// Deep merge of `src` into `dst` (PAN-OS `set`): entries by name, members by text, leaves replaced.
fn merge(dst: &mut Node, src: Node) {
    for (k, v) in src.attrs {
        if k != "name" {
            dst.set_attr(&k, &v);
        }
    }
    if src.children.is_empty() {
        if !src.text.is_empty() || dst.children.is_empty() {
            dst.text = src.text;
        }
        return;
    }
    dst.text.clear();
    for (k, c) in src.children {
        match dst.children.get_mut(&k) {
            Some(d) => merge(d, c),
            None => {
                dst.children.insert(k, c);
            }
        }
    }
}

impl<'a> Txn<'a> {
    pub fn new(tree: &'a mut Node) -> Txn<'a> {
        Txn { tree, undo: Vec::new(), written: Vec::new(), marked: Vec::new(), refs: None }
    }

    fn record(&mut self, parent: &[Key], key: &Key) {
        let prev = self.tree.get_path(parent).and_then(|p| p.children.get_index_of(key).map(|i| (i, p.children[i].clone())));
        self.undo.push(Undo { parent: parent.to_vec(), key: key.clone(), prev });
    }

    pub fn rollback(mut self) {
        while let Some(u) = self.undo.pop() {
            let Some(p) = self.tree.get_path_mut(&u.parent) else { continue };
            p.children.shift_remove(&u.key);
            if let Some((i, n)) = u.prev {
                let i = i.min(p.children.len());
                p.children.shift_insert(i, u.key, n);
            }
        }
    }

    /// The attribution marks of everything applied.
    pub fn commit(self) -> Vec<(Vec<Key>, bool)> {
        self.marked
    }

    /// Creates missing nodes along a concrete xpath; returns the key path.
    fn ensure_path(&mut self, xp: &XPath, raw: &str) -> Result<Vec<Key>, ApiError> {
        let steps = xpath::concrete(xp).ok_or_else(|| ApiError::new(6, format!("Invalid xpath {raw}: ambiguous path for a write")))?;
        let mut path: Vec<Key> = Vec::new();
        for tmpl in steps {
            let k = tmpl.key();
            let exists = self.tree.get_path(&path).is_some_and(|n| n.children.contains_key(&k));
            if !exists {
                self.record(&path, &k);
                let parent = self.tree.get_path_mut(&path).expect("parent exists");
                parent.text.clear();
                parent.children.insert(k.clone(), tmpl);
            }
            path.push(k);
        }
        Ok(path)
    }

    /// Keeps the reference index (if built) current after writes at `paths`.
    fn note_written(&mut self, paths: &[Vec<Key>]) {
        let Some(ix) = self.refs.as_mut() else { return };
        for p in paths {
            if !ix.add_path(self.tree, p) {
                self.refs = None;
                return;
            }
        }
    }

    /// Refuses deleting `targets` while an entry outside them references an object in them.
    fn check_references(&mut self, targets: &[Vec<Key>]) -> Result<(), ApiError> {
        let mut objs = Vec::new();
        for t in targets {
            objs.extend(refs::objects_under(self.tree, t));
        }
        if objs.is_empty() {
            return Ok(());
        }
        let ix = self.refs.get_or_insert_with(|| RefIndex::build(self.tree));
        for (class, name, loc) in &objs {
            let found = ix.refs_to(self.tree, *class, name, loc, targets);
            if !found.is_empty() {
                return Err(refs::refusal(name, &found));
            }
        }
        Ok(())
    }

    /// Points the reference at `node` (a `member` or a text leaf) to `newname`.
    fn rewrite_reference(&mut self, node: &[Key], newname: &str) {
        let Some((last, parent)) = node.split_last() else { return };
        match last {
            Key::Member(_) => {
                let nk = Key::Member(newname.to_string());
                self.record(parent, &nk);
                self.record(parent, last);
                let Some(pn) = self.tree.get_path_mut(parent) else { return };
                let Some(i) = pn.children.get_index_of(last) else { return };
                let (_, mut m) = pn.children.shift_remove_entry(last).expect("present");
                m.text = newname.to_string();
                if !pn.children.contains_key(&nk) {
                    pn.children.shift_insert(i.min(pn.children.len()), nk, m);
                }
                self.marked.push((parent.to_vec(), false));
            }
            _ => {
                self.record(parent, last);
                if let Some(n) = self.tree.get_path_mut(node) {
                    n.text = newname.to_string();
                }
                self.marked.push((node.to_vec(), false));
            }
        }
    }

    pub fn apply(&mut self, op: &WriteOp) -> Result<Done, ApiError> {
        let raw = op.xpath();
        let xp = parse_xpath(raw)?;
        let before = self.written.len();
        let done = match op {
            WriteOp::Set { element, .. } => {
                let nodes = parse_element(element)?;
                let path = self.ensure_path(&xp, raw)?;
                // Attribution follows the node written (pan-os-ansible#628): the xpath's node.
                self.marked.push((path.clone(), partial_xpath(&path, &nodes, false)));
                for n in nodes {
                    let k = n.key();
                    self.record(&path, &k);
                    // Validation walks each written entry of a bulk set (not the whole container).
                    let bulk: Vec<Key> = if n.name().is_none()
                        && !n.children.is_empty()
                        && n.children.values().all(|c| c.tag == "entry" && c.name().is_some())
                    {
                        n.children.keys().cloned().collect()
                    } else {
                        Vec::new()
                    };
                    let target = self.tree.get_path_mut(&path).expect("ensured");
                    target.text.clear();
                    match target.children.get_mut(&k) {
                        Some(d) => merge(d, n),
                        None => {
                            target.children.insert(k.clone(), n);
                        }
                    }
                    let mut w = path.clone();
                    w.push(k);
                    if bulk.is_empty() {
                        self.written.push(w);
                    } else {
                        for e in bulk {
                            let mut we = w.clone();
                            we.push(e);
                            self.written.push(we);
                        }
                    }
                }
                OK
            }
            WriteOp::Edit { element, .. } => {
                let mut nodes = parse_element(element)?;
                let steps =
                    xpath::concrete(&xp).ok_or_else(|| ApiError::new(6, format!("Invalid xpath {raw}: ambiguous path for edit")))?;
                let last = steps.last().ok_or_else(|| ApiError::new(6, "edit of the config root is not allowed"))?;
                if nodes.len() != 1 || nodes[0].tag != last.tag || (last.name().is_some() && nodes[0].name() != last.name()) {
                    // [inferred] real text unknown; PAN-OS refuses an element that does not match the xpath's last node.
                    return Err(ApiError::new(
                        12,
                        format!("edit breaks config validity: element <{}> does not match the last node of xpath {raw}", nodes[0].tag),
                    ));
                }
                let partial = partial_xpath(
                    &xpath::concrete(&xp).map(|v| v.iter().map(Node::key).collect::<Vec<Key>>()).unwrap_or_default(),
                    &nodes,
                    true,
                );
                let mut node = nodes.remove(0);
                if last.tag == "member" && node.text != last.text {
                    return Err(ApiError::new(12, "edit breaks config validity: member text does not match the xpath"));
                }
                let path = self.ensure_path(&xp, raw)?;
                let (parent, key) = path.split_at(path.len() - 1);
                let key = key[0].clone();
                self.record(parent, &key);
                // Keep PAN-OS-assigned attributes (rule uuid) that the client did not send.
                let p = self.tree.get_path_mut(parent).expect("ensured");
                if let Some(old) = p.children.get(&key)
                    && let Some(u) = old.attr("uuid")
                    && node.attr("uuid").is_none()
                {
                    node.set_attr("uuid", u);
                }
                p.children.insert(key, node);
                self.marked.push((path.clone(), partial));
                self.written.push(path);
                OK
            }
            WriteOp::Delete { .. } => {
                if xp.attr.is_some() {
                    return Err(ApiError::new(6, format!("Invalid xpath {raw}: cannot delete an attribute")));
                }
                let found = xpath::select(self.tree, &xp);
                if found.is_empty() {
                    return Ok(Done { code: 7, msg: "Object doesn't exist" });
                }
                self.check_references(&found)?;
                for p in found {
                    let (parent, key) = p.split_at(p.len() - 1);
                    if parent.is_empty() && p.is_empty() {
                        continue;
                    }
                    self.record(parent, &key[0]);
                    if let Some(n) = self.tree.get_path_mut(parent) {
                        n.children.shift_remove(&key[0]);
                    }
                    if let Some(ix) = self.refs.as_mut() {
                        ix.forget(p.clone());
                    }
                    self.marked.push((p.clone(), false));
                    self.written.push(p);
                }
                OK
            }
            WriteOp::Rename { newname, .. } => {
                let found = xpath::select(self.tree, &xp);
                let p = match found.as_slice() {
                    [p] if matches!(p.last(), Some(Key::Entry(_))) => p.clone(),
                    [] => return Err(ApiError::new(7, format!("No such node: {raw}"))),
                    _ => return Err(ApiError::new(6, format!("Invalid xpath {raw}: rename needs exactly one entry"))),
                };
                if newname.is_empty() {
                    return Err(ApiError::new(400, "Missing newname"));
                }
                let (parent, key) = p.split_at(p.len() - 1);
                let newkey = Key::Entry(newname.clone());
                if self.tree.get_path(parent).is_some_and(|n| n.children.contains_key(&newkey)) {
                    if newkey == key[0] {
                        return Ok(OK);
                    }
                    return Err(ApiError::new(12, format!("{newname} already exists")));
                }
                // PAN-OS rewrites references to a renamed object (facts §11.4).
                let old = key[0].label().to_string();
                let rewrites = match super::schema::classify(&p).and_then(|(k, l)| refs::Class::of(k).map(|c| (c, l))) {
                    Some((class, loc)) => {
                        let ix = self.refs.get_or_insert_with(|| RefIndex::build(self.tree));
                        ix.refs_to(self.tree, class, &old, &loc, &[]).into_iter().map(|r| r.node.clone()).collect()
                    }
                    None => Vec::new(),
                };
                self.record(parent, &newkey);
                self.record(parent, &key[0]);
                let n = self.tree.get_path_mut(parent).expect("selected");
                let i = n.children.get_index_of(&key[0]).expect("selected");
                let (_, mut node) = n.children.shift_remove_entry(&key[0]).expect("selected");
                node.set_attr("name", newname);
                n.children.shift_insert(i, newkey.clone(), node);
                self.written.push(p.clone());
                let mut np = parent.to_vec();
                np.push(newkey);
                self.marked.push((p.clone(), false));
                self.marked.push((np.clone(), false));
                self.written.push(np.clone());
                for r in &rewrites {
                    self.rewrite_reference(r, newname);
                }
                let mut fresh = rewrites;
                fresh.push(np);
                self.note_written(&fresh);
                OK
            }
            WriteOp::Move { where_, dst, .. } => {
                let found = xpath::select(self.tree, &xp);
                let p = match found.as_slice() {
                    [p] if matches!(p.last(), Some(Key::Entry(_))) => p.clone(),
                    [] => return Err(ApiError::new(7, format!("No such node: {raw}"))),
                    _ => return Err(ApiError::new(6, format!("Invalid xpath {raw}: move needs exactly one entry"))),
                };
                let (parent, key) = p.split_at(p.len() - 1);
                let key = key[0].clone();
                let n = self.tree.get_path(parent).expect("selected");
                let cur = n.children.get_index_of(&key).expect("selected");
                let last = n.children.len() - 1;
                let target = match where_.as_str() {
                    "top" if cur == 0 => return Err(ApiError::new(14, "already at the top")),
                    "bottom" if cur == last => return Err(ApiError::new(14, "already at the bottom")),
                    "top" => 0,
                    "bottom" => last,
                    "before" | "after" => {
                        let d = dst.as_deref().filter(|d| !d.is_empty()).ok_or_else(|| ApiError::new(400, "Missing dst"))?;
                        let dk = Key::Entry(d.to_string());
                        if dk == key {
                            return Err(ApiError::new(14, format!("cannot move {d} relative to itself")));
                        }
                        let di = n.children.get_index_of(&dk).ok_or_else(|| ApiError::new(13, format!("{d} does not exist")))?;
                        // Index in the list after removing the moved entry.
                        let di = if di > cur { di - 1 } else { di };
                        if where_ == "before" { di } else { di + 1 }
                    }
                    other => return Err(ApiError::new(400, format!("Invalid where: {other}"))),
                };
                self.record(parent, &key);
                let n = self.tree.get_path_mut(parent).expect("selected");
                let (k, node) = n.children.shift_remove_entry(&key).expect("selected");
                let t = target.min(n.children.len());
                n.children.shift_insert(t, k, node);
                // The moved entry is the node written (its position is committed with it).
                self.marked.push((p.clone(), false));
                self.written.push(parent.to_vec());
                OK
            }
        };
        if matches!(op, WriteOp::Set { .. } | WriteOp::Edit { .. }) {
            let fresh: Vec<Vec<Key>> = self.marked.last().map(|(p, _)| vec![p.clone()]).unwrap_or_default();
            self.note_written(&fresh);
            let new = self.written[before..].to_vec();
            schema::validate_paths(self.tree, &new)?;
            assign_uuids(self.tree, &new);
        }
        Ok(done)
    }
}

/// PAN-OS 9.0+ gives every policy rule a `uuid` attribute; clients must tolerate it.
fn assign_uuids(tree: &mut Node, written: &[Vec<Key>]) {
    fn walk(n: &mut Node, path: &mut Vec<Key>) {
        if n.tag == "entry"
            && let Some((schema::Kind::NatRule | schema::Kind::SecurityRule, _)) = schema::classify(path)
        {
            if n.attr("uuid").is_none() {
                n.set_attr("uuid", &new_uuid());
            }
            return;
        }
        for (k, c) in n.children.iter_mut() {
            if c.children.is_empty() && c.tag != "entry" {
                continue;
            }
            path.push(k.clone());
            walk(c, path);
            path.pop();
        }
    }
    for p in written {
        // Only paths that can hold rules.
        if !p.iter().any(
            |k| matches!(k, Key::Tag(t) if t.ends_with("rulebase") || t == "device-group" || t == "nat" || t == "security" || t == "rules"),
        ) && p.len() > 4
        {
            continue;
        }
        if let Some(n) = tree.get_path_mut(p) {
            let mut path = p.clone();
            walk(n, &mut path);
        }
    }
}

fn new_uuid() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEQ: AtomicU64 = AtomicU64::new(1);
    let s = SEQ.fetch_add(1, Ordering::Relaxed);
    format!("5a1e0000-0000-4000-8000-{s:012x}")
}

/// `get`/`show` output: `<result total-count count>` with the matched nodes.
pub fn read(tree: &Node, raw: &str, running: bool) -> Result<String, ApiError> {
    let xp = if raw.is_empty() { xpath::parse("/config").unwrap() } else { parse_xpath(raw)? };
    let found = xpath::select(tree, &xp);
    if running {
        // `show` answers exactly one node (facts §2).
        if found.is_empty() {
            return Err(ApiError::nocode("No such node"));
        }
        if found.len() > 1 {
            return Err(ApiError::nocode(format!("More than one node matches the xpath {raw}; use action=get")));
        }
    } else if found.is_empty() {
        return Ok("<response status=\"success\" code=\"7\"><result/></response>".into());
    }
    let mut inner = String::new();
    for p in &found {
        let n = tree.get_path(p).expect("selected");
        match &xp.attr {
            Some(a) => {
                if let Some(v) = n.attr(a) {
                    inner.push_str(&format!("<{} {}=\"{}\"/>", n.tag, a, super::xml_tree::escape(v)));
                }
            }
            None => n.write_xml(&mut inner, !running),
        }
    }
    Ok(if running {
        format!("<response status=\"success\"><result>{inner}</result></response>")
    } else {
        let c = found.len();
        format!("<response status=\"success\" code=\"19\"><result total-count=\"{c}\" count=\"{c}\">{inner}</result></response>")
    })
}
