//! Translation between the planning core's entry types and PAN-OS XML `<entry>` elements.
//! Reading follows the core's adapter contract: PAN-OS defaults are filled in (distribution
//! round-robin, metric 10, disabled no, nat-type ipv4, route-table unicast), volatile
//! attributes (admin, dirtyId, time; uuid except a NAT rule's own) are dropped, and any child we do not model is kept
//! as raw XML in `unmodelled`, so a foreign entry never looks equal to one of ours.

use pano_eks_core::{
    Address, AddressValue, DestinationTranslation, Kind, NatRule, NextHop, Object, Observed, Protocol, ServiceObject, SourceTranslation,
    StaticRoute, Tag,
};

use super::xml::Element;

fn entry(name: &str) -> Element {
    Element::new("entry").attr("name", name)
}

fn opt_leaf(e: Element, name: &str, v: &Option<String>) -> Element {
    match v {
        Some(v) => e.leaf(name, v.clone()),
        None => e,
    }
}

fn tags(e: Element, tags: &[String]) -> Element {
    if tags.is_empty() { e } else { e.members("tag", tags) }
}

/// Parses raw XML kept in an `Other`/`unmodelled` slot back into elements.
fn raw(xml_text: &str) -> Vec<Element> {
    match super::xml::parse(xml_text) {
        Ok(e) if e.name == "root" => e.elements().cloned().collect(),
        Ok(e) => vec![e],
        Err(_) => Vec::new(),
    }
}

fn with_raw(mut e: Element, unmodelled: &[String]) -> Element {
    for r in unmodelled {
        for c in raw(r) {
            e = e.child(c);
        }
    }
    e
}

/// The `<entry>` element for an object (the body of an `edit` on its entry xpath).
pub fn encode(obj: &Object) -> Element {
    match obj {
        Object::Tag(t) => {
            let e = opt_leaf(entry(&t.name), "color", &t.color);
            with_raw(opt_leaf(e, "comments", &t.comments), &t.unmodelled)
        }
        Object::Address(a) => {
            let e = entry(&a.name);
            let e = match &a.value {
                AddressValue::Fqdn(v) => e.leaf("fqdn", v.clone()),
                AddressValue::IpNetmask(v) => e.leaf("ip-netmask", v.clone()),
                AddressValue::IpRange(v) => e.leaf("ip-range", v.clone()),
                AddressValue::IpWildcard(v) => e.leaf("ip-wildcard", v.clone()),
                AddressValue::Other(r) => raw(r).into_iter().fold(e, Element::child),
            };
            let e = opt_leaf(e, "description", &a.description);
            with_raw(tags(e, &a.tags), &a.unmodelled)
        }
        Object::Service(s) => {
            let proto = match s.protocol {
                Protocol::Tcp => "tcp",
                Protocol::Udp => "udp",
                Protocol::Sctp => "sctp",
            };
            let e = entry(&s.name).child(Element::new("protocol").child(Element::new(proto).leaf("port", s.port.clone())));
            let e = opt_leaf(e, "description", &s.description);
            with_raw(tags(e, &s.tags), &s.unmodelled)
        }
        Object::NatRule(r) => {
            // The observed uuid goes back with an update: PAN-OS keeps hit counts and rule-usage
            // history only for the same uuid (terraform-provider-panos `internal/manager/uuid.go`).
            let e = match &r.uuid {
                Some(u) => entry(&r.name).attr("uuid", u.clone()),
                None => entry(&r.name),
            };
            let mut e = e
                .members("from", &r.from)
                .child(Element::new("to").leaf("member", r.to.clone()))
                .members("source", &r.source)
                .members("destination", &r.destination)
                .leaf("service", r.service.clone())
                .leaf("nat-type", "ipv4");
            if let Some(i) = &r.to_interface {
                e = e.leaf("to-interface", i.clone());
            }
            match &r.source_translation {
                Some(SourceTranslation::InterfaceAddress { interface }) => {
                    e = e.child(Element::new("source-translation").child(
                        Element::new("dynamic-ip-and-port").child(Element::new("interface-address").leaf("interface", interface.clone())),
                    ));
                }
                Some(SourceTranslation::Other(r)) => {
                    e = e.child(raw(r).into_iter().fold(Element::new("source-translation"), Element::child));
                }
                None => {}
            }
            match &r.destination_translation {
                Some(DestinationTranslation::Dynamic { address, port, distribution }) => {
                    let mut d = Element::new("dynamic-destination-translation").leaf("translated-address", address.clone());
                    if let Some(p) = port {
                        d = d.leaf("translated-port", p.to_string());
                    }
                    e = e.child(d.leaf("distribution", distribution.clone()));
                }
                Some(DestinationTranslation::Other(r)) => e = raw(r).into_iter().fold(e, Element::child),
                None => {}
            }
            let e = opt_leaf(e, "description", &r.description);
            let e = tags(e, &r.tags).leaf("disabled", if r.disabled { "yes" } else { "no" });
            with_raw(e, &r.unmodelled)
        }
        Object::StaticRoute(r) => {
            let mut e = entry(&r.name).leaf("destination", r.destination.clone());
            match &r.nexthop {
                Some(NextHop::IpAddress(ip)) => e = e.child(Element::new("nexthop").leaf("ip-address", ip.clone())),
                Some(NextHop::Other(x)) => e = e.child(raw(x).into_iter().fold(Element::new("nexthop"), Element::child)),
                None => {}
            }
            if let Some(i) = &r.interface {
                e = e.leaf("interface", i.clone());
            }
            e = e.leaf("metric", r.metric.to_string());
            if let Some(d) = r.admin_dist {
                e = e.leaf("admin-dist", d.to_string());
            }
            with_raw(e, &r.unmodelled)
        }
        Object::SecurityRule(r) => super::security_codec::encode_rule(r, &raw),
        Object::AddressGroup(g) => super::security_codec::encode_group(g, &raw),
    }
}

