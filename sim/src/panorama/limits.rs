//! What a managed VM-Series firewall can hold, by memory tier, and the push a device refuses
//! because it would hold more. The sim's own table (it shares no code with the product), from
//! Palo Alto Networks, VM-Series Deployment Guide, "Maximum Limits Based on Memory" (PAN-OS
//! 11.1), as transcribed in `shared/reference/limits.md`: tier 1 = 1–8 GB, tier 2 = 9–18 GB,
//! tier 3 = 19–64 GB, tier 4 = 65–128 GB; where the page gives two tier-3 NAT figures (15,000
//! and 8,000) the smaller one (the strictest reading). Enforced only for devices whose
//! `memory_mb` is set in the devices file (see sim/README.md).

use std::collections::BTreeSet;

use super::xml_tree::Node;

/// (FQDN addresses, addresses of any type, service objects, NAT rules, security rules).
pub fn for_memory_mb(mb: u64) -> Option<[usize; 5]> {
    Some(match mb.div_ceil(1024) {
        0 => return None,
        1..=8 => [2_000, 10_000, 2_000, 3_000, 1_500],
        9..=18 => [2_000, 20_000, 2_000, 8_000, 10_000],
        19..=64 => [2_000, 40_000, 5_000, 8_000, 20_000],
        _ => [6_144, 160_000, 12_000, 16_000, 65_000],
    })
}

const WHAT: [&str; 5] = ["FQDN address objects", "address objects", "service objects", "NAT rules", "security rules"];

/// What a push of a device group's scopes (`shared` → ancestors → the DG, as
/// [`super::dataplane::policy_snapshot`] merges them: a nearer scope wins on a name) would give a
/// device, counted.
pub fn counts(scopes: &[&Node]) -> [usize; 5] {
    let mut names: [BTreeSet<&str>; 5] = Default::default();
    let mut fqdn: BTreeSet<&str> = BTreeSet::new();
    for s in scopes.iter().rev() {
        for e in s.child("address").map(|a| a.entries().collect::<Vec<_>>()).unwrap_or_default() {
            let n = e.name().unwrap_or_default();
            if names[1].insert(n) && e.child("fqdn").is_some() {
                fqdn.insert(n);
            }
        }
        for e in s.child("service").map(|a| a.entries().collect::<Vec<_>>()).unwrap_or_default() {
            names[2].insert(e.name().unwrap_or_default());
        }
        for (i, kind) in [(3, "nat"), (4, "security")] {
            for base in ["pre-rulebase", "post-rulebase"] {
                if let Some(r) = s.descend(&[base, kind, "rules"]) {
                    names[i].extend(r.entries().map(|e| e.name().unwrap_or_default()));
                }
            }
        }
    }
    [fqdn.len(), names[1].len(), names[2].len(), names[3].len(), names[4].len()]
}

/// The device's refusal of a push over one of its limits, PAN-OS-like ([inferred]: the vendor
/// does not publish the text); `None` when everything fits.
pub fn refusal(limits: [usize; 5], counts: [usize; 5]) -> Option<String> {
    let k = (0..5).find(|&k| counts[k] > limits[k])?;
    Some(format!(
        "Validation Error: {} exceed the maximum of {} supported on this platform ({} configured); commit failed",
        WHAT[k], limits[k], counts[k]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers_and_the_first_exceeded_limit_is_named() {
        assert_eq!(for_memory_mb(8192).unwrap()[0], 2_000);
        assert_eq!(for_memory_mb(16384).unwrap()[3], 8_000);
        assert_eq!(for_memory_mb(131_072).unwrap()[0], 6_144);
        assert_eq!(refusal(for_memory_mb(8192).unwrap(), [2_000, 2_000, 10, 10, 0]), None);
        let r = refusal(for_memory_mb(8192).unwrap(), [2_001, 2_001, 10, 10, 0]).unwrap();
        assert!(r.contains("FQDN address objects exceed the maximum of 2000") && r.contains("2001 configured"), "{r}");
    }
}
