//! End to end: `pano-eks render` (greenfield and `--existing-vpc`) writes CloudFormation templates
//! that cfn-lint accepts with 0 errors. The full variant sweep (AZs × firewalls × ELB type ×
//! cluster subnets) is the unit test `render::cfn::tests::cfn_lint_sweep`; this one checks what
//! the binary actually writes.
//!
//! cfn-lint comes from the test venv: `$PANO_EKS_VENV/bin/cfn-lint`, else
//! `~/.cache/pano-eks/venv/bin/cfn-lint`. Missing: skipped, or a failure with
//! `PANO_EKS_REQUIRE_TOOLS=1` (as `scripts/test` sets).

use std::path::{Path, PathBuf};
use std::process::Command;

const CONFIG: &str = r#"
name = "demo"
region = "us-west-2"

[network]
vpc_cidr = "192.168.0.0/16"
azs = ["us-west-2a", "us-west-2b", "us-west-2c"]
mgmt_subnets = ["192.168.0.0/24", "192.168.10.0/24", "192.168.20.0/24"]
untrust_subnets = ["192.168.1.0/24", "192.168.11.0/24", "192.168.21.0/24"]
trust_subnets = ["192.168.2.0/24", "192.168.12.0/24", "192.168.22.0/24"]
natgw_subnets = ["192.168.100.0/24", "192.168.101.0/24", "192.168.102.0/24"]
existing_vpc_id = "vpc-0123456789abcdef0"
existing_igw_id = "igw-0123456789abcdef0"

[firewalls]
count = 2
ami = "ami-0123456789abcdef0"
key_name = "ops"
ssh_from = "203.0.113.7/32"
authcodes_file = "authcodes"

[panorama]
url = "https://panorama.example.com"
api_key_env = "PANORAMA_API_KEY"
username = "admin"
device_group = "eks-dg"
template = "eks-template"
template_stack = "eks-stack"

[[clusters]]
name = "shop"
subnets = ["192.168.110.0/24", "192.168.111.0/24"]

[[clusters]]
name = "big"
subnets = ["192.168.120.0/24", "192.168.121.0/24", "192.168.122.0/24", "192.168.123.0/24"]
nodes = { ami = "ami-0fedcba9876543210" }
"#;

fn cfn_lint() -> Option<PathBuf> {
    let venv = std::env::var_os("PANO_EKS_VENV")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/pano-eks/venv")))?;
    let bin = venv.join("bin/cfn-lint");
    if bin.is_file() {
        return Some(bin);
    }
    if std::env::var("PANO_EKS_REQUIRE_TOOLS").as_deref() == Ok("1") {
        panic!("cfn-lint not found at {} and PANO_EKS_REQUIRE_TOOLS=1 (run scripts/setup-env)", bin.display());
    }
    eprintln!("SKIPPED: cfn-lint not found at {}; run scripts/setup-env or set PANO_EKS_VENV", bin.display());
    None
}

/// Runs `pano-eks render` and returns the CloudFormation templates it wrote.
fn render(dir: &Path, out: &str, existing_vpc: bool) -> Vec<PathBuf> {
    render_config(dir, "pano-eks.toml", out, existing_vpc)
}

fn render_config(dir: &Path, config: &str, out: &str, existing_vpc: bool) -> Vec<PathBuf> {
    let out = dir.join(out);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pano-eks"));
    cmd.arg("--config").arg(dir.join(config)).arg("render").arg("--out").arg(&out);
    if existing_vpc {
        cmd.arg("--existing-vpc");
    }
    let res = cmd.env_remove("PANO_EKS_CONFIG").output().expect("running pano-eks");
    assert!(
        res.status.success(),
        "pano-eks render failed ({}):\n{}{}",
        res.status,
        String::from_utf8_lossy(&res.stdout),
        String::from_utf8_lossy(&res.stderr)
    );
    let mut files: Vec<PathBuf> = std::fs::read_dir(out.join("cfn"))
        .expect("render wrote cfn/")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn rendered_templates_pass_cfn_lint() {
    let Some(lint) = cfn_lint() else { return };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pano-eks.toml"), CONFIG).unwrap();
    std::fs::write(dir.path().join("authcodes"), "I1234567\n").unwrap();

    let green = render(dir.path(), "green", false);
    let brown = render(dir.path(), "brown", true);
    // In-cluster sync in `shop` with the ALB front and egress: its access stack (IAM role for Pod
    // Identity with the widest policy, the association, the agent add-on) as well.
    let in_cluster = CONFIG.replacen("name = \"shop\"\n", "name = \"shop\"\nin_cluster = true\n", 1).replacen(
        "existing_igw_id",
        "outbound_via_firewall = true\nexisting_igw_id",
        1,
    ) + "\n[sync]\nmanage_alb = true\nmetrics_addr = \"0.0.0.0:9090\"\n";
    std::fs::write(dir.path().join("in-cluster.toml"), in_cluster).unwrap();
    let access = render_config(dir.path(), "in-cluster.toml", "incluster", false);
    let names = |v: &[PathBuf]| v.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect::<Vec<_>>();
    let want = ["eks-cluster-big.yaml", "eks-cluster-shop.yaml", "eks-node-big.yaml", "eks-node-shop.yaml"];
    let with = |fw: &str| {
        let mut v: Vec<String> = want.iter().map(|s| s.to_string()).collect();
        v.push(fw.to_string());
        v.sort();
        v
    };
    assert_eq!(names(&green), with("firewall-new-vpc.yaml"));
    assert_eq!(names(&brown), with("firewall-existing-vpc.yaml"));
    let mut want_access = with("firewall-new-vpc.yaml");
    want_access.push("sync-access-shop.yaml".into());
    want_access.sort();
    assert_eq!(names(&access), want_access);
    let access_file: Vec<PathBuf> = access.into_iter().filter(|p| p.ends_with("sync-access-shop.yaml")).collect();

    let files: Vec<&PathBuf> = green.iter().chain(&brown).chain(&access_file).collect();
    // With pano-eks's own rules (tests/cfn-rules: DependsOn, health checks, security groups, IMDS…).
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cfn-rules");
    let out = Command::new(&lint)
        .args(["-f", "json", "--regions", "us-west-2", "--append-rules"])
        .arg(&rules)
        .arg("--")
        .args(&files)
        .output()
        .expect("running cfn-lint");
    let findings: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("cfn-lint output is not JSON ({e}); status {}; stderr:\n{}", out.status, String::from_utf8_lossy(&out.stderr))
    });
    let mut errors = Vec::new();
    for f in &findings {
        let line = format!(
            "{}:{}: {} {} {}",
            f["Filename"].as_str().unwrap_or_default(),
            f["Location"]["Start"]["LineNumber"],
            f["Level"].as_str().unwrap_or_default(),
            f["Rule"]["Id"].as_str().unwrap_or_default(),
            f["Message"].as_str().unwrap_or_default()
        );
        eprintln!("{line}");
        if f["Level"] == "Error" {
            errors.push(line);
        }
    }
    eprintln!("cfn-lint: {} files, {} findings, {} errors", files.len(), findings.len(), errors.len());
    assert!(errors.is_empty(), "cfn-lint errors:\n{}", errors.join("\n"));
}
