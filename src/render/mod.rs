//! Rendering, offline and deterministic (same input → same bytes), of every artifact `up`
//! deploys: CloudFormation templates with their parameters, the bootstrap package, the lambda
//! zip and the Kubernetes manifests (the pan-user identity, the in-cluster kustomize base and,
//! for a cluster with `in_cluster = true`, its overlay). `up` deploys exactly what `render`
//! writes, except the overlay, which the user applies (`kubectl apply -k`).

pub mod bootstrap;
pub mod cfn;
pub mod in_cluster;
pub mod lambda_zip;
pub mod manifests;

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::secret::Secret;

pub use bootstrap::BootstrapObject;
pub use cfn::StackSpec;
pub use lambda_zip::LambdaZip;

/// Everything `up` deploys.
#[derive(Debug)]
pub struct Rendered {
    pub stacks: Vec<StackSpec>,
    pub bootstrap: Vec<BootstrapObject>,
    pub lambda: LambdaZip,
    /// The in-cluster overlay; set by [`Rendered::with_in_cluster`], which needs the config file itself.
    pub in_cluster: Option<in_cluster::Overlay>,
}

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error(transparent)]
    Cfn(#[from] cfn::CfnError),
    #[error("bootstrap package: {0}")]
    Bootstrap(#[from] bootstrap::BootstrapError),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{0} is not empty and was not written by `pano-eks render`; choose another --out folder")]
    ForeignFolder(PathBuf),
    #[error("the in-cluster overlay for cluster {cluster}: {problems}")]
    InCluster { cluster: String, problems: String },
    #[error("{template}: {message}")]
    Template { template: String, message: String },
}

pub struct RenderInputs<'a> {
    pub existing_vpc: bool,
    pub vm_auth_key: Option<&'a Secret>,
    pub authcodes: &'a Secret,
}

pub fn render(cfg: &Config, inputs: &RenderInputs) -> Result<Rendered, RenderError> {
    let stacks = cfn::render_stacks(cfg, inputs.existing_vpc)?;
    let bootstrap = bootstrap::package(cfg, &bootstrap::BootstrapInputs { vm_auth_key: inputs.vm_auth_key, authcodes: inputs.authcodes })?;
    Ok(Rendered { stacks, bootstrap, lambda: lambda_zip::build(), in_cluster: None })
}

impl Rendered {
    /// Adds the overlay of the cluster with `in_cluster = true` (none without one).
    pub fn with_in_cluster(mut self, loaded: &crate::config::LoadedConfig) -> Result<Self, RenderError> {
        self.in_cluster = in_cluster::overlay(loaded)?;
        Ok(self)
    }
}

/// Marks a folder as ours, so a re-render may replace what a previous one wrote.
const MARKER: &str = ".pano-eks-render";
/// The entries `write_to` owns inside the output folder.
const OWNED: &[&str] = &["cfn", "bootstrap", "lambda", "manifests", "in-cluster", "stacks.json", MARKER];

impl Rendered {
    /// Writes the artifacts under `dir`: `cfn/`, `stacks.json`, `bootstrap/` (the S3 layout),
    /// `lambda/`, `manifests/` (identity/, in-cluster/), `in-cluster/<cluster>/` (the overlay).
    /// Files holding secrets are created with mode 0600.
    /// Returns the files written, relative to `dir`, sorted.
    pub fn write_to(&self, dir: &Path) -> Result<Vec<PathBuf>, RenderError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| RenderError::Io { path, source }
        };
        if dir.exists() {
            let entries: Vec<_> = std::fs::read_dir(dir).map_err(io(dir))?.collect::<Result<_, _>>().map_err(io(dir))?;
            if !entries.is_empty() && !dir.join(MARKER).exists() {
                return Err(RenderError::ForeignFolder(dir.to_path_buf()));
            }
            // Only what an earlier render wrote is replaced; anything else the user put there stays.
            for name in OWNED {
                let p = dir.join(name);
                if p.is_dir() {
                    std::fs::remove_dir_all(&p).map_err(io(&p))?;
                } else if p.exists() {
                    std::fs::remove_file(&p).map_err(io(&p))?;
                }
            }
        }
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let mut written = Vec::new();
        let mut put = |rel: PathBuf, body: &[u8], secret: bool| -> Result<(), RenderError> {
            let path = dir.join(&rel);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(io(parent))?;
            }
            write_file(&path, body, secret).map_err(io(&path))?;
            written.push(rel);
            Ok(())
        };
        put(MARKER.into(), b"written by pano-eks render; its subfolders are replaced on the next render\n", false)?;
        for s in &self.stacks {
            put(Path::new("cfn").join(&s.template_file), s.template_body.as_bytes(), false)?;
        }
        let mut stacks_json = serde_json::to_string_pretty(&self.stacks).expect("stack specs serialize");
        stacks_json.push('\n');
        put("stacks.json".into(), stacks_json.as_bytes(), false)?;
        for o in &self.bootstrap {
            let rel = Path::new("bootstrap").join(o.key.trim_end_matches('/'));
            if o.is_folder() {
                let path = dir.join(&rel);
                std::fs::create_dir_all(&path).map_err(io(&path))?;
            } else {
                put(rel, o.body(), o.secret)?;
            }
        }
        put(Path::new("lambda").join(&self.lambda.key), &self.lambda.bytes, false)?;
        for (rel, text) in in_cluster::base_files() {
            put(rel, text.as_bytes(), false)?;
        }
        for (rel, body) in self.in_cluster.iter().flat_map(|o| &o.files) {
            put(rel.clone(), body, false)?;
        }
        written.sort();
        Ok(written)
    }
}

