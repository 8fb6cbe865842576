//! Is a labelled Service's own load balancer internal? The sandwich protects only traffic that
//! comes through the firewalls; a Service behind an internet-facing load balancer is reachable
//! from the internet without passing any of them, so it is `exposed`, not `protected`.
//!
//! Read the way the two controllers that may own the Service decide it:
//! * AWS Load Balancer Controller (it owns `aws-load-balancer-type: external` or `nlb-ip`):
//!   `aws-load-balancer-scheme` (`internal` | `internet-facing`), else the deprecated boolean
//!   `aws-load-balancer-internal`, else its default `internal`
//!   (kubernetes-sigs.github.io/aws-load-balancer-controller/latest/guide/service/annotations/).
//! * The in-tree cloud provider (every other `aws-load-balancer-type`, e.g. `nlb`, or none): only
//!   `aws-load-balancer-internal`; `"false"` means internet-facing, any other non-empty value
//!   internal, absent internet-facing (legacy-cloud-providers aws.go; kubernetes/website#15771).
//!
//! A Service with none of these annotations is `Unknown`: whether the AWS Load Balancer
//! Controller owns it depends on `spec.loadBalancerClass` and the controller's configuration,
//! which the facts do not carry yet, so it is not called exposed on a guess.

use std::collections::BTreeMap;

const TYPE: &str = "service.beta.kubernetes.io/aws-load-balancer-type";
const SCHEME: &str = "service.beta.kubernetes.io/aws-load-balancer-scheme";
const INTERNAL: &str = "service.beta.kubernetes.io/aws-load-balancer-internal";

/// What the annotations say about the Service's load balancer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Exposure {
    Internal,
    /// Internet-facing (or not known to be internal): the reason names the annotation.
    InternetFacing(String),
    /// No annotation decides it.
    Unknown,
}

/// Pure: the Service's annotations → where its load balancer faces.
pub fn exposure(annotations: &BTreeMap<String, String>) -> Exposure {
    let get = |k: &str| annotations.get(k).map(|v| v.trim());
    let lbc = matches!(get(TYPE), Some("external" | "nlb-ip"));
    if lbc {
        match get(SCHEME) {
            Some("internal") => return Exposure::Internal,
            Some("internet-facing") => return facing(format!("{SCHEME} is \"internet-facing\"")),
            Some(other) => return facing(format!("{SCHEME} is {other:?}, not \"internal\"")),
            None => {}
        }
        return match get(INTERNAL) {
            None => Exposure::Internal,
            Some(v) if v.eq_ignore_ascii_case("true") => Exposure::Internal,
            Some(v) if v.eq_ignore_ascii_case("false") => facing(format!("{INTERNAL} is \"false\"")),
            Some(v) => facing(format!("{INTERNAL} is {v:?}, not a boolean")),
        };
    }
    match get(INTERNAL) {
        Some("false") => facing(format!("{INTERNAL} is \"false\"")),
        Some("") => facing(format!("{INTERNAL} is empty (the in-tree provider's default is internet-facing)")),
        Some(_) => Exposure::Internal,
        None if get(TYPE).is_some() => facing(format!(
            "{TYPE} is {:?} (the in-tree provider) and {INTERNAL} is absent: its default is internet-facing",
            get(TYPE).unwrap_or_default()
        )),
        None if get(SCHEME).is_some() => {
            facing(format!("{SCHEME} is read only by the AWS Load Balancer Controller, and {TYPE} does not hand the Service to it"))
        }
        None => Exposure::Unknown,
    }
}

fn facing(why: String) -> Exposure {
    Exposure::InternetFacing(format!("its load balancer is internet-facing and bypasses the firewalls: {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ann(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (format!("service.beta.kubernetes.io/aws-load-balancer-{k}"), (*v).to_owned())).collect()
    }

    #[test]
    fn the_scheme_as_each_controller_reads_it() {
        use Exposure::*;
        let table: &[(&[(&str, &str)], Option<bool>)] = &[
            // (annotations, Some(exposed) | None for unknown)
            (&[], None),
            (&[("internal", "true")], Some(false)),
            (&[("internal", "0.0.0.0/0")], Some(false)),
            (&[("internal", "false")], Some(true)),
            (&[("internal", "")], Some(true)),
            (&[("type", "nlb")], Some(true)),
            (&[("type", "nlb"), ("internal", "true")], Some(false)),
            (&[("type", "nlb"), ("scheme", "internal")], Some(true)),
            (&[("scheme", "internal")], Some(true)),
            (&[("type", "external")], Some(false)),
            (&[("type", "nlb-ip")], Some(false)),
            (&[("type", "external"), ("scheme", "internal")], Some(false)),
            (&[("type", "external"), ("scheme", "internet-facing")], Some(true)),
            (&[("type", "external"), ("scheme", "Internal")], Some(true)),
            (&[("type", "external"), ("internal", "false")], Some(true)),
            (&[("type", "external"), ("internal", "TRUE")], Some(false)),
            (&[("type", "external"), ("internal", "yes")], Some(true)),
            (&[("type", "external"), ("scheme", "internal"), ("internal", "false")], Some(false)),
        ];
        for (pairs, want) in table {
            let got = exposure(&ann(pairs));
            match (want, &got) {
                (None, Unknown) | (Some(false), Internal) => {}
                (Some(true), InternetFacing(why)) => {
                    assert!(why.contains("service.beta.kubernetes.io/aws-load-balancer-"), "{pairs:?}: reason names no annotation: {why}")
                }
                _ => panic!("{pairs:?}: want exposed={want:?}, got {got:?}"),
            }
        }
    }
}
