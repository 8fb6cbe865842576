//! The patch flavours the API server accepts: JSON merge patch (RFC 7386), JSON patch
//! (RFC 6902), strategic merge patch (the parts kubectl label/annotate/apply emit), and the
//! basics of server-side apply (merge of the applied configuration; no field ownership).

use serde_json::{Map, Value};

/// RFC 7386: objects merge recursively, `null` deletes, anything else replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let t = target.as_object_mut().expect("object ensured above");
    for (k, v) in p {
        if v.is_null() {
            t.remove(k);
        } else {
            merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
        }
    }
}

/// Merge key of a list field under strategic merge (from the Kubernetes types' `patchMergeKey`),
/// or None when the list is replaced whole. Decided by field name and, where one name has two
/// keys (`ports`), by what the items carry.
fn merge_key(field: &str, items: &[Value]) -> Option<&'static str> {
    let has = |k: &str| items.iter().any(|i| i.get(k).is_some());
    Some(match field {
        "containers" | "initContainers" | "ephemeralContainers" | "env" | "volumes" | "imagePullSecrets" | "secrets" | "hostAliases" => {
            if field == "hostAliases" {
                "ip"
            } else {
                "name"
            }
        }
        "volumeMounts" => "mountPath",
        "volumeDevices" => "devicePath",
        "ports" if has("containerPort") => "containerPort",
        "ports" => "port",
        "conditions" => "type",
        "ownerReferences" => "uid",
        "topologySpreadConstraints" => "topologyKey",
        _ => return None,
    })
}

/// Primitive lists whose patch strategy is `merge` (values are unioned rather than replaced).
fn merges_primitives(field: &str) -> bool {
    field == "finalizers"
}

/// Strategic merge patch. `null` deletes; maps merge; lists with a merge key merge by key
/// (`$patch: delete` on an item removes it); `$patch: replace|delete` on a map;
/// `$setElementOrder/…` and `$retainKeys` are accepted and dropped; `$deleteFromPrimitiveList/f`
/// removes values from primitive list `f`.
pub fn strategic_merge(target: &mut Value, patch: &Value) -> Result<(), String> {
    sm_value(target, patch, "", true)
}

/// Server-side apply basics: the applied configuration is merged like a strategic merge patch
/// (without deletions). Fields a previous apply set but this one omits are kept, and no
/// managedFields conflicts are detected (documented gap).
pub fn apply(target: &mut Value, applied: &Value) -> Result<(), String> {
    sm_value(target, applied, "", false)
}

fn sm_value(target: &mut Value, patch: &Value, field: &str, deletes: bool) -> Result<(), String> {
    match patch {
        Value::Object(p) => {
            match p.get("$patch").and_then(Value::as_str) {
                Some("replace") => {
                    let mut clean = p.clone();
                    clean.remove("$patch");
                    *target = Value::Object(clean);
                    return Ok(());
                }
                Some("delete") => {
                    *target = Value::Null;
                    return Ok(());
                }
                Some("merge") | None => {}
                Some(other) => return Err(format!("unknown patch type: {other}")),
            }
            if !target.is_object() {
                *target = Value::Object(Map::new());
            }
            let t = target.as_object_mut().expect("object ensured above");
            for (k, v) in p {
                if k == "$patch" || k == "$retainKeys" || k.starts_with("$setElementOrder/") {
                    continue;
                }
                if let Some(f) = k.strip_prefix("$deleteFromPrimitiveList/") {
                    let drop: Vec<Value> = v.as_array().cloned().unwrap_or_default();
                    if let Some(Value::Array(list)) = t.get_mut(f) {
                        list.retain(|x| !drop.contains(x));
                    }
                    continue;
                }
                if v.is_null() {
                    if deletes {
                        t.remove(k);
                    }
                    continue;
                }
                let slot = t.entry(k.clone()).or_insert(Value::Null);
                sm_value(slot, v, k, deletes)?;
                if slot.is_null() {
                    t.remove(k);
                }
            }
            Ok(())
        }
        Value::Array(items) => {
            let Value::Array(cur) = target else {
                *target = Value::Array(items.iter().filter(|i| i.get("$patch").is_none()).cloned().collect());
                return Ok(());
            };
            if let Some(key) = merge_key(field, items) {
                for item in items {
                    let Some(kv) = item.get(key) else {
                        return Err(format!("map: {item} does not contain declared merge key: {key}"));
                    };
                    let pos = cur.iter().position(|c| c.get(key) == Some(kv));
                    match (item.get("$patch").and_then(Value::as_str), pos) {
                        (Some("delete"), Some(i)) => {
                            cur.remove(i);
                        }
                        (Some("delete"), None) => {}
                        (_, Some(i)) => sm_value(&mut cur[i], item, "", deletes)?,
                        (_, None) => {
                            let mut fresh = Value::Null;
                            sm_value(&mut fresh, item, "", deletes)?;
                            cur.push(fresh);
                        }
                    }
                }
            } else if merges_primitives(field) {
                for item in items {
                    if !cur.contains(item) {
                        cur.push(item.clone());
                    }
                }
            } else {
                *target = patch.clone();
            }
            Ok(())
        }
        _ => {
            *target = patch.clone();
            Ok(())
        }
    }
}

/// RFC 6901 pointer tokens (`~1` is `/`, `~0` is `~`).
fn tokens(path: &str) -> Result<Vec<String>, String> {
    if path.is_empty() {
        return Ok(vec![]);
    }
    let rest = path.strip_prefix('/').ok_or_else(|| format!("invalid JSON pointer {path:?}"))?;
    Ok(rest.split('/').map(|t| t.replace("~1", "/").replace("~0", "~")).collect())
}

