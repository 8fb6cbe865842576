//! `pano-eks up`: the guide's afternoon of console clicking as one re-runnable command.
//! Pre-flight (nothing is created when anything is wrong) → buckets → stacks → cluster access →
//! pan-user RBAC and token → first sync. Every step converges, so a re-run after any failure
//! picks up where the last one stopped and changes nothing that is already right.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use pano_eks_core::{ClusterFacts, Facts};

use super::shared::{base_dir, cluster_access, confirm, connect_panorama, runtime};
use super::{CmdResult, Failure, load_config};
use crate::aws::progress::Progress;
use crate::aws::stacks::{self, AwsCfn, CfnApi, EksLookup, Runner, TemplateSource, Timing};
use crate::aws::{Aws, AwsError, bucket, discovery, eks, kubeconfig, preflight};
use crate::cli::{Cli, OutputFormat, PanoramaFlags};
use crate::config::{Config, LoadOptions, LoadedConfig};
use crate::render::{self, RenderInputs, StackSpec};
use crate::secret::Secret;
use crate::sync::{Engine, Report};

/// Options of `up` that are not in the config file.
#[derive(Debug, Clone, Default)]
pub struct UpOptions {
    pub existing_vpc: bool,
    pub yes: bool,
    pub dry_run: bool,
    pub watch: bool,
    /// Where the pan-user credential files go (default `.pano-eks/<name>/` next to the config).
    pub out: Option<PathBuf>,
    /// Kubeconfig to merge the operator contexts into (default `$KUBECONFIG` / ~/.kube/config).
    pub kubeconfig: Option<PathBuf>,
}

/// How long `up` waits for the pan-user token.
const TOKEN_WAIT: Duration = Duration::from_secs(120);

/// The step list, printed before anything runs (like eksctl's task tree).
pub fn step_list(cfg: &Config, specs: &[StackSpec], opts: &UpOptions) -> Vec<String> {
    let mode = if opts.existing_vpc {
        format!("existing VPC {}", cfg.network.existing_vpc_id.as_deref().unwrap_or("?"))
    } else {
        "new VPC".to_string()
    };
    let mut s = vec![
        format!("pano-eks up: deployment {} in {} ({mode}){}", cfg.name, cfg.region, if opts.dry_run { ", dry run" } else { "" }),
        "  1. pre-flight: credentials, AZs, key pair, AMI and its Marketplace subscription, buckets, Panorama version, Kubernetes versions, same-named clusters, Elastic IP/VPC/NAT gateway limits, VPC".to_string(),
        format!("  2. buckets: {} (bootstrap package), {} (lambda code)", cfg.bootstrap_bucket(), cfg.lambda_bucket()),
        "  3. stacks:".to_string(),
    ];
    for sp in specs {
        let after = match sp.role {
            render::cfn::StackRole::Firewall => String::new(),
            render::cfn::StackRole::Cluster if !opts.existing_vpc => {
                format!(" (starts once the VPC and IGW of {} exist)", cfg.firewall_stack())
            }
            render::cfn::StackRole::Cluster => String::new(),
            render::cfn::StackRole::Nodes => format!(" (after {})", cfg.cluster_stack(sp.cluster.as_deref().unwrap_or_default())),
            render::cfn::StackRole::SyncAccess => {
                format!(
                    " (after {}: IAM role for the in-cluster sync, Pod Identity)",
                    cfg.node_stack(sp.cluster.as_deref().unwrap_or_default())
                )
            }
        };
        s.push(format!("     - {} [{}]{after}", sp.stack_name, sp.template_file));
    }
    s.push(format!(
        "  4. cluster access: kubeconfig context per cluster ({})",
        cfg.clusters.iter().map(|c| context_name(cfg, &c.name)).collect::<Vec<_>>().join(", ")
    ));
    s.push("  5. pan-user RBAC and its token; credential files for Panorama".to_string());
    s.push(format!("  6. Panorama: {}", if opts.watch { "sync --watch" } else { "first sync --once" }));
    if cfg.network.outbound_via_firewall || cfg.sync.manage_alb {
        let parts: Vec<&str> = [
            (cfg.network.outbound_via_firewall, "cluster egress through a firewall (EIP, default route)"),
            (cfg.sync.manage_alb, "ALB target group and rule per protected Service"),
        ]
        .into_iter()
        .filter_map(|(on, what)| on.then_some(what))
        .collect();
        s.push(format!("  7. AWS: {}", parts.join("; ")));
    }
    s.push("  8. verify: each firewall's own NAT, security, FQDN and route answers for the protected Services".to_string());
    s
}

