//! Capacity's I/O: what each firewall of the device group is, asked through Panorama
//! (`type=op&target=SERIAL`, `show system info`), read into the core's tiers. Which limits
//! apply (the smallest firewall decides) and who is admitted is `pano_eks_core::capacity`.
//!
//! `<vm-mem>` is the VM's memory in kilobytes: PAN does not document the unit; public captures of
//! `show system info` on VM-Series show e.g. `<vm-mem>8157880</vm-mem>` on an 8 GB VM (the
//! strictest reading: anything that does not parse, or maps to no tier, is "unknown").

use pano_eks_core::capacity::Tier;

use super::xml::Element;
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
}
