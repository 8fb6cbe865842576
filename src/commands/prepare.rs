//! `pano-eks panorama prepare`: the guide's "Set Up Your Panorama Configuration" (steps 1–6) as
//! one re-runnable command. Creates only what is missing, reports what exists and differs (left
//! alone unless `--adopt`), records what it created for `down`, and commits once. `up` runs the
//! same step (without `--allow-all` and `--adopt`) before it writes the bootstrap package.

use std::time::Duration;

use super::shared::{base_dir, connect_panorama, runtime};
use super::{CmdResult, Failure, load_config};
use crate::cli::{Cli, OutputFormat, PanoramaFlags};
use crate::config::{LoadOptions, LoadedConfig};
use crate::panorama::apply::LockWait;
use crate::panorama::prepare::{self as adapter, PrepareReport, Writer};
use crate::sync::Engine;

#[derive(Debug, Clone, Copy, Default)]
pub struct PrepareOptions {
    pub allow_all: bool,
    pub adopt: bool,
    pub dry_run: bool,
}

pub const ALLOW_ALL_WARNING: &str = "warning: --allow-all adds the security pre-rule `allow-all` (any zone, source, destination, application and service: allow). \
It is meant for first connectivity tests only (it also opens every port pano-eks's [sync.security] rules keep closed); delete it (or run `pano-eks down`) before real traffic";

pub(crate) fn writer<'a>(engine: &'a Engine, loaded: &'a LoadedConfig) -> Result<Writer<'a>, Failure> {
    let admin = loaded
        .config
        .panorama
        .username
        .as_deref()
        .ok_or_else(|| Failure::usage("panorama.username is not set: partial commits need our administrator"))?;
    Ok(Writer {
        client: &engine.client,
        admin,
        sw_version: &engine.sw_version,
        lock_wait: LockWait::default(),
        job_timeout: Duration::from_secs(600),
    })
}

/// Runs prepare (used by `up` too): returns the report; differences are in `report.plan`.
pub(crate) async fn ensure(engine: &Engine, loaded: &LoadedConfig, opts: PrepareOptions) -> Result<PrepareReport, Failure> {
    let s = adapter::settings(&loaded.config, opts.allow_all, opts.adopt);
    let w = writer(engine, loaded)?;
    let record = adapter::record_path(&base_dir(loaded), &loaded.config.name);
    adapter::prepare(&w, &s, &record).await.map_err(|e| Failure::failed(format!("preparing Panorama: {e}")))
}

/// One summary line: counts and the commit.
pub(crate) fn summary(r: &PrepareReport) -> String {
    let (c, e, d, a) = r.plan.counts();
    let commit = r.commit_job.map(|j| format!("committed (job {j})")).unwrap_or_else(|| "nothing to commit".into());
    format!(
        "{c} created, {e} already there, {d} difference(s) left alone{}; {commit}",
        if a > 0 { format!(", {a} adopted") } else { String::new() }
    )
}

pub fn run(cli: &Cli, conn: &PanoramaFlags, opts: PrepareOptions) -> CmdResult {
    let loaded = load_config(cli, LoadOptions::runtime())?;
    let cfg = &loaded.config;
    let p = &cfg.panorama;
    eprintln!(
        "pano-eks panorama prepare: template {}, stack {}, device group {}, virtual router {}{}",
        p.template,
        p.template_stack,
        p.device_group,
        p.virtual_router,
        if opts.dry_run { ", dry run" } else { "" }
    );
    if opts.allow_all {
        eprintln!("{ALLOW_ALL_WARNING}");
    }
    runtime()?.block_on(async {
        let engine = connect_panorama(&loaded, conn).await.map_err(Failure::failed)?;
        let (plan, report) = if opts.dry_run {
            let s = adapter::settings(cfg, opts.allow_all, opts.adopt);
            (adapter::plan(&engine.client, &s).await.map_err(|e| Failure::failed(format!("reading Panorama: {e}")))?, None)
        } else {
            let r = ensure(&engine, &loaded, opts).await?;
            (r.plan.clone(), Some(r))
        };
        let diffs = plan.differences().len();
        match cli.output {
            OutputFormat::Json => {
                let checks: Vec<serde_json::Value> = plan
                    .checks
                    .iter()
                    .map(|c| {
                        let (status, reason) = match &c.status {
                            pano_eks_core::prepare::Status::Create => ("create", None),
                            pano_eks_core::prepare::Status::Exists => ("exists", None),
                            pano_eks_core::prepare::Status::Differs(r) => ("differs", Some(r.clone())),
                            pano_eks_core::prepare::Status::Adopted(r) => ("adopted", Some(r.clone())),
                        };
                        serde_json::json!({"item": c.item, "what": c.item.describe(), "status": status, "reason": reason})
                    })
                    .collect();
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "dry_run": opts.dry_run,
                        "checks": checks,
                        "commit_job": report.as_ref().and_then(|r| r.commit_job),
                        "record": report.as_ref().map(|r| r.record.display().to_string()),
                    }))
                    .expect("serializes")
                );
            }
            OutputFormat::Text => {
                for l in adapter::describe(&plan) {
                    println!("  {l}");
                }
                match &report {
                    Some(r) => println!("prepare: {}", summary(r)),
                    None => println!("dry run: nothing was changed"),
                }
            }
        }
        if diffs > 0 && !opts.dry_run {
            return Err(Failure::failed(format!(
                "Panorama is not fully prepared: {diffs} existing setting(s) differ from what the firewalls need and were left alone; change them in Panorama or re-run with --adopt"
            )));
        }
        Ok(())
    })
}

