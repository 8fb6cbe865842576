//! In-process tests of the XML API semantics (every action, schema checks, multi-config
//! atomicity, jobs, locks, faults) through `State::handle`, the same entry point the HTTP
//! server uses.

use pano_eks_sim::panorama::faults::Faults;
use pano_eks_sim::panorama::state::{Device, HeaderAuth, Options, Params, PreFault, State};
use pano_eks_sim::panorama::xml_tree::Node;
use std::time::{Duration, Instant};

mod panorama_support;
use panorama_support::*;

/// Raw body of the answer `_n` was parsed from (always the latest call in these tests): the
/// indexed Node keeps one of several same-tag siblings (`<line>`s), so assert on the raw text.
fn msg(_n: &Node) -> String {
    LAST.with(|l| l.borrow().clone())
}

fn seed_objects(s: &mut Sim) {
    let d = dg("DG1");
    assert_eq!(status(&s.set(&format!("{d}/tag"), "<entry name='pano-eks'><color>color3</color></entry>")).0, "success");
    assert_eq!(
        status(
            &s.set(&format!("{d}/address"), "<entry name='web'><fqdn>web.example.com</fqdn><tag><member>pano-eks</member></tag></entry>")
        )
        .0,
        "success"
    );
    assert_eq!(
        status(&s.set(&format!("{d}/service"), "<entry name='tcp-8080'><protocol><tcp><port>8080</port></tcp></protocol></entry>")).0,
        "success"
    );
}

const NAT: &str = "<entry name='in'><from><member>untrust</member></from><to><member>untrust</member></to>\
<source><member>any</member></source><destination><member>10.0.0.1</member></destination><service>tcp-8080</service>\
<dynamic-destination-translation><translated-address>web</translated-address><translated-port>8080</translated-port></dynamic-destination-translation></entry>";

// ---------------------------------------------------------------- auth

#[test]
fn keygen_and_bad_credentials() {
    let mut st = State::new(opts());
    assert_eq!(keygen(&mut st, "admin", "nope"), Err(403));
    let p = Params(vec![("type".into(), "keygen".into()), ("user".into(), "admin".into()), ("password".into(), "nope".into())]);
    let r = st.handle(&p, &HeaderAuth::default(), Instant::now());
    assert_eq!(r.reason, Some("Invalid Credential"));
    assert_eq!(r.body, "<response status = 'error' code = '403'><result><msg>Invalid Credential</msg></result></response>");
    assert_eq!(r.body.len(), 97);
    let k1 = keygen(&mut st, "admin", "pw").unwrap();
    assert_eq!(keygen(&mut st, "admin", "pw").unwrap(), k1, "same admin gets the same key (rotation off by default)");
    st.set_faults(Faults { keygen_rotates: true, ..st.faults.clone() });
    let k1b = keygen(&mut st, "admin", "pw").unwrap();
    assert_ne!(k1b, k1, "with keygen_rotates a new keygen issues a new key");
    let ping = |st: &mut State, k: &str| {
        let p = Params(vec![("type".into(), "op".into()), ("cmd".into(), "<show><system><info/></system></show>".into())]);
        st.handle(&p, &HeaderAuth { pan_key: Some(k.into()), basic: None }, Instant::now()).status
    };
    assert_eq!(ping(&mut st, &k1), 403, "the previous key of that admin ends (9.1 API guide)");
    assert_eq!(ping(&mut st, &k1b), 200);
    let k1 = k1b;
    assert_ne!(keygen(&mut st, "admin2", "pw2").unwrap(), k1);
}

#[test]
fn key_from_header_param_or_basic_and_bad_key_is_403() {
    let mut s = Sim::new();
    let cmd = ("cmd", "<show><system><info/></system></show>");
    let (st, _) = s.call_as("bogus", &[("type", "op"), cmd]);
    assert_eq!(st, 403);
    // key= param
    let p = Params(vec![("type".into(), "op".into()), (cmd.0.into(), cmd.1.into()), ("key".into(), s.key.clone())]);
    assert_eq!(s.st.handle(&p, &HeaderAuth::default(), Instant::now()).status, 200);
    // HTTP Basic
    let p = Params(vec![("type".into(), "op".into()), (cmd.0.into(), cmd.1.into())]);
    let h = HeaderAuth { pan_key: None, basic: Some(("admin".into(), "pw".into())) };
    assert_eq!(s.st.handle(&p, &h, Instant::now()).status, 200);
    let h = HeaderAuth { pan_key: None, basic: Some(("admin".into(), "bad".into())) };
    assert_eq!(s.st.handle(&p, &h, Instant::now()).status, 403);
    // rotated keys stop working
    s.st.rotate_keys();
    let key = s.key.clone();
    assert_eq!(s.call_as(&key, &[("type", "op"), cmd]).0, 403);
}

// ---------------------------------------------------------------- config actions

#[test]
fn get_missing_is_code_7_and_show_missing_is_no_such_node() {
    let mut s = Sim::new();
    let r = s.get(&format!("{}/address/entry[@name='x']", dg("DG1")));
    assert_eq!(status(&r), ("success".into(), "7".into()));
    assert!(r.child("result").unwrap().children.is_empty());
    let r = s.show(&dg("DG1"));
    assert_eq!(status(&r).0, "error");
    assert!(msg(&r).contains("No such node"));
}

