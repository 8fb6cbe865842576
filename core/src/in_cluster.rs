//! ROOM: `sync --watch` inside a cluster: what the kustomize overlay `pano-eks render` writes for
//! the cluster with `in_cluster = true` says on top of the base (manifests/in-cluster/), and which
//! settings cannot work from a pod. Inputs are the config's values as written; the output is
//! what the overlay template (manifests/in-cluster-overlay/) needs, or every problem at once,
//! each naming its key.

/// The config key a problem is about, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// The Secret the overlay reads the Panorama credentials from when `sync.panorama_secret` is unset.
pub const DEFAULT_SECRET: &str = "pano-eks-panorama";
/// The image name in the base Deployment; the overlay's `images:` entry replaces it.
pub const BASE_IMAGE: &str = "pano-eks";
/// Where the ConfigMap is mounted in the pod (the base's volumeMount): the config folder.
pub const CONFIG_DIR: &str = "/etc/pano-eks";

/// What the overlay is rendered from (the config's values, unresolved).
#[derive(Debug, Clone, Default)]
pub struct Inputs<'a> {
    /// The cluster with `in_cluster = true`.
    pub cluster: &'a str,
    pub panorama_url: &'a str,
    /// `panorama.ca_cert` as written (relative to the config file's folder, or absolute).
    pub panorama_ca_cert: Option<&'a str>,
    pub metrics_addr: Option<&'a str>,
    /// `panorama.api_key_env` and/or `panorama.password_env`: the variables sync reads.
    pub credential_envs: Vec<&'a str>,
    /// `sync.panorama_secret`.
    pub secret: Option<&'a str>,
    /// `sync.image`; `default_image` when unset.
    pub image: Option<&'a str>,
    /// `pano-eks:<version of this binary>`.
    pub default_image: &'a str,
    /// Other clusters' keys that name a file on this machine (`clusters[i].kubeconfig`, …):
    /// (cluster, key). A pod has none of them.
    pub local_files: Vec<(&'a str, &'a str)>,
}

/// An image reference split the way kustomize's `images:` entry takes it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Image {
    pub name: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

/// The overlay's content on top of the base.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Overlay {
    pub cluster: String,
    pub secret: String,
    /// Environment variables set from the Secret; each is also the Secret's key.
    pub secret_keys: Vec<String>,
    pub image: Image,
    /// The container's metrics port (probes, PodMonitor, the NetworkPolicy's ingress rule).
    pub metrics_port: u16,
    /// Panorama's port when it is not 443 (the base allows 443 out): one more egress rule.
    pub panorama_port: Option<u16>,
    /// Files beside pano-eks.toml that go into the ConfigMap: the Panorama CA.
    pub extra_files: Vec<String>,
    /// Warnings: settings that will not work from the pod but do not stop the overlay.
    pub notes: Vec<String>,
}