/// `up`'s step: prepare (no allow-all, no adopt), or with `dry_run` show what it would do.
/// Differences are warnings here: `up` goes on, the operator decides.
pub(crate) async fn in_up(engine: &Engine, loaded: &LoadedConfig, dry_run: bool, progress: &crate::aws::progress::Progress) -> CmdResult {
    if dry_run {
        let s = adapter::settings(&loaded.config, false, false);
        let plan = adapter::plan(&engine.client, &s).await.map_err(|e| Failure::failed(format!("reading Panorama: {e}")))?;
        let (c, e, d, _) = plan.counts();
        progress.line(format!("   Panorama prerequisites: {c} to create, {e} already there, {d} difference(s)"));
        for l in adapter::describe(&plan).into_iter().filter(|l| !l.starts_with("exists")) {
            progress.line(format!("     {l}"));
        }
        return Ok(());
    }
    let r = ensure(engine, loaded, PrepareOptions::default()).await?;
    progress.line(format!("   Panorama prerequisites: {}", summary(&r)));
    for c in r.plan.differences() {
        if let pano_eks_core::prepare::Status::Differs(why) = &c.status {
            progress.line(format!("   warning: {}: {why} (`pano-eks panorama prepare --adopt` changes it)", c.item.describe()));
        }
    }
    Ok(())
}

/// `down`'s step: remove what `prepare` recorded as created, nothing else. Returns report lines.
pub(crate) async fn remove(engine: &Engine, loaded: &LoadedConfig) -> Result<Vec<String>, String> {
    let w = writer(engine, loaded).map_err(|f| f.message)?;
    let record = adapter::record_path(&base_dir(loaded), &loaded.config.name);
    let r = adapter::unprepare(&w, &record).await.map_err(|e| e.to_string())?;
    if r.plan.items.is_empty() {
        return Ok(vec!["prerequisites: nothing recorded as created by `prepare`".into()]);
    }
    let mut lines = adapter::describe_removal(&r.plan);
    lines.push(format!(
        "prerequisites: {}",
        r.commit_job.map(|j| format!("committed (job {j})")).unwrap_or_else(|| "nothing to commit".into())
    ));
    Ok(lines)
}

/// A vm-auth-key must stay valid at least this long after `up` starts (firewalls bootstrap
/// minutes after their stack starts; an hour leaves room for slow stacks and retries).
pub(crate) const MIN_KEY_LIFETIME_SECS: i64 = 3600;

/// Why Panorama would refuse `key` for a firewall bootstrapping now (`None`: fine).
pub(crate) async fn vm_auth_key_problem(
    engine: &Engine,
    key: &crate::secret::Secret,
) -> Result<Option<pano_eks_core::prepare::KeyProblem>, Failure> {
    Ok(vm_auth_key_check(&engine.client, key, MIN_KEY_LIFETIME_SECS).await.map_err(Failure::failed)?.err())
}

/// When `key` expires (Unix time, by Panorama's clock: `vm_auth_key::expiry_unix`); `None` when
/// Panorama does not list it or its texts are unreadable.
pub(crate) async fn vm_auth_key_expiry_unix(
    client: &crate::panorama::client::PanoramaClient,
    key: &crate::secret::Secret,
) -> Result<Option<i64>, String> {
    let listed = adapter::vm_auth_keys(client).await.map_err(|e| format!("asking Panorama for its vm-auth-keys: {e}"))?;
    let clock = adapter::panorama_clock(client).await.map_err(|e| format!("asking Panorama for its clock: {e}"))?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    let expiry = listed.iter().find(|(k, _)| k == key.expose()).map(|(_, e)| e.clone());
    Ok(expiry.and_then(|e| pano_eks_core::prepare::vm_auth_key::expiry_unix(&e, &clock, now)))
}

/// `key` against the keys Panorama lists: its expiry text when it stays valid `min_secs` from
/// now **by Panorama's own clock** (expiry-time is printed in its zone and enforced by its
/// clock). The one place the expiry is compared with a clock (`up`'s pre-flight, `sync`, `status`).
pub(crate) async fn vm_auth_key_check(
    client: &crate::panorama::client::PanoramaClient,
    key: &crate::secret::Secret,
    min_secs: i64,
) -> Result<Result<String, pano_eks_core::prepare::KeyProblem>, String> {
    let listed = adapter::vm_auth_keys(client).await.map_err(|e| format!("asking Panorama for its vm-auth-keys: {e}"))?;
    let clock = adapter::panorama_clock(client).await.map_err(|e| format!("asking Panorama for its clock: {e}"))?;
    Ok(pano_eks_core::prepare::check_vm_auth_key_by_panorama_clock(&listed, key.expose(), &clock, min_secs))
}
