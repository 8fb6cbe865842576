//! `pano-eks token --cluster NAME`: prints a `client.authentication.k8s.io/v1beta1`
//! ExecCredential with an EKS bearer token made in process, so the kubeconfig `up` writes works
//! without the aws CLI or aws-iam-authenticator. The token goes to stdout only (kubectl reads it).

use super::shared::runtime;
use super::{CmdResult, Failure, load_config};
use crate::aws::{Aws, eks};
use crate::cli::Cli;
use crate::config::LoadOptions;

pub fn run(cli: &Cli, cluster: &str, region: Option<&str>) -> CmdResult {
    let region = match region {
        Some(r) => r.to_string(),
        None => load_config(cli, LoadOptions::runtime())?.config.region,
    };
    runtime()?.block_on(async {
        let aws = Aws::connect(&region).await;
        let token = eks::token_now(&aws, cluster).await.map_err(|e| Failure::failed(format!("EKS token for {cluster}: {e}")))?;
        println!("{}", eks::exec_credential(&token, std::time::SystemTime::now()));
        Ok(())
    })
}
