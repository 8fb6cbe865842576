//! Where Panorama refuses or misbehaves (facts §11, issue 12): version profiles for
//! multi-config, write attribution by the node written, referential integrity, key rotation,
//! the clock and timezone, commit locks, injected write refusals and the wire-level writes
//! record. In-process through `State::handle`, like panorama_api.rs.

use pano_eks_sim::panorama::faults::{Faults, RefuseWrite};
use pano_eks_sim::panorama::state::{Device, HeaderAuth, Options, Params, State};
use pano_eks_sim::panorama::xml_tree::{Node, parse_one};
use std::time::{Duration, Instant, SystemTime};

const LD: &str = "/config/devices/entry[@name='localhost.localdomain']";

/// A NAT rule whose dynamic destination translation names address `web` (a reference).
const NAT_TO_WEB: &str = "<entry name='n'><from><member>untrust</member></from><to><member>untrust</member></to><source><member>any</member></source>\
<destination><member>10.0.0.1</member></destination><service>svc</service><dynamic-destination-translation><translated-address>web</translated-address></dynamic-destination-translation></entry>";

fn dg(name: &str) -> String {
    format!("{LD}/device-group/entry[@name='{name}']")
}

fn opts() -> Options {
    Options {
        admins: vec![("admin".into(), "pw".into()), ("admin2".into(), "pw2".into())],
        devices: (1..=2).map(Device::generated).collect(),
        job_step: Duration::from_millis(5),
        act_steps: 1,
        ..Options::default()
    }
}

struct Sim {
    st: State,
    key: String,
    key2: String,
}

struct Ans {
    http: u16,
    body: String,
    node: Node,
}

impl Ans {
    fn status(&self) -> (&str, &str) {
        (self.node.attr("status").unwrap_or_default(), self.node.attr("code").unwrap_or_default())
    }
    fn ok(&self) -> bool {
        self.node.attr("status") == Some("success")
    }
    fn text(&self, path: &[&str]) -> String {
        self.node.descend(path).map(|n| n.text.clone()).unwrap_or_else(|| panic!("no {path:?} in {}", self.body))
    }
}

