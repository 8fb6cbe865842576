//! The capacity room: what the firewalls can hold, and which Services get objects when the
//! desired state would not fit.
//!
//! A push that exceeds a firewall's limit fails for the whole device group, which blocks every
//! change for every Service. So the planner never plans past a limit: Services are admitted in a
//! stable order and the rest get the state `over-capacity` with a reason that names the limit,
//! the tier and the count; they are admitted by a later plan when room appears.
//!
//! Limits per memory tier: Palo Alto Networks, VM-Series Deployment Guide, "Maximum Limits Based on
//! Memory" (PAN-OS 11.1; docs.paloaltonetworks.com/vm-series/11-1/vm-series-deployment/license-the-vm-series-firewall/vm-series-models/maximum-limits-based-on-memory),
//! as transcribed in `shared/reference/limits.md`. Tier 1: 1–8 GB of memory (≈ VM-100), tier 2:
//! 9–18 GB (≈ VM-300), tier 3: 19–64 GB (≈ VM-500/700), tier 4: 65–128 GB. Where the page gives
//! two NAT rule figures for tier 3 (15,000 and 8,000), the smaller is used: the strictest reading.
//! Everything pushed to a firewall counts (`shared`, ancestor device groups, the device group),
//! not only pano-eks's objects.

use serde::{Deserialize, Serialize};

use crate::time::Timestamp;

/// A VM-Series memory tier (the page's rows).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Tier {
    One,
    Two,
    Three,
    Four,
}

impl Tier {
    /// The tier of a firewall with this much memory (MB, as `show system info` / the model
    /// reports it); `None` below 1 GB or above 128 GB (not a documented VM-Series size).
    pub fn from_memory_mb(mb: u64) -> Option<Tier> {
        // The page's bounds are whole GB; a VM with "8 GB" reports a little less than 8192 MB.
        let gb = mb.div_ceil(1024);
        match gb {
            1..=8 => Some(Tier::One),
            9..=18 => Some(Tier::Two),
            19..=64 => Some(Tier::Three),
            65..=128 => Some(Tier::Four),
            _ => None,
        }
    }

    pub fn number(self) -> u8 {
        match self {
            Tier::One => 1,
            Tier::Two => 2,
            Tier::Three => 3,
            Tier::Four => 4,
        }
    }

    /// The published limits of this tier (see the module comment for the source).
    pub fn limits(self) -> Limits {
        let (nat_rules, addresses, fqdn_addresses, service_objects, security_rules) = match self {
            Tier::One => (3_000, 10_000, 2_000, 2_000, 1_500),
            Tier::Two => (8_000, 20_000, 2_000, 2_000, 10_000),
            Tier::Three => (8_000, 40_000, 2_000, 5_000, 20_000),
            Tier::Four => (16_000, 160_000, 6_144, 12_000, 65_000),
        };
        Limits { fqdn_addresses, addresses, service_objects, nat_rules, security_rules }
    }
}

/// How many of each object kind a firewall holds (limits), or uses (counts).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    pub fqdn_addresses: usize,
    /// Address objects of every type (FQDN ones included).
    pub addresses: usize,
    pub service_objects: usize,
    pub nat_rules: usize,
    pub security_rules: usize,
}

impl Limits {
    fn add(&mut self, o: &Limits) {
        self.fqdn_addresses += o.fqdn_addresses;
        self.addresses += o.addresses;
        self.service_objects += o.service_objects;
        self.nat_rules += o.nat_rules;
        self.security_rules += o.security_rules;
    }

    /// The counts in the order of [`KINDS`].
    fn counts(&self) -> [usize; 5] {
        [self.fqdn_addresses, self.addresses, self.service_objects, self.nat_rules, self.security_rules]
    }
}

/// The kinds a limit applies to, as the reason names them.
const KINDS: [&str; 5] = ["FQDN address objects", "address objects", "service objects", "NAT rules", "security rules"];

/// The limits pano-eks plans against, and where they come from (for the reason text).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capacity {
    pub limits: Limits,
    /// "memory tier 2" (read from the firewalls or configured), or "firewalls.capacity".
    pub source: String,
}

impl Capacity {
    pub fn of_tier(tier: Tier) -> Capacity {
        Capacity { limits: tier.limits(), source: format!("memory tier {}", tier.number()) }
    }