#[test]
fn set_merges_get_reads_candidate_show_reads_running() {
    let mut s = Sim::new();
    seed_objects(&mut s);
    let a = format!("{}/address/entry[@name='web']", dg("DG1"));
    // merge: add a description, fqdn stays
    assert_eq!(status(&s.set(&a, "<description>d1</description>")), ("success".into(), "20".into()));
    let r = s.get(&a);
    assert_eq!(status(&r), ("success".into(), "19".into()));
    assert_eq!(r.child("result").unwrap().attr("count"), Some("1"));
    let e = r.descend(&["result"]).unwrap().entry_child("web").unwrap();
    assert_eq!(e.child("fqdn").unwrap().text, "web.example.com");
    assert_eq!(e.child("description").unwrap().text, "d1");
    assert_eq!(e.attr("admin"), Some("admin"), "uncommitted nodes carry admin/dirtyId/time");
    // member lists merge by union
    s.set(&format!("{}/tag", dg("DG1")), "<entry name='t2'/>");
    s.set(&format!("{a}/tag"), "<member>t2</member>");
    let r = s.get(&format!("{a}/tag"));
    assert_eq!(r.descend(&["result", "tag"]).unwrap().members(), vec!["pano-eks", "t2"]);
    // show reads running: nothing committed yet
    assert_eq!(status(&s.show(&a)).0, "error");
}

#[test]
fn get_with_or_names_and_trailing_at_name() {
    let mut s = Sim::new();
    seed_objects(&mut s);
    s.set(
        &format!("{}/address", dg("DG1")),
        "<entry name='b'><ip-netmask>10.0.0.2</ip-netmask></entry><entry name='c d'><ip-netmask>10.0.0.3</ip-netmask></entry>",
    );
    // Quotes are not allowed in address names (strict charset) but are in tag names.
    assert_eq!(status(&s.set(&format!("{}/tag", dg("DG1")), "<entry name=\"it's\"/>")).1, "20");
    let r = s.get(&format!("{}/address/entry[@name='web' or @name='b' or @name='zzz']", dg("DG1")));
    assert_eq!(r.child("result").unwrap().attr("total-count"), Some("2"));
    let r = s.get(&format!("{}/address/entry/@name", dg("DG1")));
    let names: Vec<_> = r.child("result").unwrap().entries().map(|e| e.name().unwrap().to_string()).collect();
    assert_eq!(names, vec!["web", "b", "c d"]);
    assert!(r.child("result").unwrap().entry_child("web").unwrap().children.is_empty());
    let r = s.get(&format!("{}/tag/entry[@name=concat('it', \"'\", 's')]", dg("DG1")));
    assert_eq!(status(&r).1, "19");
    let r = s.get(&format!("{}/address/entry[@name='web']/tag/member[text()='pano-eks']", dg("DG1")));
    assert_eq!(status(&r).1, "19");
}

#[test]
fn bad_xpath_is_code_6() {
    let mut s = Sim::new();
    for x in ["config/x", "/config//shared", "/config/shared/address/entry[1]", "/config/shared/address/entry[@name='x'"] {
        let r = s.get(x);
        assert_eq!(status(&r), ("error".into(), "6".into()), "{x}");
    }
}

#[test]
fn edit_replaces_and_must_match_xpath() {
    let mut s = Sim::new();
    seed_objects(&mut s);
    let a = format!("{}/address/entry[@name='web']", dg("DG1"));
    s.set(&a, "<description>old</description>");
    let r = s.edit(&a, "<entry name='web'><ip-netmask>10.1.1.1/32</ip-netmask></entry>");
    assert_eq!(status(&r), ("success".into(), "20".into()));
    let e = s.get(&a);
    let e = e.descend(&["result"]).unwrap().entry_child("web").unwrap();
    assert!(e.child("fqdn").is_none() && e.child("description").is_none(), "edit replaces");
    assert_eq!(e.child("ip-netmask").unwrap().text, "10.1.1.1/32");
    // wrong name / wrong tag
    let r = s.edit(&a, "<entry name='other'><ip-netmask>10.1.1.1</ip-netmask></entry>");
    assert_eq!(status(&r).0, "error");
    let r = s.edit(&format!("{a}/description"), "<comment>x</comment>");
    assert_eq!(status(&r).0, "error");
    // leaf edit creates
    assert_eq!(status(&s.edit(&format!("{a}/description"), "<description>new</description>")).1, "20");
    // malformed element
    let r = s.edit(&format!("{a}/description"), "<description>new");
    assert_eq!(status(&r), ("error".into(), "18".into()));
}

#[test]
fn delete_one_several_and_missing() {
    let mut s = Sim::new();
    seed_objects(&mut s);
    let c = format!("{}/address", dg("DG1"));
    s.set(&c, "<entry name='a'><ip-netmask>10.0.0.1</ip-netmask></entry><entry name='b'><ip-netmask>10.0.0.2</ip-netmask></entry>");
    assert_eq!(status(&s.delete(&format!("{c}/entry[@name='a' or @name='b']"))).1, "20");
    assert!(!s.candidate_has("10.0.0.2"));
    let r = s.delete(&format!("{c}/entry[@name='a']"));
    assert_eq!(status(&r), ("success".into(), "7".into()));
    assert!(msg(&r).contains("Object doesn't exist"));
}

#[test]
fn rename_keeps_position_and_refuses_duplicates() {
    let mut s = Sim::new();
    seed_objects(&mut s);
    let c = format!("{}/address", dg("DG1"));
    s.set(&c, "<entry name='b'><ip-netmask>10.0.0.2</ip-netmask></entry>");
    let r = s.call(&[("type", "config"), ("action", "rename"), ("xpath", &format!("{c}/entry[@name='web']")), ("newname", "web2")]);
    assert_eq!(status(&r).1, "20");
    let names: Vec<String> =
        s.get(&format!("{c}/entry/@name")).child("result").unwrap().entries().map(|e| e.name().unwrap().into()).collect();
    assert_eq!(names, vec!["web2", "b"]);
    let r = s.call(&[("type", "config"), ("action", "rename"), ("xpath", &format!("{c}/entry[@name='web2']")), ("newname", "b")]);
    assert_eq!(status(&r).0, "error");
    let r = s.call(&[("type", "config"), ("action", "rename"), ("xpath", &format!("{c}/entry[@name='nope']")), ("newname", "x")]);
    assert_eq!(status(&r).0, "error");
}