impl Sim {
    fn with(o: Options) -> Sim {
        let mut st = State::new(o);
        let key = keygen(&mut st, "admin", "pw");
        let key2 = keygen(&mut st, "admin2", "pw2");
        Sim { st, key, key2 }
    }
    fn new() -> Sim {
        Sim::with(opts())
    }
    fn version(v: &str) -> Sim {
        Sim::with(Options { sw_version: v.into(), ..opts() })
    }
    fn call_key(&mut self, key: &str, kv: &[(&str, &str)]) -> Ans {
        let p = Params(kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
        let r = self.st.handle(&p, &HeaderAuth { pan_key: Some(key.into()), basic: None }, Instant::now());
        let node = parse_one(&r.body).unwrap_or_else(|e| panic!("bad XML {e}: {}", r.body));
        Ans { http: r.status, body: r.body, node }
    }
    fn call(&mut self, kv: &[(&str, &str)]) -> Ans {
        let k = self.key.clone();
        self.call_key(&k, kv)
    }
    fn call2(&mut self, kv: &[(&str, &str)]) -> Ans {
        let k = self.key2.clone();
        self.call_key(&k, kv)
    }
    fn set(&mut self, xpath: &str, el: &str) -> Ans {
        self.call(&[("type", "config"), ("action", "set"), ("xpath", xpath), ("element", el)])
    }
    fn set2(&mut self, xpath: &str, el: &str) -> Ans {
        self.call2(&[("type", "config"), ("action", "set"), ("xpath", xpath), ("element", el)])
    }
    fn edit(&mut self, xpath: &str, el: &str) -> Ans {
        self.call(&[("type", "config"), ("action", "edit"), ("xpath", xpath), ("element", el)])
    }
    fn edit2(&mut self, xpath: &str, el: &str) -> Ans {
        self.call2(&[("type", "config"), ("action", "edit"), ("xpath", xpath), ("element", el)])
    }
    fn delete(&mut self, xpath: &str) -> Ans {
        self.call(&[("type", "config"), ("action", "delete"), ("xpath", xpath)])
    }
    fn multi(&mut self, body: &str) -> Ans {
        self.call(&[("type", "config"), ("action", "multi-config"), ("element", body)])
    }
    fn op(&mut self, cmd: &str) -> Ans {
        self.call(&[("type", "op"), ("cmd", cmd)])
    }
    fn get(&mut self, xpath: &str) -> Ans {
        self.call(&[("type", "config"), ("action", "get"), ("xpath", xpath)])
    }
    /// Partial commit of `admin`'s changes, waited for; false when there was nothing to commit.
    fn partial_commit(&mut self, admin: &str) -> bool {
        let cmd = format!("<commit><partial><admin><member>{admin}</member></admin></partial></commit>");
        let r = self.call(&[("type", "commit"), ("cmd", &cmd)]);
        assert!(r.ok(), "{}", r.body);
        if r.body.contains("There are no changes to commit.") {
            return false;
        }
        let id = r.text(&["result", "job"]);
        self.wait_job(&id);
        true
    }
    fn full_commit(&mut self) {
        let r = self.call(&[("type", "commit"), ("cmd", "<commit/>")]);
        let id = r.text(&["result", "job"]);
        self.wait_job(&id);
    }
    fn wait_job(&mut self, id: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let j = self.op(&format!("<show><jobs><id>{id}</id></jobs></show>"));
            if j.text(&["result", "job", "status"]) == "FIN" {
                assert_eq!(j.text(&["result", "job", "result"]), "OK", "{}", j.body);
                return;
            }
            assert!(Instant::now() < deadline, "job {id} never finished");
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    fn running(&self) -> String {
        self.st.running.to_xml()
    }
    fn pending(&mut self) -> bool {
        self.op("<check><pending-changes/></check>").text(&["result"]) == "yes"
    }
}

fn keygen(st: &mut State, user: &str, pw: &str) -> String {
    let p = Params(vec![("type".into(), "keygen".into()), ("user".into(), user.into()), ("password".into(), pw.into())]);
    let r = st.handle(&p, &HeaderAuth::default(), Instant::now());
    assert_eq!(r.status, 200, "{}", r.body);
    parse_one(&r.body).unwrap().descend(&["result", "key"]).unwrap().text.clone()
}

fn addr(name: &str, fqdn: &str) -> String {
    format!("<entry name='{name}'><fqdn>{fqdn}</fqdn></entry>")
}

const MULTI_ONE: &str =
    "<multi-configure-request><set id='1' xpath='/config/shared/tag'><entry name='t1'/></set></multi-configure-request>";

// ------------------------------------------------------------------ version profiles

#[test]
fn multi_config_before_10_0_is_an_illegal_action_http_400() {
    let mut s = Sim::version("9.1.16");
    let r = s.multi(MULTI_ONE);
    assert_eq!(r.http, 400, "{}", r.body);
    assert_eq!(r.status(), ("error", "400"));
    assert_eq!(r.text(&["result", "msg"]), "Illegal value for parameter \"action\" [multi-config].");
    assert!(!s.st.candidate.to_xml().contains("t1"));
    // enabling does not exist there either; ordinary writes work
    assert!(!s.op("<request><multi-config><enabled/></multi-config></request>").ok());
    assert!(s.set("/config/shared/tag", "<entry name='t1'/>").ok());
    let w = &s.st.writes;
    assert_eq!(w[0]["multi_config"], true);
    assert_eq!(w[0]["refused"], true);
}

#[test]
fn multi_config_on_10_0_is_refused_until_enabled() {
    for enable in
        ["<request><multi-config><enabled/></multi-config></request>", "<request><multi-config><enable/></multi-config></request>"]
    {
        let mut s = Sim::version("10.0.11");
        assert!(!s.st.faults.multi_config_enabled);
        let r = s.multi(MULTI_ONE);
        assert_eq!(r.http, 200);
        assert_eq!(r.node.attr("status"), Some("error"));
        assert!(r.body.contains("Multi-config is not enabled"), "{}", r.body);
        assert!(!r.body.contains(" id="), "no inner responses: {}", r.body);
        assert!(!s.st.candidate.to_xml().contains("t1"));
        assert!(s.op(enable).ok());
        assert!(s.st.faults.multi_config_enabled);
        let r = s.multi(MULTI_ONE);
        assert_eq!(r.status(), ("success", "20"), "{}", r.body);
        // reset restores the profile default
        s.st.reset();
        assert!(!s.st.faults.multi_config_enabled);
    }
    // or through the faults control
    let mut s = Sim::version("10.0.3");
    s.st.set_faults(Faults { multi_config_enabled: true, ..s.st.faults.clone() });
    assert!(s.multi(MULTI_ONE).ok());
}

#[test]
fn multi_config_on_10_1_and_later_is_accepted() {
    for v in ["10.1.14", "10.2.9", "11.1.6-h1"] {
        let mut s = Sim::version(v);
        assert!(s.st.faults.multi_config_enabled, "{v}");
        assert!(s.multi(MULTI_ONE).ok(), "{v}");
    }
}

// ------------------------------------------------------------------ attribution

/// Admin2 has a pending address in DG's address container; admin writes its own address.
fn two_admins(v: &str) -> Sim {
    let mut s = Sim::version(v);
    assert!(s.set2(&format!("{}/address", dg("DG")), &addr("theirs", "t.example")).ok());
    s
}

#[test]
fn full_xpath_edit_marks_only_that_entry() {
    for v in ["10.2.9", "11.1.6"] {
        let mut s = two_admins(v);
        let x = format!("{}/address/entry[@name='mine']", dg("DG"));
        assert!(s.edit(&x, &addr("mine", "m.example")).ok());
        assert!(s.partial_commit("admin"), "{v}");
        let run = s.running();
        assert!(run.contains("m.example") && !run.contains("t.example"), "{v}: {run}");
        assert!(s.pending(), "admin2's change stays pending");
        // the dirty markers: the entry is admin's, the container admin2's (it wrote a partial xpath)
        let g = s.get(&format!("{}/address", dg("DG")));
        let c = g.node.child("result").and_then(|r| r.child("address")).unwrap();
        assert_eq!(c.attr("admin"), Some("admin2"), "{}", g.body);
    }
}

#[test]
fn full_xpath_set_with_children_marks_only_that_entry() {
    let mut s = two_admins("10.2.9");
    let x = format!("{}/address/entry[@name='mine']", dg("DG"));
    assert!(s.set(&x, "<fqdn>m.example</fqdn>").ok());
    assert!(s.partial_commit("admin"));
    assert!(!s.running().contains("t.example"));
}

#[test]
fn partial_xpath_set_of_a_container_sweeps_other_admins_pending_changes() {
    // pan-os-ansible#628: the writer's partial commit takes the whole written node.
    for (xpath, el) in [
        (format!("{}/address", dg("DG")), addr("mine", "m.example")),
        (dg("DG"), format!("<address>{}</address>", addr("mine", "m.example"))),
        (format!("{LD}/device-group"), format!("<entry name='DG'><address>{}</address></entry>", addr("mine", "m.example"))),
    ] {
        let mut s = two_admins("10.2.9");
        assert!(s.set(&xpath, &el).ok());
        assert!(s.partial_commit("admin"));
        let run = s.running();
        assert!(run.contains("m.example") && run.contains("t.example"), "{xpath}: {run}");
        assert!(!s.pending(), "{xpath}");
    }
}

#[test]
fn member_list_set_marks_only_the_list() {
    let mut s = Sim::new();
    let t = format!("{LD}/template/entry[@name='T']/config/devices/entry[@name='localhost.localdomain']");
    let zone = format!("{t}/vsys/entry[@name='vsys1']/zone/entry[@name='z']");
    // admin2 has a pending static route in the template
    let sr = format!("{t}/network/virtual-router/entry[@name='vr']/routing-table/ip/static-route/entry[@name='r1']");
    assert!(
        s.edit2(&sr, "<entry name='r1'><destination>10.9.0.0/16</destination><nexthop><ip-address>10.0.0.1</ip-address></nexthop></entry>")
            .ok()
    );
    assert!(s.set(&format!("{zone}/network/layer3"), "<member>ethernet1/1</member>").ok());
    assert!(s.partial_commit("admin"));
    let run = s.running();
    assert!(run.contains("ethernet1/1") && !run.contains("10.9.0.0/16"), "{run}");
    // the written list is what carries admin's marker
    assert_eq!(s.st.writes.last().unwrap()["element_root"], "member");
}

#[test]
fn deletes_mark_each_deleted_node() {
    let mut s = Sim::new();
    assert!(s.edit(&format!("{}/address/entry[@name='a']", dg("DG")), &addr("a", "a.example")).ok());
    s.full_commit();
    assert!(s.set2(&format!("{}/address", dg("DG")), &addr("theirs", "t.example")).ok());
    assert!(s.delete(&format!("{}/address/entry[@name='a']", dg("DG"))).ok());
    assert!(s.partial_commit("admin"));
    let run = s.running();
    assert!(!run.contains("a.example") && !run.contains("t.example"), "{run}");
}

#[test]
fn partial_commit_lands_a_moved_or_new_rule_at_its_candidate_position() {
    let mut s = Sim::new();
    let rules = format!("{}/pre-rulebase/security/rules", dg("DG"));
    let rule = |n: &str| {
        format!(
            "<entry name='{n}'><from><member>any</member></from><to><member>any</member></to><source><member>any</member></source>\
<destination><member>any</member></destination><service><member>any</member></service><application><member>any</member></application><action>allow</action></entry>"
        )
    };
    for n in ["r1", "r2"] {
        assert!(s.edit(&format!("{rules}/entry[@name='{n}']"), &rule(n)).ok());
    }
    s.full_commit();
    assert!(s.edit2(&format!("{rules}/entry[@name='other']"), &rule("other")).ok());
    let mv = format!("{rules}/entry[@name='r2']");
    assert!(s.call(&[("type", "config"), ("action", "move"), ("xpath", &mv), ("where", "top")]).ok());
    assert!(s.partial_commit("admin"));
    let run = s.running();
    let (a, b) = (run.find("name=\"r2\"").unwrap(), run.find("name=\"r1\"").unwrap());
    assert!(a < b, "r2 moved to the top: {run}");
    assert!(!run.contains("name=\"other\""), "a move does not sweep the rulebase: {run}");
    assert!(!s.partial_commit("admin"), "nothing left for admin");
    // a new rule behind admin2's pending one lands after the last common neighbour, and is
    // not pending again afterwards
    assert!(s.edit(&format!("{rules}/entry[@name='mine']"), &rule("mine")).ok());
    assert!(s.partial_commit("admin"));
    let run = s.running();
    assert!(run.find("name=\"r1\"").unwrap() < run.find("name=\"mine\"").unwrap(), "{run}");
    assert!(!s.partial_commit("admin"), "no perpetual pending change");
    assert!(s.pending(), "admin2's rule still pending");
}

#[test]
fn on_11_x_a_partial_xpath_write_is_left_behind_by_the_admins_partial_commit() {
    // pan-os-python#570 / pan-os-codegen#119 (strict reading, 11.0+).
    let mut s = Sim::version("11.1.6");
    assert_eq!(s.st.faults.partial_xpath_commit, "left-behind");
    assert!(s.set(&format!("{}/address", dg("DG")), &addr("mine", "m.example")).ok());
    assert!(!s.partial_commit("admin"), "nothing the admin's partial commit can take");
    assert!(!s.running().contains("m.example"));
    assert!(s.pending());
    // a full-xpath write of the same admin is taken; the left-behind node still waits
    assert!(s.edit(&format!("{}/tag/entry[@name='t']", dg("DG")), "<entry name='t'/>").ok());
    assert!(s.partial_commit("admin"));
    let run = s.running();
    assert!(run.contains("name=\"t\"") && !run.contains("m.example"), "{run}");
    // a full commit takes everything
    s.full_commit();
    assert!(s.running().contains("m.example"));
    // the sweep model can be chosen on 11.x too
    let mut s = Sim::version("11.1.6");
    s.st.set_faults(Faults { partial_xpath_commit: "sweep".into(), ..s.st.faults.clone() });
    assert!(s.set(&format!("{}/address", dg("DG")), &addr("mine", "m.example")).ok());
    assert!(s.partial_commit("admin"));
    // and before 11.0 the default is the sweep
    assert_eq!(Sim::version("10.2.9").st.faults.partial_xpath_commit, "sweep");
}

// ------------------------------------------------------------------ referential integrity

fn seed_refs(s: &mut Sim) {
    // DG child (parent-dg parent) and shared
    let ro = "/config/readonly/devices/entry[@name='localhost.localdomain']/device-group/entry[@name='child']";
    assert!(s.set(ro, "<parent-dg>parent</parent-dg>").ok());
    assert!(s.edit("/config/shared/tag/entry[@name='pano-eks']", "<entry name='pano-eks'><color>color3</color></entry>").ok());
    assert!(
        s.edit(
            &format!("{}/address/entry[@name='web']", dg("parent")),
            "<entry name='web'><fqdn>web.example</fqdn><tag><member>pano-eks</member></tag></entry>"
        )
        .ok()
    );
    assert!(s.edit("/config/shared/address/entry[@name='sh']", &addr("sh", "sh.example")).ok());
    assert!(
        s.edit(
            &format!("{}/service/entry[@name='svc']", dg("parent")),
            "<entry name='svc'><protocol><tcp><port>80</port></tcp></protocol></entry>"
        )
        .ok()
    );
}

fn sec_rule(name: &str, dst: &str, svc: &str) -> String {
    format!(
        "<entry name='{name}'><from><member>any</member></from><to><member>any</member></to><source><member>any</member></source>\
<destination><member>{dst}</member></destination><service><member>{svc}</member></service><application><member>any</member></application><action>allow</action></entry>"
    )
}

#[test]
fn delete_of_a_referenced_object_is_refused_with_the_referencing_paths() {
    let mut s = Sim::new();
    seed_refs(&mut s);
    // a rule in a descendant DG names the parent's address and service
    let r = format!("{}/pre-rulebase/security/rules/entry[@name='foreign']", dg("child"));
    assert!(s.edit(&r, &sec_rule("foreign", "web", "svc")).ok());
    let a = s.delete(&format!("{}/address/entry[@name='web']", dg("parent")));
    assert_eq!(a.status(), ("error", "10"), "{}", a.body);
    assert!(a.body.contains("<line> web cannot be deleted because of references from:</line>"), "{}", a.body);
    assert!(
        a.body.contains(
            "<line> device-group -&gt; child -&gt; pre-rulebase -&gt; security -&gt; rules -&gt; foreign -&gt; destination</line>"
        ),
        "{}",
        a.body
    );
    assert!(s.st.candidate.to_xml().contains("web.example"), "nothing deleted");
    let a = s.delete(&format!("{}/service/entry[@name='svc']", dg("parent")));
    assert_eq!(a.status(), ("error", "10"));
    // a tag used by an address
    let a = s.delete("/config/shared/tag/entry[@name='pano-eks']");
    assert_eq!(a.status(), ("error", "10"), "{}", a.body);
    assert!(a.body.contains("device-group -&gt; parent -&gt; address -&gt; web -&gt; tag"), "{}", a.body);
    // after the referrer goes, the delete works
    assert!(s.delete(&r).ok());
    assert_eq!(s.delete(&format!("{}/address/entry[@name='web']", dg("parent"))).status(), ("success", "20"));
    assert_eq!(s.delete("/config/shared/tag/entry[@name='pano-eks']").status(), ("success", "20"));
}

#[test]
fn references_resolve_through_ancestry_groups_nat_and_shadowing() {
    let mut s = Sim::new();
    seed_refs(&mut s);
    // an address group in another DG names the shared address
    assert!(
        s.edit(&format!("{}/address-group/entry[@name='g']", dg("other")), "<entry name='g'><static><member>sh</member></static></entry>")
            .ok()
    );
    let a = s.delete("/config/shared/address/entry[@name='sh']");
    assert_eq!(a.status(), ("error", "10"), "{}", a.body);
    assert!(a.body.contains("device-group -&gt; other -&gt; address-group -&gt; g -&gt; static"), "{}", a.body);
    // NAT dynamic destination translation names the parent's address
    let nat = format!("{}/pre-rulebase/nat/rules/entry[@name='n']", dg("parent"));
    assert!(s.edit(&nat, NAT_TO_WEB).ok());
    let a = s.delete(&format!("{}/address/entry[@name='web']", dg("parent")));
    assert!(a.body.contains("nat -&gt; rules -&gt; n -&gt; dynamic-destination-translation -&gt; translated-address"), "{}", a.body);
    // shadowing: a child-DG object of the same name takes the child's reference
    assert!(s.edit(&format!("{}/address/entry[@name='x']", dg("parent")), &addr("x", "p.example")).ok());
    assert!(s.edit(&format!("{}/address/entry[@name='x']", dg("child")), &addr("x", "c.example")).ok());
    let r = format!("{}/pre-rulebase/security/rules/entry[@name='uses-x']", dg("child"));
    assert!(s.edit(&r, &sec_rule("uses-x", "x", "any")).ok());
    assert!(s.delete(&format!("{}/address/entry[@name='x']", dg("parent"))).ok(), "the child's x is the one referenced");
    assert_eq!(s.delete(&format!("{}/address/entry[@name='x']", dg("child"))).status().1, "10");
    // deleting the whole container is refused too
    assert_eq!(s.delete(&format!("{}/address", dg("parent"))).status().1, "10");
}

#[test]
fn multi_config_delete_of_a_referenced_object_fails_the_batch_and_referrer_first_works() {
    let mut s = Sim::new();
    seed_refs(&mut s);
    let r = format!("{}/pre-rulebase/security/rules/entry[@name='foreign']", dg("child"));
    assert!(s.edit(&r, &sec_rule("foreign", "web", "any")).ok());
    let web = format!("{}/address/entry[@name='web']", dg("parent"));
    let other = format!("{}/address/entry[@name='ok']", dg("parent"));
    let before = s.st.candidate.to_xml();
    let a = s.multi(&format!(
        "<multi-configure-request><edit id='1' xpath=\"{other}\">{}</edit><delete id='2' xpath=\"{web}\"/></multi-configure-request>",
        addr("ok", "ok.example")
    ));
    assert_eq!(a.status(), ("error", "13"), "{}", a.body);
    assert!(a.body.contains("<response status=\"error\" code=\"10\" id=\"2\">"), "{}", a.body);
    assert_eq!(s.st.candidate.to_xml(), before, "nothing applied");
    // referrer first, then the object: fine
    let a = s.multi(&format!(
        "<multi-configure-request><delete id='1' xpath=\"{r}\"/><delete id='2' xpath=\"{web}\"/></multi-configure-request>"
    ));
    assert_eq!(a.status(), ("success", "20"), "{}", a.body);
    // both in one delete (the rule is inside the deleted subtree of the child DG): fine
}

#[test]
fn rename_rewrites_references() {
    let mut s = Sim::new();
    seed_refs(&mut s);
    let r = format!("{}/pre-rulebase/security/rules/entry[@name='foreign']", dg("child"));
    assert!(s.edit(&r, &sec_rule("foreign", "web", "svc")).ok());
    let nat = format!("{}/pre-rulebase/nat/rules/entry[@name='n']", dg("parent"));
    assert!(s.edit(&nat, NAT_TO_WEB).ok());
    let x = format!("{}/address/entry[@name='web']", dg("parent"));
    assert!(s.call(&[("type", "config"), ("action", "rename"), ("xpath", &x), ("newname", "web2")]).ok());
    let x = format!("{}/service/entry[@name='svc']", dg("parent"));
    assert!(s.call(&[("type", "config"), ("action", "rename"), ("xpath", &x), ("newname", "svc2")]).ok());
    let c = s.st.candidate.to_xml();
    assert!(c.contains("<destination><member>web2</member></destination>"), "{c}");
    assert!(c.contains("<service><member>svc2</member></service>") && c.contains("<service>svc2</service>"), "{c}");
    assert!(c.contains("<translated-address>web2</translated-address>"), "{c}");
    // the old name is gone from every reference, so the renamed object is still protected
    assert_eq!(s.delete(&format!("{}/address/entry[@name='web2']", dg("parent"))).status().1, "10");
}

// ------------------------------------------------------------------ keys, clock, locks

#[test]
fn keygen_ends_the_previous_key_of_that_admin_only() {
    let mut s = Sim::with(Options { faults: Faults { keygen_rotates: true, ..Faults::default() }, ..opts() });
    let old = s.key.clone();
    let new = keygen(&mut s.st, "admin", "pw");
    let r = s.call_key(&old, &[("type", "op"), ("cmd", "<show><clock/></show>")]);
    assert_eq!(r.http, 403);
    assert!(r.body.contains("Invalid Credential"));
    assert_eq!(s.call_key(&new, &[("type", "op"), ("cmd", "<show><clock/></show>")]).http, 200);
    assert_eq!(s.call2(&[("type", "op"), ("cmd", "<show><clock/></show>")]).http, 200, "admin2's key lives on");
}

fn parse_clock(s: &str) -> (String, String) {
    // "Tue Dec  1 11:22:33 PST 2026\n" -> (hh:mm, zone)
    let f: Vec<&str> = s.split_whitespace().collect();
    assert_eq!(f.len(), 6, "{s:?}");
    (f[3][..5].to_string(), f[4].to_string())
}

#[test]
fn clock_runs_in_panoramas_timezone_with_skew() {
    let mut s = Sim::with(Options { tz_offset_min: -480, ..opts() });
    s.st.set_faults(Faults { clock_skew_secs: 3600, ..s.st.faults.clone() });
    let r = s.op("<show><clock/></show>");
    assert!(r.body.starts_with("<response status=\"success\"><result>"), "{}", r.body);
    let t = r.text(&["result"]);
    assert!(t.ends_with('\n'));
    let (hm, zone) = parse_clock(&t);
    assert_eq!(zone, "-08");
    // UTC - 8h + 1h skew
    let want = pano_eks_sim::panorama::state::fmt_clock(SystemTime::now() - Duration::from_secs(7 * 3600), "-08");
    let (whm, _) = parse_clock(&want);
    assert!(hm == whm || t.contains(":59:") || want.contains(":00:"), "{t} vs {want}");
    let info = s.op("<show><system><info/></system></show>").text(&["result", "system", "time"]);
    assert_eq!(info.split_whitespace().count(), 5, "ctime form, no zone: {info}");
    assert!(info.contains(&hm[..2]), "{info} vs {t}");
    // vm-auth-key expiry-time: Panorama local time, no zone
    let g = s.op("<request><bootstrap><vm-auth-key><generate><lifetime>2</lifetime></generate></vm-auth-key></bootstrap></request>");
    let exp_local = pano_eks_sim::panorama::jobs::fmt_time(SystemTime::now() - Duration::from_secs(5 * 3600));
    assert!(g.body.contains(&exp_local[..13]), "{} vs {exp_local}", g.body);
    let shown = s.op("<request><bootstrap><vm-auth-key><show/></vm-auth-key></bootstrap></request>");
    let e = shown.body.split("<expiry-time>").nth(1).unwrap().split("</expiry-time>").next().unwrap().to_string();
    assert_eq!(e.len(), 19, "YYYY/MM/DD HH:MM:SS: {e}");
    assert_eq!(&e[..13], &exp_local[..13]);
    // lifetime outside 1..8760 is refused
    for h in ["0", "8761", "x"] {
        let r = s.op(&format!(
            "<request><bootstrap><vm-auth-key><generate><lifetime>{h}</lifetime></generate></vm-auth-key></bootstrap></request>"
        ));
        assert!(!r.ok(), "{h}");
    }
    assert!(
        s.op("<request><bootstrap><vm-auth-key><generate><lifetime>8760</lifetime></generate></vm-auth-key></bootstrap></request>").ok()
    );
    // UTC by default
    let mut u = Sim::new();
    assert_eq!(parse_clock(&u.op("<show><clock/></show>").text(&["result"])).1, "UTC");
}

#[test]
fn commit_lock_of_another_admin_refuses_commits_and_is_listed_with_its_owner() {
    let mut s = Sim::with(Options { faults: Faults { commit_lock_by: Some("admin2".into()), ..Faults::default() }, ..opts() });
    assert!(s.set("/config/shared/tag", "<entry name='t'/>").ok());
    let r = s.call(&[("type", "commit"), ("cmd", "<commit/>")]);
    assert_eq!(r.node.attr("status"), Some("error"));
    assert!(r.body.contains("Commit lock is already held by admin2"), "{}", r.body);
    let l = s.op("<show><commit-locks/></show>");
    let e = l.node.descend(&["result", "commit-locks"]).and_then(|c| c.entry_child("admin2"));
    assert!(e.is_some(), "{}", l.body);
    assert_eq!(e.unwrap().child("type").unwrap().text, "commit");
    // the holder itself may commit; releasing lets others commit
    let k2 = s.key2.clone();
    assert!(s.call_key(&k2, &[("type", "op"), ("cmd", "<request><commit-lock><remove/></commit-lock></request>")]).ok());
    assert!(s.call(&[("type", "commit"), ("cmd", "<commit/>")]).ok());
}

// ------------------------------------------------------------------ refuse_writes, writes record

fn refuse(s: &mut Sim, glob: &str, msg: &str) {
    let f = Faults { refuse_writes: Some(vec![RefuseWrite { name_glob: glob.into(), message: Some(msg.into()) }]), ..s.st.faults.clone() };
    s.st.set_faults(f);
}

#[test]
fn refuse_writes_fault_refuses_matching_entries_also_inside_multi_config() {
    let mut s = Sim::new();
    refuse(&mut s, "demo.in.*frontend*", "NAT rule refused by policy");
    let rules = format!("{}/pre-rulebase/nat/rules", dg("DG"));
    let nat = |n: &str| {
        format!(
            "<entry name='{n}'><from><member>untrust</member></from><to><member>untrust</member></to><source><member>any</member></source>\
<destination><member>10.0.0.1</member></destination><service>any</service></entry>"
        )
    };
    let a = s.edit(&format!("{rules}/entry[@name='demo.in.shop-frontend-80']"), &nat("demo.in.shop-frontend-80"));
    assert_eq!(a.status(), ("error", "12"));
    assert!(a.body.contains("<line>NAT rule refused by policy</line>"), "{}", a.body);
    // an entry inside the element (partial-xpath form) matches too
    assert_eq!(s.set(&rules, &nat("demo.in.frontend")).status().1, "12");
    assert!(s.edit(&format!("{rules}/entry[@name='demo.in.backend']"), &nat("demo.in.backend")).ok());
    let before = s.st.candidate.to_xml();
    let a = s.multi(&format!(
        "<multi-configure-request><edit id='a' xpath=\"{rules}/entry[@name='demo.in.api']\">{}</edit>\
<edit id='b' xpath=\"{rules}/entry[@name='demo.in.web-frontend']\">{}</edit>\
<edit id='c' xpath=\"{rules}/entry[@name='demo.in.z']\">{}</edit></multi-configure-request>",
        nat("demo.in.api"),
        nat("demo.in.web-frontend"),
        nat("demo.in.z")
    ));
    assert_eq!(a.status(), ("error", "13"), "{}", a.body);
    assert!(
        a.body.contains("<response status=\"error\" code=\"12\" id=\"b\"><msg><line>NAT rule refused by policy</line></msg></response>"),
        "{}",
        a.body
    );
    assert!(!a.body.contains("id=\"c\""));
    assert_eq!(s.st.candidate.to_xml(), before, "nothing applied");
    // cleared with null (or [])
    let f = Faults { refuse_writes: None, ..s.st.faults.clone() };
    s.st.set_faults(f);
    assert!(s.edit(&format!("{rules}/entry[@name='demo.in.shop-frontend-80']"), &nat("demo.in.shop-frontend-80")).ok());
    // deletes are never refused by it
    refuse(&mut s, "*", "no");
    assert!(s.delete(&format!("{rules}/entry[@name='demo.in.backend']")).ok());
}

#[test]
fn writes_record_lists_what_was_sent_in_arrival_order() {
    let mut s = Sim::new();
    let c = format!("{}/address", dg("DG"));
    assert!(s.set(&c, &format!("{}{}", addr("a", "a.example"), addr("b", "b.example"))).ok());
    assert!(s.set(&dg("DG"), &format!("<address>{}</address>", addr("c", "c.example"))).ok());
    assert!(!s.set(&format!("{c}/entry[@name='a']/tag"), "<member>x</member>").ok(), "unknown tag refused by schema");
    let _ = s.multi(&format!(
        "<multi-configure-request><edit id='1' xpath=\"{c}/entry[@name='d']\">{}</edit><delete id='2' xpath=\"{c}/entry[@name='b']\"/>\
<rename id='3' xpath=\"{c}/entry[@name='c']\" newname='c2'/></multi-configure-request>",
        addr("d", "d.example")
    ));
    let k2 = s.key2.clone();
    let _ = s.call_key(&k2, &[("type", "config"), ("action", "delete"), ("xpath", &format!("{c}/entry[@name='zz']"))]);
    let w = s.st.writes.clone();
    assert_eq!(w.len(), 7, "{w:#?}");
    let pick = |i: usize, k: &str| w[i][k].clone();
    assert_eq!(pick(0, "action"), "set");
    assert_eq!(pick(0, "xpath"), c.as_str());
    assert_eq!(pick(0, "element_root"), "entry");
    assert_eq!(pick(0, "element_names"), serde_json::json!(["a", "b"]));
    assert_eq!(pick(0, "multi_config"), false);
    assert_eq!(pick(0, "call"), 1);
    assert_eq!(pick(1, "element_root"), "address");
    assert_eq!(pick(1, "element_names"), serde_json::json!(["c"]));
    assert_eq!(pick(2, "refused"), true);
    assert_eq!(pick(2, "element_root"), "member");
    for i in 3..6 {
        assert_eq!(pick(i, "call"), 4);
        assert_eq!(pick(i, "multi_config"), true);
        assert_eq!(pick(i, "refused"), false);
    }
    assert_eq!(pick(3, "action"), "edit");
    assert_eq!(pick(4, "action"), "delete");
    assert_eq!(pick(4, "element_root"), serde_json::Value::Null);
    assert_eq!(pick(5, "action"), "rename");
    assert_eq!(pick(6, "admin"), "admin2");
    assert_eq!(pick(0, "admin"), "admin");
    s.st.reset_writes();
    assert!(s.st.writes.is_empty());
    assert!(s.set(&c, &addr("e", "e.example")).ok());
    assert_eq!(s.st.writes[0]["call"], 1);
    s.st.reset();
    assert!(s.st.writes.is_empty(), "reset clears the record");
}

#[test]
fn references_written_after_an_earlier_delete_still_block() {
    // The reference index is kept between calls: writes after it was built must reach it.
    let mut s = Sim::new();
    seed_refs(&mut s);
    assert!(s.edit(&format!("{}/address/entry[@name='tmp']", dg("parent")), &addr("tmp", "tmp.example")).ok());
    assert!(s.delete(&format!("{}/address/entry[@name='tmp']", dg("parent"))).ok(), "builds the index");
    let r = format!("{}/pre-rulebase/security/rules/entry[@name='late']", dg("child"));
    assert!(s.edit(&r, &sec_rule("late", "any", "any")).ok());
    assert!(s.set(&format!("{r}/destination"), "<member>web</member>").ok());
    assert_eq!(s.delete(&format!("{}/address/entry[@name='web']", dg("parent"))).status().1, "10");
    // a group created with a partial-xpath set on the DG entry
    assert!(s.set(&dg("other"), "<address-group><entry name='g'><static><member>sh</member></static></entry></address-group>").ok());
    assert_eq!(s.delete("/config/shared/address/entry[@name='sh']").status().1, "10");
    // a failed write does not leave the index inconsistent
    assert!(!s.edit(&r, &sec_rule("late", "no-such-address", "any")).ok(), "refused, rolled back");
    assert!(s.edit(&r, &sec_rule("late", "any", "any")).ok());
    assert!(s.delete(&format!("{}/address/entry[@name='web']", dg("parent"))).ok(), "the rule no longer names web");
}

#[test]
fn without_keygen_rotates_an_admin_keeps_one_key() {
    let mut s = Sim::new();
    let again = keygen(&mut s.st, "admin", "pw");
    assert_eq!(again, s.key, "one stable key per admin");
    assert_eq!(s.call(&[("type", "op"), ("cmd", "<show><clock/></show>")]).http, 200);
    assert!(!Faults::default().keygen_rotates, "rotation is opt-in (existing product tests share an admin)");
}
