//! Just enough protobuf to read a `SelfSubjectAccessReview`: client-go's typed clients (as in
//! `kubectl auth can-i`) send built-in kinds as `application/vnd.kubernetes.protobuf` and accept
//! JSON back. Every other protobuf body is refused with 415, as kube-sim speaks JSON only.

use serde_json::{Map, Value, json};

fn varint(b: &[u8], i: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*i)?;
        *i += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// Length-delimited fields of a message as (field number, bytes); other wire types skipped.
fn fields(b: &[u8]) -> Option<Vec<(u64, &[u8])>> {
    let (mut i, mut out) = (0, Vec::new());
    while i < b.len() {
        let key = varint(b, &mut i)?;
        match key & 7 {
            0 => {
                varint(b, &mut i)?;
            }
            1 => i += 8,
            2 => {
                let n = varint(b, &mut i)? as usize;
                out.push((key >> 3, b.get(i..i + n)?));
                i += n;
            }
            5 => i += 4,
            _ => return None,
        }
    }
    Some(out)
}

fn strings(b: &[u8], names: &[&str]) -> Option<Value> {
    let mut m = Map::new();
    for (n, v) in fields(b)? {
        if let Some(name) = names.get(n as usize - 1).filter(|_| n >= 1) {
            m.insert((*name).into(), json!(String::from_utf8_lossy(v)));
        }
    }
    Some(Value::Object(m))
}

/// Decodes a protobuf-encoded SelfSubjectAccessReview into its JSON form.
pub fn self_subject_access_review(body: &[u8]) -> Option<Value> {
    let unknown = body.strip_prefix(b"k8s\x00")?;
    let raw = fields(unknown)?.into_iter().find(|(n, _)| *n == 2)?.1;
    let spec_bytes = fields(raw)?.into_iter().find(|(n, _)| *n == 2).map(|(_, v)| v).unwrap_or_default();
    let mut spec = Map::new();
    for (n, v) in fields(spec_bytes)? {
        match n {
            1 => {
                spec.insert(
                    "resourceAttributes".into(),
                    strings(v, &["namespace", "verb", "group", "version", "resource", "subresource", "name"])?,
                );
            }
            2 => {
                spec.insert("nonResourceAttributes".into(), strings(v, &["path", "verb"])?);
            }
            _ => {}
        }
    }
    Some(json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview", "metadata": {}, "spec": spec}))
}

#[cfg(test)]
mod tests {
    #[test]
    fn decodes_resource_attributes() {
        // Unknown{raw: SSAR{spec: {resourceAttributes: {namespace:"ns", verb:"get", resource:"secrets"}}}}
        let ra = [&[0x0a, 2][..], b"ns", &[0x12, 3], b"get", &[0x2a, 7], b"secrets"].concat();
        let spec = [&[0x0a, ra.len() as u8][..], &ra].concat();
        let ssar = [&[0x12, spec.len() as u8][..], &spec].concat();
        let body = [&b"k8s\x00"[..], &[0x12, ssar.len() as u8], &ssar].concat();
        let v = super::self_subject_access_review(&body).unwrap();
        assert_eq!(v["spec"]["resourceAttributes"], serde_json::json!({"namespace": "ns", "verb": "get", "resource": "secrets"}));
    }
}
