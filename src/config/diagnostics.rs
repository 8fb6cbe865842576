//! Source locations for config problems: a map from key path to byte span, and the
//! `file:line:col: key = value: message` lines users see.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::de::{DeTable, DeValue};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// One problem, located by key path (`clusters.0.subnets.1`) and byte span.
#[derive(Debug, Clone)]
pub struct Diagnostic {
    pub severity: Severity,
    /// Dotted key path with numeric indexes for arrays; empty for whole-file problems.
    pub key: String,
    pub span: Option<Range<usize>>,
    /// The offending value as written in the file (filled in from the span).
    pub value: Option<String>,
    pub message: String,
    /// Filled in by `Diagnostics::from_vec`.
    pub line_col: Option<(usize, usize)>,
}

impl Diagnostic {
    pub fn from_toml_error(e: &toml::de::Error) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            key: String::new(),
            span: e.span(),
            value: None,
            message: e.message().trim().to_string(),
            line_col: None,
        }
    }
}

/// Key path → span of the value (and of the key, for keys that are unknown).
#[derive(Debug, Default)]
pub struct SourceMap {
    spans: BTreeMap<String, Range<usize>>,
}

impl SourceMap {
    pub fn parse(_path: &Path, text: &str) -> Result<SourceMap, Diagnostic> {
        let doc = DeTable::parse(text).map_err(|e| Diagnostic::from_toml_error(&e))?;
        let mut map = SourceMap::default();
        map.walk_table("", doc.get_ref());
        Ok(map)
    }

    fn walk_table(&mut self, prefix: &str, table: &DeTable<'_>) {
        for (k, v) in table.iter() {
            let key = if prefix.is_empty() { k.get_ref().to_string() } else { format!("{prefix}.{}", k.get_ref()) };
            // The key's own span helps for unknown keys; the value's span for bad values.
            self.spans.insert(format!("{key}#key"), k.span());
            self.walk_value(&key, v);
        }
    }

    fn walk_value(&mut self, key: &str, v: &toml::Spanned<DeValue<'_>>) {
        self.spans.insert(key.to_string(), v.span());
        match v.get_ref() {
            DeValue::Table(t) => self.walk_table(key, t),
            DeValue::Array(a) => {
                for (i, item) in a.iter().enumerate() {
                    self.walk_value(&format!("{key}.{i}"), item);
                }
            }
            _ => {}
        }
    }

    /// Span of the value at `key`, else of the nearest ancestor that exists in the file.
    pub fn span(&self, key: &str) -> Option<Range<usize>> {
        let mut k = key;
        loop {
            if let Some(s) = self.spans.get(k) {
                return Some(s.clone());
            }
            k = k.rsplit_once('.')?.0;
        }
    }

    /// The key whose value sits exactly at `span` (serde's type errors carry only a span).
    pub fn key_at(&self, span: &Range<usize>) -> Option<String> {
        self.spans.iter().find(|(k, s)| *s == span && !k.ends_with("#key")).map(|(k, _)| k.clone())
    }

    fn key_span(&self, key: &str) -> Option<Range<usize>> {
        self.spans.get(&format!("{key}#key")).cloned().or_else(|| self.span(key))
    }

    /// Whether the key was written in the file (as opposed to defaulted).
    pub fn contains(&self, key: &str) -> bool {
        self.spans.contains_key(key)
    }

    pub fn error(&self, key: &str, message: impl Into<String>) -> Diagnostic {
        self.diag(Severity::Error, key, message)
    }

    pub fn warning(&self, key: &str, message: impl Into<String>) -> Diagnostic {
        self.diag(Severity::Warning, key, message)
    }

    fn diag(&self, severity: Severity, key: &str, message: impl Into<String>) -> Diagnostic {
        let span = if self.contains(key) { self.span(key) } else { self.key_span(key) };
        Diagnostic { severity, key: key.to_string(), span, value: None, message: message.into(), line_col: None }
    }
}

/// serde_ignored's path, in our dotted form (Option/newtype layers are not keys).
pub(crate) fn path_key(p: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path;
    match p {
        Path::Root => String::new(),
        Path::Seq { parent, index } => join(&path_key(parent), &index.to_string()),
        Path::Map { parent, key } => join(&path_key(parent), key),
        Path::Some { parent } | Path::NewtypeStruct { parent } | Path::NewtypeVariant { parent } => path_key(parent),
    }
}

fn join(parent: &str, child: &str) -> String {
    if parent.is_empty() { child.to_string() } else { format!("{parent}.{child}") }
}

/// `clusters.0.subnets.1` → `clusters[0].subnets[1]`, as users write and read it.
pub fn display_key(key: &str) -> String {
    let mut out = String::new();
    for part in key.split('.') {
        if part.chars().all(|c| c.is_ascii_digit()) && !part.is_empty() {
            out.push_str(&format!("[{part}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(part);
        }
    }
    out
}

/// All problems of one file, located and ready to print.
#[derive(Debug)]
pub struct Diagnostics {
    pub file: PathBuf,
    items: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn single(file: &Path, message: String) -> Diagnostics {
        Diagnostics {
            file: file.to_path_buf(),
            items: vec![Diagnostic { severity: Severity::Error, key: String::new(), span: None, value: None, message, line_col: None }],
        }
    }

    /// Locates each diagnostic in `text` and sorts them by position.
    pub fn from_vec(file: &Path, text: &str, mut items: Vec<Diagnostic>) -> Diagnostics {
        for d in &mut items {
            if let Some(span) = &d.span {
                d.line_col = Some(line_col(text, span.start));
                if d.value.is_none() && !d.key.is_empty() {
                    let raw = text.get(span.clone()).unwrap_or("").trim();
                    // Show short scalar values inline; tables and long arrays are better read in the file.
                    if !raw.is_empty() && raw.len() <= 80 && !raw.contains('\n') {
                        d.value = Some(raw.to_string());
                    }
                }
            }
        }
        items.sort_by_key(|d| (d.line_col.unwrap_or((usize::MAX, 0)), d.key.clone()));
        Diagnostics { file: file.to_path_buf(), items }
    }

    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items.iter().filter(|d| d.severity == Severity::Error)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items.iter()
    }

    pub fn into_vec(self) -> Vec<Diagnostic> {
        self.items
    }

    /// One line per problem: `file:line:col: error: key = value: message`.
    pub fn render(&self) -> String {
        let mut s = String::new();
        for d in &self.items {
            s.push_str(&render_one(&self.file, d));
            s.push('\n');
        }
        s
    }
}

pub fn render_one(file: &Path, d: &Diagnostic) -> String {
    let loc = match d.line_col {
        Some((l, c)) => format!("{}:{l}:{c}", file.display()),
        None => file.display().to_string(),
    };
    let sev = match d.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    };
    let what = match (&d.key, &d.value) {
        (k, Some(v)) if !k.is_empty() => format!("{} = {v}: ", display_key(k)),
        (k, None) if !k.is_empty() => format!("{}: ", display_key(k)),
        _ => String::new(),
    };
    format!("{loc}: {sev}: {what}{}", d.message)
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.render().trim_end())
    }
}

impl std::error::Error for Diagnostics {}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map(|l| l.chars().count()).unwrap_or(0) + 1;
    (line, col)
}
