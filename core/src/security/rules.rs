//! The security rules pano-eks writes into the device group's pre-rulebase.
//!
//! PAN-OS semantics these follow (cited in docs/config.md, "Security policy"):
//! * Security policy matches the **pre-NAT addresses** and the **post-NAT zone**: NAT policy is
//!   looked up first on the original packet, the destination zone is then the zone of the
//!   translated destination, but source and destination addresses stay the original ones until
//!   the packet leaves (chasechristian.com "Palo Alto Networks - Understanding NAT and Security
//!   Policies"; LIVEcommunity "pre-nat IP and post-nat zone", 2023-12-30). The inbound NAT rule
//!   matches untrust → untrust (the zone of the firewall's own untrust address) and translates to
//!   the NLB in trust, so the allow rule is untrust → **trust**.
//! * Its pre-NAT destination is the firewall's own untrust address, which differs per firewall
//!   of the device group and which no object names: the rule keeps destination `any`, as the NAT
//!   rule does. The zone pair untrust → trust is only reached through a destination NAT (nothing
//!   routes from the internet to a trust address), so `any` admits no more than our NAT rules.
//! * The **service is the pre-NAT port**: with a destination NAT that translates the port (label
//!   port 82 → Service port 80), the security rule names the original port and the traffic log
//!   shows it (staffordnet.uk "Palo Alto Networks policy format", Port Translation). So the rule's
//!   service is the Service's service object, the one its NAT rule matches.
//! * Applications: App-IDs from the Service's annotation, default `any`. With App-IDs listed the
//!   per-subnet outbound rules use service `application-default` (each App-ID on its standard
//!   ports, PAN-OS's recommended form); with `any` they use service `any`.
//! * Logging at session end (`log-end yes`, PAN-OS's default, written explicitly).

use crate::panorama::model::SecurityRule;
use crate::settings::PlanSettings;

const ANY: &str = "any";

fn one(v: &str) -> Vec<String> {
    vec![v.to_owned()]
}

/// Shared shape of our rules: allow, logged at session end, enabled, ours by tags.
fn rule(name: String, from: &str, to: &str, source: String, service: String, apps: Vec<String>) -> SecurityRule {
    SecurityRule {
        name,
        from: one(from),
        to: one(to),
        source: vec![source],
        destination: one(ANY),
        application: apps,
        service: vec![service],
        action: "allow".to_owned(),
        profile_group: None,
        log_start: false,
        log_end: true,
        description: None,
        tags: vec![],
        disabled: false,
        unmodelled: vec![],
        uuid: None,
    }
}

/// The allow rule of one protected Service: untrust → trust, any source, destination `any` (see
/// the module notes), its service object (the pre-NAT label port), its applications and profile
/// group; named, described and tagged like its NAT rule.
pub fn allow_rule(
    s: &PlanSettings,
    name: &str,
    service_object: &str,
    policy: &super::annotations::RulePolicy,
    description: String,
    tags: Vec<String>,
) -> SecurityRule {
    let mut r =
        rule(name.to_owned(), &s.untrust_zone, &s.trust_zone, ANY.to_owned(), service_object.to_owned(), policy.applications.clone());
    r.profile_group = policy.profile_group.clone();
    r.description = Some(description);
    r.tags = tags;
    r
}

/// The outbound rule of one cluster subnet: trust → untrust from the subnet, the configured
/// applications; named, described and tagged like its outbound NAT rule.
pub fn outbound_rule(s: &PlanSettings, name: &str, cidr: &str, apps: &[String], description: String, tags: Vec<String>) -> SecurityRule {
    let service = if apps.iter().all(|a| a == ANY) { ANY } else { "application-default" };
    let mut r = rule(name.to_owned(), &s.trust_zone, &s.untrust_zone, cidr.to_owned(), service.to_owned(), apps.to_vec());
    r.description = Some(description);
    r.tags = tags;
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::annotations::RulePolicy;

    #[test]
    fn inbound_is_untrust_to_trust_on_the_pre_nat_port_and_outbound_trust_to_untrust_from_the_subnet() {
        let s = PlanSettings::new("prod", "dg", "t");
        let policy = RulePolicy { applications: vec!["web-browsing".into()], profile_group: Some("strict".into()) };
        let tags = vec!["pano-eks".to_owned(), "pano-eks.prod.shop".to_owned()];
        let r = allow_rule(&s, "prod.in.shop.default.web", "prod.tcp-82", &policy, "d".into(), tags.clone());
        let want = (
            vec!["untrust".to_string()],
            vec!["trust".to_string()],
            vec!["any".to_string()],
            vec!["any".to_string()],
            vec!["prod.tcp-82".to_string()],
        );
        assert_eq!((r.from.clone(), r.to.clone(), r.source.clone(), r.destination.clone(), r.service.clone()), want);
        assert_eq!((r.action.as_str(), r.log_end, r.log_start, r.disabled), ("allow", true, false, false));
        assert_eq!((r.application, r.profile_group, r.tags), (vec!["web-browsing".to_string()], Some("strict".to_string()), tags.clone()));

        let any = outbound_rule(&s, "prod.out.shop.10.0.0.0_24", "10.0.0.0/24", &["any".into()], "d".into(), tags.clone());
        assert_eq!((any.from, any.to, any.source, any.service), (one("trust"), one("untrust"), one("10.0.0.0/24"), one("any")));
        let apps = outbound_rule(&s, "x", "10.0.0.0/24", &["ssl".into(), "dns".into()], "d".into(), tags);
        assert_eq!(apps.service, one("application-default"));
    }
}
