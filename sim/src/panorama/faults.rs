//! Fault injection. Set with flags at start or at run time with `POST /_sim/faults` (JSON, the
//! same field names; fields left out keep their value). Randomness comes from a seeded
//! SplitMix64 drawn under the state lock in request order, so a sequential client sees the same
//! faults on every run with the same `--seed`.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Added to every `/api` request before it is answered.
    pub latency_ms: u64,
    /// Probability (0..1) that an `/api` request is answered with `http_error_status`.
    pub http_error_rate: f64,
    /// Status used for injected HTTP errors (default 503).
    pub http_error_status: u16,
    /// Probability (0..1) that an `/api` request's connection is closed without an answer.
    pub drop_rate: f64,
    /// Panorama commit jobs end FAIL with this text (until cleared).
    pub fail_commit: Option<String>,
    /// Push (commit-all) jobs fail on the device with this serial, or on every device for "*".
    pub fail_push_serial: Option<String>,
    /// Text for failed pushes.
    pub fail_push_message: Option<String>,
    /// While any job is PEND/ACT: commits answer "Another commit/validate is in progress. Please
    /// try again later" and config writes answer "A commit is in progress.".
    pub commit_in_progress: bool,
    /// Config lock (scope `shared`) held by this admin (set to "" to release).
    pub config_lock_by: Option<String>,
    /// Commit lock held by this admin (set to "" to release).
    pub commit_lock_by: Option<String>,
    /// multi-config accepted (10.0: off until `request multi-config enabled`; 10.1+: starts on;
    /// before 10.0 the action does not exist whatever this says).
    pub multi_config_enabled: bool,
    /// set/edit writes whose entry names match one of these globs are refused (code 12, the
    /// rule's message as the line). `null` or `[]` clears.
    pub refuse_writes: Option<Vec<RefuseWrite>>,
    /// Panorama's clock = host clock + this many seconds (may be negative).
    pub clock_skew_secs: i64,
    /// What an admin-scoped partial commit does with a node the admin wrote with a partial
    /// xpath (a container or a parent): `"sweep"` (commit the whole node, other admins' pending
    /// changes beneath it included; pan-os-ansible#628) or `"left-behind"` (the admin's partial
    /// commit does not carry it; pan-os-python#570). Default: left-behind on 11.0+, sweep before.
    pub partial_xpath_commit: String,
    /// A keygen ends the admin's previous key, as PAN-OS does (9.1 API guide). Off by default:
    /// existing product tests hold a key while another client keygens the same admin.
    pub keygen_rotates: bool,
    /// Push jobs report OK for these serials but the device keeps its old config
    /// (pan-os-ansible#400 class).
    pub push_silently_ignored_by: Vec<String>,
    /// These serials show `connected: no`; op commands targeted at them and pushes to them fail.
    pub disconnected: Vec<String>,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            latency_ms: 0,
            http_error_rate: 0.0,
            http_error_status: 0,
            drop_rate: 0.0,
            fail_commit: None,
            fail_push_serial: None,
            fail_push_message: None,
            commit_in_progress: false,
            config_lock_by: None,
            commit_lock_by: None,
            multi_config_enabled: false,
            refuse_writes: None,
            clock_skew_secs: 0,
            partial_xpath_commit: String::new(),
            keygen_rotates: false,
            push_silently_ignored_by: Vec::new(),
            disconnected: Vec::new(),
        }
    }
}

/// One `refuse_writes` rule.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RefuseWrite {
    /// `*` (any run) and `?` (one character); everything else literal.
    pub name_glob: String,
    #[serde(default)]
    pub message: Option<String>,
}

impl RefuseWrite {
    pub fn text(&self, name: &str) -> String {
        self.message.clone().unwrap_or_else(|| format!("{name} is refused (injected by panorama-sim)"))
    }
}

/// Glob match with `*` and `?` (no character classes), over characters.
pub fn glob_match(pat: &str, s: &str) -> bool {
    let p: Vec<char> = pat.chars().collect();
    let t: Vec<char> = s.chars().collect();
    let (mut pi, mut ti) = (0usize, 0usize);
    let (mut star, mut mark) = (None::<usize>, 0usize);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(sp) = star {
            pi = sp + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

impl Faults {
    pub fn status(&self) -> u16 {
        if self.http_error_status == 0 { 503 } else { self.http_error_status }
    }
}

/// SplitMix64: tiny, seedable, good enough for fault rates.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn hit(&mut self, rate: f64) -> bool {
        rate > 0.0 && self.unit() < rate
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn seeded_rng_is_deterministic_and_calibrated() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        let va: Vec<u64> = (0..5).map(|_| a.next_u64()).collect();
        let vb: Vec<u64> = (0..5).map(|_| b.next_u64()).collect();
        assert_eq!(va, vb);
        let mut r = Rng::new(1);
        let hits = (0..10_000).filter(|_| r.hit(0.25)).count();
        assert!((2200..2800).contains(&hits), "{hits}");
    }

    #[test]
    fn globs() {
        assert!(glob_match("demo.in.*frontend*", "demo.in.shop-frontend-80"));
        assert!(glob_match("demo.in.*frontend*", "demo.in.frontend"));
        assert!(!glob_match("demo.in.*frontend*", "demo.out.frontend"));
        assert!(glob_match("a?c", "abc") && !glob_match("a?c", "ac"));
        assert!(glob_match("*", "") && glob_match("x*", "x") && !glob_match("x", "xy"));
    }
}