fn write_file(path: &Path, body: &[u8], secret: bool) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(if secret { 0o600 } else { 0o644 });
    }
    let mut f = opts.open(path)?;
    f.write_all(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests_support::valid_config;

    fn rendered() -> Rendered {
        let cfg = valid_config();
        let codes = Secret::new("I1234567\n");
        let key = Secret::new("112233");
        render(&cfg, &RenderInputs { existing_vpc: false, vm_auth_key: Some(&key), authcodes: &codes }).unwrap()
    }

    fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    out.push((p.strip_prefix(dir).unwrap().to_path_buf(), Vec::new()));
                    stack.push(p);
                } else {
                    out.push((p.strip_prefix(dir).unwrap().to_path_buf(), std::fs::read(&p).unwrap()));
                }
            }
        }
        out.sort();
        out
    }

    #[test]
    fn same_input_same_bytes() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        rendered().write_to(a.path()).unwrap();
        rendered().write_to(b.path()).unwrap();
        assert_eq!(snapshot(a.path()), snapshot(b.path()));
    }

    #[test]
    fn layout_folders_and_secret_modes() {
        let d = tempfile::tempdir().unwrap();
        let files = rendered().write_to(d.path()).unwrap();
        for want in [
            "bootstrap/config/init-cfg.txt",
            "bootstrap/license/authcodes",
            "stacks.json",
            "manifests/identity/01-pan-user-serviceaccount.yaml",
        ] {
            assert!(files.contains(&PathBuf::from(want)), "{want} in {files:?}");
        }
        for folder in ["config", "content", "license", "plugins", "software"] {
            assert!(d.path().join("bootstrap").join(folder).is_dir(), "{folder}/");
        }
        assert!(files.iter().any(|f| f.starts_with("lambda") && f.to_string_lossy().ends_with(".zip")));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &str| std::fs::metadata(d.path().join(p)).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode("bootstrap/license/authcodes"), 0o600);
            assert_eq!(mode("bootstrap/config/init-cfg.txt"), 0o600, "holds the vm-auth-key");
            assert_eq!(mode("stacks.json"), 0o644);
        }
    }

    #[test]
    fn rerender_replaces_only_its_own_files_and_refuses_foreign_folders() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("notes.txt"), "mine").unwrap();
        let err = rendered().write_to(d.path()).unwrap_err();
        assert!(matches!(err, RenderError::ForeignFolder(_)), "{err}");
        assert_eq!(std::fs::read_to_string(d.path().join("notes.txt")).unwrap(), "mine", "nothing is lost");

        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("out");
        rendered().write_to(&out).unwrap();
        std::fs::create_dir_all(out.join("cfn")).unwrap();
        std::fs::write(out.join("cfn/stale.yaml"), "old").unwrap();
        std::fs::write(out.join("README.user"), "keep").unwrap();
        rendered().write_to(&out).unwrap();
        assert!(!out.join("cfn/stale.yaml").exists(), "stale render output is replaced");
        assert_eq!(std::fs::read_to_string(out.join("README.user")).unwrap(), "keep");
    }
}
