//! A small owned XML element tree over quick-xml. PAN-OS answers come in several envelope
//! shapes (attribute quoting varies, CDATA lines, nested msg/line), so the adapter reads them
//! as a tree rather than through fixed serde structs.

use std::fmt::Write;

use quick_xml::Reader;
use quick_xml::escape::{escape, unescape};
use quick_xml::events::Event;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Element(Element),
    Text(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Element {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Node>,
}

#[derive(Debug, thiserror::Error)]
#[error("malformed XML at byte {pos}: {msg}")]
pub struct XmlError {
    pub pos: u64,
    pub msg: String,
}

impl Element {
    pub fn new(name: impl Into<String>) -> Element {
        Element { name: name.into(), ..Default::default() }
    }

    pub fn attr(mut self, k: &str, v: impl Into<String>) -> Element {
        self.attrs.push((k.to_string(), v.into()));
        self
    }

    /// Appends a child element.
    pub fn child(mut self, e: Element) -> Element {
        self.children.push(Node::Element(e));
        self
    }

    /// Appends `<name>text</name>`.
    pub fn leaf(self, name: &str, text: impl Into<String>) -> Element {
        self.child(Element::new(name).text(text))
    }

    /// Appends `<name><member>a</member>…</name>`.
    pub fn members<'a>(self, name: &str, items: impl IntoIterator<Item = &'a String>) -> Element {
        let mut list = Element::new(name);
        for m in items {
            list = list.leaf("member", m.clone());
        }
        self.child(list)
    }

    pub fn text(mut self, t: impl Into<String>) -> Element {
        self.children.push(Node::Text(t.into()));
        self
    }

    pub fn get_attr(&self, k: &str) -> Option<&str> {
        self.attrs.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str())
    }

    pub fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            Node::Text(_) => None,
        })
    }

    /// First child element named `name`.
    pub fn find(&self, name: &str) -> Option<&Element> {
        self.elements().find(|e| e.name == name)
    }

    /// Removes and returns the first child element named `name` (no copy of a large answer).
    pub fn take(&mut self, name: &str) -> Option<Element> {
        let at = self.children.iter().position(|n| matches!(n, Node::Element(e) if e.name == name))?;
        match self.children.remove(at) {
            Node::Element(e) => Some(e),
            Node::Text(_) => None,
        }
    }

    /// Follows a `a/b/c` path of child names.
    pub fn path(&self, path: &str) -> Option<&Element> {
        path.split('/').try_fold(self, |e, step| e.find(step))
    }

    /// Concatenated text of this element and its descendants, trimmed.
    pub fn text_content(&self) -> String {
        fn collect(e: &Element, out: &mut String) {
            for n in &e.children {
                match n {
                    Node::Text(t) => out.push_str(t),
                    Node::Element(c) => collect(c, out),
                }
            }
        }
        let mut s = String::new();
        collect(self, &mut s);
        s.trim().to_string()
    }

    /// Text of the child at `path`, if any.
    pub fn text_at(&self, path: &str) -> Option<String> {
        self.path(path).map(Element::text_content)
    }

    /// `<member>` texts of the child list `name`.
    pub fn member_list(&self, name: &str) -> Vec<String> {
        self.find(name).map(|l| l.elements().filter(|m| m.name == "member").map(Element::text_content).collect()).unwrap_or_default()
    }

    pub fn to_xml(&self) -> String {
        let mut s = String::new();
        self.write(&mut s);
        s
    }

    fn write(&self, out: &mut String) {
        out.push('<');
        out.push_str(&self.name);
        for (k, v) in &self.attrs {
            let _ = write!(out, " {k}=\"{}\"", escape(v.as_str()));
        }
        if self.children.is_empty() {
            out.push_str("/>");
            return;
        }
        out.push('>');
        for n in &self.children {
            match n {
                Node::Text(t) => out.push_str(&escape(t.as_str())),
                Node::Element(e) => e.write(out),
            }
        }
        let _ = write!(out, "</{}>", self.name);
    }
}

/// Parses a document (or a fragment with several top-level elements, wrapped in `<root>`).
pub fn parse(text: &str) -> Result<Element, XmlError> {
    parse_entries(text, None, &mut |_| {})
}