pub fn context_name(cfg: &Config, cluster: &str) -> String {
    format!("pano-eks-{}-{cluster}", cfg.name)
}

struct Eks<'a>(&'a Aws);

impl EksLookup for Eks<'_> {
    async fn fields(&self, cluster: &str) -> Result<BTreeMap<&'static str, String>, AwsError> {
        let info = eks::describe_cluster(&self.0.eks, cluster)
            .await?
            .ok_or_else(|| AwsError::new("eks:DescribeCluster", format!("cluster {cluster} does not exist after its stack completed")))?;
        Ok(eks::wiring_fields(&info))
    }
}

/// Key of a template uploaded for `TemplateURL` (bodies above CloudFormation's inline limit).
fn template_key(spec: &StackSpec) -> String {
    format!("templates/{}-{}.yaml", spec.stack_name, &bucket::sha256_hex(spec.template_body.as_bytes())[..16])
}

pub fn run(cli: &Cli, conn: &PanoramaFlags, opts: &UpOptions) -> CmdResult {
    let loaded = load_config(cli, LoadOptions::deploy(opts.existing_vpc))?;
    let cfg = &loaded.config;
    let codes_path = loaded.resolve(&cfg.firewalls.authcodes_file);
    let authcodes = std::fs::read_to_string(&codes_path)
        .map(Secret::new)
        .map_err(|e| Failure::usage(format!("cannot read authcodes file {}: {e}", codes_path.display())))?;
    let render_with = |vm_auth_key: Option<&Secret>| {
        render::render(cfg, &RenderInputs { existing_vpc: opts.existing_vpc, vm_auth_key, authcodes: &authcodes })
            .map_err(|e| Failure::failed(e.to_string()))
    };
    // Rendered once up front (offline) for the step list; re-rendered with the vm-auth-key below.
    let preview = render_with(None)?;
    let progress = Progress::auto();
    for line in step_list(cfg, &preview.stacks, opts) {
        eprintln!("{line}");
    }
    runtime()?.block_on(async {
        let aws = Aws::connect(&cfg.region).await;
        progress.line("1. pre-flight");
        let engine = preflight_step(&aws, &loaded, conn, opts, &progress).await?;
        // The vm-auth-key: configured, else the one already in the bucket, else a new one.
        let vm_auth_key = vm_auth_key(&aws, cfg, &engine).await?;
        // Panorama prerequisites (template, stack, device group, interfaces, zones, router),
        // after every pre-flight check (the key's included) and before the bootstrap package.
        super::prepare::in_up(&engine, &loaded, opts.dry_run, &progress).await?;
        let rendered = render_with(vm_auth_key.as_ref())?;
        let cfn = AwsCfn { client: &aws.cfn };
        let runner = Runner::new(&cfn, Timing::default());
        if opts.dry_run {
            return dry_run(&aws, cfg, &rendered, &runner, &engine, &progress).await;
        }
        progress.line("2. buckets");
        buckets_step(&aws, cfg, &rendered, &progress).await?;
        progress.line("3. stacks");
        let outcomes = stacks_step(&aws, cfg, &rendered, &runner, opts.yes, &progress).await?;
        restore_firewall_group(&aws, cfg, &progress).await?;
        progress.line("4. cluster access");
        let (mut facts, credentials) = clusters_step(&aws, &loaded, opts, &progress).await?;
        progress.line("6. Panorama sync");
        let sync = sync_step(&aws, cfg, &engine, &mut facts, &progress).await?;
        if crate::aws::front_and_egress::enabled(cfg) {
            progress.line("7. ALB and outbound");
            front_and_egress_step(&aws, cfg, &sync, &facts, &progress).await?;
        }
        progress.line("8. verify on the firewalls");
        verify_step(&engine, &sync, &facts, &progress).await;
        print_result(cli.output, &outcomes, &credentials, &sync);
        if opts.watch {
            progress.line("   handing off to sync --watch (Ctrl-C to stop)");
            return super::panorama::run_watch(&loaded, None, conn, false).await;
        }
        Ok(())
    })
}

