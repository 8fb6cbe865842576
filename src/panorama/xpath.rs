//! XPath builders for the Panorama locations pano-eks touches, with names quoted so that no
//! name, whatever it contains, can leave its predicate (`a'] | //*[x='` stays a name).

/// An XPath string literal for `s`: `'s'`, `"s"`, or `concat(...)` when it holds both quotes.
pub fn literal(s: &str) -> String {
    if !s.contains('\'') {
        return format!("'{s}'");
    }
    if !s.contains('"') {
        return format!("\"{s}\"");
    }
    // Both kinds of quote: split on ' and glue the pieces with "'" (XPath 1.0 has no escapes).
    let parts: Vec<String> = s.split('\'').map(|p| format!("'{p}'")).collect();
    format!("concat({})", parts.join(", \"'\", "))
}

/// `entry[@name=...]`.
pub fn entry(name: &str) -> String {
    format!("entry[@name={}]", literal(name))
}

/// `entry[@name=a or @name=b ...]`, for deleting several entries in one call.
pub fn entries_or<S: AsRef<str>>(names: &[S]) -> String {
    let preds: Vec<String> = names.iter().map(|n| format!("@name={}", literal(n.as_ref()))).collect();
    format!("entry[{}]", preds.join(" or "))
}

const LD: &str = "/config/devices/entry[@name='localhost.localdomain']";

pub fn device_group(dg: &str) -> String {
    format!("{LD}/device-group/{}", entry(dg))
}

pub fn template(t: &str) -> String {
    format!("{LD}/template/{}", entry(t))
}

pub fn template_stack(ts: &str) -> String {
    format!("{LD}/template-stack/{}", entry(ts))
}

/// The static-route container of a virtual router inside a template.
pub fn static_routes(template_name: &str, vr: &str) -> String {
    format!(
        "{}/config/devices/entry[@name='localhost.localdomain']/network/virtual-router/{}/routing-table/ip/static-route",
        template(template_name),
        entry(vr)
    )
}

pub fn dg_tags(dg: &str) -> String {
    format!("{}/tag", device_group(dg))
}
pub fn dg_addresses(dg: &str) -> String {
    format!("{}/address", device_group(dg))
}
pub fn dg_services(dg: &str) -> String {
    format!("{}/service", device_group(dg))
}
pub fn dg_nat_rules(dg: &str) -> String {
    format!("{}/pre-rulebase/nat/rules", device_group(dg))
}
pub fn dg_security_rules(dg: &str) -> String {
    format!("{}/pre-rulebase/security/rules", device_group(dg))
}
pub fn dg_address_groups(dg: &str) -> String {
    format!("{}/address-group", device_group(dg))
}

/// Panorama's read-only device-group nodes (`…/entry[@name=DG]/parent-dg` names each parent).
pub fn dg_hierarchy() -> String {
    "/config/readonly/devices/entry[@name='localhost.localdomain']/device-group".to_string()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Evaluates an XPath 1.0 string-literal expression as `literal` emits it (a quoted string
    /// or `concat` of quoted strings), returning the value and what follows it.
    fn eval_literal(s: &str) -> Option<(String, &str)> {
        fn quoted(s: &str) -> Option<(String, &str)> {
            let q = s.chars().next()?;
            if q != '\'' && q != '"' {
                return None;
            }
            let end = s[1..].find(q)? + 1;
            Some((s[1..end].to_string(), &s[end + 1..]))
        }
        if let Some(mut rest) = s.strip_prefix("concat(") {
            let mut out = String::new();
            loop {
                let (v, r) = quoted(rest.trim_start())?;
                out.push_str(&v);
                let r = r.trim_start();
                if let Some(r) = r.strip_prefix(',') {
                    rest = r;
                } else {
                    return Some((out, r.strip_prefix(')')?));
                }
            }
        }
        quoted(s)
    }

    #[test]
    fn known_shapes() {
        assert_eq!(entry("web"), "entry[@name='web']");
        assert_eq!(entry("o'brien"), "entry[@name=\"o'brien\"]");
        assert_eq!(literal("a'b\"c"), "concat('a', \"'\", 'b\"c')");
        assert_eq!(entries_or(&["a", "b"]), "entry[@name='a' or @name='b']");
        assert_eq!(
            dg_nat_rules("dg1"),
            "/config/devices/entry[@name='localhost.localdomain']/device-group/entry[@name='dg1']/pre-rulebase/nat/rules"
        );
    }

    #[test]
    fn an_injection_attempt_stays_inside_its_predicate() {
        let evil = "a'] | //*[x='";
        let xp = entry(evil);
        let inner = xp.strip_prefix("entry[@name=").unwrap();
        let (value, rest) = eval_literal(inner).unwrap();
        assert_eq!(value, evil);
        assert_eq!(rest, "]");
    }

    proptest! {
        #[test]
        fn any_name_round_trips_through_its_literal(name in "\\PC{0,40}") {
            let xp = entry(&name);
            let inner = xp.strip_prefix("entry[@name=").unwrap();
            let (value, rest) = eval_literal(inner).expect("parses as an XPath literal");
            prop_assert_eq!(value, name);
            prop_assert_eq!(rest, "]");
        }

        #[test]
        fn quote_heavy_names_round_trip(name in "['\"a\\]\\[|/ ]{0,20}") {
            let lit = literal(&name);
            let (value, rest) = eval_literal(&lit).expect("parses");
            prop_assert_eq!(value, name);
            prop_assert_eq!(rest, "");
        }
    }
}
