//! Data-plane benchmark (prints figures, asserts nothing): 6 managed firewalls, a device group
//! with 1,000 security and 1,000 NAT rules (one per Service), pushed, then one
//! `test security-policy-match` and one `test nat-policy-match` per Service per firewall
//! (`target=SERIAL`), the worst case being the last rule. Through `State::handle`, minus sockets.
//!
//! Run: `cargo bench -p pano-eks-sim --bench panorama_dataplane` (release) or
//! `cargo test -p pano-eks-sim --bench panorama_dataplane --profile dev` (debug build figures).

use pano_eks_sim::panorama::state::{Device, HeaderAuth, Options, Params, State};
use std::time::{Duration, Instant};

const LD: &str = "/config/devices/entry[@name='localhost.localdomain']";
const RULES: usize = 1000;
const FIREWALLS: usize = 6;

fn call(st: &mut State, key: &str, kv: &[(&str, &str)]) -> String {
    let p = Params(kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
    let h = HeaderAuth { pan_key: Some(key.to_string()), basic: None };
    st.handle(&p, &h, Instant::now()).body
}

fn main() {
    let mut st = State::new(Options {
        devices: (1..=FIREWALLS).map(Device::generated).collect(),
        devices_in_dg: Some("DG".into()),
        job_step: Duration::ZERO,
        ..Options::default()
    });
    let p = Params(vec![("type".into(), "keygen".into()), ("user".into(), "admin".into()), ("password".into(), "admin".into())]);
    let body = st.handle(&p, &HeaderAuth::default(), Instant::now()).body;
    let key = body.split("<key>").nth(1).unwrap().split("</key>").next().unwrap().to_string();
    let dg = format!("{LD}/device-group/entry[@name='DG']");
    let ip = |i: usize| format!("10.100.{}.{}", 1 + i / 250, 1 + i % 250);
    let (mut sec, mut nat) = (String::new(), String::new());
    for i in 0..RULES {
        let d = ip(i);
        sec += &format!(
            "<entry name='svc-{i}'><from><member>untrust</member></from><to><member>trust</member></to><source><member>any</member></source>\
<destination><member>{d}</member></destination><application><member>any</member></application><service><member>any</member></service><action>allow</action></entry>"
        );
        nat += &format!(
            "<entry name='svc-{i}'><from><member>untrust</member></from><to><member>untrust</member></to><source><member>any</member></source>\
<destination><member>{d}</member></destination><service>any</service><destination-translation><translated-address>10.200.1.9</translated-address></destination-translation></entry>"
        );
    }
    let t = Instant::now();
    call(
        &mut st,
        &key,
        &[("type", "config"), ("action", "set"), ("xpath", &format!("{dg}/pre-rulebase/security/rules")), ("element", &sec)],
    );
    call(&mut st, &key, &[("type", "config"), ("action", "set"), ("xpath", &format!("{dg}/pre-rulebase/nat/rules")), ("element", &nat)]);
    call(&mut st, &key, &[("type", "commit"), ("cmd", "<commit/>")]);
    st.tick(Instant::now() + Duration::from_secs(1));
    let push = "<commit-all><shared-policy><device-group><entry name=\"DG\"/></device-group></shared-policy></commit-all>";
    call(&mut st, &key, &[("type", "commit"), ("action", "all"), ("cmd", push)]);
    st.tick(Instant::now() + Duration::from_secs(1));
    println!("write {RULES}+{RULES} rules, commit, push to {FIREWALLS}: {:?}", t.elapsed());
    let serials: Vec<String> = (1..=FIREWALLS).map(|i| Device::generated(i).serial).collect();
    for (kind, tag) in [("security", "security-policy-match"), ("nat", "nat-policy-match")] {
        let t = Instant::now();
        let mut hits = 0;
        for s in &serials {
            for i in 0..RULES {
                let cmd = format!(
                    "<test><{tag}><from>untrust</from><source>198.51.100.7</source><destination>{}</destination><destination-port>443</destination-port><protocol>6</protocol></{tag}></test>",
                    ip(i)
                );
                let r = call(&mut st, &key, &[("type", "op"), ("target", s), ("cmd", &cmd)]);
                hits += r.contains(&format!("svc-{i}")) as usize;
            }
        }
        let n = FIREWALLS * RULES;
        println!(
            "{kind}: {n} matches over {RULES} rules in {:?} ({:?}/call), {hits} hit their own rule",
            t.elapsed(),
            t.elapsed() / n as u32
        );
    }
}
