//! Label selectors (`a=b`, `a==b`, `a!=b`, `a`, `!a`, `a in (x,y)`, `a notin (x,y)`) and field
//! selectors (`path=value`, `path==value`, `path!=value`), as the API server parses them from the
//! `labelSelector` and `fieldSelector` query parameters.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub enum Requirement {
    Eq(String, String),
    NotEq(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabelSelector(pub Vec<Requirement>);

/// Splits on commas that are not inside parentheses.
fn split_terms(s: &str) -> Result<Vec<&str>, String> {
    let (mut depth, mut start, mut out) = (0i32, 0usize, Vec::new());
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth < 0 {
                    return Err(format!("unbalanced parenthesis in selector {s:?}"));
                }
            }
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(format!("unbalanced parenthesis in selector {s:?}"));
    }
    out.push(&s[start..]);
    Ok(out)
}

/// A label key: optional DNS-subdomain prefix and `/`, then a name of `[A-Za-z0-9._-]` (≤63).
fn valid_key(k: &str) -> bool {
    let name = k.rsplit_once('/').map(|(p, n)| if p.is_empty() || p.len() > 253 { "" } else { n }).unwrap_or(k);
    !name.is_empty()
        && name.len() <= 63
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
}

fn valid_value(v: &str) -> bool {
    v.is_empty()
        || (v.len() <= 63
            && v.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
            && v.starts_with(|c: char| c.is_ascii_alphanumeric())
            && v.ends_with(|c: char| c.is_ascii_alphanumeric()))
}

fn key(k: &str) -> Result<String, String> {
    let k = k.trim();
    if valid_key(k) { Ok(k.to_string()) } else { Err(format!("invalid label key {k:?}")) }
}

fn value(v: &str) -> Result<String, String> {
    let v = v.trim();
    if valid_value(v) { Ok(v.to_string()) } else { Err(format!("invalid label value: {v:?}")) }
}

fn set_op(term: &str, op: &str) -> Option<(String, String)> {
    // "key in (a,b)" / "key notin (a,b)": the operator is a separate word.
    let idx = term.find(&format!(" {op} ")).or_else(|| term.find(&format!(" {op}(")))?;
    Some((term[..idx].to_string(), term[idx + op.len() + 1..].trim().to_string()))
}

fn set_values(s: &str) -> Result<Vec<String>, String> {
    let inner = s.strip_prefix('(').and_then(|x| x.strip_suffix(')')).ok_or_else(|| format!("expected a parenthesised set, got {s:?}"))?;
    inner.split(',').map(value).collect()
}

impl LabelSelector {
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut reqs = Vec::new();
        if s.trim().is_empty() {
            return Ok(Self(reqs));
        }
        for term in split_terms(s)? {
            let t = term.trim();
            if t.is_empty() {
                return Err(format!("empty requirement in selector {s:?}"));
            }
            let r = if let Some(k) = t.strip_prefix('!') {
                Requirement::NotExists(key(k)?)
            } else if let Some((k, vs)) = set_op(t, "notin") {
                Requirement::NotIn(key(&k)?, set_values(&vs)?)
            } else if let Some((k, vs)) = set_op(t, "in") {
                Requirement::In(key(&k)?, set_values(&vs)?)
            } else if let Some((k, v)) = t.split_once("!=") {
                Requirement::NotEq(key(k)?, value(v)?)
            } else if let Some((k, v)) = t.split_once("==") {
                Requirement::Eq(key(k)?, value(v)?)
            } else if let Some((k, v)) = t.split_once('=') {
                Requirement::Eq(key(k)?, value(v)?)
            } else {
                Requirement::Exists(key(t)?)
            };
            reqs.push(r);
        }
        Ok(Self(reqs))
    }

    /// Whether an object (its `metadata.labels`) satisfies every requirement.
    pub fn matches(&self, obj: &Value) -> bool {
        let labels = obj.pointer("/metadata/labels").and_then(Value::as_object);
        let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        self.0.iter().all(|r| match r {
            Requirement::Eq(k, v) => get(k) == Some(v.as_str()),
            Requirement::NotEq(k, v) => get(k) != Some(v.as_str()),
            Requirement::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            Requirement::NotIn(k, vs) => get(k).is_none_or(|x| !vs.iter().any(|v| v == x)),
            Requirement::Exists(k) => get(k).is_some(),
            Requirement::NotExists(k) => get(k).is_none(),
        })
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldSelector(pub Vec<(String, bool, String)>);

impl FieldSelector {
    /// Parses `a=b,c!=d`; `allowed` says which field labels the resource supports.
    pub fn parse(s: &str, allowed: impl Fn(&str) -> bool) -> Result<Self, String> {
        let mut out = Vec::new();
        if s.trim().is_empty() {
            return Ok(Self(out));
        }
        for term in s.split(',') {
            let t = term.trim();
            let (k, eq, v) = if let Some((k, v)) = t.split_once("!=") {
                (k, false, v)
            } else if let Some((k, v)) = t.split_once("==") {
                (k, true, v)
            } else if let Some((k, v)) = t.split_once('=') {
                (k, true, v)
            } else {
                return Err(format!("invalid selector: '{s}'; can't understand '{t}'"));
            };
            let k = k.trim();
            if !allowed(k) {
                return Err(format!("field label not supported: {k}"));
            }
            out.push((k.to_string(), eq, v.trim().to_string()));
        }
        Ok(Self(out))
    }

    pub fn matches(&self, obj: &Value) -> bool {
        self.0.iter().all(|(path, eq, want)| {
            let mut cur = Some(obj);
            for part in path.split('.') {
                cur = cur.and_then(|c| c.get(part));
            }
            let have = match cur {
                None | Some(Value::Null) => String::new(),
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
            };
            (have == *want) == *eq
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(labels: Value) -> Value {
        json!({"metadata": {"name": "a", "namespace": "n", "labels": labels}, "spec": {"type": "LoadBalancer"}})
    }

    #[test]
    fn label_selector_forms() {
        let o = obj(json!({"panw-tg-port": "8080", "app": "web"}));
        for (s, want) in [
            ("panw-tg-port", true),
            ("!panw-tg-port", false),
            ("app=web", true),
            ("app==web", true),
            ("app!=web", false),
            ("app in (web, db)", true),
            ("app notin (web,db)", false),
            ("tier notin (x)", true),
            ("app=web,missing", false),
            ("", true),
        ] {
            assert_eq!(LabelSelector::parse(s).unwrap().matches(&o), want, "{s}");
        }
        assert!(LabelSelector::parse("a in (b").is_err());
        assert!(LabelSelector::parse("a=b c").is_err());
        assert!(LabelSelector::parse("example.com/x=1").unwrap().matches(&obj(json!({"example.com/x": "1"}))));
    }

    #[test]
    fn field_selector_forms() {
        let o = obj(json!({}));
        let ok = |k: &str| k == "metadata.name" || k == "spec.type";
        assert!(FieldSelector::parse("metadata.name=a", ok).unwrap().matches(&o));
        assert!(!FieldSelector::parse("metadata.name!=a", ok).unwrap().matches(&o));
        assert!(FieldSelector::parse("spec.type==LoadBalancer", ok).unwrap().matches(&o));
        assert_eq!(FieldSelector::parse("spec.foo=1", ok).unwrap_err(), "field label not supported: spec.foo");
    }
}
