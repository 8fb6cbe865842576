//! Capacity's I/O: what each firewall of the device group is, asked through Panorama
//! (`type=op&target=SERIAL`, `show system info`), read into the core's tiers. Which limits
//! apply (the smallest firewall decides) and who is admitted is `pano_eks_core::capacity`.
//!
//! `<vm-mem>` is the VM's memory in kilobytes: PAN does not document the unit; public captures of
//! `show system info` on VM-Series show e.g. `<vm-mem>8157880</vm-mem>` on an 8 GB VM (the
//! strictest reading: anything that does not parse, or maps to no tier, is "unknown").

use pano_eks_core::ancestors;
use pano_eks_core::capacity::{Limits, Tier};

use super::locations::Locations;
use super::xml::Element;
use super::xpath;
use super::{PanoramaClient, PanosError};

/// Each member of the device group with its tier, or why it is unknown (not connected, no
/// `vm-mem`, not a VM-Series size).
pub async fn firewall_tiers(client: &PanoramaClient, device_group: &str) -> Result<Vec<(String, Result<Tier, String>)>, PanosError> {
    let members = super::verify::members(client, device_group).await?;
    let cmd = Element::new("show").child(Element::new("system").child(Element::new("info")));
    let mut out = Vec::with_capacity(members.len());
    for serial in members {
        let tier = match client.op_on(&serial, &cmd).await {
            Ok(info) => tier_of(&info),
            Err(e) => Err(format!("show system info failed: {e}")),
        };
        out.push((serial, tier));
    }
    Ok(out)
}

/// The tier from a `show system info` result (`system/vm-mem`, KB).
pub fn tier_of(info: &Element) -> Result<Tier, String> {
    let raw = info.text_at("system/vm-mem").ok_or("no system/vm-mem (not a VM-Series firewall?)")?;
    let kb: u64 = raw.trim().parse().map_err(|_| format!("vm-mem {raw:?} is not a number of kilobytes"))?;
    Tier::from_memory_mb(kb / 1024).ok_or_else(|| format!("vm-mem {kb} KB is not a VM-Series memory size (1-128 GB)"))
}

/// What else is pushed to the device group's firewalls and counts against their limits (facts:
/// references and pushes take `shared`, every ancestor device group and the device group): every
/// address (FQDN ones apart), service, NAT and security rule of `shared` and the ancestors, and
/// the device group's own post-rulebase NAT and security rules (its address, service,
/// pre-rulebase NAT and pre-rulebase security containers are what the planner reads and counts
/// itself, telling ours from others': counted here too, our own rules would count twice, once as
/// someone else's). Counts only: names
/// (`…/entry/@name`, as pango lists names) and the `fqdn` leaves (`…/address/entry/fqdn`), never
/// whole entries. Candidate config, concurrent within the client's in-flight limit.
pub async fn elsewhere(client: &PanoramaClient, locs: &Locations) -> Result<Limits, PanosError> {
    let hierarchy = client.get(&xpath::dg_hierarchy()).await?;
    let parents = hierarchy.as_ref().map(super::observe::parse_hierarchy).unwrap_or_default();
    let mut whole: Vec<String> = vec!["/config/shared".into()];
    whole.extend(ancestors(&parents, &locs.device_group).iter().map(|dg| xpath::device_group(dg)));
    let own = xpath::device_group(&locs.device_group);
    let mut reads: Vec<(Kind, String)> = Vec::new();
    for prefix in &whole {
        reads.push((Kind::Address, format!("{prefix}/address/entry/@name")));
        reads.push((Kind::Fqdn, format!("{prefix}/address/entry/fqdn")));
        reads.push((Kind::Service, format!("{prefix}/service/entry/@name")));
        for base in ["pre-rulebase", "post-rulebase"] {
            reads.push((Kind::Nat, format!("{prefix}/{base}/nat/rules/entry/@name")));
            reads.push((Kind::Security, format!("{prefix}/{base}/security/rules/entry/@name")));
        }
    }
    reads.push((Kind::Nat, format!("{own}/post-rulebase/nat/rules/entry/@name")));
    reads.push((Kind::Security, format!("{own}/post-rulebase/security/rules/entry/@name")));
    let answers = futures::future::join_all(reads.iter().map(|(_, xp)| client.get(xp))).await;
    let mut used = Limits::default();
    for ((kind, _), answer) in reads.iter().zip(answers) {
        let n = answer?.as_ref().map(|r| count(r, kind.leaf())).unwrap_or(0);
        match kind {
            Kind::Address => used.addresses += n,
            Kind::Fqdn => used.fqdn_addresses += n,
            Kind::Service => used.service_objects += n,
            Kind::Nat => used.nat_rules += n,
            Kind::Security => used.security_rules += n,
        }
    }
    Ok(used)
}

#[derive(Clone, Copy)]
enum Kind {
    Address,
    Fqdn,
    Service,
    Nat,
    Security,
}

impl Kind {
    /// The element each match comes back as.
    fn leaf(self) -> &'static str {
        if matches!(self, Kind::Fqdn) { "fqdn" } else { "entry" }
    }
}

/// Matches in a `get` result: its children named `leaf` (the matched nodes themselves).
fn count(result: &Element, leaf: &str) -> usize {
    result.elements().filter(|e| e.name == leaf).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(mem: &str) -> Element {
        crate::panorama::xml::parse(&format!("<result><system><model>PA-VM</model><family>vm</family>{mem}</system></result>"))
            .expect("xml")
    }

    #[test]
    fn vm_mem_in_kilobytes_gives_the_tier_and_anything_else_is_unknown() {
        assert_eq!(tier_of(&info("<vm-mem>8157880</vm-mem>")), Ok(Tier::One), "an 8 GB VM, as captured");
        assert_eq!(tier_of(&info("<vm-mem>16363720</vm-mem>")), Ok(Tier::Two));
        assert_eq!(tier_of(&info("<vm-mem>57671680</vm-mem>")), Ok(Tier::Three));
        assert!(tier_of(&info("")).unwrap_err().contains("no system/vm-mem"));
        assert!(tier_of(&info("<vm-mem>8 GB</vm-mem>")).unwrap_err().contains("not a number"));
        assert!(tier_of(&info("<vm-mem>512</vm-mem>")).unwrap_err().contains("not a VM-Series memory size"));
    }

    #[test]
    fn matches_are_counted_from_the_result_children() {
        let names = crate::panorama::xml::parse("<result total-count='2' count='2'><entry name='a'/><entry name='b'/></result>").unwrap();
        assert_eq!(count(&names, "entry"), 2);
        let fqdns = crate::panorama::xml::parse("<result><fqdn>a.example.com</fqdn></result>").unwrap();
        assert_eq!(count(&fqdns, "fqdn"), 1);
        assert_eq!(count(&crate::panorama::xml::parse("<result/>").unwrap(), "entry"), 0);
    }
}
