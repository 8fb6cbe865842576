//! Parser table tests on recorded-real-shape answers (sources in the module doc).

use super::*;
use crate::panorama::xml::parse;

fn result(xml: &str) -> Element {
    parse(xml).unwrap().find("result").cloned().unwrap()
}

fn rule(name: &str, action: Option<&str>) -> MatchedRule {
    MatchedRule { name: name.into(), action: action.map(str::to_owned) }
}

#[test]
fn policy_match_answers_in_both_forms() {
    let cases: Vec<(&str, Vec<MatchedRule>)> = vec![
        // Newer PAN-OS: attribute form with index and action (pan-os-python reads both).
        (
            r#"<response status="success"><result><rules><entry name="block-82"><index>1</index><action>deny</action></entry></rules></result></response>"#,
            vec![rule("block-82", Some("deny"))],
        ),
        // Older PAN-OS: `name; index: N` text (pan-os-python's second form).
        (
            r#"<response status="success"><result><rules><entry>allow-web; index: 3</entry></rules></result></response>"#,
            vec![rule("allow-web", None)],
        ),
        // CLI-style text body (ntc-templates' shape) carries the action.
        (
            "<response status=\"success\"><result><rules><entry>\"allow web; index: 2\" {\n        from untrust;\n        action allow;\n        terminal yes;\n}</entry></rules></result></response>",
            vec![rule("allow web", Some("allow"))],
        ),
        // NAT: the rule's name only.
        (
            r#"<response status="success"><result><rules><entry>prod.in.shop.default.web; index: 1</entry></rules></result></response>"#,
            vec![rule("prod.in.shop.default.web", None)],
        ),
        // No match.
        (r#"<response status="success"><result><rules/></result></response>"#, vec![]),
        (r#"<response status="success"><result/></response>"#, vec![]),
    ];
    for (xml, want) in cases {
        assert_eq!(parse_rules(&result(xml)), want, "{xml}");
    }
}

#[test]
fn fib_lookup_answers() {
    let ok = result(
        "<response status=\"success\"><result><nh>ip</nh><src>10.0.2.10</src><ip>10.0.2.1</ip><metric>10</metric><interface>ethernet1/2</interface><dp>dp0</dp></result></response>",
    );
    assert_eq!(parse_fib(&ok), Answer::Fib { interface: Some("ethernet1/2".into()), nexthop: Some("10.0.2.1".parse().unwrap()) });
    let none = result(r#"<response status="success"><result/></response>"#);
    assert_eq!(parse_fib(&none), Answer::Fib { interface: None, nexthop: None });
}

#[test]
fn fqdn_table_in_text_and_structured_forms() {
    let text = result(
        "<response status=\"success\"><result><![CDATA[FQDN Table : Last Request time Tue Dec  1 03:22:33 2026\n\
         ---------------------------------------------------------------\n\
         VsysName   ObjectName                 FQDN\n\
         vsys1      prod.shop.default.web      internal-web.elb.amazonaws.com\n\
         \x20          10.0.2.77/32  10.0.12.77/32\n\
         vsys1      prod.shop.default.db       internal-db.elb.amazonaws.com\n\
         ]]></result></response>",
    );
    let ip = |s: &str| s.parse::<Ipv4Addr>().unwrap();
    assert_eq!(parse_fqdn(&text, "internal-web.elb.amazonaws.com"), [ip("10.0.2.77"), ip("10.0.12.77")]);
    assert_eq!(parse_fqdn(&text, "internal-db.elb.amazonaws.com"), [] as [Ipv4Addr; 0], "listed without addresses = unresolved");
    assert_eq!(parse_fqdn(&text, "internal-none.elb.amazonaws.com"), [] as [Ipv4Addr; 0], "not listed = unresolved");
    let structured = result(
        r#"<response status="success"><result><fqdn-info><entry name="internal-web.elb.amazonaws.com"><state>resolved</state><member>10.0.2.77</member></entry><entry name="internal-db.elb.amazonaws.com"><state>unresolved</state></entry><entry name="internal-odd.elb.amazonaws.com"><state>refreshing</state><member>10.0.2.9</member></entry></fqdn-info></result></response>"#,
    );
    assert_eq!(parse_fqdn(&structured, "internal-web.elb.amazonaws.com"), [ip("10.0.2.77")]);
    assert!(parse_fqdn(&structured, "internal-db.elb.amazonaws.com").is_empty());
    assert!(parse_fqdn(&structured, "internal-odd.elb.amazonaws.com").is_empty(), "any state but resolved is not resolved");
    assert!(parse_fqdn(&structured, "internal-none.elb.amazonaws.com").is_empty());
}

#[test]
fn interfaces_and_devices() {
    let ifs = result(
        "<response status=\"success\"><result><ifnet><entry><name>ethernet1/1</name><zone>untrust</zone><fwd>vr:vr-default</fwd><vsys>1</vsys><ip>10.0.1.10/24</ip></entry>\
         <entry><name>ethernet1/2</name><zone>trust</zone><ip>10.0.2.10/24</ip></entry><entry><name>tunnel.1</name><ip>N/A</ip></entry></ifnet><hw/></result></response>",
    );
    let got = parse_interfaces(&ifs);
    assert_eq!(
        got.iter().map(|i| (i.name.as_str(), i.zone.as_str(), i.address.to_string())).collect::<Vec<_>>(),
        [("ethernet1/1", "untrust", "10.0.1.10/24".to_owned()), ("ethernet1/2", "trust", "10.0.2.10/24".to_owned())]
    );
    let devs = result(
        "<response status=\"success\"><result><devices>\
         <entry name=\"007900000001\"><serial>007900000001</serial><connected>yes</connected><hostname>fw-01</hostname>\
         <vsys><entry name=\"vsys1\"><display-name>vsys1</display-name><shared-policy-status>In Sync</shared-policy-status></entry></vsys><template-status>In Sync</template-status></entry>\
         <entry name=\"007900000002\"><serial>007900000002</serial><connected>no</connected><hostname>fw-02</hostname></entry>\
         </devices></result></response>",
    );
    let d = parse_devices(&devs);
    assert_eq!(d.len(), 2);
    assert_eq!(
        (d[0].connected, d[0].shared_policy_status.as_deref(), d[0].template_status.as_deref()),
        (true, Some("In Sync"), Some("In Sync"))
    );
    assert_eq!((d[1].serial.as_str(), d[1].connected, d[1].hostname.as_str()), ("007900000002", false, "fw-02"));
    let dgs = result(
        r#"<response status="success"><result><devicegroups><entry name="other"><devices><entry name="9"/></devices></entry><entry name="dg"><devices><entry name="007900000001"><serial>007900000001</serial></entry><entry name="007900000002"/></devices></entry></devicegroups></result></response>"#,
    );
    assert_eq!(parse_members(&dgs, "dg"), ["007900000001", "007900000002"]);
    assert!(parse_members(&dgs, "absent").is_empty());
}

#[test]
fn commands_are_pan_os_op_xml() {
    let q = Query::SecurityMatch {
        from: "untrust".into(),
        to: "trust".into(),
        source: "198.51.100.10".parse().unwrap(),
        destination: "10.0.1.10".parse().unwrap(),
        protocol: 6,
        port: 82,
    };
    assert_eq!(
        command(&q).to_xml(),
        "<test><security-policy-match><from>untrust</from><to>trust</to><source>198.51.100.10</source><destination>10.0.1.10</destination><protocol>6</protocol><destination-port>82</destination-port></security-policy-match></test>"
    );
    let f = Query::FibLookup { virtual_router: "vr-default".into(), address: "192.168.110.1".parse().unwrap() };
    assert_eq!(
        command(&f).to_xml(),
        "<test><routing><fib-lookup><virtual-router>vr-default</virtual-router><ip>192.168.110.1</ip></fib-lookup></routing></test>"
    );
    assert_eq!(fqdn_show().to_xml(), "<request><system><fqdn><show/></fqdn></system></request>");
    assert_eq!(show_interfaces().to_xml(), "<show><interface>all</interface></show>");
}