/// The overlay for `inputs`, or every problem with it.
pub fn overlay(inputs: &Inputs) -> Result<Overlay, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut problem = |key: &str, message: String| problems.push(Problem { key: key.to_owned(), message });

    let secret = inputs.secret.unwrap_or(DEFAULT_SECRET);
    if let Err(e) = check_secret_name(secret) {
        problem("sync.panorama_secret", e);
    }
    let image = match parse_image(inputs.image.unwrap_or(inputs.default_image)) {
        Ok(i) => Some(i),
        Err(e) => {
            problem("sync.image", e);
            None
        }
    };
    let metrics_port = match inputs.metrics_addr.map(metrics_port) {
        Some(Ok(p)) => Some(p),
        Some(Err(e)) => {
            problem("sync.metrics_addr", e);
            None
        }
        None => {
            problem(
                "sync.metrics_addr",
                "unset: the in-cluster pods serve their probes and /metrics there; set e.g. \"0.0.0.0:9090\"".to_owned(),
            );
            None
        }
    };
    let panorama_port = match url_port(inputs.panorama_url) {
        Ok(443) => None,
        Ok(p) => Some(p),
        Err(e) => {
            problem("panorama.url", e);
            None
        }
    };
    let mut extra_files = Vec::new();
    if let Some(ca) = inputs.panorama_ca_cert {
        match bare_file_name(ca) {
            Some(name) if name != "pano-eks.toml" => extra_files.push(name.to_owned()),
            _ => problem(
                "panorama.ca_cert",
                format!(
                    "`{ca}`: in the pod the config folder is {CONFIG_DIR}, holding pano-eks.toml and the files beside it; \
                     name a file in the config's own folder (e.g. \"panorama-ca.pem\")"
                ),
            ),
        }
    }
    if inputs.credential_envs.is_empty() {
        problem("panorama.api_key_env", "unset (and no password_env): the pod has no Panorama credentials to read".to_owned());
    }
    let mut secret_keys: Vec<String> = inputs.credential_envs.iter().map(|s| s.to_string()).collect();
    secret_keys.sort();
    secret_keys.dedup();
    let notes = inputs
        .local_files
        .iter()
        .map(|(cluster, key)| {
            format!("cluster {cluster}: `{key}` names a file on this machine, which the in-cluster pod does not have; it reaches {cluster} only through EKS (DescribeCluster + its IAM role)")
        })
        .collect();
    match (problems.is_empty(), image, metrics_port) {
        (true, Some(image), Some(metrics_port)) => Ok(Overlay {
            cluster: inputs.cluster.to_owned(),
            secret: secret.to_owned(),
            secret_keys,
            image,
            metrics_port,
            panorama_port,
            extra_files,
            notes,
        }),
        _ => Err(problems),
    }
}

/// A Secret's name is a DNS subdomain (RFC 1123): ≤ 253 lowercase alphanumerics, `-` and `.`,
/// starting and ending alphanumeric
/// (https://kubernetes.io/docs/concepts/overview/working-with-objects/names/#dns-subdomain-names).
pub fn check_secret_name(name: &str) -> Result<(), String> {
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.';
    let alnum = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if name.is_empty() || name.len() > 253 || !name.chars().all(ok_char) || !alnum(name.chars().next()) || !alnum(name.chars().last()) {
        return Err(format!(
            "`{name}` is not a Kubernetes Secret name: at most 253 lowercase letters, digits, '-' and '.', starting and ending with a letter or digit"
        ));
    }
    Ok(())
}

/// Splits `[registry/]repository[:tag][@algorithm:hex]` (the OCI distribution reference form).
pub fn parse_image(reference: &str) -> Result<Image, String> {
    let bad = |why: &str| Err(format!("`{reference}` is not an image reference ({why}); e.g. \"registry.example.com/pano-eks:0.1.0\""));
    if reference.is_empty() || reference.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad("empty or with spaces");
    }
    let (rest, digest) = match reference.split_once('@') {
        Some((r, d)) => {
            let valid = d.split_once(':').is_some_and(|(alg, hex)| {
                !alg.is_empty()
                    && alg.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
                    && hex.len() >= 32
                    && hex.chars().all(|c| c.is_ascii_hexdigit())
            });
            if !valid {
                return bad("the digest is not `sha256:<hex>`");
            }
            (r, Some(d.to_owned()))
        }
        None => (reference, None),
    };
    let slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match rest[slash..].rfind(':') {
        Some(i) => (&rest[..slash + i], Some(&rest[slash + i + 1..])),
        None => (rest, None),
    };
    if let Some(tag) = tag {
        let first_ok = tag.chars().next().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        if !first_ok || tag.len() > 128 || !tag.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)) {
            return bad("the tag is not [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}");
        }
    }
    let repository = &name[name.find('/').filter(|&i| is_registry(&name[..i])).map_or(0, |i| i + 1)..];
    if name.is_empty() || name.ends_with('/') || repository.chars().any(|c| c.is_ascii_uppercase()) {
        return bad("the repository must be lowercase");
    }
    Ok(Image { name: name.to_owned(), tag: tag.map(str::to_owned), digest })
}