    /// The smallest firewall of the set decides: every firewall gets the same push. `None`
    /// when no firewall's tier is known.
    pub fn of_firewalls(tiers: &[Tier]) -> Option<Capacity> {
        tiers.iter().min().copied().map(Capacity::of_tier)
    }
}

/// One Service that would get objects, as admission sees it.
#[derive(Clone, Debug)]
pub struct Claim<'a> {
    /// Its identity (`cluster/namespace/name`), for ties and reasons.
    pub key: String,
    pub created: &'a Timestamp,
    /// Its objects already exist in Panorama (owned): it stays admitted whatever comes later, so
    /// a new Service never evicts an admitted one.
    pub present: bool,
    /// What it spends.
    pub cost: Limits,
}

/// The verdict for one claim: `None` = admitted, `Some(reason)` = over capacity.
pub type Verdict = Option<String>;

/// Admits claims in a stable order: present ones first, then the oldest, ties by identity (as
/// label-port conflicts are resolved). `used` is what the firewalls already hold that is not a
/// claim (foreign objects of `shared`, the device group and its ancestors, and our fixed
/// entries such as outbound rules). Present claims are always admitted (they are in the running
/// push already); a new claim is admitted only if every kind it spends stays within its limit.
/// Returns one verdict per claim, in input order.
pub fn admit(capacity: &Capacity, used: Limits, claims: &[Claim]) -> Vec<Verdict> {
    let mut order: Vec<usize> = (0..claims.len()).collect();
    order.sort_by(|&a, &b| {
        let (x, y) = (&claims[a], &claims[b]);
        y.present.cmp(&x.present).then_with(|| x.created.cmp(y.created)).then_with(|| x.key.cmp(&y.key))
    });
    let mut used = used;
    let mut verdicts: Vec<Verdict> = vec![None; claims.len()];
    for i in order {
        let c = &claims[i];
        if c.present {
            used.add(&c.cost);
            continue;
        }
        let (limit, in_use, cost) = (capacity.limits.counts(), used.counts(), c.cost.counts());
        match (0..KINDS.len()).find(|&k| cost[k] > 0 && in_use[k].saturating_add(cost[k]) > limit[k]) {
            None => used.add(&c.cost),
            Some(k) => {
                verdicts[i] =
                    Some(format!("{}: {} on {}, {} in use", KINDS[k], thousands(limit[k]), capacity.source, thousands(in_use[k])));
            }
        }
    }
    verdicts
}

/// Memory of the EC2 instance types VM-Series is offered on (AWS EC2 instance type
/// specifications; Palo Alto Networks, "VM-Series Models on AWS EC2 Instances"), in MB: the
/// tier `up` can foresee before any firewall reports its own. `None`: a type not in the table.
pub fn instance_memory_mb(instance_type: &str) -> Option<u64> {
    let gb = match instance_type {
        "m5.large" | "m5n.large" | "c5.xlarge" | "c5n.xlarge" | "m4.large" | "m6i.large" | "m7i.large" => 8,
        "m5.xlarge" | "m5n.xlarge" | "c5.2xlarge" | "c5n.2xlarge" | "m4.xlarge" | "m6i.xlarge" | "m7i.xlarge" | "r5.large" => 16,
        "m5.2xlarge" | "m5n.2xlarge" | "c5.4xlarge" | "m4.2xlarge" | "m6i.2xlarge" | "m7i.2xlarge" | "r5.xlarge" => 32,
        "c5n.4xlarge" => 42,
        "m5.4xlarge" | "m5n.4xlarge" | "m4.4xlarge" | "m6i.4xlarge" | "m7i.4xlarge" | "r5.2xlarge" => 64,
        "c5.9xlarge" | "c5n.9xlarge" => 72,
        "m5.8xlarge" | "m6i.8xlarge" | "r5.4xlarge" => 128,
        _ => return None,
    };
    Some(gb * 1024)
}

/// Below this many Services per configured cluster, `up` warns that the firewalls leave little
/// room (a deployment's clusters share one set of firewalls, so one device group's limits).
pub const LITTLE_ROOM_PER_CLUSTER: usize = 250;

