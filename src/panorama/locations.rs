//! Where each kind of entry lives on Panorama, for one deployment's settings.

use pano_eks_core::{Kind, PlanSettings};

use super::xpath;

#[derive(Debug, Clone)]
pub struct Locations {
    pub device_group: String,
    pub template: String,
    pub virtual_router: String,
}

impl Locations {
    pub fn from_settings(s: &PlanSettings) -> Locations {
        Locations { device_group: s.device_group.clone(), template: s.template.clone(), virtual_router: s.virtual_router.clone() }
    }

    /// The container xpath holding all entries of `kind`.
    pub fn container(&self, kind: Kind) -> String {
        match kind {
            Kind::Tag => xpath::dg_tags(&self.device_group),
            Kind::Address => xpath::dg_addresses(&self.device_group),
            Kind::Service => xpath::dg_services(&self.device_group),
            Kind::NatRule => xpath::dg_nat_rules(&self.device_group),
            Kind::StaticRoute => xpath::static_routes(&self.template, &self.virtual_router),
            Kind::AddressGroup => xpath::dg_address_groups(&self.device_group),
            Kind::SecurityRule => xpath::dg_security_rules(&self.device_group),
        }
    }

    /// The container's parent and the container's element name: a bulk `set` on the parent with
    /// `<address><entry/>…</address>` creates many entries in one sub-operation (pango's form).
    pub fn container_parent(&self, kind: Kind) -> (String, String) {
        let c = self.container(kind);
        let (parent, name) = c.rsplit_once('/').expect("container xpaths have a parent");
        (parent.to_string(), name.to_string())
    }

    pub fn entry(&self, kind: Kind, name: &str) -> String {
        format!("{}/{}", self.container(kind), xpath::entry(name))
    }
}

pub const KINDS: [Kind; 7] =
    [Kind::Tag, Kind::Address, Kind::Service, Kind::NatRule, Kind::StaticRoute, Kind::AddressGroup, Kind::SecurityRule];
