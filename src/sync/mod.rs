//! The sync engine: one converge of Panorama towards the facts, readable in one sitting.
//!
//! 1. observe: read the five containers from the candidate config (every entry, owned or not),
//!    and the rules and groups that may reference them (held, not deleted, while they do);
//! 2. plan: the pure planning core decides the operations;
//! 3. apply: write them in batches, in the plan's order;
//! 4. commit: a partial commit of our own admin's changes, when ours differ from running
//!    (this also finishes the work of an earlier run that wrote but did not commit);
//! 5. push: to the device group and/or the template stack that changed, checking every firewall.

pub mod metrics;
pub mod owned;
pub mod sources;
pub mod verify_task;
pub mod watch;

use std::time::{Duration, Instant};

use pano_eks_core::{Facts, Names, Observed, Plan, PlanSettings};
use serde::Serialize;

use crate::config::Config;
use crate::panorama::apply::{self, LockWait, WriteMode};
pub use crate::panorama::cache::Read;
use crate::panorama::cache::{Cache, Candidate, Confirmed, Source};
use crate::panorama::commit::{self, CommitError, PushTarget};
use crate::panorama::jobs::Job;
use crate::panorama::locations::Locations;
use crate::panorama::xml::Element;
use crate::panorama::{ClientConfig, PanoramaClient, PanosError};
use crate::secret::Secret;
use owned::Fingerprint;