/// `up`'s pre-flight: how many Services the firewall set can take in all (the scarcest kind:
/// each Service spends one FQDN address, one service object and one NAT rule, plus a security
/// rule with `with_security_rules`; each cluster subnet spends one outbound NAT rule) and a
/// warning when that leaves fewer than [`LITTLE_ROOM_PER_CLUSTER`] per cluster. `None` when
/// there is room enough, or no cluster.
pub fn room_warning(capacity: &Capacity, clusters: usize, cluster_subnets: usize, with_security_rules: bool) -> Option<String> {
    if clusters == 0 {
        return None;
    }
    let l = &capacity.limits;
    let mut room = [
        ("FQDN address objects", l.fqdn_addresses),
        ("service objects", l.service_objects),
        ("NAT rules", l.nat_rules.saturating_sub(cluster_subnets)),
    ]
    .to_vec();
    if with_security_rules {
        room.push(("security rules", l.security_rules));
    }
    let (kind, services) = room.into_iter().min_by_key(|(_, n)| *n).expect("non-empty");
    let per_cluster = services / clusters;
    (per_cluster < LITTLE_ROOM_PER_CLUSTER).then(|| {
        format!(
            "the firewalls ({}) hold at most {} protected Services in all ({kind}), about {} per cluster over {clusters} \
             clusters, before anything else in shared or the device group; Services past that wait as over-capacity \
             (a larger instance type, or fewer clusters per deployment, gives more room)",
            capacity.source,
            thousands(services),
            thousands(per_cluster)
        )
    })
}

