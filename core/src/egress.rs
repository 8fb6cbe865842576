//! Cluster egress through a firewall (`network.outbound_via_firewall`): which firewall carries
//! the clusters' egress, and when to move our Elastic IP and the clusters' default routes. The
//! seed's manual outbound step ("Test the Outbound Workflow", templates facts §1.5 item 7),
//! done by `up`, kept right by `sync` when the autoscaling group replaces the firewall, undone by
//! `down`:
//!
//! - one Elastic IP, tagged `pano-eks:deployment=<deployment>` and `pano-eks:outbound=eip`, on
//!   the chosen firewall's untrust interface (device index 0);
//! - every cluster route table's `0.0.0.0/0` pointed at that firewall's trust interface
//!   (device index 2, added by the lifecycle lambda at launch).
//!
//! The choice is sticky: the firewall the routes already use stays chosen while it lives (then
//! the one holding our EIP, then the lowest instance id), so a resync never flaps between
//! firewalls. While no firewall has its trust interface yet, nothing is changed: a booting
//! replacement must not send the cluster's egress to the internet gateway behind the operator's
//! back, nor into a black hole.
//!
//! PURE: inputs ([`Observed`]: the firewalls with their interfaces, the cluster route tables'
//! default routes, our EIPs) → ordered [`Action`]s and the chosen firewall ([`plan`], and
//! [`plan_undo`] / [`plan_removal`] for `down`). The adapter (`src/aws/outbound.rs`) observes and
//! applies, deciding nothing.

use serde::Serialize;

/// Our EIP's ownership tag (besides the deployment's) and its value.
pub const OUTBOUND_TAG: &str = "pano-eks:outbound";
pub const OUTBOUND_TAG_VALUE: &str = "eip";
/// The firewall's untrust interface (eth0, from the launch template).
pub const UNTRUST_DEVICE_INDEX: i32 = 0;
/// The firewall's trust interface: a VM-Series' eth2 (eth0 untrust after the interface swap,
/// eth1 mgmt), attached by the lifecycle lambda at launch.
pub const TRUST_DEVICE_INDEX: i32 = 2;
/// The route egress takes.
pub const DEFAULT_ROUTE: &str = "0.0.0.0/0";

/// A firewall instance with the ENI ids of its untrust and trust interfaces.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Firewall {
    pub id: String,
    pub untrust_eni: Option<String>,
    pub trust_eni: Option<String>,
}