/// 1. Every pre-flight check (AWS and Panorama) before anything is created; all problems at once.
async fn preflight_step(
    aws: &Aws,
    loaded: &LoadedConfig,
    conn: &PanoramaFlags,
    opts: &UpOptions,
    progress: &Progress,
) -> Result<Engine, Failure> {
    let cfg = &loaded.config;
    let engine = connect_panorama(loaded, conn).await;
    let mut observed = preflight::gather(aws, cfg, opts.existing_vpc).await;
    observed.panorama = engine.as_ref().map(|e| e.sw_version.clone()).map_err(Clone::clone);
    let report = preflight::check(cfg, &observed, opts.existing_vpc);
    for w in &report.warnings {
        progress.line(format!("warning: {w}"));
    }
    if !report.problems.is_empty() {
        let n = report.problems.len();
        return Err(Failure::failed(format!(
            "pre-flight found {n} problem{}; nothing was created:\n  - {}",
            if n == 1 { "" } else { "s" },
            report.problems.join("\n  - ")
        )));
    }
    let engine = engine.map_err(Failure::failed)?;
    progress.line(format!("   account {}, Panorama {}: ok", observed.account.as_deref().unwrap_or("?"), engine.sw_version));
    Ok(engine)
}

/// 2. The bootstrap and lambda buckets, and what goes in them (templates over the inline limit too).
async fn buckets_step(aws: &Aws, cfg: &Config, rendered: &render::Rendered, progress: &Progress) -> Result<(), Failure> {
    let failed = |e: AwsError| Failure::failed(e.to_string());
    let boot = cfg.bootstrap_bucket();
    let lambda = cfg.lambda_bucket();
    for b in [&boot, &lambda] {
        let created = bucket::ensure(&aws.s3, b, &cfg.region, &cfg.name).await.map_err(failed)?;
        progress.line(format!("   {b}: {}", if created { "created" } else { "exists" }));
    }
    let boot_objects: Vec<bucket::Object> =
        rendered.bootstrap.iter().map(|o| bucket::Object { key: o.key.clone(), body: o.body() }).collect();
    let r = bucket::put_objects(&aws.s3, &boot, &boot_objects).await.map_err(failed)?;
    progress.line(format!(
        "   {boot}: {} uploaded, {} unchanged (config/init-cfg.txt, license/authcodes, folders)",
        r.uploaded.len(),
        r.unchanged.len()
    ));
    let mut lambda_objects = vec![bucket::Object { key: rendered.lambda.key.clone(), body: &rendered.lambda.bytes }];
    for s in rendered.stacks.iter().filter(|s| s.template_body.len() > stacks::MAX_TEMPLATE_BODY) {
        lambda_objects.push(bucket::Object { key: template_key(s), body: s.template_body.as_bytes() });
    }
    let r = bucket::put_objects(&aws.s3, &lambda, &lambda_objects).await.map_err(failed)?;
    progress.line(format!("   {lambda}: {} uploaded, {} unchanged ({})", r.uploaded.len(), r.unchanged.len(), rendered.lambda.key));
    Ok(())
}

