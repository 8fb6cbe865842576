//! The in-process harness both panorama-sim API test files use: a `State` driven through
//! `State::handle` (the HTTP server's entry point), with an admin key and the last raw answer.
#![allow(dead_code)]

use pano_eks_sim::panorama::state::{Device, HeaderAuth, Options, Params, State};
use pano_eks_sim::panorama::xml_tree::{Node, parse_one};
use std::time::{Duration, Instant};

pub const LD: &str = "/config/devices/entry[@name='localhost.localdomain']";

pub fn dg(name: &str) -> String {
    format!("{LD}/device-group/entry[@name='{name}']")
}

pub struct Sim {
    pub st: State,
    pub key: String,
    /// Raw body of the last answer (the indexed Node collapses same-tag siblings such as
    /// multi-config inner responses and job device entries).
    pub last: String,
}

pub fn opts() -> Options {
    Options {
        admins: vec![("admin".into(), "pw".into()), ("admin2".into(), "pw2".into())],
        devices: (1..=3).map(Device::generated).collect(),
        job_step: Duration::from_millis(20),
        ..Options::default()
    }
}

impl Sim {
    pub fn new() -> Sim {
        Sim::with(opts())
    }
    pub fn with(o: Options) -> Sim {
        let mut st = State::new(o);
        let key = keygen(&mut st, "admin", "pw").expect("keygen");
        Sim { st, key, last: String::new() }
    }
    pub fn key_for(&mut self, user: &str, pw: &str) -> String {
        keygen(&mut self.st, user, pw).expect("keygen")
    }
    pub fn call_as(&mut self, key: &str, kv: &[(&str, &str)]) -> (u16, Node) {
        let mut p = Params::default();
        for (k, v) in kv {
            p.0.push((k.to_string(), v.to_string()));
        }
        let h = HeaderAuth { pan_key: Some(key.to_string()), basic: None };
        let r = self.st.handle(&p, &h, Instant::now());
        self.last = r.body.clone();
        LAST.with(|l| *l.borrow_mut() = r.body.clone());
        (r.status, parse_one(&r.body).unwrap_or_else(|e| panic!("bad XML {e}: {}", r.body)))
    }
    pub fn call(&mut self, kv: &[(&str, &str)]) -> Node {
        let key = self.key.clone();
        let (s, n) = self.call_as(&key, kv);
        assert_eq!(s, 200);
        n
    }
    pub fn set(&mut self, xpath: &str, element: &str) -> Node {
        self.call(&[("type", "config"), ("action", "set"), ("xpath", xpath), ("element", element)])
    }
    pub fn edit(&mut self, xpath: &str, element: &str) -> Node {
        self.call(&[("type", "config"), ("action", "edit"), ("xpath", xpath), ("element", element)])
    }
    pub fn get(&mut self, xpath: &str) -> Node {
        self.call(&[("type", "config"), ("action", "get"), ("xpath", xpath)])
    }
    pub fn show(&mut self, xpath: &str) -> Node {
        self.call(&[("type", "config"), ("action", "show"), ("xpath", xpath)])
    }
    pub fn delete(&mut self, xpath: &str) -> Node {
        self.call(&[("type", "config"), ("action", "delete"), ("xpath", xpath)])
    }
    pub fn op(&mut self, cmd: &str) -> Node {
        self.call(&[("type", "op"), ("cmd", cmd)])
    }
    pub fn commit(&mut self, cmd: &str) -> Node {
        self.call(&[("type", "commit"), ("cmd", cmd)])
    }
    pub fn push(&mut self, cmd: &str) -> Node {
        self.call(&[("type", "commit"), ("action", "all"), ("cmd", cmd)])
    }
    pub fn job(&mut self, id: &str) -> Node {
        self.op(&format!("<show><jobs><id>{id}</id></jobs></show>"))
    }
    pub fn wait_job(&mut self, id: &str) -> Node {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let j = self.job(id);
            if text(&j, &["result", "job", "status"]) == "FIN" {
                return j;
            }
            assert!(Instant::now() < deadline, "job {id} never finished");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    pub fn commit_and_wait(&mut self) -> Node {
        let id = text(&self.commit("<commit/>"), &["result", "job"]);
        self.wait_job(&id)
    }
    pub fn candidate_has(&self, needle: &str) -> bool {
        self.st.candidate.to_xml().contains(needle)
    }
}

pub fn keygen(st: &mut State, user: &str, pw: &str) -> Result<String, u16> {
    let p = Params(vec![("type".into(), "keygen".into()), ("user".into(), user.into()), ("password".into(), pw.into())]);
    let r = st.handle(&p, &HeaderAuth::default(), Instant::now());
    if r.status != 200 {
        return Err(r.status);
    }
    Ok(text(&parse_one(&r.body).unwrap(), &["result", "key"]))
}

pub fn text(n: &Node, path: &[&str]) -> String {
    n.descend(path).map(|x| x.text.clone()).unwrap_or_else(|| panic!("no {path:?} in {}", n.to_xml()))
}

pub fn status(n: &Node) -> (String, String) {
    (n.attr("status").unwrap_or_default().into(), n.attr("code").unwrap_or_default().into())
}

thread_local! {
    pub static LAST: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}
