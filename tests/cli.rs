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
    // The revision build.rs embedded (the same for this test and the binary, built together); it
    // must be a commit of this checkout at or before HEAD (HEAD may have moved since the build).
    let rev = env!("PANO_EKS_GIT_REV");
    assert!(rev.len() == 12 && rev.chars().all(|c| c.is_ascii_hexdigit()), "a short commit id: {rev:?}");
    let git = |args: &[&str]| {
        std::process::Command::new("git").args(args).current_dir(env!("CARGO_MANIFEST_DIR")).status().expect("git is installed")
    };
    assert!(git(&["merge-base", "--is-ancestor", rev, "HEAD"]).success(), "{rev} is HEAD or an ancestor of it");
    let out = cli(&["--version"], &[]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), format!("pano-eks {} (git {rev})", env!("CARGO_PKG_VERSION")));
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

#[test]
fn bash_completes_every_subcommand_of_the_real_cli() {
    let out = cli(&["completions", "bash"], &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pano-eks.bash");
    std::fs::write(&path, &out.stdout).unwrap();
    // bash loads the script and answers `pano-eks <TAB>` as it would on a terminal.
    let script = format!(
        "source {} && complete -p pano-eks >/dev/null && COMP_WORDS=(pano-eks '') COMP_CWORD=1 COMP_LINE='pano-eks ' COMP_POINT=9 \
         && _pano__eks pano-eks '' pano-eks && printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        support::path_str(&path)
    );
    let bash = std::process::Command::new("bash").args(["-c", &script]).output().expect("bash is installed");
    assert!(bash.status.success(), "{}", String::from_utf8_lossy(&bash.stderr));
    let offered: std::collections::BTreeSet<String> = String::from_utf8_lossy(&bash.stdout).lines().map(String::from).collect();
    let real: Vec<String> =
        <pano_eks::cli::Cli as clap::CommandFactory>::command().get_subcommands().map(|c| c.get_name().to_string()).collect();
    assert!(real.len() >= 12 && real.iter().any(|c| c == "completions"), "{real:?}");
    for sub in real.iter().map(String::as_str).chain(["--config", "--output", "--version"]) {
        assert!(offered.contains(sub), "bash offers {sub}: {offered:?}");
    }
    for shell in ["zsh", "fish"] {
        let out = cli(&["completions", shell], &[]);
        assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("pano-eks"), "{shell}");
    }
    let bad = cli(&["completions", "tcsh"], &[]);
    assert_eq!(bad.status.code(), Some(2), "an unknown shell is a usage error");
    assert!(String::from_utf8_lossy(&bad.stderr).contains("invalid value 'tcsh'"));
}

#[test]
fn the_man_page_renders_with_groff_and_lists_the_subcommands() {
    let out = cli(&["man"], &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let page = String::from_utf8(out.stdout).unwrap();
    assert!(page.contains(".TH pano-eks 1"), "{page}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pano-eks.1");
    std::fs::write(&path, &page).unwrap();
    // groff -man -Tutf8 -ww: warnings on; the text must render and name each subcommand.
    let groff = std::process::Command::new("groff")
        .args(["-man", "-Tascii", "-ww", &support::path_str(&path)])
        .output()
        .expect("groff is installed (man-db's dependency)");
    let text = String::from_utf8_lossy(&groff.stdout);
    assert!(groff.status.success(), "{}", String::from_utf8_lossy(&groff.stderr));
    for sub in ["pano-eks-sync(1)", "pano-eks-up(1)", "pano-eks-completions(1)"] {
        assert!(text.contains(sub), "man page names {sub}:\n{text}");
    }
}