/// 3. Every stack, cluster stacks early; a stack left in ROLLBACK_COMPLETE is recreated only
/// after the operator agrees.
async fn stacks_step(
    aws: &Aws,
    cfg: &Config,
    rendered: &render::Rendered,
    runner: &Runner<'_, AwsCfn<'_>>,
    yes: bool,
    progress: &Progress,
) -> Result<Vec<(String, stacks::Outcome)>, Failure> {
    let mut rollback = Vec::new();
    for s in &rendered.stacks {
        if let Some(st) = runner.api.describe(&s.stack_name).await.map_err(|e| Failure::failed(e.to_string()))? {
            if stacks::decide(Some(&st)) == stacks::Action::Recreate {
                rollback.push(format!("{} ({})", s.stack_name, st.status));
            }
        }
    }
    let recreate_ok = rollback.is_empty()
        || confirm(
            &format!("stack(s) {} failed to create earlier and must be deleted and created again. Proceed?", rollback.join(", ")),
            yes,
        )?;
    if !recreate_ok {
        return Err(Failure::failed("stopped: nothing deleted"));
    }
    let (lambda, region) = (cfg.lambda_bucket(), cfg.region.clone());
    let tpl = move |s: &StackSpec| {
        if s.template_body.len() > stacks::MAX_TEMPLATE_BODY {
            TemplateSource::Url(crate::aws::clients::s3_object_url(&lambda, &region, &template_key(s)))
        } else {
            TemplateSource::Body(s.template_body.clone())
        }
    };
    stacks::deploy_all(runner, &rendered.stacks, &tpl, &Eks(aws), progress, recreate_ok, true).await.map_err(|errs| {
        let list: Vec<String> = errs.iter().map(|e| format!("  - {e}")).collect();
        Failure::failed(format!(
            "{} stack error(s):\n{}\nfix the cause and re-run `pano-eks up`: finished stacks are kept",
            errs.len(),
            list.join("\n")
        ))
    })
}

/// An interrupted `down` scaled the firewall group to zero outside CloudFormation (the stack
/// still reads "up to date"): put back the size the stack declares.
async fn restore_firewall_group(aws: &Aws, cfg: &Config, progress: &Progress) -> Result<(), Failure> {
    let asg_name = cfg.firewall_asg();
    let size = crate::aws::asg::observe(aws, &asg_name).await.map_err(|e| Failure::failed(e.to_string()))?;
    if let Some(want) = crate::aws::asg::restore(size, cfg.firewalls.count) {
        crate::aws::asg::apply(aws, &asg_name, want).await.map_err(|e| Failure::failed(e.to_string()))?;
        let was = size.expect("restore needs an observed size");
        progress.line(format!(
            "   {asg_name}: size restored to {} (found min {}, max {}, desired {}: an interrupted `down`, or changed by hand)",
            want.desired, was.min, was.max, was.desired
        ));
    }
    Ok(())
}

/// The pan-user credential files written for one cluster.
type Credentials = Vec<(String, crate::kube::CredentialFiles)>;

/// 4./5. Per cluster: kubeconfig context, pan-user RBAC and its token, and the cluster's facts
/// (Services, subnets) for the first sync.
async fn clusters_step(aws: &Aws, loaded: &LoadedConfig, opts: &UpOptions, progress: &Progress) -> Result<(Facts, Credentials), Failure> {
    let cfg = &loaded.config;
    let out_dir = opts.out.clone().unwrap_or_else(|| base_dir(loaded).join(".pano-eks").join(&cfg.name));
    let kc_path = opts.kubeconfig.clone().or_else(kubeconfig::default_path);
    let mut facts = Facts::default();
    let mut credentials = Vec::new();
    for c in &cfg.clusters {
        let in_cluster = |e: String| Failure::failed(format!("cluster {}: {e}", c.name));
        let access = cluster_access(aws, loaded, c).await.map_err(Failure::failed)?;
        let Some((access, info)) = access else {
            return Err(Failure::failed(format!("cluster {} does not exist after its stack completed", c.name)));
        };
        if let Some(p) = &kc_path {
            write_context(p, cfg, loaded, c, &access, &info).map_err(Failure::failed)?;
            progress.line(format!("   kubeconfig {}: context {}", p.display(), context_name(cfg, &c.name)));
        }
        progress.line(format!("5. pan-user in cluster {}", c.name));
        let client = crate::kube::client(&access).await.map_err(|e| in_cluster(e.to_string()))?;
        let files = crate::kube::apply_pan_user(&client, &access.endpoint, &out_dir.join(&c.name), TOKEN_WAIT)
            .await
            .map_err(|e| in_cluster(e.to_string()))?;
        progress.line(format!("   credential for Panorama: {}", files.credential_json.display()));
        credentials.push((c.name.clone(), files));
        let services = crate::kube::list_services(&client, &cfg.sync.label).await.map_err(|e| in_cluster(e.to_string()))?;
        let subnets = discovery::cluster_subnets(aws, &c.name).await.map_err(|e| Failure::failed(e.to_string()))?;
        facts.clusters.push(ClusterFacts { name: c.name.clone(), subnets, services });
    }
    Ok((facts, credentials))
}

