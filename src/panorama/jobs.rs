//! Commit and push jobs: enqueue, poll `show jobs id N` to the end, and read per-device results.
//! A job is finished when `status` is FIN *and* progress is 100 (pan-os-python waits for the
//! first, pango for the second); a push succeeded only if every device reports OK.

use std::time::{Duration, Instant};

use super::client::{PanoramaClient, PanosError};
use super::xml::Element;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub id: u64,
    pub kind: String,
    pub status: String,
    pub result: String,
    pub progress: u32,
    pub details: Vec<String>,
    pub devices: Vec<DeviceResult>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceResult {
    pub serial: String,
    pub name: String,
    pub result: String,
    pub status: String,
    pub details: Vec<String>,
}

impl Job {
    pub fn finished(&self) -> bool {
        self.status == "FIN" && self.progress >= 100 && !self.devices.iter().any(|d| d.result == "PEND")
    }

    pub fn ok(&self) -> bool {
        self.result == "OK" && self.devices.iter().all(|d| d.result == "OK")
    }

    /// One line per problem: the job's own details, then every device that did not end OK.
    pub fn failures(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.result != "OK" {
            let d = if self.details.is_empty() { String::new() } else { format!(": {}", self.details.join("; ")) };
            out.push(format!("{} job {} ended {}{d}", self.kind, self.id, self.result));
        }
        for dev in self.devices.iter().filter(|d| d.result != "OK") {
            let d = if dev.details.is_empty() { dev.status.clone() } else { dev.details.join("; ") };
            out.push(format!("firewall {} ({}): {} {d}", dev.name, dev.serial, dev.result));
        }
        out
    }

    pub fn parse(result: &Element) -> Result<Job, PanosError> {
        let job = result.path("job").ok_or_else(|| PanosError::Parse("show jobs answer holds no job".into()))?;
        let text = |p: &str| job.text_at(p).unwrap_or_default();
        let lines = |e: Option<&Element>| -> Vec<String> {
            let Some(e) = e else { return Vec::new() };
            let mut v: Vec<String> = Vec::new();
            collect_lines(e, &mut v);
            v
        };
        let devices = job
            .path("devices")
            .map(|ds| {
                ds.elements()
                    .filter(|e| e.name == "entry")
                    .map(|d| DeviceResult {
                        serial: d.text_at("serial-no").or_else(|| d.get_attr("name").map(str::to_string)).unwrap_or_default(),
                        name: d.text_at("devicename").unwrap_or_default(),
                        result: d.text_at("result").unwrap_or_default(),
                        status: d.text_at("status").unwrap_or_default(),
                        details: lines(d.find("details")),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(Job {
            id: text("id").parse().map_err(|_| PanosError::Parse(format!("job id `{}`", text("id"))))?,
            kind: text("type"),
            status: text("status"),
            result: text("result"),
            progress: text("progress").trim_end_matches('%').parse().unwrap_or(if text("status") == "FIN" { 100 } else { 0 }),
            details: lines(job.find("details")),
            devices,
        })
    }
}

fn collect_lines(e: &Element, out: &mut Vec<String>) {
    let mut had_line = false;
    for c in e.elements() {
        if c.name == "line" {
            had_line = true;
            let t = c.text_content();
            if !t.is_empty() {
                out.push(t);
            }
        } else {
            collect_lines(c, out);
        }
    }
    if !had_line && e.elements().next().is_none() {
        let t = e.text_content();
        if !t.is_empty() {
            out.push(t);
        }
    }
}

/// Polls a job until it finishes or `timeout` passes; `on_poll` sees each state (progress bars).
pub async fn wait(client: &PanoramaClient, id: u64, timeout: Duration, mut on_poll: impl FnMut(&Job)) -> Result<Job, PanosError> {
    let start = Instant::now();
    let mut interval = Duration::from_millis(100);
    let cmd = Element::new("show").child(Element::new("jobs").leaf("id", id.to_string()));
    loop {
        let job = Job::parse(&client.op(&cmd).await?)?;
        on_poll(&job);
        if job.finished() {
            return Ok(job);
        }
        if start.elapsed() > timeout {
            return Err(PanosError::Api {
                code: None,
                msg: format!("job {id} still {} at {}% after {}s", job.status, job.progress, timeout.as_secs()),
            });
        }
        tokio::time::sleep(interval).await;
        interval = (interval * 2).min(Duration::from_secs(2));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::panorama::xml;

    #[test]
    fn reads_a_commit_all_job_with_a_failed_device() {
        let r = xml::parse(
            "<result><job><tenq>2026/11/26 10:00:00</tenq><id>7</id><user>pano-eks</user><type>CommitAll</type>\
             <status>FIN</status><result>FAIL</result><progress>100</progress><details><line>push failed</line></details>\
             <devices><entry><serial-no>0001</serial-no><devicename>fw-a</devicename><result>OK</result><status>commit succeeded</status></entry>\
             <entry><serial-no>0002</serial-no><devicename>fw-b</devicename><result>FAIL</result><status>commit failed</status>\
             <details><msg><errors><line>vr-default: next hop unreachable</line></errors></msg></details></entry></devices></job></result>",
        )
        .unwrap();
        let job = Job::parse(&r).unwrap();
        assert!(job.finished());
        assert!(!job.ok());
        assert_eq!(
            job.failures(),
            vec![
                "CommitAll job 7 ended FAIL: push failed".to_string(),
                "firewall fw-b (0002): FAIL vr-default: next hop unreachable".to_string()
            ]
        );
    }

    #[test]
    fn fin_is_not_finished_while_progress_or_a_device_is_pending() {
        let r = xml::parse(
            "<result><job><id>3</id><type>Commit</type><status>FIN</status><result>OK</result><progress>90</progress></job></result>",
        )
        .unwrap();
        assert!(!Job::parse(&r).unwrap().finished());
        let r = xml::parse("<result><job><id>3</id><type>CommitAll</type><status>FIN</status><result>OK</result><progress>100</progress><devices><entry><serial-no>1</serial-no><result>PEND</result></entry></devices></job></result>").unwrap();
        assert!(!Job::parse(&r).unwrap().finished());
    }
}