#[test]
fn move_rules() {
    let mut s = Sim::new();
    seed_objects(&mut s);
    let rules = format!("{}/pre-rulebase/nat/rules", dg("DG1"));
    for n in ["r1", "r2", "r3"] {
        assert_eq!(status(&s.set(&rules, &NAT.replace("name='in'", &format!("name='{n}'")))).0, "success");
    }
    let order = |s: &mut Sim| -> Vec<String> {
        s.get(&format!("{rules}/entry/@name")).child("result").unwrap().entries().map(|e| e.name().unwrap().into()).collect()
    };
    let mv = |s: &mut Sim, r: &str, w: &str, dst: &str| {
        s.call(&[("type", "config"), ("action", "move"), ("xpath", &format!("{rules}/entry[@name='{r}']")), ("where", w), ("dst", dst)])
    };
    assert_eq!(status(&mv(&mut s, "r3", "top", "")).1, "20");
    assert_eq!(order(&mut s), ["r3", "r1", "r2"]);
    assert_eq!(status(&mv(&mut s, "r3", "after", "r1")).1, "20");
    assert_eq!(order(&mut s), ["r1", "r3", "r2"]);
    assert_eq!(status(&mv(&mut s, "r2", "before", "r1")).1, "20");
    assert_eq!(order(&mut s), ["r2", "r1", "r3"]);
    assert_eq!(status(&mv(&mut s, "r2", "bottom", "")).1, "20");
    assert_eq!(order(&mut s), ["r1", "r3", "r2"]);
    let r = mv(&mut s, "r1", "top", "");
    assert_eq!(status(&r).0, "error");
    assert!(msg(&r).contains("already at the top"));
    let r = mv(&mut s, "r2", "bottom", "");
    assert!(msg(&r).contains("already at the bottom"));
    assert_eq!(status(&mv(&mut s, "r1", "after", "nope")).0, "error");
}

#[test]
fn set_creates_missing_device_group_like_panos() {
    let mut s = Sim::new();
    s.set(&format!("{}/tag", dg("NEW")), "<entry name='t'/>");
    assert!(s.get(&dg("NEW")).child("result").is_some());
}

// ---------------------------------------------------------------- schema checks

fn assert_refused(r: &Node, needle: &str) {
    assert_eq!(status(r), ("error".into(), "12".into()), "{}", r.to_xml());
    assert!(msg(r).contains(needle), "wanted {needle:?} in {}", msg(r));
}

#[test]
fn schema_names() {
    let mut s = Sim::new();
    let c = format!("{}/address", dg("DG1"));
    let long = "a".repeat(64);
    assert_refused(&s.set(&c, &format!("<entry name='{long}'><ip-netmask>10.0.0.1</ip-netmask></entry>")), "at most 63 characters");
    assert_eq!(status(&s.set(&c, &format!("<entry name='{}'><ip-netmask>10.0.0.1</ip-netmask></entry>", &long[..63]))).1, "20");
    assert_refused(&s.set(&c, "<entry name='a/b'><ip-netmask>10.0.0.1</ip-netmask></entry>"), "not a valid name");
    assert_refused(&s.set(&c, "<entry name='-x'><ip-netmask>10.0.0.1</ip-netmask></entry>"), "not a valid name");
    // tags: 127 and more characters allowed
    let t = format!("{}/tag", dg("DG1"));
    assert_eq!(status(&s.set(&t, &format!("<entry name='k8s.cl_a/{}'/>", "x".repeat(100)))).1, "20");
    assert_refused(&s.set(&t, &format!("<entry name='{}'/>", "x".repeat(128))), "at most 127");
    // static routes: 31
    let sr = format!(
        "{LD}/template/entry[@name='T']/config/devices/entry[@name='localhost.localdomain']/network/virtual-router/entry[@name='vr-default']/routing-table/ip/static-route"
    );
    assert_refused(&s.set(&sr, &format!("<entry name='{}'><destination>10.0.0.0/8</destination></entry>", "r".repeat(32))), "at most 31");
    assert_eq!(
        status(&s.set(
            &sr,
            &format!(
                "<entry name='{}'><destination>10.0.0.0/8</destination><nexthop><ip-address>10.0.1.1</ip-address></nexthop></entry>",
                "r".repeat(31)
            )
        ))
        .1,
        "20"
    );
    assert_refused(&s.set(&sr, "<entry name='bad'><destination>10.0.0.0/99</destination></entry>"), "destination");
    // nothing of the refused writes landed
    assert!(!s.candidate_has(&long));
}

#[test]
fn schema_address_exactly_one_type() {
    let mut s = Sim::new();
    let a = format!("{}/address/entry[@name='x']", dg("DG1"));
    assert_refused(&s.edit(&a, "<entry name='x'><fqdn>a.b</fqdn><ip-netmask>10.0.0.1</ip-netmask></entry>"), "mutually exclusive");
    assert_refused(&s.edit(&a, "<entry name='x'><description>none</description></entry>"), "is missing");
    assert_eq!(status(&s.edit(&a, "<entry name='x'><fqdn>a.b</fqdn></entry>")).1, "20");
    // set merging a second type into an existing fqdn address is refused and rolled back
    assert_refused(&s.set(&a, "<ip-netmask>10.0.0.1</ip-netmask>"), "mutually exclusive");
    assert!(!s.candidate_has("10.0.0.1"));
    assert_refused(&s.edit(&a, "<entry name='x'><ip-netmask>10.0.0.300</ip-netmask></entry>"), "is invalid");
}

#[test]
fn schema_service() {
    let mut s = Sim::new();
    let c = format!("{}/service", dg("DG1"));
    assert_refused(&s.set(&c, "<entry name='s'><protocol><tcp><port>99999</port></tcp></protocol></entry>"), "port");
    assert_refused(
        &s.set(&c, "<entry name='s'><protocol><tcp><port>1</port></tcp><udp><port>1</port></udp></protocol></entry>"),
        "mutually exclusive",
    );
    assert_eq!(status(&s.set(&c, "<entry name='s'><protocol><tcp><port>80,443,8000-8100</port></tcp></protocol></entry>")).1, "20");
}

