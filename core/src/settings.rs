//! Settings: the operator's choices, built by the CLI from its config file.

use serde::{Deserialize, Serialize};

/// Longest deployment name: it is part of every object name, so it must leave room for the rest.
pub const DEPLOYMENT_MAX: usize = 20;

/// Where and how the planner writes. Plain data; [`PlanSettings::validate`] checks it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanSettings {
    /// Names this installation (`[a-z0-9-]`, ≤20): scopes ownership tags, rule names and the route prefix.
    pub deployment: String,
    /// The Service label that carries the firewall port (`panw-tg-port`).
    pub label_key: String,
    /// Device group holding tags, addresses, services and the NAT pre-rules.
    pub device_group: String,
    /// Template whose virtual router holds the static routes.
    pub template: String,
    pub virtual_router: String,
    pub trust_interface: String,
    pub untrust_interface: String,
    pub trust_zone: String,
    pub untrust_zone: String,
    /// The EKS plugin's limit: clusters beyond it (by name) are rejected with a report.
    pub max_clusters: usize,
    /// What the firewalls can hold; `None`: unknown, every Service is admitted.
    #[serde(default)]
    pub capacity: Option<crate::capacity::Capacity>,
    /// `[sync.security]`: security rules and address groups from Kubernetes; `None`: off
    /// (pano-eks writes no security policy, and removes what it wrote).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security: Option<SecuritySettings>,
}

/// The operator's security policy choices (`[sync.security]`, see docs/config.md).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecuritySettings {
    /// Where pano-eks's block of rules sits in the device group's pre-rulebase.
    pub placement: crate::panorama::model::Position,
    /// Security profile group of every allow rule unless the Service names one
    /// (`pano-eks/profile-group`); `None`: no profile group.
    #[serde(default)]
    pub profile_group: Option<String>,
    /// App-IDs of the per-subnet outbound rules (`["any"]` by default).
    pub outbound_applications: Vec<String>,
}

impl Default for SecuritySettings {
    fn default() -> Self {
        Self { placement: crate::panorama::model::Position::Top, profile_group: None, outbound_applications: vec!["any".to_owned()] }
    }
}

impl PlanSettings {
    /// Settings with the documented defaults for everything but the three names.
    pub fn new(deployment: &str, device_group: &str, template: &str) -> Self {
        Self {
            deployment: deployment.to_owned(),
            label_key: "panw-tg-port".to_owned(),
            device_group: device_group.to_owned(),
            template: template.to_owned(),
            virtual_router: "vr-default".to_owned(),
            trust_interface: "ethernet1/2".to_owned(),
            untrust_interface: "ethernet1/1".to_owned(),
            trust_zone: "trust".to_owned(),
            untrust_zone: "untrust".to_owned(),
            max_clusters: 16,
            capacity: None,
            security: None,
        }
    }

    /// Rejects settings that would produce invalid or ambiguous names.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let d = &self.deployment;
        let dep_ok = !d.is_empty()
            && d.len() <= DEPLOYMENT_MAX
            && d.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
            && !d.starts_with('-')
            && !d.ends_with('-');
        if !dep_ok {
            return Err(SettingsError::Deployment(d.clone()));
        }
        for (field, value) in [
            ("label_key", &self.label_key),
            ("device_group", &self.device_group),
            ("template", &self.template),
            ("virtual_router", &self.virtual_router),
            ("trust_interface", &self.trust_interface),
            ("untrust_interface", &self.untrust_interface),
            ("trust_zone", &self.trust_zone),
            ("untrust_zone", &self.untrust_zone),
        ] {
            if value.trim().is_empty() {
                return Err(SettingsError::Empty(field));
            }
        }
        if self.max_clusters == 0 {
            return Err(SettingsError::MaxClusters);
        }
        Ok(())
    }
}

/// Settings that cannot be planned with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    #[error("deployment {0:?} must be 1-20 chars of [a-z0-9-], not starting or ending with '-'")]
    Deployment(String),
    #[error("setting {0} must not be empty")]
    Empty(&'static str),
    #[error("max_clusters must be at least 1")]
    MaxClusters,
}