/// 6. The first sync: firewalls from the autoscaling group, then one converge.
async fn sync_step(aws: &Aws, cfg: &Config, engine: &Engine, facts: &mut Facts, progress: &Progress) -> Result<Report, Failure> {
    let (firewalls, pending) = discovery::firewalls(aws, &cfg.firewall_asg()).await.map_err(|e| Failure::failed(e.to_string()))?;
    if !pending.is_empty() {
        progress.line(format!("   firewalls not used yet (no trust interface: still booting; or not InService): {}", pending.join(", ")));
    }
    facts.firewalls = firewalls;
    facts.load_balancers = discovery::load_balancers(aws).await.map_err(|e| Failure::failed(e.to_string()))?;
    let sync = engine.converge(facts).await.map_err(|e| Failure::failed(format!("sync failed: {e}")))?;
    let (c, u, d) = sync.plan.counts();
    let committed = sync.commit_job.map(|j| format!("committed (job {j})")).unwrap_or_else(|| "nothing to commit".into());
    progress.line(format!("   {c} created, {u} updated, {d} deleted; {committed}"));
    Ok(sync)
}

/// 7. The AWS side of the converge (opt-in): egress through a firewall, the front per protected Service.
async fn front_and_egress_step(aws: &Aws, cfg: &Config, sync: &Report, facts: &Facts, progress: &Progress) -> Result<(), Failure> {
    let steps = crate::aws::front_and_egress::after_sync(aws, cfg, &sync.plan, facts).await;
    for l in steps.lines() {
        progress.line(format!("   {l}"));
    }
    if !steps.errors.is_empty() {
        return Err(Failure::failed(format!("up: {}\nfix the cause and re-run `pano-eks up`", steps.errors.join("; "))));
    }
    Ok(())
}

/// 8. What each firewall itself answers for the protected Services (`pano-eks verify`'s checks).
/// Reported, not fatal: firewalls still booting are not members yet, and `up` has done its part;
/// `pano-eks verify` exits 1 on a failure.
async fn verify_step(engine: &Engine, sync: &Report, facts: &Facts, progress: &Progress) {
    let fqdns = pano_eks_core::verify::fqdns(facts);
    // What the sync just wrote and pushed is in Panorama as planned: checked as protected.
    let services =
        if sync.pushes.is_empty() { sync.plan.services.clone() } else { pano_eks_core::verify::after_converge(&sync.plan.services) };
    let scope = crate::panorama::verify::Scope::all(&engine.settings, &services, &sync.plan.clusters, &fqdns);
    match crate::panorama::verify::run(&engine.client, &scope).await {
        Ok(report) => {
            let firewalls = pano_eks_core::verify::summary(&report.rows);
            let green = firewalls.iter().filter(|f| f.2 == 0).count();
            progress.line(format!("   verified on {green}/{} firewall(s)", firewalls.len()));
            for r in report.rows.iter().filter(|r| !r.ok) {
                progress.line(format!("   warning: {} {} {}: {}", r.serial, r.check.as_str(), r.subject, r.detail));
            }
        }
        Err(e) => progress.line(format!("   warning: verify could not run: {e}; run `pano-eks verify` later")),
    }
}

fn print_result(output: OutputFormat, outcomes: &[(String, stacks::Outcome)], credentials: &Credentials, sync: &Report) {
    let (c, u, d) = sync.plan.counts();
    match output {
        OutputFormat::Json => {
            let v = serde_json::json!({
                "stacks": outcomes.iter().map(|(n, o)| serde_json::json!({"stack": n, "result": stacks::outcome_text(o)})).collect::<Vec<_>>(),
                "credentials": credentials.iter().map(|(c, f)| serde_json::json!({"cluster": c, "credential_json": f.credential_json, "kubeconfig": f.kubeconfig})).collect::<Vec<_>>(),
                "sync": {"created": c, "updated": u, "deleted": d, "commit_job": sync.commit_job},
            });
            println!("{}", serde_json::to_string_pretty(&v).expect("serializes"));
        }
        OutputFormat::Text => {
            for (n, o) in outcomes {
                println!("stack {n}: {}", stacks::outcome_text(o));
            }
            for (c, f) in credentials {
                println!("cluster {c}: Panorama credential {}", f.credential_json.display());
            }
            println!("up: done; sync: {c} created, {u} updated, {d} deleted");
        }
    }
}