#[test]
fn schema_nat_rule() {
    let mut s = Sim::new();
    seed_objects(&mut s);
    let rules = format!("{}/pre-rulebase/nat/rules", dg("DG1"));
    assert_eq!(status(&s.set(&rules, NAT)).1, "20");
    let two_to = NAT.replace("<to><member>untrust</member></to>", "<to><member>a</member><member>b</member></to>");
    assert_refused(&s.set(&rules, &two_to.replace("'in'", "'x1'")), "only one destination zone");
    let svc_list = NAT.replace("<service>tcp-8080</service>", "<service><member>tcp-8080</member></service>");
    assert_refused(&s.set(&rules, &svc_list.replace("'in'", "'x2'")), "service");
    let both = NAT.replace(
        "</entry>",
        "<destination-translation><translated-address>10.0.0.9</translated-address></destination-translation></entry>",
    );
    assert_refused(&s.set(&rules, &both.replace("'in'", "'x3'")), "mutually exclusive");
    let dangling = NAT.replace("<translated-address>web</translated-address>", "<translated-address>ghost</translated-address>");
    assert_refused(&s.set(&rules, &dangling.replace("'in'", "'x4'")), "'ghost' is not a valid reference");
    let bad_svc = NAT.replace("<service>tcp-8080</service>", "<service>ghost-svc</service>");
    assert_refused(&s.set(&rules, &bad_svc.replace("'in'", "'x5'")), "'ghost-svc' is not a valid reference");
    let bad_tag = NAT.replace("</entry>", "<tag><member>ghost-tag</member></tag></entry>");
    assert_refused(&s.set(&rules, &bad_tag.replace("'in'", "'x6'")), "'ghost-tag' is not a valid reference");
    let no_from = NAT.replace("<from><member>untrust</member></from>", "");
    assert_refused(&s.set(&rules, &no_from.replace("'in'", "'x7'")), "is missing 'from'");
    assert!(!s.candidate_has("x1") && !s.candidate_has("x7"));
    // rules get a uuid; edit keeps it
    let r = s.get(&format!("{rules}/entry[@name='in']"));
    let uuid = r.child("result").unwrap().entry_child("in").unwrap().attr("uuid").unwrap().to_string();
    s.edit(&format!("{rules}/entry[@name='in']"), NAT);
    let r = s.get(&format!("{rules}/entry[@name='in']"));
    assert_eq!(r.child("result").unwrap().entry_child("in").unwrap().attr("uuid"), Some(uuid.as_str()));
}

#[test]
fn references_resolve_in_ancestors_and_shared() {
    let mut s = Sim::new();
    s.set("/config/shared/tag", "<entry name='shared-tag'/>");
    s.set(&format!("{}/tag", dg("PARENT")), "<entry name='parent-tag'/>");
    s.set(&format!("{LD}/../../readonly"), "<x/>"); // harmless odd path: refused or not, must not panic
    s.set(
        "/config/readonly/devices/entry[@name='localhost.localdomain']/device-group/entry[@name='CHILD']",
        "<parent-dg>PARENT</parent-dg>",
    );
    let c = format!("{}/address", dg("CHILD"));
    for (n, t) in [("a1", "shared-tag"), ("a2", "parent-tag")] {
        let r = s.set(&c, &format!("<entry name='{n}'><ip-netmask>10.0.0.1</ip-netmask><tag><member>{t}</member></tag></entry>"));
        assert_eq!(status(&r).1, "20", "{}", r.to_xml());
    }
    // a sibling DG's tag is not visible
    s.set(&format!("{}/tag", dg("SIBLING")), "<entry name='sib-tag'/>");
    assert_refused(
        &s.set(&c, "<entry name='a3'><ip-netmask>10.0.0.1</ip-netmask><tag><member>sib-tag</member></tag></entry>"),
        "not a valid reference",
    );
}

#[test]
fn schema_paths_panorama_does_not_have() {
    let mut s = Sim::new();
    let r = s.set(&format!("{}/rulebase/security/rules", dg("DG1")), "<entry name='r'/>");
    assert_refused(&r, "Could not find schema node for xpath");
    let r = s.set(&format!("{LD}/vsys/entry[@name='vsys1']/address"), "<entry name='a'><ip-netmask>1.1.1.1</ip-netmask></entry>");
    assert_refused(&r, "Could not find schema node");
    let r = s.set(&dg("DG1"), "<rulebase><security/></rulebase>");
    assert_refused(&r, "rulebase unexpected here");
}

// ---------------------------------------------------------------- multi-config

fn multi(s: &mut Sim, body: &str) -> Node {
    s.call(&[("type", "config"), ("action", "multi-config"), ("element", body)])
}

#[test]
fn multi_config_success_has_inner_responses_with_ids() {
    let mut s = Sim::new();
    seed_objects(&mut s);
    let c = format!("{}/address", dg("DG1"));
    let body = format!(
        "<multi-configure-request><edit id=\"1\" xpath=\"{c}/entry[@name='m1']\"><entry name='m1'><ip-netmask>10.0.0.1</ip-netmask></entry></edit>\
<set id=\"2\" xpath=\"{c}\"><entry name='m2'><ip-netmask>10.0.0.2</ip-netmask></entry></set>\
<rename id=\"3\" xpath=\"{c}/entry[@name='m2']\" newname=\"m3\"/>\
<delete id=\"4\" xpath=\"{c}/entry[@name='nope']\"/></multi-configure-request>"
    );
    let r = multi(&mut s, &body);
    assert_eq!(status(&r), ("success".into(), "20".into()), "{}", r.to_xml());
    let ids: Vec<_> = r.children.values().map(|c| c.attr("id").unwrap().to_string()).collect();
    // inner responses share the tag, so the indexed tree keeps one; check the raw count instead
    assert!(!ids.is_empty());
    let raw = r.to_xml();
    assert!(s.candidate_has("m3") && s.candidate_has("m1") && !s.candidate_has("name=\"m2\""));
    let st = &s.st.stats;
    assert_eq!(st.write_calls, 4, "3 seeds + 1 multi-config: {raw}");
    assert_eq!(st.write_ops, 3 + 4);
}