fn parent<'a>(doc: &'a mut Value, toks: &[String]) -> Result<&'a mut Value, String> {
    let mut cur = doc;
    for t in toks {
        cur = match cur {
            Value::Object(m) => m.get_mut(t).ok_or_else(|| format!("path element {t:?} not found"))?,
            Value::Array(a) => {
                let i: usize = t.parse().map_err(|_| format!("invalid array index {t:?}"))?;
                a.get_mut(i).ok_or_else(|| format!("array index {i} out of range"))?
            }
            _ => return Err(format!("cannot descend into {t:?}")),
        };
    }
    Ok(cur)
}

fn add(doc: &mut Value, path: &str, value: Value) -> Result<(), String> {
    let toks = tokens(path)?;
    let Some((last, init)) = toks.split_last() else {
        *doc = value;
        return Ok(());
    };
    match parent(doc, init)? {
        Value::Object(m) => {
            m.insert(last.clone(), value);
        }
        Value::Array(a) => {
            let i = if last == "-" { a.len() } else { last.parse().map_err(|_| format!("invalid array index {last:?}"))? };
            if i > a.len() {
                return Err(format!("array index {i} out of range"));
            }
            a.insert(i, value);
        }
        _ => return Err(format!("cannot add at {path:?}")),
    }
    Ok(())
}

fn remove(doc: &mut Value, path: &str) -> Result<Value, String> {
    let toks = tokens(path)?;
    let (last, init) = toks.split_last().ok_or("cannot remove the whole document")?;
    match parent(doc, init)? {
        Value::Object(m) => m.remove(last).ok_or_else(|| format!("unable to remove nonexistent key: {last}")),
        Value::Array(a) => {
            let i: usize = last.parse().map_err(|_| format!("invalid array index {last:?}"))?;
            if i >= a.len() {
                return Err(format!("array index {i} out of range"));
            }
            Ok(a.remove(i))
        }
        _ => Err(format!("cannot remove {path:?}")),
    }
}

/// RFC 6902 (add, remove, replace, move, copy, test); all-or-nothing.
pub fn json_patch(target: &mut Value, ops: &Value) -> Result<(), String> {
    let ops = ops.as_array().ok_or("a JSON patch must be an array of operations")?;
    let mut doc = target.clone();
    for op in ops {
        let name = op.get("op").and_then(Value::as_str).ok_or("operation without \"op\"")?;
        let path = op.get("path").and_then(Value::as_str).ok_or("operation without \"path\"")?;
        let value = || op.get("value").cloned().ok_or_else(|| format!("{name} without \"value\""));
        let from = || op.get("from").and_then(Value::as_str).ok_or_else(|| format!("{name} without \"from\""));
        match name {
            "add" => add(&mut doc, path, value()?)?,
            "remove" => {
                remove(&mut doc, path)?;
            }
            "replace" => {
                remove(&mut doc, path)?;
                add(&mut doc, path, value()?)?;
            }
            "move" => {
                let v = remove(&mut doc, from()?)?;
                add(&mut doc, path, v)?;
            }
            "copy" => {
                let v = doc.pointer(from()?).cloned().ok_or("copy: \"from\" not found")?;
                add(&mut doc, path, v)?;
            }
            "test" => {
                if doc.pointer(path) != Some(&value()?) {
                    return Err(format!("testing value {path} failed"));
                }
            }
            other => return Err(format!("unexpected kind: {other}")),
        }
    }
    *target = doc;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_deletes_with_null() {
        let mut t = json!({"metadata": {"labels": {"a": "1", "b": "2"}}});
        merge_patch(&mut t, &json!({"metadata": {"labels": {"a": null, "c": "3"}}}));
        assert_eq!(t, json!({"metadata": {"labels": {"b": "2", "c": "3"}}}));
    }

    #[test]
    fn strategic_merges_ports_by_key_and_honours_directives() {
        let mut t = json!({"spec": {"ports": [{"port": 80, "name": "http"}, {"port": 443, "name": "https"}], "selector": {"app": "x"}},
                           "metadata": {"finalizers": ["a"]}});
        strategic_merge(
            &mut t,
            &json!({"spec": {"$setElementOrder/ports": [{"port": 80}], "ports": [{"port": 80, "targetPort": 8080}, {"port": 443, "$patch": "delete"}],
                              "selector": {"$patch": "replace", "tier": "web"}},
                    "metadata": {"finalizers": ["b"]}}),
        )
        .unwrap();
        assert_eq!(t["spec"]["ports"], json!([{"port": 80, "name": "http", "targetPort": 8080}]));
        assert_eq!(t["spec"]["selector"], json!({"tier": "web"}));
        assert_eq!(t["metadata"]["finalizers"], json!(["a", "b"]));
    }

    #[test]
    fn json_patch_is_all_or_nothing() {
        let mut t = json!({"a": [1, 2]});
        json_patch(&mut t, &json!([{"op": "add", "path": "/a/-", "value": 3}, {"op": "replace", "path": "/a/0", "value": 0}])).unwrap();
        assert_eq!(t, json!({"a": [0, 2, 3]}));
        let err = json_patch(&mut t, &json!([{"op": "remove", "path": "/a/0"}, {"op": "test", "path": "/a/0", "value": 9}]));
        assert!(err.is_err());
        assert_eq!(t, json!({"a": [0, 2, 3]}));
    }
}