/// The first path part is a registry host when it has a `.` or `:` or is `localhost`.
fn is_registry(part: &str) -> bool {
    part.contains('.') || part.contains(':') || part == "localhost"
}

/// The port of a `host:port` that every interface of the pod listens on.
fn metrics_port(addr: &str) -> Result<u16, String> {
    let (host, port) = addr.rsplit_once(':').ok_or_else(|| format!("`{addr}` has no port"))?;
    let port: u16 = port.parse().ok().filter(|p| *p != 0).ok_or_else(|| format!("`{addr}`: the port is not 1-65535"))?;
    match host {
        "0.0.0.0" | "[::]" => Ok(port),
        _ => Err(format!(
            "`{addr}`: in the cluster the kubelet's probes and Prometheus reach the pod on its own address; listen on all of them (\"0.0.0.0:{port}\")"
        )),
    }
}

/// The port of an `https://host[:port][/…]` URL (443 without one).
fn url_port(url: &str) -> Result<u16, String> {
    let rest = url.strip_prefix("https://").ok_or_else(|| format!("`{url}` is not an https:// URL"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let after_host = match authority.strip_prefix('[') {
        Some(v6) => v6.split_once(']').map(|(_, after)| after).ok_or_else(|| format!("`{url}`: unclosed '['"))?,
        None => authority.find(':').map_or("", |i| &authority[i..]),
    };
    match after_host.strip_prefix(':') {
        None if after_host.is_empty() => Ok(443),
        Some(p) => p.parse().ok().filter(|p| *p != 0).ok_or_else(|| format!("`{url}`: the port is not 1-65535")),
        None => Err(format!("`{url}`: unexpected `{after_host}` after the host")),
    }
}

/// `name` when the path is a plain file name (no folder, not absolute).
fn bare_file_name(path: &str) -> Option<&str> {
    let p = path.strip_prefix("./").unwrap_or(path);
    (!p.is_empty() && !p.contains('/') && !p.contains('\\') && p != "." && p != "..").then_some(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs() -> Inputs<'static> {
        Inputs {
            cluster: "shop",
            panorama_url: "https://10.0.0.5",
            panorama_ca_cert: None,
            metrics_addr: Some("0.0.0.0:9090"),
            credential_envs: vec!["PANORAMA_API_KEY"],
            secret: None,
            image: None,
            default_image: "pano-eks:0.1.0",
            local_files: vec![],
        }
    }

    fn keys(r: Result<Overlay, Vec<Problem>>) -> Vec<String> {
        r.unwrap_err().into_iter().map(|p| p.key).collect()
    }

    #[test]
    fn defaults_give_the_base_image_the_default_secret_and_no_extra_rule() {
        let o = overlay(&inputs()).unwrap();
        assert_eq!(o.secret, DEFAULT_SECRET);
        assert_eq!(o.image, Image { name: "pano-eks".into(), tag: Some("0.1.0".into()), digest: None });
        assert_eq!((o.metrics_port, o.panorama_port), (9090, None));
        assert_eq!(o.secret_keys, ["PANORAMA_API_KEY"]);
        assert!(o.extra_files.is_empty() && o.notes.is_empty());
    }

    #[test]
    fn settings_flow_into_the_overlay() {
        let i = Inputs {
            panorama_url: "https://panorama.example.com:8443/",
            panorama_ca_cert: Some("./panorama-ca.pem"),
            metrics_addr: Some("[::]:9300"),
            credential_envs: vec!["PAN_PASSWORD", "PAN_KEY", "PAN_KEY"],
            secret: Some("panorama.creds"),
            image: Some("registry.example.com:5000/team/pano-eks:0.2.0@sha256:0123456789abcdef0123456789abcdef"),
            local_files: vec![("edge", "clusters.kubeconfig")],
            ..inputs()
        };
        let o = overlay(&i).unwrap();
        assert_eq!(o.secret, "panorama.creds");
        assert_eq!(o.secret_keys, ["PAN_KEY", "PAN_PASSWORD"]);
        assert_eq!(o.image.name, "registry.example.com:5000/team/pano-eks");
        assert_eq!(o.image.tag.as_deref(), Some("0.2.0"));
        assert_eq!(o.image.digest.as_deref(), Some("sha256:0123456789abcdef0123456789abcdef"));
        assert_eq!((o.metrics_port, o.panorama_port), (9300, Some(8443)));
        assert_eq!(o.extra_files, ["panorama-ca.pem"]);
        assert_eq!(o.notes.len(), 1);
        assert!(o.notes[0].contains("clusters.kubeconfig") && o.notes[0].contains("edge"), "{:?}", o.notes);
    }

    #[test]
    fn image_references() {
        let table: &[(&str, Option<(&str, Option<&str>, Option<&str>)>)] = &[
            ("pano-eks", Some(("pano-eks", None, None))),
            ("localhost:5000/pano-eks:dev", Some(("localhost:5000/pano-eks", Some("dev"), None))),
            ("ghcr.io/org/pano-eks:1", Some(("ghcr.io/org/pano-eks", Some("1"), None))),
            ("ghcr.io/Org/pano-eks:1", None),
            ("Pano-eks:1", None),
            ("pano-eks:", None),
            ("pano-eks:1 2", None),
            ("pano-eks@sha256:xyz", None),
            ("", None),
            ("registry/", None),
        ];
        for (reference, want) in table {
            let got = parse_image(reference).ok().map(|i| (i.name, i.tag, i.digest));
            let want = want.map(|(n, t, d)| (n.to_string(), t.map(str::to_string), d.map(str::to_string)));
            assert_eq!(got, want, "{reference}");
        }
    }

    #[test]
    fn secret_names() {
        for ok in ["pano-eks-panorama", "a", "creds.v2"] {
            assert!(check_secret_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "Panorama", "-x", "x-", "a_b", &"a".repeat(254)] {
            assert!(check_secret_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn what_cannot_work_from_a_pod_is_refused_naming_each_key() {
        let i = Inputs {
            metrics_addr: Some("127.0.0.1:9090"),
            panorama_ca_cert: Some("certs/panorama.pem"),
            secret: Some("Bad_Name"),
            image: Some("Bad Image"),
            credential_envs: vec![],
            panorama_url: "http://panorama",
            ..inputs()
        };
        assert_eq!(
            keys(overlay(&i)),
            ["sync.panorama_secret", "sync.image", "sync.metrics_addr", "panorama.url", "panorama.ca_cert", "panorama.api_key_env"]
        );
        assert_eq!(keys(overlay(&Inputs { metrics_addr: None, ..inputs() })), ["sync.metrics_addr"]);
        assert_eq!(keys(overlay(&Inputs { panorama_ca_cert: Some("/etc/ssl/pan.pem"), ..inputs() })), ["panorama.ca_cert"]);
        assert_eq!(keys(overlay(&Inputs { metrics_addr: Some("0.0.0.0:0"), ..inputs() })), ["sync.metrics_addr"]);
    }

    #[test]
    fn panorama_url_ports() {
        for (url, want) in [
            ("https://p", Ok(443)),
            ("https://p:443/api", Ok(443)),
            ("https://10.1.2.3:8443", Ok(8443)),
            ("https://[fd00::1]:4443/", Ok(4443)),
            ("https://[fd00::1]", Ok(443)),
        ] {
            assert_eq!(url_port(url), want, "{url}");
        }
        for bad in ["http://p", "https://p:x", "https://p:0", "https://[fd00::1"] {
            assert!(url_port(bad).is_err(), "{bad}");
        }
    }
}
