//! `pano-eks credentials` against kube-sim: applies the pan-user identity, exports the credential
//! JSON (the shape Panorama's plugin takes) and a kubeconfig, both 0600 and never printed; the
//! exported identity can list Services and is refused Secrets.

mod support;

use std::os::unix::fs::PermissionsExt;

use k8s_openapi::api::core::v1::{Secret, Service};
use kube::api::{Api, ListParams};
use support::aws_world::KubeSim;

#[test]
fn credentials_export_a_read_only_pan_user() {
    let k = KubeSim::start("shop");
    let sim = support::Sim::start(&[]);
    let dir = sim.dir.path();
    std::fs::write(dir.join("admin-token"), "kube-sim-admin\n").unwrap();
    std::fs::copy(&k.ca, dir.join("kube-ca.pem")).unwrap();
    let cfg = sim.write_config("");
    // Point the shop cluster at kube-sim (endpoint, CA and the admin's token file).
    let text = std::fs::read_to_string(&cfg).unwrap().replacen(
        "[[clusters]]\nname = \"shop\"\n",
        &format!("[[clusters]]\nname = \"shop\"\napi_server = \"{}\"\nca_cert = \"kube-ca.pem\"\ntoken_file = \"admin-token\"\n", k.url),
        1,
    );
    std::fs::write(&cfg, text).unwrap();
    let out = dir.join("creds");
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_pano-eks"))
        .args(["--config", &support::path_str(&cfg), "credentials", "--cluster", "shop", "--out", &support::path_str(&out)])
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&run.stdout), String::from_utf8_lossy(&run.stderr));
    assert!(run.status.success(), "{stderr}");

    let json_path = out.join("pan-user-credential.json");
    let kubeconfig = out.join("pan-user.kubeconfig");
    for p in [&json_path, &kubeconfig] {
        assert_eq!(std::fs::metadata(p).unwrap().permissions().mode() & 0o777, 0o600, "{}", p.display());
    }
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    assert_eq!((v["kind"].as_str(), v["type"].as_str()), (Some("Secret"), Some("kubernetes.io/service-account-token")));
    let token = v["data"]["token"].as_str().unwrap();
    assert!(!stdout.contains(token) && !stderr.contains(token), "the token is never printed");
    assert!(std::fs::read_to_string(&json_path).unwrap().len() <= 32 * 1024);

    // The exported kubeconfig is pan-user: Services yes, Secrets no.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let client = pano_eks::kube::access::client_from_kubeconfig(&kubeconfig, None).await.unwrap();
        Api::<Service>::all(client.clone()).list(&ListParams::default()).await.expect("pan-user lists Services");
        let denied = Api::<Secret>::namespaced(client, "pano-eks").list(&ListParams::default()).await.unwrap_err();
        assert!(matches!(&denied, kube::Error::Api(e) if e.code == 403), "{denied}");
    });

    // Idempotent: a second run succeeds and keeps the same identity.
    let again = std::process::Command::new(env!("CARGO_BIN_EXE_pano-eks"))
        .args(["--config", &support::path_str(&cfg), "credentials", "--cluster", "shop", "--out", &support::path_str(&out)])
        .output()
        .unwrap();
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
}
