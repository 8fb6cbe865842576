//! Is a labelled Service's own load balancer internal? The sandwich protects only traffic that
//! comes through the firewalls; a Service behind an internet-facing load balancer is reachable
//! from the internet without passing any of them, so it is `exposed`, not `protected`.
//!
//! In this order:
//! 1. **AWS's own answer.** When discovery found the load balancer whose DNS name the Service
//!    publishes (`elbv2:DescribeLoadBalancers`, [`LoadBalancerFacts`]), its `Scheme` decides:
//!    the annotations only say what a controller was asked to make, and the AWS Load Balancer
//!    Controller keeps an existing NLB's scheme when the annotation is absent
//!    (kubernetes-sigs.github.io/aws-load-balancer-controller/latest/guide/service/nlb/).
//! 2. **Which controller owns the Service**, then its reading of the annotations:
//!    * the AWS Load Balancer Controller owns `spec.loadBalancerClass: service.k8s.aws/nlb`
//!      (its v2.5+ webhook sets that on every new LoadBalancer Service unless turned off:
//!      …/latest/deploy/installation/), and, with no class, `aws-load-balancer-type: external`
//!      or `nlb-ip`. It reads `aws-load-balancer-scheme` (`internal` | `internet-facing`), else
//!      the deprecated boolean `aws-load-balancer-internal`, else its default **internal**
//!      (…/latest/guide/service/annotations/; "Secure by default" since v2.2.0);
//!    * the cloud provider (in-tree or cloud-provider-aws) owns every Service without a class
//!      and with any other type (`nlb`, or none: a Classic Load Balancer). It reads only
//!      `aws-load-balancer-internal`: `"false"` or empty means internet-facing, any other value
//!      internal, and absent means its default, **internet-facing** (legacy-cloud-providers
//!      aws.go, `ServiceAnnotationLoadBalancerInternal`; kubernetes/website#15771);
//!    * another class belongs to a controller pano-eks does not know: nothing shows the load
//!      balancer internal, so, strictly, it is not called protected.

use std::collections::BTreeMap;

use crate::facts::{LoadBalancerFacts, ServiceFacts};

const TYPE: &str = "service.beta.kubernetes.io/aws-load-balancer-type";
const SCHEME: &str = "service.beta.kubernetes.io/aws-load-balancer-scheme";
const INTERNAL: &str = "service.beta.kubernetes.io/aws-load-balancer-internal";
/// The AWS Load Balancer Controller's `spec.loadBalancerClass` for Services.
pub const LBC_CLASS: &str = "service.k8s.aws/nlb";

/// Where the Service's load balancer faces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Exposure {
    Internal,
    /// Internet-facing: the reason names AWS's answer or the annotation that decided.
    InternetFacing(String),
    /// Nothing shows it internal (a load balancer class pano-eks does not know): treated as
    /// exposed, the reason says why.
    Undetermined(String),
}

impl Exposure {
    /// The reason when the Service is not shown internal.
    pub fn exposed_because(&self) -> Option<&str> {
        match self {
            Exposure::Internal => None,
            Exposure::InternetFacing(why) | Exposure::Undetermined(why) => Some(why),
        }
    }
}

/// Pure: the Service and the load balancers AWS reported → where its load balancer faces.
pub fn exposure(svc: &ServiceFacts, load_balancers: &[LoadBalancerFacts]) -> Exposure {
    exposure_in(svc, &LoadBalancerIndex::new(load_balancers))
}

/// [`exposure`] with the load balancers indexed once (a plan asks for every Service, and an
/// estate of 16,000 Services has as many load balancers).
pub fn exposure_in(svc: &ServiceFacts, load_balancers: &LoadBalancerIndex<'_>) -> Exposure {
    if let Some(lb) = svc.lb_hostname.as_deref().and_then(|h| load_balancers.get(h)) {
        return match lb.scheme.as_str() {
            "internal" => Exposure::Internal,
            "internet-facing" => facing(format!("AWS reports load balancer {} ({}) as internet-facing", lb.name, lb.dns_name)),
            other => facing(format!("AWS reports scheme {other:?} for load balancer {}, not \"internal\"", lb.name)),
        };
    }
    annotated(&svc.annotations, svc.load_balancer_class.as_deref())
}

/// The load balancers AWS reported, by DNS name (case insensitive; a trailing dot is the same
/// name).
pub struct LoadBalancerIndex<'a>(std::collections::HashMap<String, &'a LoadBalancerFacts>);

impl<'a> LoadBalancerIndex<'a> {
    pub fn new(load_balancers: &'a [LoadBalancerFacts]) -> LoadBalancerIndex<'a> {
        // The first of a name wins, as a scan in AWS's order would find it.
        let mut map = std::collections::HashMap::new();
        for lb in load_balancers {
            map.entry(norm(&lb.dns_name)).or_insert(lb);
        }
        LoadBalancerIndex(map)
    }

    /// The load balancer AWS reported under the Service's published hostname.
    fn get(&self, hostname: &str) -> Option<&'a LoadBalancerFacts> {
        self.0.get(&norm(hostname)).copied()
    }
}

