//! The config tree: an element tree whose children are indexed by identity, so that
//! `entry[@name='x']` and `member[text()='x']` lookups are O(1) even with 20k siblings.
//!
//! Identity of a child (its [`Key`]): an `entry` element is keyed by its `name` attribute, a
//! `member` by its text, anything else by its tag. PAN-OS config never holds two siblings with
//! the same identity, so an ordered map (insertion order = document order, which matters for
//! rulebases) models it exactly.

use indexmap::IndexMap;
use quick_xml::events::Event;
use std::fmt::Write as _;

/// Identity of a child element inside its parent.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Key {
    Entry(String),
    Member(String),
    Tag(String),
}

impl Key {
    /// Short human form used in error messages and change tracking.
    pub fn label(&self) -> &str {
        match self {
            Key::Entry(n) | Key::Member(n) | Key::Tag(n) => n,
        }
    }
}

/// One XML element. Leaves carry `text`; containers carry `children`. Mixed content does not
/// occur in PAN-OS config, so text of an element that has children is dropped on parse.
#[derive(Clone, Debug, Default)]
pub struct Node {
    pub tag: String,
    pub attrs: Vec<(String, String)>,
    pub text: String,
    pub children: IndexMap<Key, Node>,
}

/// Attributes PAN-OS adds to candidate nodes; never part of the config's meaning.
pub const VOLATILE_ATTRS: [&str; 3] = ["admin", "dirtyId", "time"];

impl Node {
    pub fn new(tag: &str) -> Node {
        Node { tag: tag.to_string(), ..Default::default() }
    }

    pub fn entry(name: &str) -> Node {
        let mut n = Node::new("entry");
        n.attrs.push(("name".into(), name.into()));
        n
    }

    pub fn leaf(tag: &str, text: &str) -> Node {
        Node { tag: tag.into(), text: text.into(), ..Default::default() }
    }

    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub fn set_attr(&mut self, name: &str, value: &str) {
        match self.attrs.iter_mut().find(|(k, _)| k == name) {
            Some(a) => a.1 = value.to_string(),
            None => self.attrs.push((name.to_string(), value.to_string())),
        }
    }

    pub fn name(&self) -> Option<&str> {
        self.attr("name")
    }

    pub fn key(&self) -> Key {
        match (self.tag.as_str(), self.name()) {
            ("entry", Some(n)) => Key::Entry(n.to_string()),
            ("member", _) => Key::Member(self.text.clone()),
            _ => Key::Tag(self.tag.clone()),
        }
    }

    /// Adds or replaces a child by identity, keeping its position if it existed.
    pub fn put(&mut self, child: Node) {
        let k = child.key();
        self.children.insert(k, child);
    }

    pub fn child(&self, tag: &str) -> Option<&Node> {
        self.children.get(&Key::Tag(tag.to_string()))
    }

    pub fn child_mut(&mut self, tag: &str) -> Option<&mut Node> {
        self.children.get_mut(&Key::Tag(tag.to_string()))
    }

    /// Child container `tag`, created when absent.
    pub fn ensure(&mut self, tag: &str) -> &mut Node {
        self.children.entry(Key::Tag(tag.to_string())).or_insert_with(|| Node::new(tag))
    }

    pub fn entry_child(&self, name: &str) -> Option<&Node> {
        self.children.get(&Key::Entry(name.to_string()))
    }

    /// Walks a path of child tags (no predicates).
    pub fn descend(&self, tags: &[&str]) -> Option<&Node> {
        let mut n = self;
        for t in tags {
            n = n.child(t)?;
        }
        Some(n)
    }

    pub fn get_path(&self, path: &[Key]) -> Option<&Node> {
        let mut n = self;
        for k in path {
            n = n.children.get(k)?;
        }
        Some(n)
    }

    pub fn get_path_mut(&mut self, path: &[Key]) -> Option<&mut Node> {
        let mut n = self;
        for k in path {
            n = n.children.get_mut(k)?;
        }
        Some(n)
    }

    /// Texts of `<member>` children (a PAN-OS list).
    pub fn members(&self) -> Vec<&str> {
        self.children.values().filter(|c| c.tag == "member").map(|c| c.text.as_str()).collect()
    }

    pub fn entries(&self) -> impl Iterator<Item = &Node> {
        self.children.values().filter(|c| c.tag == "entry")
    }

    /// Order-sensitive structural equality that ignores PAN-OS's volatile candidate attributes.
    pub fn same(&self, other: &Node) -> bool {
        if self.tag != other.tag || self.children.len() != other.children.len() {
            return false;
        }
        let attrs = |n: &Node| {
            let mut v: Vec<(String, String)> = n.attrs.iter().filter(|(k, _)| !VOLATILE_ATTRS.contains(&k.as_str())).cloned().collect();
            v.sort();
            v
        };
        if attrs(self) != attrs(other) {
            return false;
        }
        if self.children.is_empty() && self.text != other.text {
            return false;
        }
        self.children.iter().zip(other.children.iter()).all(|((ka, a), (kb, b))| ka == kb && a.same(b))
    }

    /// Number of elements in the subtree (used by stats and the scale benchmark).
    pub fn count(&self) -> usize {
        1 + self.children.values().map(Node::count).sum::<usize>()
    }

    pub fn to_xml(&self) -> String {
        let mut s = String::new();
        self.write_xml(&mut s, true);
        s
    }