/// 2000 → "2,000" (as the vendor tables and the operator's console write it).
fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    /// One Service's objects: an FQDN address, a service object and an inbound NAT rule.
    const SERVICE: Limits = Limits { fqdn_addresses: 1, addresses: 1, service_objects: 1, nat_rules: 1, security_rules: 0 };

    fn claim<'a>(key: &str, created: &'a Timestamp, present: bool) -> Claim<'a> {
        Claim { key: key.into(), created, present, cost: SERVICE }
    }

    #[test]
    fn tiers_follow_the_memory_bounds_of_the_published_table() {
        for (mb, tier) in
            [(4096, Some(Tier::One)), (8192, Some(Tier::One)), (8193, Some(Tier::Two)), (16384, Some(Tier::Two)), (18432, Some(Tier::Two))]
        {
            assert_eq!(Tier::from_memory_mb(mb), tier, "{mb} MB");
        }
        assert_eq!(Tier::from_memory_mb(32768), Some(Tier::Three));
        assert_eq!(Tier::from_memory_mb(65 * 1024), Some(Tier::Four));
        assert_eq!(Tier::from_memory_mb(0), None);
        assert_eq!(Tier::from_memory_mb(200 * 1024), None);
        assert_eq!(Tier::One.limits().fqdn_addresses, 2_000);
        assert_eq!(Tier::Four.limits().fqdn_addresses, 6_144);
        assert_eq!(Tier::Three.limits().nat_rules, 8_000, "the smaller of the page's two tier-3 figures");
        assert_eq!(Capacity::of_firewalls(&[Tier::Three, Tier::One, Tier::Two]), Some(Capacity::of_tier(Tier::One)));
        assert_eq!(Capacity::of_firewalls(&[]), None);
    }

    #[test]
    fn admits_exactly_the_room_left_oldest_first_and_names_the_limit() {
        let cap = Capacity::of_tier(Tier::Two);
        let used = Limits { fqdn_addresses: 1_998, addresses: 2_000, service_objects: 10, nat_rules: 10, security_rules: 0 };
        let (old, mid, new) = (ts("2026-01-01T00:00:00Z"), ts("2026-02-01T00:00:00Z"), ts("2026-03-01T00:00:00Z"));
        // Input order is not age order.
        let claims = [claim("c/ns/new", &new, false), claim("c/ns/old", &old, false), claim("c/ns/mid", &mid, false)];
        let v = admit(&cap, used, &claims);
        assert_eq!(v[1], None, "the oldest is admitted");
        assert_eq!(v[2], None, "then the next oldest");
        assert_eq!(v[0].as_deref(), Some("FQDN address objects: 2,000 on memory tier 2, 2,000 in use"));
    }

    #[test]
    fn ties_by_identity_and_a_new_service_never_evicts_an_admitted_one() {
        let cap = Capacity {
            limits: Limits { fqdn_addresses: 2, addresses: 10, service_objects: 10, nat_rules: 10, security_rules: 10 },
            source: "firewalls.capacity".into(),
        };
        let same = ts("2026-01-01T00:00:00Z");
        let v =
            admit(&cap, Limits::default(), &[claim("c/ns/b", &same, false), claim("c/ns/a", &same, false), claim("c/ns/c", &same, false)]);
        assert_eq!(v.iter().map(Option::is_none).collect::<Vec<_>>(), [true, true, false], "a, b admitted by identity; c not");
        // A Service older than both, labelled later, waits: the admitted ones are present now.
        let older = ts("2025-01-01T00:00:00Z");
        let v =
            admit(&cap, Limits::default(), &[claim("c/ns/a", &same, true), claim("c/ns/b", &same, true), claim("c/ns/z", &older, false)]);
        assert_eq!(v[..2], [None, None]);
        assert_eq!(v[2].as_deref(), Some("FQDN address objects: 2 on firewalls.capacity, 2 in use"));
    }

    #[test]
    fn readmits_when_room_appears_and_present_claims_always_stay() {
        let cap = Capacity {
            limits: Limits { fqdn_addresses: 2, addresses: 10, service_objects: 10, nat_rules: 10, security_rules: 10 },
            source: "x".into(),
        };
        let t = ts("2026-01-01T00:00:00Z");
        // a left: b (waiting before) is admitted now.
        assert_eq!(admit(&cap, Limits::default(), &[claim("c/ns/c", &t, true), claim("c/ns/b", &t, false)]), [None, None]);
        // Foreign objects grew past the limit: nothing present is evicted, nothing new comes in.
        let used = Limits { fqdn_addresses: 5, ..Limits::default() };
        let v = admit(&cap, used, &[claim("c/ns/c", &t, true), claim("c/ns/d", &t, false)]);
        assert_eq!(v[0], None);
        assert_eq!(v[1].as_deref(), Some("FQDN address objects: 2 on x, 6 in use"));
    }

    #[test]
    fn preflight_warns_when_the_instance_type_leaves_little_room_per_cluster() {
        let tier = |t: &str| instance_memory_mb(t).and_then(Tier::from_memory_mb);
        assert_eq!(tier("m5.large"), Some(Tier::One));
        assert_eq!(tier("m5.xlarge"), Some(Tier::Two));
        assert_eq!(tier("m5.2xlarge"), Some(Tier::Three));
        assert_eq!(tier("m5.8xlarge"), Some(Tier::Four));
        assert_eq!(tier("t3.nano"), None);
        let t2 = Capacity::of_tier(Tier::Two);
        assert_eq!(room_warning(&t2, 4, 8, false), None, "500 per cluster");
        assert_eq!(room_warning(&t2, 8, 16, false), None, "exactly 250 per cluster");
        let w = room_warning(&t2, 16, 32, false).expect("125 per cluster");
        assert!(w.contains("memory tier 2") && w.contains("at most 2,000") && w.contains("about 125 per cluster over 16"), "{w}");
        // Tier 1 with security rules: 1,500 security rules are the scarcest.
        let w = room_warning(&Capacity::of_tier(Tier::One), 8, 16, true).expect("187 per cluster");
        assert!(w.contains("1,500 protected Services in all (security rules)"), "{w}");
        // Tier 4: 6,144 FQDN objects, 16 clusters → 384 each.
        assert_eq!(room_warning(&Capacity::of_tier(Tier::Four), 16, 32, false), None);
        assert_eq!(room_warning(&t2, 0, 0, false), None);
    }

    #[test]
    fn every_kind_counts_and_one_full_kind_is_enough_to_wait() {
        let cap = Capacity::of_tier(Tier::One);
        let t = ts("2026-01-01T00:00:00Z");
        let nat_full = Limits { nat_rules: 3_000, ..Limits::default() };
        assert_eq!(
            admit(&cap, nat_full, &[claim("c/ns/a", &t, false)])[0].as_deref(),
            Some("NAT rules: 3,000 on memory tier 1, 3,000 in use")
        );
        let with_rule = Claim { cost: Limits { security_rules: 1, ..SERVICE }, ..claim("c/ns/a", &t, false) };
        let sec_full = Limits { security_rules: 1_500, ..Limits::default() };
        assert_eq!(admit(&cap, sec_full, &[with_rule])[0].as_deref(), Some("security rules: 1,500 on memory tier 1, 1,500 in use"));
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(160_000), "160,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