/// The vm-auth-key for init-cfg: the configured variable, else the key already in the bucket's
/// init-cfg (a re-run must not roll it), else a new one from Panorama.
async fn vm_auth_key(aws: &Aws, cfg: &Config, engine: &Engine) -> Result<Option<Secret>, Failure> {
    if let Some(env) = &cfg.firewalls.vm_auth_key_env {
        let key = Secret::from_env(env).map_err(|e| Failure::usage(format!("firewalls.vm_auth_key_env: {e}")))?;
        // Pre-flight: firewalls bootstrapping with an unknown or expiring key never register.
        if let Some(problem) = super::prepare::vm_auth_key_problem(engine, &key).await? {
            return Err(Failure::failed(format!("pre-flight: firewalls.vm_auth_key_env ({env}): {problem}; nothing was created")));
        }
        return Ok(Some(key));
    }
    if let Ok(Some(text)) = bucket::get_text(&aws.s3, &cfg.bootstrap_bucket(), "config/init-cfg.txt").await {
        if let Some(k) = text.lines().find_map(|l| l.strip_prefix("vm-auth-key=")).map(str::trim).filter(|k| !k.is_empty()) {
            let key = Secret::new(k);
            match super::prepare::vm_auth_key_problem(engine, &key).await? {
                None => return Ok(Some(key)),
                Some(problem) => tracing::warn!("the vm-auth-key in the bootstrap bucket cannot be used ({problem}); generating a new one"),
            }
        }
    }
    super::vm_auth_key::generate(&engine.client, cfg.firewalls.vm_auth_key_lifetime_hours).await.map(Some).map_err(Failure::failed)
}

fn write_context(
    path: &Path,
    cfg: &Config,
    loaded: &LoadedConfig,
    c: &crate::config::Cluster,
    access: &crate::kube::ClusterAccess,
    _info: &eks::ClusterInfo,
) -> Result<(), String> {
    use base64::Engine as _;
    let exe = std::env::current_exe().map_err(|e| format!("locating the pano-eks binary: {e}"))?;
    let config = std::fs::canonicalize(&loaded.path).unwrap_or_else(|_| loaded.path.clone());
    let ctx = context_name(cfg, &c.name);
    kubeconfig::merge_into(
        path,
        &kubeconfig::Entry {
            context: &ctx,
            server: &access.endpoint,
            ca_data: access.ca_pem.as_ref().map(|p| base64::engine::general_purpose::STANDARD.encode(p)),
            command: exe.display().to_string(),
            args: vec!["--config".into(), config.display().to_string(), "token".into(), "--cluster".into(), c.name.clone()],
        },
    )
}

/// `up --dry-run`: pre-flight done; shows what each stack would do (change sets, deleted again)
/// and the Panorama plan for what exists now. Creates nothing.
async fn dry_run(
    aws: &Aws,
    cfg: &Config,
    rendered: &render::Rendered,
    runner: &Runner<'_, AwsCfn<'_>>,
    engine: &Engine,
    progress: &Progress,
) -> CmdResult {
    let wiring = wiring_now(aws, rendered, runner).await?;
    for s in &rendered.stacks {
        let line = stack_preview(s, runner, &wiring, progress).await?;
        println!("stack {}: {line}", s.stack_name);
    }
    let mut facts = Facts::default();
    for c in &cfg.clusters {
        let subnets = discovery::cluster_subnets(aws, &c.name).await.unwrap_or_default();
        facts.clusters.push(ClusterFacts { name: c.name.clone(), subnets, services: Vec::new() });
    }
    facts.firewalls = discovery::firewalls(aws, &cfg.firewall_asg()).await.map(|(f, _)| f).unwrap_or_default();
    let (plan, _) = engine.plan(&facts).await.map_err(|e| Failure::failed(e.to_string()))?;
    let (c, u, d) = plan.counts();
    println!(
        "panorama: {c} to create, {u} to update, {d} to delete (cluster subnets and firewalls only; Services are read after the clusters exist)"
    );
    println!("dry run: nothing was changed");
    Ok(())
}