/// Parses like [`parse`], but hands each `<entry>` element at `entries_at` (the root element is
/// depth 1) to `each` as soon as it is complete, instead of keeping it in the tree: a container
/// of 16,000 entries is never held as one tree (tens of megabytes) next to its decoded form.
pub fn parse_entries(text: &str, entries_at: Option<usize>, each: &mut dyn FnMut(Element)) -> Result<Element, XmlError> {
    let mut reader = Reader::from_str(text);
    let mut stack: Vec<Element> = vec![Element::new("#document")];
    let err = |r: &Reader<&[u8]>, msg: String| XmlError { pos: r.buffer_position(), msg };
    loop {
        match reader.read_event() {
            Ok(Event::Start(s)) => stack.push(start(&reader, &s)?),
            Ok(Event::Empty(s)) => {
                let e = start(&reader, &s)?;
                if entries_at == Some(stack.len()) && e.name == "entry" {
                    each(e);
                } else {
                    stack.last_mut().unwrap().children.push(Node::Element(e));
                }
            }
            Ok(Event::End(_)) => {
                let e = stack.pop().unwrap();
                if entries_at == Some(stack.len()) && e.name == "entry" {
                    each(e);
                    continue;
                }
                let parent = stack.last_mut().ok_or_else(|| err(&reader, "unbalanced end tag".into()))?;
                parent.children.push(Node::Element(e));
            }
            Ok(Event::Text(t)) => {
                let raw = (*t).to_string();
                let s = unescape(&raw).map_err(|e| err(&reader, e.to_string()))?.into_owned();
                push_text(stack.last_mut().unwrap(), s);
            }
            Ok(Event::GeneralRef(r)) => {
                let name = (*r).to_string();
                let s = unescape(&format!("&{name};")).map_err(|e| err(&reader, e.to_string()))?.into_owned();
                push_text(stack.last_mut().unwrap(), s);
            }
            Ok(Event::CData(c)) => {
                push_text(stack.last_mut().unwrap(), (*c).to_string());
            }
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(e) => return Err(err(&reader, e.to_string())),
        }
    }
    if stack.len() != 1 {
        return Err(err(&reader, "unclosed element".into()));
    }
    let doc = stack.pop().unwrap();
    // Moved, not cloned: a 16,000-entry answer is tens of megabytes as a tree.
    let mut tops: Vec<Element> = doc
        .children
        .into_iter()
        .filter_map(|n| match n {
            Node::Element(e) => Some(e),
            Node::Text(_) => None,
        })
        .collect();
    match tops.len() {
        1 => Ok(tops.pop().unwrap()),
        0 => Err(XmlError { pos: 0, msg: "no element".into() }),
        _ => Ok(Element { name: "root".into(), attrs: vec![], children: tops.into_iter().map(Node::Element).collect() }),
    }
}

fn push_text(e: &mut Element, s: String) {
    if let Some(Node::Text(prev)) = e.children.last_mut() {
        prev.push_str(&s);
    } else if !s.is_empty() {
        e.children.push(Node::Text(s));
    }
}

fn start(reader: &Reader<&[u8]>, s: &quick_xml::events::BytesStart<'_>) -> Result<Element, XmlError> {
    let mut e = Element::new(s.name().into_inner().to_string());
    for a in s.attributes() {
        let a = a.map_err(|x| XmlError { pos: reader.buffer_position(), msg: x.to_string() })?;
        let v = a
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .map_err(|x| XmlError { pos: reader.buffer_position(), msg: x.to_string() })?
            .into_owned();
        e.attrs.push((a.key.into_inner().to_string(), v));
    }
    Ok(e)
}

/// Drops whitespace-only text between elements (PAN-OS pretty-prints its answers).
pub fn strip_whitespace(e: &mut Element) {
    let has_elements = e.elements().next().is_some();
    e.children.retain_mut(|n| match n {
        Node::Text(t) => !(has_elements && t.trim().is_empty()),
        Node::Element(c) => {
            strip_whitespace(c);
            true
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_pan_os_envelopes_with_odd_quoting_and_cdata() {
        let r = parse("<response status = 'error' code = '403'><result><msg>Invalid Credential</msg></result></response>").unwrap();
        assert_eq!(r.get_attr("status"), Some("error"));
        assert_eq!(r.get_attr("code"), Some("403"));
        assert_eq!(r.text_at("result/msg").as_deref(), Some("Invalid Credential"));
        let r = parse("<response status=\"error\"><msg><line><![CDATA[ a -> b is invalid ]]></line></msg></response>").unwrap();
        assert_eq!(r.text_at("msg/line").as_deref(), Some("a -> b is invalid"));
    }

    #[test]
    fn round_trips_escaped_text_and_attributes() {
        let e = Element::new("entry").attr("name", "a'b\"<&>").leaf("description", "x < y & \"z\"");
        let back = parse(&e.to_xml()).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn fragments_with_several_roots_are_wrapped() {
        let r = parse("<a/><b>t</b>").unwrap();
        assert_eq!(r.name, "root");
        assert_eq!(r.elements().count(), 2);
    }
}