#[test]
fn multi_config_is_all_or_nothing() {
    let mut s = Sim::new();
    seed_objects(&mut s);
    let before = s.st.candidate.to_xml();
    let c = format!("{}/address", dg("DG1"));
    let body = format!(
        "<multi-configure-request><set id=\"a\" xpath=\"{c}\"><entry name='ok1'><ip-netmask>10.0.0.1</ip-netmask></entry></set>\
<delete id=\"b\" xpath=\"{c}/entry[@name='web']\"/>\
<set id=\"c\" xpath=\"{c}\"><entry name='{}'><ip-netmask>10.0.0.1</ip-netmask></entry></set>\
<set id=\"d\" xpath=\"{c}\"><entry name='never'><ip-netmask>10.0.0.1</ip-netmask></entry></set></multi-configure-request>",
        "x".repeat(70)
    );
    let raw = {
        let mut p = Params::default();
        p.0 = vec![("type".into(), "config".into()), ("action".into(), "multi-config".into()), ("element".into(), body)];
        let h = HeaderAuth { pan_key: Some(s.key.clone()), basic: None };
        s.st.handle(&p, &h, Instant::now()).body
    };
    assert!(raw.starts_with("<response status=\"error\" code=\"13\">"), "{raw}");
    assert_eq!(raw.matches("<response ").count(), 4, "outer + 3 inner up to the failing one: {raw}");
    assert!(raw.contains("id=\"c\"") && !raw.contains("id=\"d\""));
    assert_eq!(s.st.candidate.to_xml(), before, "nothing applied");
    // unknown sub-op
    let r = multi(&mut s, "<multi-configure-request><frobnicate id='1' xpath='/config/shared'/></multi-configure-request>");
    assert_eq!(status(&r).0, "error");
}

// ---------------------------------------------------------------- commit, jobs, push

