//! Scale benchmark (prints figures, asserts nothing): a 20,000-object tree, then a
//! 500-operation multi-config, single writes, reads and a full commit, all through
//! `State::handle` (the HTTP server's entry point, minus sockets).
//!
//! Run: `cargo bench -p pano-eks-sim --bench panorama_multiconfig` (release) or
//! `cargo test -p pano-eks-sim --bench panorama_multiconfig --profile dev` (debug build figures).

use pano_eks_sim::panorama::state::{Device, HeaderAuth, Options, Params, State};
use std::time::{Duration, Instant};

const LD: &str = "/config/devices/entry[@name='localhost.localdomain']";

fn call(st: &mut State, key: &str, kv: &[(&str, &str)]) -> String {
    let p = Params(kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
    let h = HeaderAuth { pan_key: Some(key.to_string()), basic: None };
    st.handle(&p, &h, Instant::now()).body
}

fn main() {
    let mut st = State::new(Options {
        devices: (1..=4).map(Device::generated).collect(),
        devices_in_dg: Some("DG".into()),
        job_step: Duration::ZERO,
        ..Options::default()
    });
    let p = Params(vec![("type".into(), "keygen".into()), ("user".into(), "admin".into()), ("password".into(), "admin".into())]);
    let body = st.handle(&p, &HeaderAuth::default(), Instant::now()).body;
    let key = body.split("<key>").nth(1).unwrap().split("</key>").next().unwrap().to_string();
    let dg = format!("{LD}/device-group/entry[@name='DG']");

    // 20,000 objects: 1 tag, 10,000 addresses, 5,000 services, 4,999 NAT rules, loaded in bulk sets.
    let t = Instant::now();
    call(&mut st, &key, &[("type", "config"), ("action", "set"), ("xpath", &format!("{dg}/tag")), ("element", "<entry name='pano-eks'/>")]);
    for chunk in 0..10 {
        let mut el = String::new();
        for i in chunk * 1000..(chunk + 1) * 1000 {
            el += &format!(
                "<entry name='addr-{i:05}'><ip-netmask>10.{}.{}.{}/32</ip-netmask><tag><member>pano-eks</member></tag></entry>",
                i / 65536,
                i / 256 % 256,
                i % 256
            );
        }
        let r = call(&mut st, &key, &[("type", "config"), ("action", "set"), ("xpath", &format!("{dg}/address")), ("element", &el)]);
        assert!(r.contains("code=\"20\""), "{r}");
    }
    let mut el = String::new();
    for i in 0..5000 {
        el += &format!("<entry name='svc-{i:05}'><protocol><tcp><port>{}</port></tcp></protocol></entry>", 1024 + i);
    }
    call(&mut st, &key, &[("type", "config"), ("action", "set"), ("xpath", &format!("{dg}/service")), ("element", &el)]);
    let mut el = String::new();
    for i in 0..4999 {
        el += &format!(
            "<entry name='nat-{i:05}'><from><member>untrust</member></from><to><member>untrust</member></to><source><member>any</member></source>\
<destination><member>addr-{i:05}</member></destination><service>svc-{i:05}</service>\
<dynamic-destination-translation><translated-address>addr-{i:05}</translated-address><translated-port>8080</translated-port></dynamic-destination-translation></entry>"
        );
    }
    let r =
        call(&mut st, &key, &[("type", "config"), ("action", "set"), ("xpath", &format!("{dg}/pre-rulebase/nat/rules")), ("element", &el)]);
    assert!(r.contains("code=\"20\""), "{r}");
    let objects = st.candidate.count();
    println!("load: 20,000 objects ({objects} XML elements) in {:?}", t.elapsed());

    // 500-op multi-config: 200 edits of existing addresses, 200 new addresses, 50 renames, 50 deletes.
    let mut m = String::from("<multi-configure-request>");
    let a = format!("{dg}/address");
    for i in 0..200 {
        m += &format!(
            "<edit id='e{i}' xpath=\"{a}/entry[@name='addr-{i:05}']\"><entry name='addr-{i:05}'><fqdn>h{i}.example.com</fqdn></entry></edit>"
        );
    }
    for i in 0..200 {
        m += &format!(
            "<set id='s{i}' xpath=\"{a}\"><entry name='new-{i:05}'><ip-netmask>172.16.{}.{}</ip-netmask></entry></set>",
            i / 256,
            i % 256
        );
    }
    for i in 0..50 {
        m += &format!("<rename id='r{i}' xpath=\"{a}/entry[@name='addr-{:05}']\" newname='renamed-{i:05}'/>", 9000 + i);
    }
    for i in 0..50 {
        m += &format!("<delete id='d{i}' xpath=\"{a}/entry[@name='addr-{:05}']\"/>", 9500 + i);
    }
    m += "</multi-configure-request>";
    let t = Instant::now();
    let r = call(&mut st, &key, &[("type", "config"), ("action", "multi-config"), ("element", &m)]);
    let took = t.elapsed();
    assert!(r.starts_with("<response status=\"success\" code=\"20\""), "{}", &r[..r.len().min(500)]);
    assert_eq!(r.matches("<response ").count(), 501);
    println!("multi-config: 500 operations on a 20,000-object tree in {took:?}");

    // The same batch failing at its last op (atomic rollback of 499 applied ops).
    let bad = m.replace(
        "</multi-configure-request>",
        &format!("<set id='bad' xpath=\"{a}\"><entry name='{}'/></set></multi-configure-request>", "x".repeat(80)),
    );
    let bad = bad.replace("id='e", "id='E").replace("new-", "newer-");
    let t = Instant::now();
    let r = call(&mut st, &key, &[("type", "config"), ("action", "multi-config"), ("element", &bad)]);
    assert!(r.starts_with("<response status=\"error\""));
    println!("multi-config: 500 operations + 1 failing, rolled back, in {:?}", t.elapsed());

    let t = Instant::now();
    for i in 0..500 {
        call(
            &mut st,
            &key,
            &[
                ("type", "config"),
                ("action", "edit"),
                ("xpath", &format!("{a}/entry[@name='addr-{:05}']", 1000 + i)),
                ("element", &format!("<entry name='addr-{:05}'><ip-netmask>192.168.0.1</ip-netmask></entry>", 1000 + i)),
            ],
        );
    }
    println!("single edits: 500 calls in {:?} ({:?} each)", t.elapsed(), t.elapsed() / 500);

    let t = Instant::now();
    for i in 0..500 {
        call(&mut st, &key, &[("type", "config"), ("action", "get"), ("xpath", &format!("{a}/entry[@name='addr-{:05}']", 2000 + i))]);
    }
    println!("get of one entry: 500 calls in {:?} ({:?} each)", t.elapsed(), t.elapsed() / 500);

    let t = Instant::now();
    let r = call(&mut st, &key, &[("type", "config"), ("action", "get"), ("xpath", &format!("{a}/entry/@name"))]);
    println!("get of all address names ({} bytes) in {:?}", r.len(), t.elapsed());

    let t = Instant::now();
    let r = call(&mut st, &key, &[("type", "commit"), ("cmd", "<commit></commit>")]);
    let id = r.split("<job>").nth(1).unwrap().split("</job>").next().unwrap().to_string();
    let j = call(&mut st, &key, &[("type", "op"), ("cmd", &format!("<show><jobs><id>{id}</id></jobs></show>"))]);
    assert!(j.contains("<status>FIN</status>"));
    println!("full commit of the 20,000-object candidate in {:?}", t.elapsed());
}
