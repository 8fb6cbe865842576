//! Security rules and address groups ⇄ PAN-OS `<entry>` XML (issue 19), under the adapter
//! contract of `codec.rs`. The security-rule shape is pan-os-python's `SecurityRule` and
//! terraform-provider-panos's security policy: member lists `from`, `to`, `source`,
//! `destination`, `application`, `service`, `source-user`, `category`; leaves `action`,
//! `log-start`, `log-end`, `disabled`; `profile-setting/group/member`. Defaults PAN-OS fills or
//! that mean nothing (`source-user`/`category`/HIP members `any`, `rule-type` universal,
//! `log-end` yes) are dropped on read, so one of our rules reads back equal.

use pano_eks_core::panorama::model::{AddressGroup, GroupValue, SecurityRule};

use super::xml::Element;

fn members(e: &Element) -> Vec<String> {
    e.elements().filter(|m| m.name == "member").map(Element::text_content).collect()
}

fn yes_no(v: bool) -> &'static str {
    if v { "yes" } else { "no" }
}

fn any(list: &[String]) -> bool {
    matches!(list, [only] if only == "any")
}

pub fn encode_rule(r: &SecurityRule, raw: &dyn Fn(&str) -> Vec<Element>) -> Element {
    // The observed uuid goes back with an update (hit counts, rule usage), as for NAT rules.
    let mut e = Element::new("entry").attr("name", r.name.clone());
    if let Some(u) = &r.uuid {
        e = e.attr("uuid", u.clone());
    }
    let any_member = vec!["any".to_owned()];
    let mut e = e
        .members("from", &r.from)
        .members("to", &r.to)
        .members("source", &r.source)
        .members("destination", &r.destination)
        .members("source-user", &any_member)
        .members("category", &any_member)
        .members("application", &r.application)
        .members("service", &r.service)
        .leaf("action", r.action.clone());
    if let Some(g) = &r.profile_group {
        e = e.child(Element::new("profile-setting").child(Element::new("group").leaf("member", g.clone())));
    }
    e = e.leaf("log-start", yes_no(r.log_start)).leaf("log-end", yes_no(r.log_end));
    if let Some(d) = &r.description {
        e = e.leaf("description", d.clone());
    }
    if !r.tags.is_empty() {
        e = e.members("tag", &r.tags);
    }
    e = e.leaf("disabled", yes_no(r.disabled));
    for u in &r.unmodelled {
        for c in raw(u) {
            e = e.child(c);
        }
    }
    e
}

pub fn decode_rule(name: String, e: &Element, raw_of: &dyn Fn(&Element) -> String) -> SecurityRule {
    let mut r = SecurityRule {
        name,
        from: vec![],
        to: vec![],
        source: vec![],
        destination: vec![],
        application: vec![],
        service: vec![],
        action: String::new(),
        profile_group: None,
        log_start: false,
        log_end: true,
        description: None,
        tags: vec![],
        disabled: false,
        unmodelled: vec![],
        uuid: e.get_attr("uuid").map(str::to_string),
    };
    for c in e.elements() {
        match c.name.as_str() {
            "from" => r.from = members(c),
            "to" => r.to = members(c),
            "source" => r.source = members(c),
            "destination" => r.destination = members(c),
            "application" => r.application = members(c),
            "service" => r.service = members(c),
            "action" => r.action = c.text_content(),
            "source-user" | "category" | "source-hip" | "destination-hip" | "hip-profiles" if any(&members(c)) => {}
            "rule-type" if c.text_content() == "universal" => {}
            "profile-setting" => {
                let group = c.path("group").map(members);
                match group.as_deref() {
                    Some([g]) if c.elements().count() == 1 => r.profile_group = Some(g.clone()),
                    _ => r.unmodelled.push(raw_of(c)),
                }
            }
            "log-start" => r.log_start = c.text_content() == "yes",
            "log-end" => r.log_end = c.text_content() != "no",
            "description" => r.description = Some(c.text_content()),
            "tag" => r.tags = members(c),
            "disabled" => r.disabled = c.text_content() == "yes",
            _ => r.unmodelled.push(raw_of(c)),
        }
    }
    r
}

pub fn encode_group(g: &AddressGroup, raw: &dyn Fn(&str) -> Vec<Element>) -> Element {
    let mut e = Element::new("entry").attr("name", g.name.clone());
    e = match &g.value {
        GroupValue::Dynamic(f) => e.child(Element::new("dynamic").leaf("filter", f.clone())),
        GroupValue::Static(m) => e.members("static", m),
        GroupValue::Other(x) => raw(x).into_iter().fold(e, Element::child),
    };
    if let Some(d) = &g.description {
        e = e.leaf("description", d.clone());
    }
    if !g.tags.is_empty() {
        e = e.members("tag", &g.tags);
    }
    for u in &g.unmodelled {
        for c in raw(u) {
            e = e.child(c);
        }
    }
    e
}

pub fn decode_group(name: String, e: &Element, raw_of: &dyn Fn(&Element) -> String) -> AddressGroup {
    let mut g = AddressGroup { name, value: GroupValue::Other(String::new()), description: None, tags: vec![], unmodelled: vec![] };
    let mut values = Vec::new();
    for c in e.elements() {
        match c.name.as_str() {
            "dynamic" if c.elements().count() == 1 && c.find("filter").is_some() => {
                values.push(GroupValue::Dynamic(c.text_at("filter").unwrap_or_default()))
            }
            "static" => values.push(GroupValue::Static(members(c))),
            "dynamic" => values.push(GroupValue::Other(raw_of(c))),
            "description" => g.description = Some(c.text_content()),
            "tag" => g.tags = members(c),
            _ => g.unmodelled.push(raw_of(c)),
        }
    }
    if values.len() == 1 {
        g.value = values.pop().expect("one");
    } else {
        g.value = GroupValue::Other(e.elements().filter(|c| matches!(c.name.as_str(), "dynamic" | "static")).map(raw_of).collect());
    }
    g
}