/// Every `<entry>` child of a container, parsed as `kind`.
pub fn decode_container(kind: Kind, container: &Element, into: &mut Observed) {
    for e in container.elements().filter(|e| e.name == "entry") {
        let Some(name) = e.get_attr("name") else { continue };
        let name = name.to_string();
        match kind {
            Kind::Tag => into.tags.push(decode_tag(name, e)),
            Kind::Address => into.addresses.push(decode_address(name, e)),
            Kind::Service => into.services.push(decode_service(name, e)),
            Kind::NatRule => into.nat_rules.push(decode_nat(name, e)),
            Kind::StaticRoute => into.static_routes.push(decode_route(name, e)),
            Kind::SecurityRule => into.security_rules.push(super::security_codec::decode_rule(name, e, &raw_of)),
            Kind::AddressGroup => into.address_groups.push(super::security_codec::decode_group(name, e, &raw_of)),
        }
    }
}

fn text_of(e: &Element) -> String {
    e.text_content()
}

fn members(e: &Element) -> Vec<String> {
    e.elements().filter(|m| m.name == "member").map(Element::text_content).collect()
}

/// A child's XML with volatile attributes removed, for `unmodelled`/`Other`.
fn raw_of(e: &Element) -> String {
    let mut c = e.clone();
    strip_volatile(&mut c);
    c.to_xml()
}

fn strip_volatile(e: &mut Element) {
    e.attrs.retain(|(k, _)| !matches!(k.as_str(), "uuid" | "admin" | "dirtyId" | "time" | "loc"));
    for c in e.children.iter_mut() {
        if let super::xml::Node::Element(c) = c {
            strip_volatile(c);
        }
    }
}

fn decode_tag(name: String, e: &Element) -> Tag {
    let mut t = Tag { name, color: None, comments: None, unmodelled: vec![] };
    for c in e.elements() {
        match c.name.as_str() {
            "color" => t.color = Some(text_of(c)),
            "comments" => t.comments = Some(text_of(c)),
            _ => t.unmodelled.push(raw_of(c)),
        }
    }
    t
}

