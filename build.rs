//! Embeds the firewall lambda's Python sources (every top-level `*.py` of `bootstrap/lambda/`,
//! sorted) so the binary can build the lambda zip anywhere, without the repository; and the git
//! revision `--version` prints (PANO_EKS_GIT_REV, else `git rev-parse`, else "unknown"). Only this
//! crate reruns when HEAD moves: the revision is a rustc env of the main crate, nothing else reads it.

use std::fmt::Write;
use std::path::Path;

fn main() {
    embed_lambda();
    embed_git_revision();
}

fn git(args: &[&str]) -> Option<String> {
    let out = std::process::Command::new("git").args(args).current_dir(std::env::var("CARGO_MANIFEST_DIR").ok()?).output().ok()?;
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !s.is_empty()).then_some(s)
}

/// A build from a tarball (no .git) sets PANO_EKS_GIT_REV itself, e.g. the Containerfile's build arg.
fn embed_git_revision() {
    println!("cargo:rerun-if-env-changed=PANO_EKS_GIT_REV");
    let rev = std::env::var("PANO_EKS_GIT_REV").ok().filter(|r| !r.is_empty()).or_else(|| {
        // Rerun when HEAD or the branch it names moves (paths resolved for worktrees and packed refs).
        for path in ["HEAD", "packed-refs"].into_iter().map(String::from).chain(git(&["symbolic-ref", "-q", "HEAD"])) {
            // Only files that exist: a missing one would rerun this script (and rebuild the crate) every time.
            if let Some(p) = git(&["rev-parse", "--path-format=absolute", "--git-path", &path]).filter(|p| Path::new(p).exists()) {
                println!("cargo:rerun-if-changed={p}");
            }
        }
        git(&["rev-parse", "--short=12", "HEAD"])
    });
    println!("cargo:rustc-env=PANO_EKS_GIT_REV={}", rev.as_deref().unwrap_or("unknown"));
}

fn embed_lambda() {
    // The manifest dir of *this* build, read at run time: `env!` would bake in the checkout the
    // script was compiled in, and cargo reuses the compiled script across checkouts that share a
    // target folder (a CI clone, then the working tree).
    let dir = Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR")).join("bootstrap/lambda");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("bootstrap/lambda exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "py"))
        .collect();
    files.sort();
    let mut out = String::from(
        "/// (file name, contents) of the lambda's Python sources, sorted by name.\npub const LAMBDA_FILES: &[(&str, &[u8])] = &[\n",
    );
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
        let name = f.file_name().unwrap().to_str().unwrap();
        writeln!(out, "    ({name:?}, include_bytes!({:?})),", f.display().to_string()).unwrap();
    }
    out.push_str("];\n");
    let dest = Path::new(&std::env::var("OUT_DIR").unwrap()).join("lambda_files.rs");
    std::fs::write(dest, out).unwrap();
}