/// The outputs, resources and cluster fields that exist now, to resolve stack parameters.
async fn wiring_now(aws: &Aws, rendered: &render::Rendered, runner: &Runner<'_, AwsCfn<'_>>) -> Result<stacks::Wiring, Failure> {
    let mut wiring = stacks::Wiring::default();
    for s in &rendered.stacks {
        let Some(st) = runner.api.describe(&s.stack_name).await.map_err(|e| Failure::failed(e.to_string()))? else { continue };
        for (k, v) in st.outputs {
            wiring.outputs.insert((s.stack_name.clone(), k), v);
        }
        for r in runner.api.resources(&s.stack_name).await.unwrap_or_default() {
            if let Some(p) = r.physical_id {
                wiring.resources.insert((s.stack_name.clone(), r.logical_id), p);
            }
        }
        if let Some(c) = &s.cluster {
            if let Ok(Some(info)) = eks::describe_cluster(&aws.eks, c).await {
                for (k, v) in eks::wiring_fields(&info) {
                    wiring.eks.insert((c.clone(), k), v);
                }
            }
        }
    }
    Ok(wiring)
}

/// What `up` would do to one stack: create, recreate, nothing, or the changes of a change set
/// (deleted again).
async fn stack_preview(
    s: &StackSpec,
    runner: &Runner<'_, AwsCfn<'_>>,
    wiring: &stacks::Wiring,
    progress: &Progress,
) -> Result<String, Failure> {
    let existing = runner.api.describe(&s.stack_name).await.map_err(|e| Failure::failed(e.to_string()))?;
    let parameters = match (&existing, stacks::resolve_parameters(s, wiring)) {
        (None, _) => return Ok("would be created".to_string()),
        (Some(st), _) if stacks::decide(Some(st)) == stacks::Action::Recreate => {
            return Ok(format!("is {}: would be deleted and created again", st.status));
        }
        (Some(_), Err(missing)) => return Ok(format!("exists; its update cannot be previewed yet (unknown: {})", missing.join(", "))),
        (Some(_), Ok(parameters)) => parameters,
    };
    let st = existing.expect("matched Some above");
    let req = stacks::DeployRequest {
        name: s.stack_name.clone(),
        template: TemplateSource::Body(s.template_body.clone()),
        body: s.template_body.clone(),
        parameters,
        tags: s.tags.clone(),
    };
    let body = runner.api.template(&s.stack_name).await.map_err(|e| Failure::failed(e.to_string()))?;
    if stacks::unchanged(&st, body.as_deref(), &req) {
        return Ok("up to date".to_string());
    }
    let mut task = progress.task(&s.stack_name);
    Ok(match runner.change_set(&req, stacks::ChangeSetKind::Update, &mut task).await {
        Ok(Some(cs)) => {
            let _ = runner.api.delete_change_set(&cs.id).await;
            let detail: Vec<String> = cs
                .changes
                .iter()
                .map(|c| {
                    let replaced = if c.replacement.as_deref() == Some("True") { " REPLACED" } else { "" };
                    format!("{} {} ({}){replaced}", c.action, c.logical_id, c.resource_type)
                })
                .collect();
            format!("would be updated: {}\n    {}", stacks::summarize(&cs.changes), detail.join("\n    "))
        }
        Ok(None) => "up to date".to_string(),
        Err(e) => format!("change set failed: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests_support::valid_config;
    use crate::render::cfn::render_stacks;

    #[test]
    fn step_list_names_every_stack_in_order_with_its_dependency() {
        let cfg = valid_config();
        let specs = render_stacks(&cfg, false).unwrap();
        let lines = step_list(&cfg, &specs, &UpOptions::default()).join("\n");
        let fw = lines.find("demo-firewall [").unwrap();
        let cl = lines.find(&format!("{} [", cfg.cluster_stack(&cfg.clusters[0].name))).unwrap();
        let nodes = lines.find(&format!("{} [", cfg.node_stack(&cfg.clusters[0].name))).unwrap();
        assert!(fw < cl && cl < nodes, "{lines}");
        assert!(lines.contains("starts once the VPC and IGW of demo-firewall exist"), "{lines}");
        assert!(lines.contains("first sync --once"));
    }
}
