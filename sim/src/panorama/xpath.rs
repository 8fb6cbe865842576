//! The xpath subset PAN-OS clients send: absolute child steps, `entry[@name='x']`,
//! `entry[@name='a' or @name='b']`, `member[text()='x']`, bare `entry`, `concat(...)` literals
//! for names holding quotes (pan-os-python's `_xpath_safe`), and a trailing `/@name`.
//! Anything else (`//`, positional predicates, functions) is refused with PAN-OS code 6.

use super::xml_tree::{Key, Node};

#[derive(Clone, Debug, PartialEq)]
pub enum Pred {
    None,
    /// `[@name='a' or @name='b']`
    Names(Vec<String>),
    /// `[text()='a' or text()='b']`
    Texts(Vec<String>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub tag: String,
    pub pred: Pred,
}

#[derive(Clone, Debug, PartialEq)]
pub struct XPath {
    pub steps: Vec<Step>,
    /// Trailing attribute selection, e.g. `/@name`.
    pub attr: Option<String>,
}

struct Lexer<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Lexer<'a> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn eat(&mut self, lit: &str) -> bool {
        self.ws();
        if self.s[self.i..].starts_with(lit.as_bytes()) {
            self.i += lit.len();
            true
        } else {
            false
        }
    }
    fn ident(&mut self) -> String {
        let st = self.i;
        while self.i < self.s.len() {
            let c = self.s[self.i];
            if c.is_ascii_alphanumeric() || c == b'-' || c == b'_' || c == b'.' || c == b':' {
                self.i += 1;
            } else {
                break;
            }
        }
        String::from_utf8_lossy(&self.s[st..self.i]).into_owned()
    }
    fn quoted(&mut self) -> Result<String, String> {
        self.ws();
        let q = self.peek().ok_or("expected a string literal")?;
        if q != b'\'' && q != b'"' {
            return Err("expected a string literal".into());
        }
        self.i += 1;
        let st = self.i;
        while self.i < self.s.len() && self.s[self.i] != q {
            self.i += 1;
        }
        if self.i >= self.s.len() {
            return Err("unterminated string literal".into());
        }
        let v = String::from_utf8_lossy(&self.s[st..self.i]).into_owned();
        self.i += 1;
        Ok(v)
    }
    /// A literal or `concat(lit, lit, ...)`.
    fn value(&mut self) -> Result<String, String> {
        self.ws();
        if self.eat("concat(") {
            let mut out = String::new();
            loop {
                out.push_str(&self.value()?);
                if self.eat(",") {
                    continue;
                }
                if self.eat(")") {
                    return Ok(out);
                }
                return Err("expected ',' or ')' in concat()".into());
            }
        }
        self.quoted()
    }
}

pub fn parse(xpath: &str) -> Result<XPath, String> {
    let mut lx = Lexer { s: xpath.trim().as_bytes(), i: 0 };
    let mut steps = Vec::new();
    let mut attr = None;
    if lx.peek() != Some(b'/') {
        return Err("xpath must be absolute".into());
    }
    while lx.i < lx.s.len() {
        if lx.peek() != Some(b'/') {
            return Err(format!("unexpected character at offset {}", lx.i));
        }
        lx.i += 1;
        if lx.peek() == Some(b'/') {
            return Err("'//' is not supported".into());
        }
        if lx.peek() == Some(b'@') {
            lx.i += 1;
            let a = lx.ident();
            if a.is_empty() || lx.i != lx.s.len() {
                return Err("attribute selection must be the last step".into());
            }
            attr = Some(a);
            break;
        }
        let tag = lx.ident();
        if tag.is_empty() {
            if lx.i == lx.s.len() {
                break; // trailing slash
            }
            return Err(format!("empty step at offset {}", lx.i));
        }
        let mut pred = Pred::None;
        if lx.peek() == Some(b'[') {
            lx.i += 1;
            let mut names = Vec::new();
            let mut texts = Vec::new();
            loop {
                if lx.eat("@name") {
                    if !lx.eat("=") {
                        return Err("expected '=' after @name".into());
                    }
                    names.push(lx.value()?);
                } else if lx.eat("text()") {
                    if !lx.eat("=") {
                        return Err("expected '=' after text()".into());
                    }
                    texts.push(lx.value()?);
                } else {
                    return Err("unsupported predicate".into());
                }
                if lx.eat("or") {
                    continue;
                }
                if lx.eat("]") {
                    break;
                }
                return Err("expected 'or' or ']' in predicate".into());
            }
            pred = match (names.is_empty(), texts.is_empty()) {
                (false, true) => Pred::Names(names),
                (true, false) => Pred::Texts(texts),
                _ => return Err("mixed @name and text() predicates".into()),
            };
        }
        steps.push(Step { tag, pred });
    }
    if steps.is_empty() {
        return Err("empty xpath".into());
    }
    Ok(XPath { steps, attr })
}

