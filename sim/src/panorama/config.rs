//! `type=config` write and read actions on a tree, with an undo log so that a failed write
//! (schema error, or any failing sub-op of a multi-config) leaves the tree untouched without
//! cloning 20k-entry trees.

use super::response::ApiError;
use super::schema;
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
    /// Paths written (for change tracking and validation).
    pub written: Vec<Vec<Key>>,
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
        Txn { tree, undo: Vec::new(), written: Vec::new() }
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

    pub fn commit(self) -> Vec<Vec<Key>> {
        self.written
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

    pub fn apply(&mut self, op: &WriteOp) -> Result<Done, ApiError> {
        let raw = op.xpath();
        let xp = parse_xpath(raw)?;
        let before = self.written.len();
        let done = match op {
            WriteOp::Set { element, .. } => {
                let nodes = parse_element(element)?;
                let path = self.ensure_path(&xp, raw)?;
                for n in nodes {
                    let k = n.key();
                    self.record(&path, &k);
                    // PAN-OS marks uncommitted changes per node: a bulk `set` of a container of
                    // named entries (pan-os-python's create_similar, pango's bulk Set) makes each
                    // entry dirty, not the container, so a partial commit takes only those entries.
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
                for p in found {
                    let (parent, key) = p.split_at(p.len() - 1);
                    if parent.is_empty() && p.is_empty() {
                        continue;
                    }
                    self.record(parent, &key[0]);
                    if let Some(n) = self.tree.get_path_mut(parent) {
                        n.children.shift_remove(&key[0]);
                    }
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
                self.written.push(np);
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
                self.written.push(parent.to_vec());
                OK
            }
        };
        if matches!(op, WriteOp::Set { .. } | WriteOp::Edit { .. }) {
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