fn norm(s: &str) -> String {
    s.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// Pure: the Service's class and annotations → where its load balancer faces, as the owning
/// controller reads them.
pub fn annotated(annotations: &BTreeMap<String, String>, class: Option<&str>) -> Exposure {
    let get = |k: &str| annotations.get(k).map(|v| v.trim());
    let lbc = match class.map(str::trim) {
        Some(LBC_CLASS) => true,
        Some(other) => {
            return Exposure::Undetermined(format!(
                "spec.loadBalancerClass {other:?} hands its load balancer to a controller pano-eks does not know, \
                 and AWS reports no load balancer under its hostname: nothing shows it internal"
            ));
        }
        None => matches!(get(TYPE), Some("external" | "nlb-ip")),
    };
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
    let provider = match get(TYPE) {
        Some(t) => format!("{TYPE} is {t:?}, so the cloud provider makes it"),
        None => "no spec.loadBalancerClass and no aws-load-balancer-type, so the cloud provider makes it".to_owned(),
    };
    match get(INTERNAL) {
        Some("false") => facing(format!("{INTERNAL} is \"false\"")),
        Some("") => facing(format!("{INTERNAL} is empty ({provider}, and its default is internet-facing)")),
        Some(_) => Exposure::Internal,
        None if get(SCHEME).is_some() => facing(format!(
            "{provider}: it reads {INTERNAL}, which is absent (its default is internet-facing); {SCHEME} is read only by the AWS Load Balancer Controller"
        )),
        None => facing(format!("{provider}, {INTERNAL} is absent, and its default is internet-facing")),
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
        // (class, annotations, Some(exposed) | None for undetermined)
        type Row<'a> = (Option<&'a str>, &'a [(&'a str, &'a str)], Option<bool>);
        let table: &[Row] = &[
            (None, &[], Some(true)),
            (None, &[("internal", "true")], Some(false)),
            (None, &[("internal", "0.0.0.0/0")], Some(false)),
            (None, &[("internal", "false")], Some(true)),
            (None, &[("internal", "")], Some(true)),
            (None, &[("type", "nlb")], Some(true)),
            (None, &[("type", "nlb"), ("internal", "true")], Some(false)),
            (None, &[("type", "nlb"), ("scheme", "internal")], Some(true)),
            (None, &[("scheme", "internal")], Some(true)),
            (None, &[("type", "external")], Some(false)),
            (None, &[("type", "nlb-ip")], Some(false)),
            (None, &[("type", "external"), ("scheme", "internal")], Some(false)),
            (None, &[("type", "external"), ("scheme", "internet-facing")], Some(true)),
            (None, &[("type", "external"), ("scheme", "Internal")], Some(true)),
            (None, &[("type", "external"), ("internal", "false")], Some(true)),
            (None, &[("type", "external"), ("internal", "TRUE")], Some(false)),
            (None, &[("type", "external"), ("internal", "yes")], Some(true)),
            (None, &[("type", "external"), ("scheme", "internal"), ("internal", "false")], Some(false)),
            // The controller's class: its default is internal, whatever the type annotation says.
            (Some(LBC_CLASS), &[], Some(false)),
            (Some(LBC_CLASS), &[("type", "nlb")], Some(false)),
            (Some(LBC_CLASS), &[("scheme", "internet-facing")], Some(true)),
            (Some(LBC_CLASS), &[("internal", "false")], Some(true)),
            // Another controller's class: nothing shows it internal.
            (Some("example.com/lb"), &[("internal", "true")], None),
            (Some("example.com/lb"), &[], None),
        ];
        for (class, pairs, want) in table {
            let got = annotated(&ann(pairs), *class);
            match (want, &got) {
                (None, Undetermined(why)) => assert!(why.contains("example.com/lb"), "{why}"),
                (Some(false), Internal) => {}
                (Some(true), InternetFacing(why)) => {
                    assert!(why.contains("aws-load-balancer-"), "{class:?} {pairs:?}: reason names no annotation: {why}")
                }
                _ => panic!("{class:?} {pairs:?}: want exposed={want:?}, got {got:?}"),
            }
        }
    }

    fn svc(host: Option<&str>, pairs: &[(&str, &str)]) -> ServiceFacts {
        ServiceFacts {
            namespace: "d".into(),
            name: "web".into(),
            labels: BTreeMap::new(),
            annotations: ann(pairs),
            service_type: "LoadBalancer".into(),
            load_balancer_class: None,
            lb_hostname: host.map(str::to_owned),
            ports: vec![],
            created: "2026-01-01T00:00:00Z".parse().unwrap(),
        }
    }

    fn lb(dns: &str, scheme: &str) -> LoadBalancerFacts {
        LoadBalancerFacts { name: "k8s-d-web".into(), dns_name: dns.into(), scheme: scheme.into() }
    }

    #[test]
    fn what_aws_reports_for_the_hostname_decides_over_the_annotations() {
        let host = "k8s-d-web-1a2b.elb.us-west-2.amazonaws.com";
        let internal = [("type", "nlb"), ("internal", "true")];
        // The annotations ask for internal, AWS says internet-facing (e.g. made before them).
        let got = exposure(&svc(Some(host), &internal), &[lb(host, "internet-facing")]);
        let why = got.exposed_because().expect("exposed");
        assert!(why.contains("AWS reports load balancer k8s-d-web") && why.contains(host), "{why}");
        // No annotation at all, AWS says internal (hostname matched case-insensitively, trailing dot).
        let upper = format!("{}.", host.to_ascii_uppercase());
        assert_eq!(exposure(&svc(Some(&upper), &[]), &[lb(host, "internal")]), Exposure::Internal);
        // Another load balancer's answer does not count; the annotations decide.
        assert_eq!(exposure(&svc(Some(host), &internal), &[lb("other.elb.amazonaws.com", "internet-facing")]), Exposure::Internal);
        assert!(exposure(&svc(Some(host), &[]), &[lb("other.elb.amazonaws.com", "internal")]).exposed_because().is_some());
        // A scheme AWS does not document is not internal.
        assert!(exposure(&svc(Some(host), &internal), &[lb(host, "odd")]).exposed_because().unwrap().contains("\"odd\""));
    }
}
