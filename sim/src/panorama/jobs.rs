//! Commit and push jobs. Jobs run one at a time in id order (PAN-OS has one commit queue) and
//! progress on a timer that is evaluated lazily whenever state is touched: a job is PEND for
//! one step (or until the previous job ends), ACT for `act_steps` steps with `progress`
//! rising, then FIN with `progress` 100 and final results. Step length comes from
//! `--job-step-ms`; 0 makes every job FIN at once. Timer-based (not per-poll) so that both
//! pan-os-python (polls `status`) and pango (polls `progress`) see the same job.

use super::xml_tree::{Key, Node, escape};
use std::time::{Duration, Instant, SystemTime};

#[derive(Clone, Debug, PartialEq)]
pub enum JobKind {
    Commit,
    CommitAll,
}

impl JobKind {
    pub fn name(&self) -> &'static str {
        match self {
            JobKind::Commit => "Commit",
            JobKind::CommitAll => "CommitAll",
        }
    }
}

/// Tag and attributes of each ancestor of a path, to recreate missing parents in running.
pub type Shells = Vec<(String, Vec<(String, String)>)>;

/// One path of a partial commit: where, the candidate value (None = delete), its ancestors,
/// and for entries the candidate's preceding siblings, nearest first (empty = it is first), so
/// that a partial commit lands an entry (a new or moved rule) at its candidate position.
pub type PartialItem = (Vec<Key>, Option<Node>, Shells, Option<Vec<Key>>);

/// What a Panorama commit does to the running tree when it finishes.
#[derive(Clone, Debug)]
pub enum Effect {
    /// Full commit: running becomes this snapshot of the candidate.
    Full(Box<Node>),
    /// Partial commit: these paths take these candidate values (None = delete).
    Partial(Vec<PartialItem>),
    None,
}

#[derive(Clone, Debug)]
pub struct JobDevice {
    pub serial: String,
    pub name: String,
    /// Failure text when an injected fault makes this device fail.
    pub fail: Option<String>,
}

#[derive(Clone, Debug)]
pub struct Job {
    pub id: u64,
    pub kind: JobKind,
    pub user: String,
    pub description: String,
    pub enqueued_wall: SystemTime,
    pub start: Instant,
    pub step: Duration,
    pub act_steps: u32,
    /// Failure text when the whole job fails (Panorama commit FAIL).
    pub fail: Option<String>,
    pub devices: Vec<JobDevice>,
    pub push_type: Option<String>,
    pub dgname: Option<String>,
    pub effect: Effect,
    pub applied: bool,
    /// Serials and the scope pushed, for /_sim/jobs.
    pub scope: String,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Phase {
    Pend,
    Act(u32),
    Fin,
}

impl Job {
    pub fn end(&self) -> Instant {
        self.start + self.step * (1 + self.act_steps)
    }

    pub fn phase(&self, now: Instant) -> Phase {
        if self.step.is_zero() || now >= self.end() {
            return Phase::Fin;
        }
        if now < self.start + self.step {
            return Phase::Pend;
        }
        let n = ((now - self.start).as_nanos() / self.step.as_nanos()) as u32; // 1..=act_steps
        Phase::Act((n * 100 / (self.act_steps + 1)).min(99))
    }

    pub fn ok(&self) -> bool {
        self.fail.is_none() && self.devices.iter().all(|d| d.fail.is_none())
    }