fn decode_address(name: String, e: &Element) -> Address {
    let mut values = Vec::new();
    let mut a = Address { name, value: AddressValue::Other(String::new()), description: None, tags: vec![], unmodelled: vec![] };
    for c in e.elements() {
        match c.name.as_str() {
            "fqdn" => values.push(AddressValue::Fqdn(text_of(c))),
            "ip-netmask" => values.push(AddressValue::IpNetmask(text_of(c))),
            "ip-range" => values.push(AddressValue::IpRange(text_of(c))),
            "ip-wildcard" => values.push(AddressValue::IpWildcard(text_of(c))),
            "description" => a.description = Some(text_of(c)),
            "tag" => a.tags = members(c),
            _ => a.unmodelled.push(raw_of(c)),
        }
    }
    a.value = if values.len() == 1 {
        values.pop().unwrap()
    } else {
        // None or several value types: not a shape we write; keep it raw.
        let raws: Vec<String> =
            e.elements().filter(|c| matches!(c.name.as_str(), "fqdn" | "ip-netmask" | "ip-range" | "ip-wildcard")).map(raw_of).collect();
        AddressValue::Other(raws.concat())
    };
    a
}

fn decode_service(name: String, e: &Element) -> ServiceObject {
    let mut s = ServiceObject { name, protocol: Protocol::Tcp, port: String::new(), description: None, tags: vec![], unmodelled: vec![] };
    for c in e.elements() {
        match c.name.as_str() {
            "protocol" => {
                let protos: Vec<&Element> = c.elements().collect();
                let simple = protos.len() == 1
                    && protos[0].elements().all(|x| x.name == "port")
                    && matches!(protos[0].name.as_str(), "tcp" | "udp" | "sctp");
                if simple {
                    s.protocol = match protos[0].name.as_str() {
                        "udp" => Protocol::Udp,
                        "sctp" => Protocol::Sctp,
                        _ => Protocol::Tcp,
                    };
                    s.port = protos[0].text_at("port").unwrap_or_default();
                } else {
                    s.unmodelled.push(raw_of(c));
                }
            }
            "description" => s.description = Some(text_of(c)),
            "tag" => s.tags = members(c),
            _ => s.unmodelled.push(raw_of(c)),
        }
    }
    s
}

fn decode_nat(name: String, e: &Element) -> NatRule {
    let mut r = NatRule {
        name,
        from: vec![],
        to: String::new(),
        source: vec![],
        destination: vec![],
        service: "any".into(),
        to_interface: None,
        source_translation: None,
        destination_translation: None,
        description: None,
        tags: vec![],
        disabled: false,
        unmodelled: vec![],
        uuid: e.get_attr("uuid").map(str::to_string),
    };
    for c in e.elements() {
        match c.name.as_str() {
            "from" => r.from = members(c),
            "to" => {
                let to = members(c);
                if to.len() == 1 {
                    r.to = to[0].clone();
                } else {
                    r.unmodelled.push(raw_of(c));
                }
            }
            "source" => r.source = members(c),
            "destination" => r.destination = members(c),
            "service" => r.service = text_of(c),
            "nat-type" if text_of(c) == "ipv4" => {}
            "to-interface" => {
                let v = text_of(c);
                r.to_interface = (v != "any" && !v.is_empty()).then_some(v);
            }
            "source-translation" => {
                let iface = c.path("dynamic-ip-and-port/interface-address");
                let plain = c.elements().count() == 1
                    && c.path("dynamic-ip-and-port").is_some_and(|d| d.elements().count() == 1)
                    && iface.is_some_and(|i| i.elements().all(|x| x.name == "interface"));
                r.source_translation = Some(match (plain, iface.and_then(|i| i.text_at("interface"))) {
                    (true, Some(interface)) => SourceTranslation::InterfaceAddress { interface },
                    _ => SourceTranslation::Other(c.elements().map(raw_of).collect::<Vec<_>>().concat()),
                });
            }
            "dynamic-destination-translation" => {
                let known = c.elements().all(|x| matches!(x.name.as_str(), "translated-address" | "translated-port" | "distribution"));
                r.destination_translation = Some(if known {
                    DestinationTranslation::Dynamic {
                        address: c.text_at("translated-address").unwrap_or_default(),
                        port: c.text_at("translated-port").and_then(|p| p.parse().ok()),
                        distribution: c.text_at("distribution").unwrap_or_else(|| "round-robin".into()),
                    }
                } else {
                    DestinationTranslation::Other(raw_of(c))
                });
            }
            "destination-translation" => r.destination_translation = Some(DestinationTranslation::Other(raw_of(c))),
            "description" => r.description = Some(text_of(c)),
            "tag" => r.tags = members(c),
            "disabled" => r.disabled = text_of(c) == "yes",
            _ => r.unmodelled.push(raw_of(c)),
        }
    }
    r
}