/// Children of `n` matched by one step, as keys (in document order for scans).
fn step_keys(n: &Node, step: &Step) -> Vec<Key> {
    match &step.pred {
        Pred::Names(names) if step.tag == "entry" => {
            names.iter().map(|nm| Key::Entry(nm.clone())).filter(|k| n.children.contains_key(k)).collect()
        }
        Pred::Texts(texts) if step.tag == "member" => {
            texts.iter().map(|t| Key::Member(t.clone())).filter(|k| n.children.contains_key(k)).collect()
        }
        Pred::Names(names) => n
            .children
            .iter()
            .filter(|(_, c)| c.tag == step.tag && c.name().is_some_and(|x| names.iter().any(|nm| nm == x)))
            .map(|(k, _)| k.clone())
            .collect(),
        Pred::Texts(texts) => {
            n.children.iter().filter(|(_, c)| c.tag == step.tag && texts.contains(&c.text)).map(|(k, _)| k.clone()).collect()
        }
        Pred::None if step.tag == "entry" || step.tag == "member" => {
            n.children.iter().filter(|(_, c)| c.tag == step.tag).map(|(k, _)| k.clone()).collect()
        }
        Pred::None => {
            let k = Key::Tag(step.tag.clone());
            if n.children.contains_key(&k) { vec![k] } else { vec![] }
        }
    }
}

/// All paths (keys below the root) of nodes matching the xpath, in document order.
pub fn select(root: &Node, xp: &XPath) -> Vec<Vec<Key>> {
    let first = &xp.steps[0];
    if first.tag != root.tag || first.pred != Pred::None {
        return vec![];
    }
    let mut cur: Vec<Vec<Key>> = vec![vec![]];
    for step in &xp.steps[1..] {
        let mut next = Vec::new();
        for p in &cur {
            let n = root.get_path(p).expect("selected path exists");
            for k in step_keys(n, step) {
                let mut q = p.clone();
                q.push(k);
                next.push(q);
            }
        }
        if next.is_empty() {
            return next;
        }
        cur = next;
    }
    cur
}

/// For writes that may create nodes: the exact node each step names (a template with tag,
/// name or text), or None when a step is ambiguous (bare `entry`, several names, `/@attr`).
pub fn concrete(xp: &XPath) -> Option<Vec<Node>> {
    if xp.attr.is_some() {
        return None;
    }
    let mut out = Vec::new();
    for step in &xp.steps[1..] {
        let n = match &step.pred {
            Pred::None if step.tag == "entry" || step.tag == "member" => return None,
            Pred::None => Node::new(&step.tag),
            Pred::Names(v) if v.len() == 1 => {
                let mut n = Node::new(&step.tag);
                n.attrs.push(("name".into(), v[0].clone()));
                n
            }
            Pred::Texts(v) if v.len() == 1 => Node::leaf(&step.tag, &v[0]),
            _ => return None,
        };
        out.push(n);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::panorama::xml_tree::parse_one;

    #[test]
    fn parses_client_forms() {
        let xp = parse("/config/devices/entry[@name='localhost.localdomain']/device-group/entry[@name=\"DG\"]/address/entry[@name='a' or @name='b']/@name").unwrap();
        assert_eq!(xp.steps.len(), 7);
        assert_eq!(xp.steps[6].pred, Pred::Names(vec!["a".into(), "b".into()]));
        assert_eq!(xp.attr.as_deref(), Some("name"));
        let xp = parse("/config/shared/tag/entry[@name=concat('it', \"'\", 's')]/x/member[text()='m1']").unwrap();
        assert_eq!(xp.steps[3].pred, Pred::Names(vec!["it's".into()]));
        assert_eq!(xp.steps[5].pred, Pred::Texts(vec!["m1".into()]));
        assert!(parse("config/x").is_err());
        assert!(parse("/config//x").is_err());
        assert!(parse("/config/x[1]").is_err());
        assert!(parse("/config/x[@name='a'").is_err());
    }

    #[test]
    fn selects() {
        let root =
            parse_one("<config><a><entry name='1'><m><member>x</member><member>y</member></m></entry><entry name='2'/></a></config>")
                .unwrap();
        assert_eq!(select(&root, &parse("/config/a/entry").unwrap()).len(), 2);
        assert_eq!(select(&root, &parse("/config/a/entry[@name='2' or @name='9']").unwrap()).len(), 1);
        assert_eq!(select(&root, &parse("/config/a/entry[@name='1']/m/member[text()='y']").unwrap()).len(), 1);
        assert!(select(&root, &parse("/config/b").unwrap()).is_empty());
        assert!(select(&root, &parse("/other").unwrap()).is_empty());
    }
}