    pub fn to_xml(&self, now: Instant) -> String {
        let phase = self.phase(now);
        let (status, progress) = match phase {
            Phase::Pend => ("PEND", 0),
            Phase::Act(p) => ("ACT", p),
            Phase::Fin => ("FIN", 100),
        };
        let fin = phase == Phase::Fin;
        let result = if !fin {
            "PEND"
        } else if self.ok() {
            "OK"
        } else {
            "FAIL"
        };
        let tenq = fmt_time(self.enqueued_wall);
        let tfin = if fin { fmt_time(self.enqueued_wall + (self.end() - self.start)) } else { "Still Active".into() };
        let mut s = String::from("<job>");
        s += &format!("<tenq>{tenq}</tenq><tdeq>{}</tdeq>", &tenq[11..]);
        s += &format!("<id>{}</id><user>{}</user><type>{}</type>", self.id, escape(&self.user), self.kind.name());
        s += &format!(
            "<status>{status}</status><queued>{}</queued><stoppable>no</stoppable>",
            if phase == Phase::Pend { "YES" } else { "NO" }
        );
        s += &format!("<result>{result}</result><tfin>{tfin}</tfin><description>{}</description>", escape(&self.description));
        s += &format!("<positionInQ>0</positionInQ><progress>{progress}</progress>");
        if let Some(pt) = &self.push_type {
            s += &format!("<push_type>{pt}</push_type>");
        }
        if let Some(dg) = &self.dgname {
            s += &format!("<dgname>{}</dgname>", escape(dg));
        }
        s += "<warnings/>";
        match (fin, self.kind.clone(), &self.fail) {
            (true, _, Some(f)) => s += &format!("<details><line>Validation Error:</line><line><![CDATA[ {} ]]></line></details>", f),
            (true, JobKind::Commit, None) => s += "<details><line>Configuration committed successfully</line></details>",
            (true, JobKind::CommitAll, None) if !self.ok() => {
                s += "<details><line>Commit all failed on one or more devices</line></details>"
            }
            (true, JobKind::CommitAll, None) => s += "<details><line>Push succeeded</line></details>",
            _ => s += "<details/>",
        }
        if self.kind == JobKind::CommitAll {
            s += "<devices>";
            for d in &self.devices {
                let (st, res, prog) = match (fin, &d.fail) {
                    (false, _) => ("commit in progress", "PEND", progress),
                    (true, None) => ("commit succeeded", "OK", 100),
                    (true, Some(_)) => ("commit failed", "FAIL", 100),
                };
                s += &format!(
                    "<entry><serial-no>{}</serial-no><devicename>{}</devicename><vsys>vsys1</vsys><multi-vsys>no</multi-vsys><status>{st}</status><result>{res}</result><progress>{prog}</progress><tstart>{tenq}</tstart><tfin>{}</tfin>",
                    escape(&d.serial),
                    escape(&d.name),
                    if fin { tfin.as_str() } else { "" }
                );
                match (&d.fail, fin) {
                    (Some(f), true) => {
                        s += &format!("<details><msg><errors><line><![CDATA[ {f} ]]></line></errors><warnings/></msg></details>")
                    }
                    _ => s += "<details><msg><errors/><warnings/></msg></details>",
                }
                s += "</entry>";
            }
            s += "</devices>";
        }
        s += "</job>";
        s
    }
}

/// `YYYY/MM/DD HH:MM:SS` (UTC), PAN-OS's job time format.
pub fn fmt_time(t: SystemTime) -> String {
    let (y, m, d, _, h, mi, s) = civil(t);
    format!("{y:04}/{m:02}/{d:02} {h:02}:{mi:02}:{s:02}")
}

/// Broken-down UTC fields (civil-from-days, Howard Hinnant's algorithm) of `t`: (year, month 1-12, day, weekday 0=Sunday, h, m, s).
pub(crate) fn civil(t: SystemTime) -> (i64, usize, i64, usize, i64, i64, i64) {
    let secs = t.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0) as i64;
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    let wd = (days + 4).rem_euclid(7) as usize; // 1970-01-01 was a Thursday
    (y, m as usize, d, wd, rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_format() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(fmt_time(t), "2023/11/14 22:13:20");
    }

    #[test]
    fn phases() {
        let now = Instant::now();
        let j = Job {
            id: 1,
            kind: JobKind::Commit,
            user: "a".into(),
            description: String::new(),
            enqueued_wall: SystemTime::now(),
            start: now,
            step: Duration::from_millis(100),
            act_steps: 3,
            fail: None,
            devices: vec![],
            push_type: None,
            dgname: None,
            effect: Effect::None,
            applied: false,
            scope: String::new(),
        };
        assert_eq!(j.phase(now), Phase::Pend);
        assert_eq!(j.phase(now + Duration::from_millis(150)), Phase::Act(25));
        assert_eq!(j.phase(now + Duration::from_millis(350)), Phase::Act(75));
        assert_eq!(j.phase(now + Duration::from_millis(400)), Phase::Fin);
    }
}