/// Where a route table's default route goes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum RouteTarget {
    Gateway(String),
    Eni(String),
    /// Anything else (instance, NAT gateway, …) by its id.
    Other(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteTable {
    pub id: String,
    pub default: Option<RouteTarget>,
}

/// An Elastic IP of ours.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Eip {
    pub allocation_id: String,
    pub association_id: Option<String>,
    pub eni: Option<String>,
    pub public_ip: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Observed {
    pub firewalls: Vec<Firewall>,
    pub tables: Vec<RouteTable>,
    pub eips: Vec<Eip>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Action {
    AllocateEip,
    /// `allocation: None` = the one allocated by the preceding `AllocateEip`.
    AssociateEip {
        allocation: Option<String>,
        eni: String,
    },
    DisassociateEip {
        association: String,
    },
    ReleaseEip {
        allocation: String,
    },
    /// Points the table's default route at an ENI (`create`: there is no default route yet).
    RouteToEni {
        table: String,
        eni: String,
        create: bool,
    },
    RouteToGateway {
        table: String,
        gateway: String,
        create: bool,
    },
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct OutboundPlan {
    /// The firewall egress goes through (`None` while none is ready).
    pub firewall: Option<String>,
    pub actions: Vec<Action>,
    pub problems: Vec<String>,
}

/// Egress through a firewall: EIP on its untrust ENI, default routes to its trust ENI.
pub fn plan(seen: &Observed) -> OutboundPlan {
    let mut ready: Vec<&Firewall> = seen.firewalls.iter().filter(|f| f.untrust_eni.is_some() && f.trust_eni.is_some()).collect();
    ready.sort_by(|a, b| a.id.cmp(&b.id));
    let mut out = OutboundPlan::default();
    if ready.is_empty() {
        let waiting: Vec<&str> = seen.firewalls.iter().map(|f| f.id.as_str()).collect();
        out.problems.push(format!(
            "outbound: no firewall has its trust interface (device index {TRUST_DEVICE_INDEX}) yet{}; cluster default routes left as they are",
            if waiting.is_empty() { String::new() } else { format!(" (booting: {})", waiting.join(", ")) }
        ));
        return out;
    }
    let routed = |f: &&&Firewall| seen.tables.iter().any(|t| t.default == Some(RouteTarget::Eni(f.trust_eni.clone().unwrap_or_default())));
    let holds_eip = |f: &&&Firewall| seen.eips.iter().any(|e| e.eni.is_some() && e.eni == f.untrust_eni);
    let chosen = ready.iter().find(routed).or_else(|| ready.iter().find(holds_eip)).unwrap_or(&ready[0]);
    let (untrust, trust) = (chosen.untrust_eni.clone().unwrap_or_default(), chosen.trust_eni.clone().unwrap_or_default());
    out.firewall = Some(chosen.id.clone());

    let mut eips = seen.eips.clone();
    eips.sort_by(|a, b| (a.eni.as_ref() != Some(&untrust), &a.allocation_id).cmp(&(b.eni.as_ref() != Some(&untrust), &b.allocation_id)));
    match eips.first() {
        None => {
            out.actions.push(Action::AllocateEip);
            out.actions.push(Action::AssociateEip { allocation: None, eni: untrust.clone() });
        }
        Some(e) if e.eni.as_ref() != Some(&untrust) => {
            out.actions.push(Action::AssociateEip { allocation: Some(e.allocation_id.clone()), eni: untrust.clone() })
        }
        Some(_) => {}
    }
    // One EIP is enough: extras (an interrupted earlier run) are released.
    for e in eips.iter().skip(1) {
        if let Some(a) = &e.association_id {
            out.actions.push(Action::DisassociateEip { association: a.clone() });
        }
        out.actions.push(Action::ReleaseEip { allocation: e.allocation_id.clone() });
    }
    for t in &seen.tables {
        if t.default.as_ref() != Some(&RouteTarget::Eni(trust.clone())) {
            out.actions.push(Action::RouteToEni { table: t.id.clone(), eni: trust.clone(), create: t.default.is_none() });
        }
    }
    out
}

/// Back to the template's state: default routes to the internet gateway, our EIPs released.
pub fn plan_undo(seen: &Observed, igw: &str) -> OutboundPlan {
    let mut out = OutboundPlan::default();
    for t in &seen.tables {
        if t.default.as_ref() != Some(&RouteTarget::Gateway(igw.to_string())) {
            out.actions.push(Action::RouteToGateway { table: t.id.clone(), gateway: igw.to_string(), create: t.default.is_none() });
        }
    }
    let mut eips = seen.eips.clone();
    eips.sort_by(|a, b| a.allocation_id.cmp(&b.allocation_id));
    for e in &eips {
        if let Some(a) = &e.association_id {
            out.actions.push(Action::DisassociateEip { association: a.clone() });
        }
        out.actions.push(Action::ReleaseEip { allocation: e.allocation_id.clone() });
    }
    out
}

/// `down`: [`plan_undo`] towards the internet gateway when one is known; without one the routes
/// are left (the cluster stack's deletion removes them) and only the EIPs go.
pub fn plan_removal(seen: &Observed, igw: Option<&str>) -> OutboundPlan {
    match igw {
        Some(igw) => plan_undo(seen, igw),
        None => plan_undo(&Observed { tables: Vec::new(), ..seen.clone() }, ""),
    }
}

/// The internet gateway egress goes back to: the firewall stack's (`InternetGatewayId`), else
/// the configured one (`network.existing_igw_id`).
pub fn gateway_to_restore(from_stack: Option<String>, configured: Option<&str>) -> Option<String> {
    from_stack.or(configured.map(str::to_string))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fw(id: &str, u: Option<&str>, t: Option<&str>) -> Firewall {
        Firewall { id: id.into(), untrust_eni: u.map(Into::into), trust_eni: t.map(Into::into) }
    }
    fn rt(id: &str, d: Option<RouteTarget>) -> RouteTable {
        RouteTable { id: id.into(), default: d }
    }
    fn igw(g: &str) -> Option<RouteTarget> {
        Some(RouteTarget::Gateway(g.into()))
    }
    fn eni(e: &str) -> Option<RouteTarget> {
        Some(RouteTarget::Eni(e.into()))
    }

    #[test]
    fn first_run_allocates_an_eip_and_routes_every_cluster_table_through_the_lowest_ready_firewall() {
        let seen = Observed {
            firewalls: vec![
                fw("i-2", Some("eni-u2"), Some("eni-t2")),
                fw("i-1", Some("eni-u1"), Some("eni-t1")),
                fw("i-0", Some("eni-u0"), None),
            ],
            tables: vec![rt("rtb-a", igw("igw-1")), rt("rtb-b", None)],
            eips: vec![],
        };
        let p = plan(&seen);
        assert_eq!(p.firewall.as_deref(), Some("i-1"), "i-0 has no trust interface yet");
        assert_eq!(
            p.actions,
            vec![
                Action::AllocateEip,
                Action::AssociateEip { allocation: None, eni: "eni-u1".into() },
                Action::RouteToEni { table: "rtb-a".into(), eni: "eni-t1".into(), create: false },
                Action::RouteToEni { table: "rtb-b".into(), eni: "eni-t1".into(), create: true },
            ]
        );
    }

    #[test]
    fn converged_state_is_a_no_op_and_the_routed_firewall_stays_chosen() {
        let seen = Observed {
            firewalls: vec![fw("i-1", Some("eni-u1"), Some("eni-t1")), fw("i-2", Some("eni-u2"), Some("eni-t2"))],
            tables: vec![rt("rtb-a", eni("eni-t2"))],
            eips: vec![Eip {
                allocation_id: "eipalloc-1".into(),
                association_id: Some("eipassoc-1".into()),
                eni: Some("eni-u2".into()),
                public_ip: "198.51.100.1".into(),
            }],
        };
        let p = plan(&seen);
        assert_eq!(p.firewall.as_deref(), Some("i-2"), "sticky: the routes use i-2");
        assert!(p.actions.is_empty(), "{:?}", p.actions);
    }

    #[test]
    fn a_replaced_firewall_gets_the_eip_and_the_routes() {
        // i-1 was terminated; its ENIs (and the route's target) are gone. i-3 replaced it.
        let seen = Observed {
            firewalls: vec![fw("i-3", Some("eni-u3"), Some("eni-t3"))],
            tables: vec![rt("rtb-a", eni("eni-t1"))],
            eips: vec![Eip { allocation_id: "eipalloc-1".into(), association_id: None, eni: None, public_ip: "198.51.100.1".into() }],
        };
        let p = plan(&seen);
        assert_eq!(
            p.actions,
            vec![
                Action::AssociateEip { allocation: Some("eipalloc-1".into()), eni: "eni-u3".into() },
                Action::RouteToEni { table: "rtb-a".into(), eni: "eni-t3".into(), create: false },
            ]
        );
    }

    #[test]
    fn no_ready_firewall_changes_nothing_and_says_why() {
        let seen = Observed { firewalls: vec![fw("i-9", Some("eni-u9"), None)], tables: vec![rt("rtb-a", eni("eni-gone"))], eips: vec![] };
        let p = plan(&seen);
        assert!(p.actions.is_empty());
        assert!(p.problems[0].contains("i-9"), "{:?}", p.problems);
    }

    #[test]
    fn extra_eips_are_released_keeping_the_one_in_place() {
        let seen = Observed {
            firewalls: vec![fw("i-1", Some("eni-u1"), Some("eni-t1"))],
            tables: vec![],
            eips: vec![
                Eip { allocation_id: "eipalloc-a".into(), association_id: None, eni: None, public_ip: String::new() },
                Eip {
                    allocation_id: "eipalloc-b".into(),
                    association_id: Some("x".into()),
                    eni: Some("eni-u1".into()),
                    public_ip: String::new(),
                },
            ],
        };
        assert_eq!(plan(&seen).actions, vec![Action::ReleaseEip { allocation: "eipalloc-a".into() }]);
    }

    #[test]
    fn undo_restores_the_igw_and_releases_the_eips() {
        let seen = Observed {
            firewalls: vec![],
            tables: vec![rt("rtb-a", eni("eni-t1")), rt("rtb-b", igw("igw-1")), rt("rtb-c", None)],
            eips: vec![Eip {
                allocation_id: "eipalloc-1".into(),
                association_id: Some("eipassoc-1".into()),
                eni: Some("eni-u1".into()),
                public_ip: String::new(),
            }],
        };
        assert_eq!(
            plan_undo(&seen, "igw-1").actions,
            vec![
                Action::RouteToGateway { table: "rtb-a".into(), gateway: "igw-1".into(), create: false },
                Action::RouteToGateway { table: "rtb-c".into(), gateway: "igw-1".into(), create: true },
                Action::DisassociateEip { association: "eipassoc-1".into() },
                Action::ReleaseEip { allocation: "eipalloc-1".into() },
            ]
        );
    }

    #[test]
    fn removal_without_a_known_gateway_leaves_the_routes_and_releases_the_eips() {
        let seen = Observed {
            firewalls: vec![],
            tables: vec![rt("rtb-a", eni("eni-t1"))],
            eips: vec![Eip { allocation_id: "eipalloc-1".into(), association_id: None, eni: None, public_ip: String::new() }],
        };
        let cases: &[(Option<&str>, Vec<Action>)] = &[
            (
                Some("igw-1"),
                vec![
                    Action::RouteToGateway { table: "rtb-a".into(), gateway: "igw-1".into(), create: false },
                    Action::ReleaseEip { allocation: "eipalloc-1".into() },
                ],
            ),
            (None, vec![Action::ReleaseEip { allocation: "eipalloc-1".into() }]),
        ];
        for (igw, want) in cases {
            assert_eq!(&plan_removal(&seen, *igw).actions, want, "{igw:?}");
        }
    }

    #[test]
    fn the_gateway_to_restore_is_the_stacks_then_the_configured_one() {
        let cases: &[(Option<&str>, Option<&str>, Option<&str>)] = &[
            (Some("igw-s"), Some("igw-c"), Some("igw-s")),
            (None, Some("igw-c"), Some("igw-c")),
            (Some("igw-s"), None, Some("igw-s")),
            (None, None, None),
        ];
        for (stack, configured, want) in cases {
            assert_eq!(gateway_to_restore(stack.map(str::to_string), *configured).as_deref(), *want, "{stack:?} {configured:?}");
        }
    }
}