#[test]
fn commit_job_steps_pend_act_fin_and_applies_at_fin() {
    let mut s = Sim::with(Options { job_step: Duration::from_millis(60), ..opts() });
    seed_objects(&mut s);
    let r = s.commit("<commit></commit>");
    assert_eq!(status(&r), ("success".into(), "19".into()));
    let id = text(&r, &["result", "job"]);
    assert!(text(&r, &["result", "msg", "line"]).contains(&format!("jobid {id}")));
    let mut seen = Vec::new();
    let mut progress = Vec::new();
    loop {
        // Running is read before the job: if the job is still not FIN after, it was not FIN when
        // running was read (read the other way round, a slow machine can pass FIN in between).
        let running = status(&s.show(&dg("DG1"))).0;
        let j = s.job(&id);
        let st = text(&j, &["result", "job", "status"]);
        progress.push(text(&j, &["result", "job", "progress"]).parse::<u32>().unwrap());
        if st != "FIN" {
            assert_eq!(text(&j, &["result", "job", "result"]), "PEND");
            assert_eq!(text(&j, &["result", "job", "tfin"]), "Still Active");
            // running not updated before FIN
            assert_eq!(running, "error");
        } else {
            assert_eq!(text(&j, &["result", "job", "result"]), "OK");
            assert_eq!(text(&j, &["result", "job", "type"]), "Commit");
        }
        if seen.last() != Some(&st) {
            seen.push(st.clone());
        }
        if st == "FIN" {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(seen, ["PEND", "ACT", "FIN"]);
    assert_eq!(*progress.last().unwrap(), 100);
    assert!(progress.windows(2).all(|w| w[0] <= w[1]));
    assert_eq!(status(&s.show(&dg("DG1"))).0, "success");
    // running carries no candidate markers
    assert!(!s.st.running.to_xml().contains("dirtyId"));
    let r = s.commit("<commit></commit>");
    assert_eq!(text(&r, &["msg"]), "There are no changes to commit.");
    assert_eq!(s.st.stats.commits, 1);
    let r = s.op("<check><pending-changes/></check>");
    assert_eq!(text(&r, &["result"]), "no");
}

#[test]
fn partial_commit_takes_only_that_admins_changes() {
    let mut s = Sim::new();
    let k2 = s.key_for("admin2", "pw2");
    s.set(&format!("{}/tag", dg("A")), "<entry name='mine'/>");
    let x = format!("{}/tag", dg("B"));
    s.call_as(&k2, &[("type", "config"), ("action", "set"), ("xpath", &x), ("element", "<entry name='theirs'/>")]);
    let r = s.commit("<commit><partial><admin><member>admin</member></admin></partial></commit>");
    let id = text(&r, &["result", "job"]);
    s.wait_job(&id);
    assert_eq!(status(&s.show(&dg("A"))).0, "success");
    assert_eq!(status(&s.show(&dg("B"))).0, "error");
    assert_eq!(text(&s.op("<check><pending-changes/></check>"), &["result"]), "yes");
    let r = s.commit("<commit><partial><admin><member>admin</member></admin></partial></commit>");
    assert_eq!(text(&r, &["msg"]), "There are no changes to commit.");
    let (_, r) =
        s.call_as(&k2, &[("type", "commit"), ("cmd", "<commit><partial><admin><member>admin2</member></admin></partial></commit>")]);
    let id = text(&r, &["result", "job"]);
    s.wait_job(&id);
    assert_eq!(status(&s.show(&dg("B"))).0, "success");
    // a deletion is committed too
    s.delete(&dg("A"));
    let id = text(&s.commit("<commit><partial><admin><member>admin</member></admin></partial></commit>"), &["result", "job"]);
    s.wait_job(&id);
    assert_eq!(status(&s.show(&dg("A"))).0, "error");
}

#[test]
fn partial_xpath_set_of_a_parent_sweeps_other_admins_changes_beneath_it() {
    // pan-os-ansible#628 (and #331/#212 on older versions): the node a `set` writes is the
    // writer's change; its partial commit takes everything beneath, other admins' changes too.
    // (Replaces the old per-entry model, which said the opposite.)
    let mut s = Sim::new();
    let k2 = s.key_for("admin2", "pw2");
    let x = format!("{}/address", dg("A"));
    s.call_as(
        &k2,
        &[("type", "config"), ("action", "set"), ("xpath", &x), ("element", "<entry name='theirs'><fqdn>t.example</fqdn></entry>")],
    );
    s.set(&dg("A"), "<address><entry name='m1'><fqdn>a.example</fqdn></entry><entry name='m2'><fqdn>b.example</fqdn></entry></address>");
    // the written node (the DG entry) carries the writer's dirty markers
    let g = s.get(&dg("A"));
    assert_eq!(g.child("result").and_then(|r| r.entry_child("A")).and_then(|e| e.attr("admin")), Some("admin"), "{}", g.to_xml());
    let id = text(&s.commit("<commit><partial><admin><member>admin</member></admin></partial></commit>"), &["result", "job"]);
    s.wait_job(&id);
    let running = s.st.running.to_xml();
    assert!(running.contains("a.example") && running.contains("b.example"), "{running}");
    assert!(running.contains("t.example"), "admin2's pending entry is swept in: {running}");
    assert_eq!(text(&s.op("<check><pending-changes/></check>"), &["result"]), "no");
    let (_, r) =
        s.call_as(&k2, &[("type", "commit"), ("cmd", "<commit><partial><admin><member>admin2</member></admin></partial></commit>")]);
    assert_eq!(text(&r, &["msg"]), "There are no changes to commit.", "admin2 has nothing left");
}

#[test]
fn push_to_device_group_and_stack_reports_member_devices() {
    let mut s = Sim::with(Options { devices_in_dg: Some("DG1".into()), devices_in_stack: Some("TS1".into()), ..opts() });
    // not a member: device 3 removed from the stack
    s.delete(&format!("{LD}/template-stack/entry[@name='TS1']/devices/entry[@name='{}']", Device::generated(3).serial));
    s.commit_and_wait();
    let r = s.push("<commit-all><shared-policy><device-group><entry name=\"DG1\"/></device-group><description>x</description></shared-policy></commit-all>");
    assert_eq!(status(&r), ("success".into(), "19".into()));
    let j = s.wait_job(&text(&r, &["result", "job"]));
    let job = j.descend(&["result", "job"]).unwrap();
    assert_eq!(job.child("type").unwrap().text, "CommitAll");
    assert_eq!(job.child("progress").unwrap().text, "100");
    assert_eq!(job.child("dgname").unwrap().text, "DG1");
    let devs: Vec<_> = job.child("devices").unwrap().children.values().collect();
    // Node keeps one child per identity; entries here have no name, so count in XML
    let xml = s.last.clone();
    assert_eq!(xml.matches("<serial-no>").count(), 3, "{xml}");
    assert!(devs.iter().all(|d| d.child("result").unwrap().text == "OK"));
    let r = s.push("<commit-all><template-stack><name>TS1</name></template-stack></commit-all>");
    s.wait_job(&text(&r, &["result", "job"]));
    assert_eq!(s.last.matches("<serial-no>").count(), 2);
    // only selected devices
    let one = Device::generated(1).serial;
    let r = s.push(&format!("<commit-all><shared-policy><device-group><entry name=\"DG1\"><devices><entry name=\"{one}\"/></devices></entry></device-group></shared-policy></commit-all>"));
    s.wait_job(&text(&r, &["result", "job"]));
    assert_eq!(s.last.matches("<serial-no>").count(), 1);
    // unknown / uncommitted DG
    s.set(&format!("{}/tag", dg("NEW")), "<entry name='t'/>");
    let r = s.push("<commit-all><shared-policy><device-group><entry name=\"NEW\"/></device-group></shared-policy></commit-all>");
    assert_eq!(status(&r).0, "error");
    assert_eq!(s.st.stats.pushes, 3);
}

#[test]
fn membership_can_be_added_at_run_time() {
    let mut s = Sim::new();
    s.st.add_membership(Some("DGX"), Some("TSX"), None);
    let r = s.get(&format!("{}/devices", dg("DGX")));
    assert_eq!(r.to_xml().matches("<entry name=\"0079").count(), 3);
    let r = s.push("<commit-all><shared-policy><device-group><entry name=\"DGX\"/></device-group></shared-policy></commit-all>");
    assert_eq!(status(&r).1, "19", "membership lands in running too");
}

#[test]
fn show_jobs_all_and_unknown_job() {
    let mut s = Sim::new();
    s.set(&format!("{}/tag", dg("A")), "<entry name='t'/>");
    s.commit("<commit/>");
    let r = s.op("<show><jobs><all/></jobs></show>");
    assert!(r.to_xml().contains("<type>Commit</type>"));
    let r = s.job("999");
    assert_eq!(status(&r).0, "error");
}

// ---------------------------------------------------------------- op commands

#[test]
fn system_info_devices_vm_auth_key() {
    let mut s = Sim::with(Options {
        sw_version: "11.1.2".into(),
        devices: vec![Device::generated(1), Device { connected: false, ..Device::generated(2) }],
        ..opts()
    });
    let r = s.op("<show><system><info/></system></show>");
    assert_eq!(text(&r, &["result", "system", "model"]), "Panorama");
    assert_eq!(text(&r, &["result", "system", "sw-version"]), "11.1.2");
    let r = s.op("<show><devices><connected/></devices></show>");
    let x = r.to_xml();
    assert_eq!(x.matches("<serial>").count(), 1);
    assert!(x.contains("<model>PA-VM</model>") && x.contains("<connected>yes</connected>") && x.contains("<hostname>fw-01</hostname>"));
    let r = s.op("<show><devices><all/></devices></show>");
    assert_eq!(r.to_xml().matches("<serial>").count(), 2);
    let r = s.op("<request><bootstrap><vm-auth-key><generate><lifetime>24</lifetime></generate></vm-auth-key></bootstrap></request>");
    let line = text(&r, &["result"]);
    let tokens: Vec<&str> = line.split_whitespace().collect();
    assert!(line.starts_with("VM auth key ") && tokens[3].len() == 15, "{line}");
    let r = s.op("<request><bootstrap><vm-auth-key><show/></vm-auth-key></bootstrap></request>");
    assert_eq!(text(&r, &["result", "bootstrap-vm-auth-keys", "entry", "vm-auth-key"]), tokens[3]);
    let r = s.op("<request><bootstrap><vm-auth-key><generate><lifetime>0</lifetime></generate></vm-auth-key></bootstrap></request>");
    assert_eq!(status(&r).0, "error");
    let r = s.op("<show><nonsense/></show>");
    assert_eq!(status(&r), ("error".into(), "17".into()));
    let r = s.op("<show><unclosed>");
    assert_eq!(status(&r), ("error".into(), "18".into()));
}

// ---------------------------------------------------------------- locks

#[test]
fn config_and_commit_locks_per_admin() {
    let mut s = Sim::new();
    let k2 = s.key_for("admin2", "pw2");
    let add = "<request><config-lock><add><comment>mine</comment></add></config-lock></request>";
    let rm = "<request><config-lock><remove/></config-lock></request>";
    assert_eq!(status(&s.op(add)).0, "success");
    assert!(msg(&s.op(add)).contains("You already own a config lock for scope shared"));
    let (_, r) = s.call_as(&k2, &[("type", "op"), ("cmd", add)]);
    assert!(msg(&r).contains("Config for scope shared is currently locked"));
    let x = format!("{}/tag", dg("A"));
    let (_, r) = s.call_as(&k2, &[("type", "config"), ("action", "set"), ("xpath", &x), ("element", "<entry name='t'/>")]);
    assert!(msg(&r).contains("Configuration is locked by admin"), "{}", r.to_xml());
    assert_eq!(status(&s.set(&x, "<entry name='t'/>")).1, "20", "the owner may write");
    let r = s.op("<show><config-locks/></show>");
    assert_eq!(r.descend(&["result", "config-locks"]).unwrap().entry_child("admin").unwrap().child("comment").unwrap().text, "mine");
    assert_eq!(status(&s.op(rm)).0, "success");
    assert!(msg(&s.op(rm)).contains("Config is not currently locked for scope shared"));

    let cadd = "<request><commit-lock><add/></commit-lock></request>";
    assert_eq!(status(&s.op(cadd)).0, "success");
    let (_, r) = s.call_as(&k2, &[("type", "op"), ("cmd", cadd)]);
    assert!(msg(&r).contains("Commit lock is already held"));
    let (_, r) = s.call_as(&k2, &[("type", "commit"), ("cmd", "<commit/>")]);
    assert_eq!(status(&r).0, "error");
    assert!(s.op("<show><commit-locks/></show>").to_xml().contains("entry name=\"admin\""));
    assert_eq!(status(&s.op("<request><commit-lock><remove/></commit-lock></request>")).0, "success");
    assert!(msg(&s.op("<request><commit-lock><remove/></commit-lock></request>")).contains("Commit lock is not currently held"));
}

#[test]
fn device_group_scoped_lock_blocks_only_that_group() {
    let mut s = Sim::new();
    let k2 = s.key_for("admin2", "pw2");
    let mut p = Params::default();
    p.0 = vec![
        ("type".into(), "op".into()),
        ("cmd".into(), "<request><config-lock><add/></config-lock></request>".into()),
        ("vsys".into(), "DG1".into()),
    ];
    let h = HeaderAuth { pan_key: Some(s.key.clone()), basic: None };
    assert!(s.st.handle(&p, &h, Instant::now()).body.contains("success"));
    let blocked = format!("{}/tag", dg("DG1"));
    let free = format!("{}/tag", dg("DG2"));
    let (_, r) = s.call_as(&k2, &[("type", "config"), ("action", "set"), ("xpath", &blocked), ("element", "<entry name='t'/>")]);
    assert_eq!(status(&r).0, "error");
    let (_, r) = s.call_as(&k2, &[("type", "config"), ("action", "set"), ("xpath", &free), ("element", "<entry name='t'/>")]);
    assert_eq!(status(&r).1, "20");
}

// ---------------------------------------------------------------- faults

#[test]
fn fault_latency_http_errors_and_drops_are_seeded() {
    let f = Faults { latency_ms: 7, http_error_rate: 0.3, drop_rate: 0.2, http_error_status: 502, ..Faults::default() };
    let run = || {
        let mut st = State::new(Options { faults: f.clone(), seed: 42, ..opts() });
        (0..200)
            .map(|_| match st.pre_fault() {
                (d, PreFault::Pass) => (d.as_millis(), 'p'),
                (d, PreFault::Drop) => (d.as_millis(), 'd'),
                (d, PreFault::HttpError(c)) => {
                    assert_eq!(c, 502);
                    (d.as_millis(), 'e')
                }
            })
            .collect::<Vec<_>>()
    };
    let a = run();
    assert_eq!(a, run(), "same seed, same faults");
    assert!(a.iter().all(|(d, _)| *d == 7));
    let drops = a.iter().filter(|x| x.1 == 'd').count();
    let errs = a.iter().filter(|x| x.1 == 'e').count();
    assert!((20..60).contains(&drops), "{drops}");
    assert!((25..75).contains(&errs), "{errs}");
    let mut st = State::new(Options { faults: f, seed: 43, ..opts() });
    let other: Vec<char> = (0..200)
        .map(|_| match st.pre_fault().1 {
            PreFault::Pass => 'p',
            PreFault::Drop => 'd',
            PreFault::HttpError(_) => 'e',
        })
        .collect();
    assert_ne!(other, a.iter().map(|x| x.1).collect::<Vec<_>>());
}

#[test]
fn fault_commit_fails() {
    let mut s = Sim::with(Options { faults: Faults { fail_commit: Some("shared -> x is invalid".into()), ..Faults::default() }, ..opts() });
    s.set(&format!("{}/tag", dg("A")), "<entry name='t'/>");
    let j = s.commit_and_wait();
    assert_eq!(text(&j, &["result", "job", "result"]), "FAIL");
    assert!(j.to_xml().contains("shared -&gt; x is invalid") || j.to_xml().contains("shared -> x is invalid"));
    assert_eq!(status(&s.show(&dg("A"))).0, "error", "failed commit changes nothing");
    s.st.set_faults(Faults::default());
    let j = s.commit_and_wait();
    assert_eq!(text(&j, &["result", "job", "result"]), "OK");
}

#[test]
fn fault_push_fails_on_one_device() {
    let one = Device::generated(2).serial;
    let mut s = Sim::with(Options {
        devices_in_dg: Some("DG1".into()),
        faults: Faults { fail_push_serial: Some(one.clone()), ..Faults::default() },
        ..opts()
    });
    let r = s.push("<commit-all><shared-policy><device-group><entry name=\"DG1\"/></device-group></shared-policy></commit-all>");
    let j = s.wait_job(&text(&r, &["result", "job"]));
    let x = s.last.clone();
    assert_eq!(text(&j, &["result", "job", "result"]), "FAIL");
    assert_eq!(x.matches("<result>OK</result>").count(), 2, "{x}");
    assert_eq!(x.matches("<result>FAIL</result>").count(), 2, "job + one device: {x}");
}

#[test]
fn fault_commit_in_progress() {
    let mut s = Sim::with(Options {
        job_step: Duration::from_millis(300),
        faults: Faults { commit_in_progress: true, ..Faults::default() },
        ..opts()
    });
    s.set(&format!("{}/tag", dg("A")), "<entry name='t'/>");
    let id = text(&s.commit("<commit/>"), &["result", "job"]);
    let r = s.commit("<commit/>");
    assert!(msg(&r).contains("Another commit/validate is in progress. Please try again later"));
    let r = s.set(&format!("{}/tag", dg("A")), "<entry name='t2'/>");
    assert!(msg(&r).contains("A commit is in progress."));
    s.wait_job(&id);
    assert_eq!(status(&s.set(&format!("{}/tag", dg("A")), "<entry name='t2'/>")).1, "20");
}

#[test]
fn commits_queue_without_the_fault_and_strict_multi_config_waits() {
    let mut s = Sim::with(Options { job_step: Duration::from_millis(100), ..opts() });
    s.set(&format!("{}/tag", dg("A")), "<entry name='t'/>");
    let id1 = text(&s.commit("<commit/>"), &["result", "job"]);
    s.set(&format!("{}/tag", dg("B")), "<entry name='t'/>");
    let id2 = text(&s.commit("<commit/>"), &["result", "job"]);
    assert_ne!(id1, id2);
    assert_eq!(text(&s.job(&id2), &["result", "job", "status"]), "PEND");
    let r = s.call(&[
        ("type", "config"),
        ("action", "multi-config"),
        ("strict-transactional", "yes"),
        ("element", "<multi-configure-request><delete id='1' xpath='/config/shared/tag'/></multi-configure-request>"),
    ]);
    assert!(msg(&r).contains("A commit is in progress."));
    s.wait_job(&id2);
    assert_eq!(status(&s.show(&dg("B"))).0, "success");
}

#[test]
fn fault_locks_held_by_another_admin() {
    let mut s = Sim::with(Options {
        faults: Faults { config_lock_by: Some("bob".into()), commit_lock_by: Some("carol".into()), ..Faults::default() },
        ..opts()
    });
    let r = s.set(&format!("{}/tag", dg("A")), "<entry name='t'/>");
    assert!(msg(&r).contains("Configuration is locked by bob"));
    let r = s.commit("<commit/>");
    assert!(msg(&r).contains("carol"));
    s.st.set_faults(Faults { config_lock_by: Some(String::new()), commit_lock_by: Some(String::new()), ..Faults::default() });
    assert_eq!(status(&s.set(&format!("{}/tag", dg("A")), "<entry name='t'/>")).1, "20");
}

#[test]
fn reset_restores_startup_state_and_keeps_keys() {
    let mut s = Sim::new();
    seed_objects(&mut s);
    s.st.reset();
    assert!(!s.candidate_has("web.example.com"));
    assert_eq!(s.st.stats.write_ops, 0);
    assert_eq!(status(&s.op("<show><system><info/></system></show>")).0, "success");
}

#[test]
fn state_round_trip() {
    let mut s = Sim::new();
    seed_objects(&mut s);
    s.commit_and_wait();
    s.set(&format!("{}/tag", dg("DG1")), "<entry name='uncommitted'/>");
    let saved = s.st.to_state_xml();
    assert!(!saved.contains("dirtyId"));
    let mut t = State::new(opts());
    t.load_state_xml(&saved).unwrap();
    assert!(t.running.to_xml().contains("web.example.com"));
    assert!(t.candidate.to_xml().contains("uncommitted") && !t.running.to_xml().contains("uncommitted"));
}

#[test]
fn bad_type_and_action_are_400_or_errors() {
    let mut s = Sim::new();
    let key = s.key.clone();
    let mut p = Params::default();
    p.0 = vec![("type".into(), "frob".into())];
    let r = s.st.handle(&p, &HeaderAuth { pan_key: Some(key), basic: None }, Instant::now());
    assert_eq!(r.status, 400);
    let r = s.call(&[("type", "config"), ("action", "frob"), ("xpath", "/config")]);
    assert_eq!(status(&r).0, "error");
    let r = s.call(&[("type", "config"), ("action", "set"), ("xpath", "/config/shared")]);
    assert_eq!(status(&r).0, "error", "missing element");
}