    /// Serialises the element; `with_volatile=false` strips admin/dirtyId/time.
    pub fn write_xml(&self, out: &mut String, with_volatile: bool) {
        out.push('<');
        out.push_str(&self.tag);
        for (k, v) in &self.attrs {
            if !with_volatile && VOLATILE_ATTRS.contains(&k.as_str()) {
                continue;
            }
            let _ = write!(out, " {}=\"{}\"", k, escape(v));
        }
        if self.children.is_empty() && self.text.is_empty() {
            out.push_str("/>");
            return;
        }
        out.push('>');
        if self.children.is_empty() {
            out.push_str(&escape(&self.text));
        } else {
            for c in self.children.values() {
                c.write_xml(out, with_volatile);
            }
        }
        out.push_str("</");
        out.push_str(&self.tag);
        out.push('>');
    }

    /// Removes the volatile attributes from the whole subtree.
    pub fn strip_volatile(&mut self) {
        self.attrs.retain(|(k, _)| !VOLATILE_ATTRS.contains(&k.as_str()));
        for c in self.children.values_mut() {
            c.strip_volatile();
        }
    }
}

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            // Attributes are always written with double quotes, so `'` stays literal (as in
            // PAN-OS output such as "Object doesn't exist").
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

fn resolve_entity(name: &str) -> Result<char, String> {
    match name {
        "amp" => Ok('&'),
        "lt" => Ok('<'),
        "gt" => Ok('>'),
        "quot" => Ok('"'),
        "apos" => Ok('\''),
        _ => {
            let num = if let Some(h) = name.strip_prefix("#x").or_else(|| name.strip_prefix("#X")) {
                u32::from_str_radix(h, 16).ok()
            } else if let Some(d) = name.strip_prefix('#') {
                d.parse::<u32>().ok()
            } else {
                None
            };
            num.and_then(char::from_u32).ok_or_else(|| format!("unknown entity &{name};"))
        }
    }
}

/// Resolves the five predefined entities and character references in raw text.
pub fn unescape(raw: &str) -> Result<String, String> {
    if !raw.contains('&') {
        return Ok(raw.to_string());
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let end = after.find(';').ok_or_else(|| "unterminated entity".to_string())?;
        out.push(resolve_entity(&after[..end])?);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Parses an XML fragment that may hold several sibling top-level elements (PAN-OS `element`
/// params do), e.g. `<source>..</source><destination>..</destination>`.
pub fn parse_fragment(s: &str) -> Result<Vec<Node>, String> {
    let mut reader = quick_xml::Reader::from_str(s);
    let mut stack: Vec<Node> = Vec::new();
    let mut top: Vec<Node> = Vec::new();
    let finish = |node: Node, stack: &mut Vec<Node>, top: &mut Vec<Node>| {
        let mut node = node;
        if !node.children.is_empty() {
            node.text.clear();
        }
        match stack.last_mut() {
            Some(p) => p.put(node),
            None => top.push(node),
        }
    };
    loop {
        let ev = reader.read_event().map_err(|e| format!("malformed XML: {e}"))?;
        match ev {
            Event::Start(e) => stack.push(start_node(&e)?),
            Event::Empty(e) => {
                let n = start_node(&e)?;
                finish(n, &mut stack, &mut top);
            }
            Event::End(_) => {
                let n = stack.pop().ok_or("unbalanced end tag")?;
                finish(n, &mut stack, &mut top);
            }
            Event::Text(t) => {
                let txt = unescape(&t)?;
                match stack.last_mut() {
                    Some(n) => n.text.push_str(&txt),
                    None if txt.trim().is_empty() => {}
                    None => return Err("text outside of an element".into()),
                }
            }
            Event::GeneralRef(r) => {
                let c = resolve_entity(&r)?;
                match stack.last_mut() {
                    Some(n) => n.text.push(c),
                    None => return Err("text outside of an element".into()),
                }
            }
            Event::CData(c) => {
                let txt = c.to_string();
                if let Some(n) = stack.last_mut() {
                    n.text.push_str(&txt);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !stack.is_empty() {
        return Err("unexpected end of XML (unclosed element)".into());
    }
    // Whitespace-only text in a leaf that turned out to be a container was cleared in finish().
    Ok(top)
}

fn start_node(e: &quick_xml::events::BytesStart) -> Result<Node, String> {
    let mut n = Node::new(e.name().as_ref());
    for a in e.attributes() {
        let a = a.map_err(|e| format!("malformed attribute: {e}"))?;
        let k = a.key.as_ref().to_string();
        let v = unescape(&a.value)?;
        n.attrs.push((k, v));
    }
    Ok(n)
}

/// Parses a document with exactly one root element.
pub fn parse_one(s: &str) -> Result<Node, String> {
    let mut v = parse_fragment(s)?;
    if v.len() != 1 {
        return Err(format!("expected one root element, found {}", v.len()));
    }
    Ok(v.remove(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_index() {
        let n = parse_one(r#"<a><entry name="x &amp; y"><m>1 &lt; 2</m></entry><list><member>p</member><member>q</member></list></a>"#)
            .unwrap();
        assert_eq!(n.entry_child("x & y").unwrap().child("m").unwrap().text, "1 < 2");
        assert_eq!(n.child("list").unwrap().members(), vec!["p", "q"]);
        let again = parse_one(&n.to_xml()).unwrap();
        assert!(n.same(&again));
    }

    #[test]
    fn fragment_with_siblings_and_cdata() {
        let v = parse_fragment("<a>1</a>\n<b><![CDATA[<x>]]></b>").unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[1].text, "<x>");
    }

    #[test]
    fn malformed_is_error() {
        assert!(parse_fragment("<a><b></a>").is_err());
        assert!(parse_fragment("<a>").is_err());
    }

    #[test]
    fn same_is_order_sensitive() {
        let a = parse_one("<r><entry name='1'/><entry name='2'/></r>").unwrap();
        let b = parse_one("<r><entry name='2'/><entry name='1'/></r>").unwrap();
        assert!(!a.same(&b));
    }
}
