//! Events pano-eks records on a Service it does not hold a watch object for (the front step
//! runs apart from the watch loop): the reference is built from namespace and name.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};

/// A `Normal` Event on Service `namespace/name`; an error is returned (the caller logs it).
pub async fn service_event(client: &kube::Client, namespace: &str, name: &str, reason: &str, note: String) -> Result<(), kube::Error> {
    let recorder = Recorder::new(client.clone(), Reporter { controller: "pano-eks".into(), instance: std::env::var("POD_NAME").ok() });
    let reference = ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Service".into()),
        namespace: Some(namespace.into()),
        name: Some(name.into()),
        ..ObjectReference::default()
    };
    let ev = Event { type_: EventType::Normal, reason: reason.into(), note: Some(note), action: "Front".into(), secondary: None };
    recorder.publish(&ev, &reference).await
}
