//! `--output json` is a stable schema (docs/output.md): the JSON of `render`, `plan`,
//! `sync --once`, `status`, `verify` and `panorama prepare --dry-run`, from real runs against
//! panorama-sim, must hold exactly the fields docs/output.md lists for that command, with the
//! documented types. A field added, removed, renamed or retyped without a doc update fails here.
//! (`up`, `down` and `credentials` need AWS and a cluster: documented, pinned by their tables
//! being present; see docs/output.md.)

mod support;

use std::collections::{BTreeMap, BTreeSet};

use support::{PASSWORD, Sim, facts_json, path_str};

fn cli(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_pano-eks")).args(args).env("PANO_EKS_TEST_PANORAMA_PASSWORD", PASSWORD).output().unwrap()
}

/// A documented field: its JSON type (`string`, `integer`, `boolean`, `array`, `object`,
/// `map`: any keys, `open`: not pinned below), whether it may be null and whether it may be absent.
#[derive(Debug, Clone)]
struct Field {
    base: String,
    nullable: bool,
    optional: bool,
}

/// `## \`pano-eks …\`` sections of docs/output.md and their `| \`path\` | type | … |` rows.
fn documented() -> BTreeMap<String, BTreeMap<String, Field>> {
    let doc = std::fs::read_to_string(support::repo_root().join("docs/output.md")).unwrap();
    let mut out: BTreeMap<String, BTreeMap<String, Field>> = BTreeMap::new();
    let mut section: Option<String> = None;
    for line in doc.lines() {
        if let Some(h) = line.strip_prefix("## `pano-eks ") {
            section = h.split('`').next().map(|c| c.trim().to_string());
            out.entry(section.clone().unwrap()).or_default();
            continue;
        }
        if line.starts_with("## ") {
            section = None;
            continue;
        }
        let (Some(sec), Some(row)) = (&section, line.strip_prefix("| `")) else { continue };
        let mut cols = row.split('|');
        let path = cols.next().unwrap().trim().trim_end_matches('`').to_string();
        let ty = cols.next().unwrap_or_default().trim().to_string();
        let base = ty.split([' ', ',']).next().unwrap_or_default().to_string();
        assert!(
            ["string", "integer", "boolean", "array", "object", "map", "open"].contains(&base.as_str()),
            "docs/output.md {sec} `{path}`: unknown type {ty:?}"
        );
        let field = Field { base, nullable: ty.contains("or null"), optional: ty.contains("optional") };
        out.get_mut(sec).unwrap().insert(path, field);
    }
    out
}

fn type_of(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "boolean",
        serde_json::Value::Number(n) if n.is_u64() || n.is_i64() => "integer",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}

/// Every path in `v` (`a.b`, `a[].c`, `m.*` under a documented `map`), checked against `fields`;
/// problems go to `bad`.
fn walk(v: &serde_json::Value, path: &str, fields: &BTreeMap<String, Field>, seen: &mut BTreeSet<String>, bad: &mut Vec<String>) {
    let child = |k: &str| if path.is_empty() { k.to_string() } else { format!("{path}.{k}") };
    let field = fields.get(path);
    if !path.is_empty() {
        seen.insert(path.to_string());
        match field {
            None => {
                bad.push(format!("`{path}` is not documented ({})", type_of(v)));
                return;
            }
            Some(f) => {
                let t = type_of(v);
                let ok = t == f.base || (f.base == "map" && t == "object") || f.base == "open" || (t == "null" && f.nullable);
                if !ok {
                    bad.push(format!("`{path}` is {t}, documented {}{}", f.base, if f.nullable { " or null" } else { "" }));
                }
                if f.base == "open" {
                    return;
                }
            }
        }
    }
    match v {
        serde_json::Value::Object(m) => {
            let is_map = field.is_some_and(|f| f.base == "map");
            for (k, c) in m {
                walk(c, &if is_map { child("*") } else { child(k) }, fields, seen, bad);
            }
        }
        serde_json::Value::Array(a) => {
            let elem = format!("{path}[]");
            for c in a {
                match c {
                    // An object element is documented by its members (`a[].b`), not as `a[]`.
                    serde_json::Value::Object(m) => {
                        for (k, cc) in m {
                            walk(cc, &format!("{elem}.{k}"), fields, seen, bad);
                        }
                    }
                    _ => walk(c, &elem, fields, seen, bad),
                }
            }
        }
        _ => {}
    }
}

