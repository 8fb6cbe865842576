//! The one table of resource kinds kube-sim serves. Objects are stored kind-agnostic as
//! `serde_json::Value`; everything kind-specific the server needs (scope, subresources, short
//! names, discovery verbs, selectable fields) lives here so adding a kind is one entry.

/// One served resource (a group/version/plural).
#[derive(Debug)]
pub struct ResourceDef {
    /// API group ("" for core).
    pub group: &'static str,
    pub version: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    pub kind: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    /// Has a `/status` subresource: ordinary writes keep `.status`, status writes keep the rest.
    pub status: bool,
    /// Field-selector labels accepted besides `metadata.name` and `metadata.namespace`
    /// (like the API server, unknown labels are refused so a typo cannot match everything).
    pub fields: &'static [&'static str],
    pub categories: &'static [&'static str],
}

/// Verbs every stored resource supports (discovery advertises them; kubectl checks them).
pub const VERBS: &[&str] = &["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];

const fn def(
    group: &'static str,
    plural: &'static str,
    singular: &'static str,
    kind: &'static str,
    namespaced: bool,
    short_names: &'static [&'static str],
    status: bool,
) -> ResourceDef {
    ResourceDef { group, version: "v1", plural, singular, kind, namespaced, short_names, status, fields: &[], categories: &[] }
}

pub static RESOURCES: &[ResourceDef] = &[
    def("", "namespaces", "namespace", "Namespace", false, &["ns"], true),
    ResourceDef {
        fields: &["spec.type", "spec.clusterIP"],
        categories: &["all"],
        ..def("", "services", "service", "Service", true, &["svc"], true)
    },
    def("", "endpoints", "endpoints", "Endpoints", true, &["ep"], false),
    def("", "serviceaccounts", "serviceaccount", "ServiceAccount", true, &["sa"], false),
    ResourceDef { fields: &["type"], ..def("", "secrets", "secret", "Secret", true, &[], false) },
    def("", "configmaps", "configmap", "ConfigMap", true, &["cm"], false),
    ResourceDef {
        fields: &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ],
        ..def("", "events", "event", "Event", true, &["ev"], false)
    },
    ResourceDef {
        fields: &["spec.nodeName", "status.phase", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName", "status.podIP"],
        categories: &["all"],
        ..def("", "pods", "pod", "Pod", true, &["po"], true)
    },
    ResourceDef { fields: &["spec.unschedulable"], ..def("", "nodes", "node", "Node", false, &["no"], true) },
    def("rbac.authorization.k8s.io", "clusterroles", "clusterrole", "ClusterRole", false, &[], false),
    def("rbac.authorization.k8s.io", "clusterrolebindings", "clusterrolebinding", "ClusterRoleBinding", false, &[], false),
    def("rbac.authorization.k8s.io", "roles", "role", "Role", true, &[], false),
    def("rbac.authorization.k8s.io", "rolebindings", "rolebinding", "RoleBinding", true, &[], false),
    def("coordination.k8s.io", "leases", "lease", "Lease", true, &[], false),
    ResourceDef {
        fields: &["addressType"],
        ..def("discovery.k8s.io", "endpointslices", "endpointslice", "EndpointSlice", true, &[], false)
    },
    // What `kubectl apply -k manifests/in-cluster` creates besides the core kinds: stored
    // generically, no controllers (a Deployment never gets Pods). Scope, plural, short names,
    // status subresource and categories as the API reference lists them (sim/README.md).
    ResourceDef { categories: &["all"], ..def("apps", "deployments", "deployment", "Deployment", true, &["deploy"], true) },
    def("policy", "poddisruptionbudgets", "poddisruptionbudget", "PodDisruptionBudget", true, &["pdb"], true),
    def("networking.k8s.io", "networkpolicies", "networkpolicy", "NetworkPolicy", true, &["netpol"], false),
    ResourceDef {
        fields: &["reason", "type", "regarding.kind", "regarding.namespace", "regarding.name", "regarding.uid", "reportingController"],
        ..def("events.k8s.io", "events", "event", "Event", true, &["ev"], false)
    },
];

/// API groups in discovery order (core is served under `/api`, the rest under `/apis`).
pub const GROUPS: &[&str] = &[
    "apps",
    "policy",
    "networking.k8s.io",
    "rbac.authorization.k8s.io",
    "coordination.k8s.io",
    "discovery.k8s.io",
    "events.k8s.io",
    "authorization.k8s.io",
];

/// The virtual (never stored) SelfSubjectAccessReview, so `kubectl auth can-i` works.
pub const AUTHZ_GROUP: &str = "authorization.k8s.io";

impl ResourceDef {
    /// `v1` for core, `group/v1` otherwise: the objects' `apiVersion`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() { self.version.to_string() } else { format!("{}/{}", self.group, self.version) }
    }
    /// Stable store key of the resource (group and plural; one version per resource).
    pub fn id(&self) -> String {
        format!("{}/{}", self.group, self.plural)
    }
    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }
    /// Whether `label` may be used in a field selector on this resource.
    pub fn field_selectable(&self, label: &str) -> bool {
        label == "metadata.name" || (self.namespaced && label == "metadata.namespace") || self.fields.contains(&label)
    }
}

pub fn find(group: &str, version: &str, plural: &str) -> Option<&'static ResourceDef> {
    RESOURCES.iter().find(|r| r.group == group && r.version == version && r.plural == plural)
}

pub fn by_id(id: &str) -> Option<&'static ResourceDef> {
    RESOURCES.iter().find(|r| r.id() == id)
}
