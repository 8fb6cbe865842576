//! Services as facts: a Kubernetes Service translated, field by field, into the core's
//! `ServiceFacts`. Which Services are valid, pending or in conflict is the core's decision.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, DeleteParams, ListParams};
use pano_eks_core::{PortFacts, ServiceFacts, Timestamp};

use super::KubeError;

/// The core's view of one Service. `None` only for objects without name, namespace or creation
/// time, which an API server never returns.
pub fn service_facts(svc: &Service) -> Option<ServiceFacts> {
    let meta = &svc.metadata;
    let created = meta.creation_timestamp.as_ref().and_then(|t| {
        let text = serde_json::to_value(t).ok()?.as_str()?.to_string();
        Timestamp::parse(&text).ok()
    })?;
    let spec = svc.spec.as_ref();
    let lb_hostname = svc
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .and_then(|ing| ing.iter().find_map(|i| i.hostname.clone()))
        .filter(|h| !h.is_empty());
    Some(ServiceFacts {
        namespace: meta.namespace.clone()?,
        name: meta.name.clone()?,
        labels: meta.labels.clone().unwrap_or_default(),
        annotations: meta.annotations.clone().unwrap_or_default(),
        service_type: spec.and_then(|s| s.type_.clone()).unwrap_or_else(|| "ClusterIP".into()),
        load_balancer_class: spec.and_then(|s| s.load_balancer_class.clone()),
        lb_hostname,
        ports: spec
            .and_then(|s| s.ports.as_ref())
            .map(|ps| {
                ps.iter().map(|p| PortFacts { port: p.port as u32, protocol: p.protocol.clone().unwrap_or_else(|| "TCP".into()) }).collect()
            })
            .unwrap_or_default(),
        created,
    })
}

/// Every Service carrying `label` (any value), all namespaces.
pub async fn list_services(client: &kube::Client, label: &str) -> Result<Vec<ServiceFacts>, KubeError> {
    let api: Api<Service> = Api::all(client.clone());
    let list = api.list(&ListParams::default().labels(label)).await?;
    Ok(list.items.iter().filter_map(service_facts).collect())
}

/// Deletes every Service of type LoadBalancer (so their load balancers and ENIs go before the
/// node stack: known issue PLUG-2253) and waits, bounded, until they are gone.
pub async fn delete_load_balancer_services(client: &kube::Client, timeout: Duration) -> Result<Vec<String>, KubeError> {
    let all: Api<Service> = Api::all(client.clone());
    let is_lb = |s: &Service| s.spec.as_ref().and_then(|sp| sp.type_.as_deref()) == Some("LoadBalancer");
    let targets: Vec<(String, String)> = all
        .list(&ListParams::default())
        .await?
        .items
        .iter()
        .filter(|s| is_lb(s))
        .filter_map(|s| Some((s.metadata.namespace.clone()?, s.metadata.name.clone()?)))
        .collect();
    for (ns, name) in &targets {
        let api: Api<Service> = Api::namespaced(client.clone(), ns);
        match api.delete(name, &DeleteParams::foreground()).await {
            Ok(_) => tracing::info!("deleting Service {ns}/{name} (type LoadBalancer)"),
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
    }
    let start = Instant::now();
    loop {
        let left = all.list(&ListParams::default()).await?.items.iter().filter(|s| is_lb(s)).count();
        if left == 0 {
            break;
        }
        if start.elapsed() >= timeout {
            return Err(KubeError::Timeout(format!("{left} Service(s) of type LoadBalancer still present after {}s", timeout.as_secs())));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    Ok(targets.into_iter().map(|(ns, n)| format!("{ns}/{n}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_becomes_facts_field_by_field() {
        let svc: Service = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "frontend", "namespace": "default", "creationTimestamp": "2026-11-26T10:00:00Z",
                          "labels": {"panw-tg-port": "82", "app": "guestbook"},
                          "annotations": {"service.beta.kubernetes.io/aws-load-balancer-internal": "true"}},
            "spec": {"type": "LoadBalancer", "loadBalancerClass": "service.k8s.aws/nlb",
                     "ports": [{"port": 80, "protocol": "TCP"}, {"port": 53}]},
            "status": {"loadBalancer": {"ingress": [{"hostname": "internal-a1b2.elb.us-west-2.amazonaws.com"}]}}
        }))
        .unwrap();
        let f = service_facts(&svc).unwrap();
        assert_eq!((f.namespace.as_str(), f.name.as_str(), f.service_type.as_str()), ("default", "frontend", "LoadBalancer"));
        assert_eq!(f.labels.get("panw-tg-port").map(String::as_str), Some("82"));
        assert_eq!(f.lb_hostname.as_deref(), Some("internal-a1b2.elb.us-west-2.amazonaws.com"));
        assert_eq!(f.load_balancer_class.as_deref(), Some("service.k8s.aws/nlb"));
        assert_eq!(f.ports, vec![PortFacts { port: 80, protocol: "TCP".into() }, PortFacts { port: 53, protocol: "TCP".into() }]);
        assert_eq!(f.created, Timestamp::parse("2026-11-26T10:00:00Z").unwrap());
    }

    #[test]
    fn a_pending_load_balancer_has_no_hostname() {
        let svc: Service = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "x", "namespace": "n", "creationTimestamp": "2026-11-26T10:00:00Z"},
            "spec": {"type": "LoadBalancer"}, "status": {"loadBalancer": {}}
        }))
        .unwrap();
        assert_eq!(service_facts(&svc).unwrap().lb_hostname, None);
    }
}