/// Builds the planning core's settings from the config file.
pub fn plan_settings(cfg: &Config) -> PlanSettings {
    let p = &cfg.panorama;
    let mut s = PlanSettings::new(&cfg.name, &p.device_group, &p.template);
    s.label_key = cfg.sync.label.clone();
    s.virtual_router = p.virtual_router.clone();
    s.trust_interface = p.trust_interface.clone();
    s.untrust_interface = p.untrust_interface.clone();
    s.trust_zone = p.trust_zone.clone();
    s.untrust_zone = p.untrust_zone.clone();
    s.capacity = cfg.firewalls.capacity.as_ref().and_then(|c| c.capacity());
    s.security = cfg.sync.security.as_ref().filter(|sec| sec.enabled).map(|sec| sec.settings());
    s
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Panorama(#[from] PanosError),
    #[error(transparent)]
    Commit(#[from] CommitError),
    #[error("invalid settings: {0}")]
    Settings(#[from] pano_eks_core::SettingsError),
    #[error("{0}")]
    Setup(String),
}

/// How to authenticate to Panorama (the secrets themselves, already read).
pub enum Credentials {
    ApiKey(Secret),
    Password(Secret),
}

/// Options that are not in the config file.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    pub insecure: bool,
    /// Overrides the write mode chosen from the Panorama version (benchmarks, old versions).
    pub mode: Option<WriteMode>,
    pub lock_wait: LockWait,
    pub job_timeout: Duration,
    /// Overrides the client's retry policy.
    pub retry: Option<crate::panorama::client::RetryPolicy>,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions { insecure: false, mode: None, lock_wait: LockWait::default(), job_timeout: Duration::from_secs(600), retry: None }
    }
}

pub struct Engine {
    pub client: PanoramaClient,
    pub settings: PlanSettings,
    locs: Locations,
    admin: String,
    template_stack: String,
    /// The write mode chosen from the version (or the options).
    pub mode: WriteMode,
    /// Set once Panorama refused multi-config itself: every later converge writes one entry
    /// per call (detected from the answer, not assumed from the version).
    multi_config_unavailable: std::sync::atomic::AtomicBool,
    pub sw_version: String,
    opts: EngineOptions,
    /// The firewalls' capacity as last read (when `firewalls.capacity` is not configured).
    capacity: tokio::sync::Mutex<Option<(Instant, Option<pano_eks_core::capacity::Capacity>)>>,
    /// What `sync --watch` knows of Panorama between converges (unused by `--once` and `plan`).
    cache: tokio::sync::Mutex<Cache>,
    /// Scopes whose last push of ours did not end OK (device group, template stack): the commit
    /// landed, so the next converge finds nothing to commit, yet a firewall still lacks the
    /// change. The next converge pushes them again until a push ends OK.
    owed: std::sync::Mutex<(bool, bool)>,
}

/// How long a read of the firewalls' capacity is used before it is read again (a replaced
/// firewall is of the same instance type; this only bounds how stale a resize can be).
const CAPACITY_TTL: Duration = Duration::from_secs(300);

/// What one converge did.
#[derive(Debug, Serialize)]
pub struct Report {
    pub plan: Plan,
    pub write_calls: usize,
    /// Commit job id, when something of ours was committed.
    pub commit_job: Option<u64>,
    pub pushes: Vec<PushSummary>,
    pub elapsed_ms: u128,
    /// Where the time went: (phase, milliseconds), in order.
    pub phases_ms: Vec<(&'static str, u128)>,
    /// A cached converge of `sync --watch`: what confirming its plan read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confirmed: Option<Confirmed>,
}

#[derive(Debug, Serialize)]
pub struct PushSummary {
    pub target: String,
    pub job: u64,
    /// (serial, device name, result) per firewall.
    pub devices: Vec<(String, String, String)>,
}

impl Engine {
    /// Connects with the credentials named in the config (environment variables).
    pub async fn connect(cfg: &Config, base: &std::path::Path, opts: EngineOptions) -> Result<Engine, SyncError> {
        let p = &cfg.panorama;
        let creds = match (&p.api_key_env, &p.password_env) {
            (Some(env), _) => {
                Credentials::ApiKey(Secret::from_env(env).map_err(|e| SyncError::Setup(format!("panorama.api_key_env: {e}")))?)
            }
            (None, Some(env)) => {
                Credentials::Password(Secret::from_env(env).map_err(|e| SyncError::Setup(format!("panorama.password_env: {e}")))?)
            }
            (None, None) => return Err(SyncError::Setup("no Panorama credentials configured".into())),
        };
        Engine::connect_with(cfg, base, opts, creds).await
    }

    /// Connects to Panorama with the given credentials and learns its version.
    pub async fn connect_with(cfg: &Config, base: &std::path::Path, opts: EngineOptions, creds: Credentials) -> Result<Engine, SyncError> {
        let p = &cfg.panorama;
        let mut cc = ClientConfig::new(&p.url);
        cc.ca_cert = p.ca_cert.as_ref().map(|c| if c.is_absolute() { c.clone() } else { base.join(c) });
        cc.insecure = opts.insecure;
        if let Some(r) = opts.retry {
            cc.retry = r;
        }
        let client = PanoramaClient::new(&cc)?;
        let admin = p.username.clone().ok_or_else(|| SyncError::Setup("panorama.username is not set".into()))?;
        let client = match creds {
            Credentials::ApiKey(k) => client.with_key(k),
            Credentials::Password(pw) => client.login(&admin, pw).await?,
        };
        let info = client.op(&Element::new("show").child(Element::new("system").child(Element::new("info")))).await?;
        let sw_version = info.text_at("system/sw-version").unwrap_or_default();
        let settings = plan_settings(cfg);
        settings.validate()?;
        let mode = opts.mode.unwrap_or_else(|| WriteMode::for_version(&sw_version, cfg.sync.batch_size as usize));
        tracing::info!(version = %sw_version, ?mode, "connected to Panorama");
        Ok(Engine {
            client,
            locs: Locations::from_settings(&settings),
            settings,
            admin,
            template_stack: p.template_stack.clone(),
            mode,
            multi_config_unavailable: std::sync::atomic::AtomicBool::new(false),
            sw_version,
            opts,
            capacity: tokio::sync::Mutex::new(None),
            cache: tokio::sync::Mutex::new(Cache::default()),
            owed: std::sync::Mutex::new((false, false)),
        })
    }

    /// Reads what Panorama holds and plans against it; writes nothing.
    pub async fn plan(&self, facts: &Facts) -> Result<(Plan, Observed), SyncError> {
        let seen = self.observe().await?;
        let plan = pano_eks_core::plan(&*self.settings_now().await, facts, &seen)?;
        Ok((plan, seen))
    }

    /// One full converge. Bad facts are reported in the plan and do not stop the good ones.
    pub async fn converge(&self, facts: &Facts) -> Result<Report, SyncError> {
        let mut clock = Clock::start();
        let seen = self.observe().await?;
        let settings = self.settings_now().await;
        clock.mark("observe");
        let plan = pano_eks_core::plan(&settings, facts, &seen)?;
        clock.mark("plan");
        let (plan, write_calls) = self.write(plan).await?;
        let mut candidate = seen;
        candidate.apply(&plan.operations);
        clock.mark("apply");
        // Only the fingerprint of our entries is kept while the running config is read.
        let ours = Fingerprint::of(&self.names(), &candidate);
        drop(candidate);
        let scopes = self.differs_from_running(&plan, &ours).await?;
        clock.mark("compare with running");
        self.commit_and_push(plan, write_calls, scopes, clock).await
    }

    /// One converge of `sync --watch`, from the watch cache ([`crate::panorama::cache`]): with
    /// [`Read::Cached`] only what the plan touches is read (and whatever differs from the cache),
    /// and "anything of ours uncommitted?" is the cache's record of our writes since the last
    /// push; [`Read::Full`] (or a cold cache) reads everything and compares with the running
    /// config, as [`Engine::converge`] does. A failed converge, or one with refused writes,
    /// empties the cache, so the next one reads everything.
    pub async fn converge_watched(&self, facts: &Facts, read: Read) -> Result<Report, SyncError> {
        let mut cache = self.cache.lock().await;
        let result = self.converge_cached(facts, read, &mut cache).await;
        match &result {
            Ok(r) if !r.plan.problems.iter().any(|p| p.kind == pano_eks_core::ProblemKind::Refused) => {}
            _ => cache.forget(),
        }
        result
    }

    /// Empties the watch cache (lost leadership: another replica may have written since).
    pub async fn forget_cache(&self) {
        self.cache.lock().await.forget();
    }

    async fn converge_cached(&self, facts: &Facts, read: Read, cache: &mut Cache) -> Result<Report, SyncError> {
        let mut clock = Clock::start();
        let full = read == Read::Full || cache.is_cold();
        if full {
            cache.fill(self.observe().await?);
        }
        let settings = self.settings_now().await;
        clock.mark("observe");
        let source = self.candidate();
        let (plan, confirmed) = cache.plan(&source, full, |o| Ok::<_, SyncError>(pano_eks_core::plan(&settings, facts, o)?)).await?;
        if !full {
            tracing::debug!(?confirmed, "plan confirmed against Panorama");
        }
        clock.mark(if full { "plan" } else { "plan and confirm" });
        if !full {
            clock.phases.push(("of which planning", confirmed.planning_ms));
        }
        let (plan, write_calls) = self.write(plan).await?;
        cache.record(&plan.operations);
        clock.mark("apply");
        let scopes = match cache.observed() {
            Some(candidate) if full => self.differs_from_running(&plan, &Fingerprint::of(&self.names(), candidate)).await?,
            _ => cache.unpushed(),
        };
        clock.mark(if full { "compare with running" } else { "uncommitted (cache)" });
        let mut report = self.commit_and_push(plan, write_calls, scopes, clock).await?;
        cache.pushed();
        report.confirmed = (!full).then_some(confirmed);
        Ok(report)
    }

    /// Writes a plan; returns it as it went in (refused operations removed and reported against
    /// their Services, planned again by the next converge) and the write calls made.
    async fn write(&self, plan: Plan) -> Result<(Plan, usize), SyncError> {
        let applied = if plan.is_noop() {
            apply::Applied::default()
        } else {
            apply::apply(&self.client, &self.locs, &plan.operations, self.write_mode(), self.opts.lock_wait).await?
        };
        if applied.multi_config_unavailable.is_some() {
            self.multi_config_unavailable.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        for r in &applied.refused {
            let op = &plan.operations[r.operation];
            tracing::warn!(kind = ?op.kind(), name = op.name(), refusal = %r.message, "Panorama refused a write; the rest goes on");
        }
        Ok((plan.with_refusals(&applied.refused), applied.calls))
    }

    /// Whether *our* entries in the candidate differ from the running config, per scope (device
    /// group, template). A no-op plan with nothing pending anywhere (one cheap op call) skips
    /// reading the running config.
    async fn differs_from_running(&self, plan: &Plan, candidate: &Fingerprint) -> Result<(bool, bool), SyncError> {
        if plan.is_noop() && !self.pending_changes().await? {
            return Ok((false, false));
        }
        let running = Fingerprint::running(&self.client, &self.locs, &self.names()).await?;
        Ok(candidate.differs(&running))
    }

    fn names(&self) -> Names {
        Names::new(&self.settings.deployment)
    }

    /// Commits our admin's changes and pushes the scopes that changed, when any did.
    /// A push that did not end OK is owed: pushed again by the next converge, whatever it finds.
    async fn commit_and_push(&self, plan: Plan, write_calls: usize, scopes: (bool, bool), mut clock: Clock) -> Result<Report, SyncError> {
        let owed = *self.owed.lock().expect("owed pushes");
        let (dg_differs, template_differs) = (scopes.0 || owed.0, scopes.1 || owed.1);
        if owed.0 || owed.1 {
            tracing::info!(device_group = owed.0, template_stack = owed.1, "pushing again what the last push did not land");
        }
        let mut commit_job = None;
        let mut pushes = Vec::new();
        if dg_differs || template_differs {
            let description = format!("pano-eks {}: {} operation(s)", self.settings.deployment, plan.operations.len());
            let job = commit::commit_partial(&self.client, &self.admin, &description, self.opts.lock_wait, self.opts.job_timeout).await?;
            commit_job = job.as_ref().map(|j| j.id);
            clock.mark("commit");
            // Committed: each push is owed until it ends OK (a failed first one leaves the
            // second owed too, not forgotten).
            *self.owed.lock().expect("owed pushes") = (dg_differs, template_differs);
            if dg_differs {
                pushes.push(self.push(PushTarget::DeviceGroup(&self.settings.device_group), &description).await?);
                self.owed.lock().expect("owed pushes").0 = false;
            }
            if template_differs {
                pushes.push(self.push(PushTarget::TemplateStack(&self.template_stack), &description).await?);
                self.owed.lock().expect("owed pushes").1 = false;
            }
            clock.mark("push");
        }
        Ok(Report {
            plan,
            write_calls,
            commit_job,
            pushes,
            elapsed_ms: clock.start.elapsed().as_millis(),
            phases_ms: clock.phases,
            confirmed: None,
        })
    }

    /// The settings a plan uses now: with `firewalls.capacity` as configured, else with the
    /// capacity of the smallest member firewall (`show system info` through Panorama; core
    /// decides which limits apply). Unknown firewalls (not connected, not a VM-Series size) are
    /// left out and logged; when none is known, Services are admitted without limits.
    async fn settings_now(&self) -> std::borrow::Cow<'_, PlanSettings> {
        if self.settings.capacity.is_some() {
            return std::borrow::Cow::Borrowed(&self.settings);
        }
        let mut cached = self.capacity.lock().await;
        let fresh = cached.as_ref().is_some_and(|(at, _)| at.elapsed() < CAPACITY_TTL);
        if !fresh {
            let read = match crate::panorama::capacity::firewall_tiers(&self.client, &self.settings.device_group).await {
                Ok(tiers) => {
                    for (serial, t) in tiers.iter().filter(|(_, t)| t.is_err()) {
                        tracing::warn!(firewall = %serial, why = t.as_ref().err().map(String::as_str).unwrap_or(""), "capacity of this firewall unknown; left out");
                    }
                    let known: Vec<_> = tiers.into_iter().filter_map(|(_, t)| t.ok()).collect();
                    pano_eks_core::capacity::Capacity::of_firewalls(&known)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "reading the firewalls' capacity failed; Services are admitted without limits");
                    None
                }
            };
            *cached = Some((Instant::now(), read));
        }
        let mut s = self.settings.clone();
        s.capacity = cached.as_ref().and_then(|(_, c)| c.clone());
        std::borrow::Cow::Owned(s)
    }

    /// The mode the next write uses: one per call once Panorama has refused multi-config.
    pub fn write_mode(&self) -> WriteMode {
        if self.multi_config_unavailable.load(std::sync::atomic::Ordering::Relaxed) { WriteMode::OnePerCall } else { self.mode }
    }

    /// The candidate config's five containers, and what elsewhere could reference their entries
    /// (rules, groups; our device group, its descendants, shared), read concurrently.
    /// Also what `shared` and the ancestor device groups hold, counted against the firewalls'
    /// limits (`panorama::capacity::elsewhere`).
    async fn observe(&self) -> Result<Observed, SyncError> {
        Ok(self.candidate().everything().await?)
    }

    /// Panorama's candidate config, as the watch cache reads it.
    fn candidate(&self) -> Candidate<'_> {
        Candidate { client: &self.client, locs: &self.locs, profile_groups: self.settings.security.is_some() }
    }

    /// `check pending-changes`: whether any administrator has uncommitted changes.
    async fn pending_changes(&self) -> Result<bool, SyncError> {
        let r = self.client.op(&Element::new("check").child(Element::new("pending-changes"))).await?;
        Ok(r.text_content() != "no")
    }

    async fn push(&self, target: PushTarget<'_>, description: &str) -> Result<PushSummary, SyncError> {
        let name = target.metric_target();
        let job: Job = commit::push(&self.client, &self.admin, target, description, self.opts.lock_wait, self.opts.job_timeout).await?;
        Ok(PushSummary {
            target: name,
            job: job.id,
            devices: job.devices.iter().map(|d| (d.serial.clone(), d.name.clone(), d.result.clone())).collect(),
        })
    }
}

/// Where a converge's time went.
struct Clock {
    start: Instant,
    lap: Instant,
    phases: Vec<(&'static str, u128)>,
}

impl Clock {
    fn start() -> Clock {
        Clock { start: Instant::now(), lap: Instant::now(), phases: Vec::new() }
    }

    fn mark(&mut self, phase: &'static str) {
        self.phases.push((phase, self.lap.elapsed().as_millis()));
        self.lap = Instant::now();
    }
}