fn check(command: &str, out: &std::process::Output, docs: &BTreeMap<String, BTreeMap<String, Field>>) -> Vec<String> {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{command}: stdout is not JSON ({e}):\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr)));
    let fields = docs.get(command).unwrap_or_else(|| panic!("docs/output.md has no section ## `pano-eks {command}`"));
    let (mut seen, mut bad) = (BTreeSet::new(), Vec::new());
    walk(&v, "", fields, &mut seen, &mut bad);
    for (p, f) in fields {
        if !f.optional && !seen.contains(p) && !fields.iter().any(|(q, g)| g.base == "open" && p.starts_with(&format!("{q}."))) {
            bad.push(format!("`{p}` is documented but not in the output"));
        }
    }
    bad.into_iter().map(|b| format!("{command}: {b}")).collect()
}

#[test]
fn the_json_of_every_data_command_is_the_documented_schema() {
    let docs = documented();
    let sim = Sim::start(&["--job-step-ms", "0"]);
    let cfg = path_str(&sim.write_config(""));
    let facts = sim.dir.path().join("facts.json");
    // Two good Services and one whose label is not a port (a problem, a null port).
    let mut f: serde_json::Value = serde_json::from_str(&facts_json(2, "")).unwrap();
    f["clusters"][0]["services"].as_array_mut().unwrap().push(serde_json::json!({
        "namespace": "default", "name": "bad-label", "labels": {"panw-tg-port": "http"}, "type": "LoadBalancer",
        "annotations": {"service.beta.kubernetes.io/aws-load-balancer-internal": "true"},
        "lb_hostname": "internal-bad.elb.us-west-2.amazonaws.com", "ports": [{"port": 80, "protocol": "TCP"}],
        "created": "2026-11-26T10:00:00Z"
    }));
    std::fs::write(&facts, f.to_string()).unwrap();
    let facts = path_str(&facts);
    let out_dir = sim.dir.path().join("rendered");
    let out_dir = path_str(&out_dir);
    let json = |args: &[&str]| {
        let mut all = vec!["--config", cfg.as_str(), "--output", "json"];
        all.extend_from_slice(args);
        cli(&all)
    };
    let mut bad = Vec::new();
    // Before the sync: a plan with operations of every kind, the prepare check list.
    bad.extend(check("plan", &json(&["plan", "--facts", &facts]), &docs));
    bad.extend(check("panorama prepare", &json(&["panorama", "prepare", "--dry-run"]), &docs));
    let sync = json(&["sync", "--once", "--facts", &facts]);
    assert!(sync.status.success(), "sync failed: {}", String::from_utf8_lossy(&sync.stderr));
    bad.extend(check("sync", &sync, &docs));
    bad.extend(check("status", &json(&["status", "--facts", &facts]), &docs));
    bad.extend(check("verify", &json(&["verify", "--facts", &facts]), &docs));
    bad.extend(check("render", &json(&["render", "--out", &out_dir]), &docs));
    // The commands that need AWS or a cluster are documented too.
    for c in ["up", "down", "credentials"] {
        assert!(docs.get(c).is_some_and(|f| !f.is_empty()), "docs/output.md documents `pano-eks {c}`");
    }
    assert!(bad.is_empty(), "--output json differs from docs/output.md:\n{}", bad.join("\n"));

    // The check can fail: a renamed field and an undocumented one are caught.
    let mut renamed = docs.clone();
    let plan = renamed.get_mut("plan").unwrap();
    let f = plan.remove("device_group_changed").unwrap();
    plan.insert("device_group_did_change".into(), f);
    let caught = check("plan", &json(&["plan", "--facts", &facts]), &renamed);
    assert!(caught.iter().any(|b| b.contains("`device_group_changed` is not documented")), "{caught:?}");
    assert!(caught.iter().any(|b| b.contains("`device_group_did_change` is documented but not in the output")), "{caught:?}");
}
