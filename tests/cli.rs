//! Command-line conventions: `--version` names the git revision it was built from, and logs carry
//! no colour escapes when stderr is not a terminal (a pod's log, CI) or NO_COLOR is set.

mod support;

use support::{PASSWORD, Sim};

fn cli(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_pano-eks"))
        .args(args)
        .env("PANO_EKS_TEST_PANORAMA_PASSWORD", PASSWORD)
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

#[test]
fn version_names_the_git_revision() {
    let head = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("git is installed (the checkout is a git repository)");
    let head = String::from_utf8(head.stdout).unwrap().trim().to_string();
    assert_eq!(head.len(), 12, "git rev-parse HEAD in the checkout");
    let out = cli(&["--version"], &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert_eq!(stdout.trim(), format!("pano-eks {} (git {head})", env!("CARGO_PKG_VERSION")));
}

#[test]
fn logs_to_a_pipe_have_no_colour_escapes() {
    let sim = Sim::start(&["--job-step-ms", "0"]);
    let facts = sim.dir.path().join("facts.json");
    std::fs::write(&facts, support::facts_json(1, "")).unwrap();
    let cfg = support::path_str(&sim.write_config(""));
    for env in [&[][..], &[("NO_COLOR", "1")][..]] {
        let out = cli(&["-vv", "--config", &cfg, "sync", "--once", "--facts", &support::path_str(&facts)], env);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(stderr.contains(" INFO ") || stderr.contains(" DEBUG "), "-vv logs something: {stderr}");
        assert!(!stderr.contains('\u{1b}'), "no escape codes with {env:?}: {stderr:?}");
        assert!(!stderr.contains(PASSWORD));
    }
}