fn decode_route(name: String, e: &Element) -> StaticRoute {
    let mut r =
        StaticRoute { name, destination: String::new(), nexthop: None, interface: None, metric: 10, admin_dist: None, unmodelled: vec![] };
    for c in e.elements() {
        match c.name.as_str() {
            "destination" => r.destination = text_of(c),
            "nexthop" => {
                let only_ip = c.elements().count() == 1 && c.find("ip-address").is_some();
                r.nexthop = Some(if only_ip {
                    NextHop::IpAddress(c.text_at("ip-address").unwrap_or_default())
                } else {
                    NextHop::Other(c.elements().map(raw_of).collect::<Vec<_>>().concat())
                });
            }
            "interface" => r.interface = Some(text_of(c)),
            "metric" => match text_of(c).parse() {
                Ok(m) => r.metric = m,
                Err(_) => r.unmodelled.push(raw_of(c)),
            },
            "admin-dist" => r.admin_dist = text_of(c).parse().ok(),
            "route-table" if c.elements().count() == 1 && c.find("unicast").is_some() => {}
            _ => r.unmodelled.push(raw_of(c)),
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::panorama::xml;

    fn round_trip(kind: Kind, obj: Object) {
        let xml_text = encode(&obj).to_xml();
        let container = xml::parse(&format!("<c>{xml_text}</c>")).unwrap();
        let mut seen = Observed::default();
        decode_container(kind, &container, &mut seen);
        let back = match kind {
            Kind::Tag => Object::Tag(seen.tags.pop().unwrap()),
            Kind::Address => Object::Address(seen.addresses.pop().unwrap()),
            Kind::Service => Object::Service(seen.services.pop().unwrap()),
            Kind::NatRule => Object::NatRule(seen.nat_rules.pop().unwrap()),
            Kind::StaticRoute => Object::StaticRoute(seen.static_routes.pop().unwrap()),
            Kind::AddressGroup => Object::AddressGroup(seen.address_groups.pop().unwrap()),
            Kind::SecurityRule => Object::SecurityRule(seen.security_rules.pop().unwrap()),
        };
        assert_eq!(back, obj, "{xml_text}");
    }

    #[test]
    fn security_rules_and_groups_read_back_equal_and_pan_os_defaults_change_nothing() {
        use pano_eks_core::panorama::model::{AddressGroup, GroupValue, SecurityRule};
        let rule = SecurityRule {
            name: "prod.in.shop.default.web".into(),
            from: vec!["untrust".into()],
            to: vec!["trust".into()],
            source: vec!["any".into()],
            destination: vec!["any".into()],
            application: vec!["ssl".into(), "web-browsing".into()],
            service: vec!["prod.tcp-82".into()],
            action: "allow".into(),
            profile_group: Some("strict".into()),
            log_start: false,
            log_end: true,
            description: Some("shop/default/web - managed by pano-eks (prod)".into()),
            tags: vec!["pano-eks".into(), "pano-eks.prod.shop".into()],
            disabled: false,
            unmodelled: vec![],
            uuid: Some("u-1".into()),
        };
        round_trip(Kind::SecurityRule, Object::SecurityRule(rule.clone()));
        let group = AddressGroup {
            name: "prod.shop".into(),
            value: GroupValue::Dynamic("'pano-eks.prod.shop'".into()),
            description: Some("cluster shop - managed by pano-eks (prod)".into()),
            tags: vec!["pano-eks".into(), "pano-eks.prod.shop".into()],
            unmodelled: vec![],
        };
        round_trip(Kind::AddressGroup, Object::AddressGroup(group));
        // What PAN-OS and pan-os-python add (rule-type, HIP any, no log-end) reads as ours.
        let text = "<c><entry name='prod.in.shop.default.web' uuid='u-1'><from><member>untrust</member></from><to><member>trust</member></to>\
            <source><member>any</member></source><destination><member>any</member></destination><source-user><member>any</member></source-user>\
            <category><member>any</member></category><application><member>ssl</member><member>web-browsing</member></application>\
            <service><member>prod.tcp-82</member></service><source-hip><member>any</member></source-hip><action>allow</action>\
            <rule-type>universal</rule-type><profile-setting><group><member>strict</member></group></profile-setting>\
            <description>shop/default/web - managed by pano-eks (prod)</description><tag><member>pano-eks</member><member>pano-eks.prod.shop</member></tag></entry></c>";
        let mut seen = Observed::default();
        decode_container(Kind::SecurityRule, &xml::parse(text).unwrap(), &mut seen);
        assert_eq!(seen.security_rules, vec![rule]);
        // A static group or extra content is not ours by shape.
        let mut seen = Observed::default();
        decode_container(
            Kind::AddressGroup,
            &xml::parse("<c><entry name='g'><static><member>a</member></static></entry></c>").unwrap(),
            &mut seen,
        );
        assert_eq!(seen.address_groups[0].value, GroupValue::Static(vec!["a".into()]));
    }

    fn inbound() -> NatRule {
        NatRule {
            name: "pke-shop-web-in".into(),
            from: vec!["untrust".into()],
            to: "untrust".into(),
            source: vec!["any".into()],
            destination: vec!["any".into()],
            service: "pke-shop-web".into(),
            to_interface: None,
            source_translation: Some(SourceTranslation::InterfaceAddress { interface: "ethernet1/2".into() }),
            destination_translation: Some(DestinationTranslation::Dynamic {
                address: "pke-shop-web".into(),
                port: Some(80),
                distribution: "round-robin".into(),
            }),
            description: Some("shop/default/web".into()),
            tags: vec!["pano-eks".into(), "pano-eks.demo.shop".into()],
            disabled: false,
            unmodelled: vec![],
            uuid: None,
        }
    }

    #[test]
    fn what_we_write_reads_back_equal() {
        round_trip(
            Kind::Tag,
            Object::Tag(Tag {
                name: "pano-eks".into(),
                color: Some("color3".into()),
                comments: Some("managed".into()),
                unmodelled: vec![],
            }),
        );
        round_trip(
            Kind::Address,
            Object::Address(Address {
                name: "a".into(),
                value: AddressValue::Fqdn("internal-x.elb.amazonaws.com".into()),
                description: Some("d".into()),
                tags: vec!["pano-eks".into()],
                unmodelled: vec![],
            }),
        );
        round_trip(
            Kind::Service,
            Object::Service(ServiceObject {
                name: "s".into(),
                protocol: Protocol::Tcp,
                port: "82".into(),
                description: None,
                tags: vec!["t".into()],
                unmodelled: vec![],
            }),
        );
        round_trip(Kind::NatRule, Object::NatRule(inbound()));
        round_trip(
            Kind::StaticRoute,
            Object::StaticRoute(StaticRoute {
                name: "pke-x".into(),
                destination: "192.168.110.0/24".into(),
                nexthop: Some(NextHop::IpAddress("192.168.2.1".into())),
                interface: Some("ethernet1/2".into()),
                metric: 10,
                admin_dist: None,
                unmodelled: vec![],
            }),
        );
    }

    #[test]
    fn pan_os_decorations_and_defaults_do_not_make_a_difference() {
        let text = "<c><entry name='pke-shop-web-in' uuid='1-2-3' admin='pano-eks' dirtyId='4' time='2026/11/26 10:00:00'>\
            <to><member>untrust</member></to><from><member>untrust</member></from><source><member>any</member></source>\
            <destination><member>any</member></destination><service>pke-shop-web</service>\
            <source-translation><dynamic-ip-and-port><interface-address><interface>ethernet1/2</interface></interface-address></dynamic-ip-and-port></source-translation>\
            <dynamic-destination-translation><translated-address>pke-shop-web</translated-address><translated-port>80</translated-port></dynamic-destination-translation>\
            <description>shop/default/web</description><tag><member>pano-eks</member><member>pano-eks.demo.shop</member></tag></entry></c>";
        let mut seen = Observed::default();
        decode_container(Kind::NatRule, &xml::parse(text).unwrap(), &mut seen);
        assert_eq!(seen.nat_rules, vec![NatRule { uuid: Some("1-2-3".into()), ..inbound() }]);
        assert!(seen.nat_rules[0].same_content(&inbound()), "the uuid is identity, not content");
    }

    #[test]
    fn a_nat_rule_uuid_is_read_and_written_back() {
        let rule = NatRule { uuid: Some("9f0c-11".into()), ..inbound() };
        let xml_text = encode(&Object::NatRule(rule.clone())).to_xml();
        assert!(xml_text.starts_with("<entry name=\"pke-shop-web-in\" uuid=\"9f0c-11\">"), "{xml_text}");
        round_trip(Kind::NatRule, Object::NatRule(rule));
        // Without one (a create), no attribute: PAN-OS assigns it.
        assert!(!encode(&Object::NatRule(inbound())).to_xml().contains("uuid"));
        // Other kinds never carry one.
        let text = "<c><entry name='a' uuid='u'><fqdn>a.b</fqdn></entry></c>";
        let mut seen = Observed::default();
        decode_container(Kind::Address, &xml::parse(text).unwrap(), &mut seen);
        assert!(!encode(&Object::Address(seen.addresses[0].clone())).to_xml().contains("uuid"));
    }

    #[test]
    fn foreign_shapes_are_kept_raw_and_never_equal_ours() {
        let text = "<c><entry name='x'><ip-netmask>10.0.0.0/8</ip-netmask><fqdn>a.b</fqdn></entry>\
            <entry name='y'><fqdn>a.b</fqdn><disable-override>no</disable-override></entry></c>";
        let mut seen = Observed::default();
        decode_container(Kind::Address, &xml::parse(text).unwrap(), &mut seen);
        assert!(matches!(&seen.addresses[0].value, AddressValue::Other(r) if r.contains("10.0.0.0/8")));
        assert_eq!(seen.addresses[1].unmodelled, vec!["<disable-override>no</disable-override>".to_string()]);

        let text = "<c><entry name='r'><from><member>untrust</member></from><to><member>untrust</member></to>\
            <destination-translation><translated-address>10.1.1.1</translated-address></destination-translation></entry></c>";
        let mut seen = Observed::default();
        decode_container(Kind::NatRule, &xml::parse(text).unwrap(), &mut seen);
        assert!(matches!(&seen.nat_rules[0].destination_translation, Some(DestinationTranslation::Other(_))));
        // Re-encoding a foreign rule keeps what we did not model.
        let again = encode(&Object::NatRule(seen.nat_rules[0].clone())).to_xml();
        assert!(
            again.contains("<destination-translation><translated-address>10.1.1.1</translated-address></destination-translation>"),
            "{again}"
        );
    }
}
