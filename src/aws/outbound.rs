//! Cluster egress through a firewall (`network.outbound_via_firewall`): the seed's manual
//! outbound step ("Test the Outbound Workflow", templates facts §1.5 item 7) done by `up`, kept
//! right by `sync` when the autoscaling group replaces the firewall, undone by `down`:
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

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{DomainType, Filter, ResourceType, Tag, TagSpecification};
use serde::Serialize;

use super::discovery::TRUST_DEVICE_INDEX;
use super::{Aws, AwsError, DEPLOYMENT_TAG, sdk_err};

pub const OUTBOUND_TAG: &str = "pano-eks:outbound";
pub const OUTBOUND_TAG_VALUE: &str = "eip";
pub const UNTRUST_DEVICE_INDEX: i32 = 0;
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

// ------------------------------------------------------------------------------------ adapter

/// Where the outbound step works: the firewall ASG, the clusters' route tables, the IGW.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Context {
    pub deployment: String,
    pub asg_name: String,
    pub route_tables: Vec<String>,
    pub igw: Option<String>,
}

/// The `InService` firewall instances of an ASG with their untrust and trust ENIs.
pub async fn firewalls(aws: &Aws, asg_name: &str) -> Result<Vec<Firewall>, AwsError> {
    let mut out: Vec<Firewall> = super::discovery::asg_instances(aws, asg_name)
        .await?
        .iter()
        .map(|i| {
            let eni = |idx: i32| {
                i.network_interfaces()
                    .iter()
                    .find(|n| n.attachment().and_then(|a| a.device_index()) == Some(idx))
                    .and_then(|n| n.network_interface_id().map(str::to_string))
            };
            Firewall {
                id: i.instance_id().unwrap_or_default().to_string(),
                untrust_eni: eni(UNTRUST_DEVICE_INDEX),
                trust_eni: eni(TRUST_DEVICE_INDEX),
            }
        })
        .collect();
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

pub async fn observe(aws: &Aws, ctx: &Context) -> Result<Observed, AwsError> {
    let firewalls = firewalls(aws, &ctx.asg_name).await?;
    let mut tables = Vec::new();
    if !ctx.route_tables.is_empty() {
        let r = aws
            .ec2
            .describe_route_tables()
            .set_route_table_ids(Some(ctx.route_tables.clone()))
            .send()
            .await
            .map_err(|e| sdk_err("ec2:DescribeRouteTables", e))?;
        for t in r.route_tables() {
            let default = t.routes().iter().find(|r| r.destination_cidr_block() == Some(DEFAULT_ROUTE)).map(|r| {
                if let Some(e) = r.network_interface_id() {
                    RouteTarget::Eni(e.to_string())
                } else if let Some(g) = r.gateway_id() {
                    RouteTarget::Gateway(g.to_string())
                } else {
                    RouteTarget::Other(r.instance_id().or(r.nat_gateway_id()).unwrap_or("?").to_string())
                }
            });
            tables.push(RouteTable { id: t.route_table_id().unwrap_or_default().to_string(), default });
        }
        tables.sort_by(|a, b| a.id.cmp(&b.id));
    }
    let r = aws
        .ec2
        .describe_addresses()
        .filters(Filter::builder().name(format!("tag:{DEPLOYMENT_TAG}")).values(&ctx.deployment).build())
        .filters(Filter::builder().name(format!("tag:{OUTBOUND_TAG}")).values(OUTBOUND_TAG_VALUE).build())
        .send()
        .await
        .map_err(|e| sdk_err("ec2:DescribeAddresses", e))?;
    let eips = r
        .addresses()
        .iter()
        .map(|a| Eip {
            allocation_id: a.allocation_id().unwrap_or_default().to_string(),
            association_id: a.association_id().map(str::to_string),
            eni: a.network_interface_id().map(str::to_string),
            public_ip: a.public_ip().unwrap_or_default().to_string(),
        })
        .collect();
    Ok(Observed { firewalls, tables, eips })
}

pub async fn apply(aws: &Aws, ctx: &Context, plan: &OutboundPlan) -> Result<Vec<String>, AwsError> {
    let mut done = Vec::new();
    let mut allocated: Option<String> = None;
    for a in &plan.actions {
        match a {
            Action::AllocateEip => {
                let tags = TagSpecification::builder()
                    .resource_type(ResourceType::ElasticIp)
                    .tags(Tag::builder().key(DEPLOYMENT_TAG).value(&ctx.deployment).build())
                    .tags(Tag::builder().key(OUTBOUND_TAG).value(OUTBOUND_TAG_VALUE).build())
                    .build();
                let r = aws
                    .ec2
                    .allocate_address()
                    .domain(DomainType::Vpc)
                    .tag_specifications(tags)
                    .send()
                    .await
                    .map_err(|e| sdk_err("ec2:AllocateAddress", e))?;
                let id = r.allocation_id().unwrap_or_default().to_string();
                done.push(format!("allocated EIP {} ({id})", r.public_ip().unwrap_or_default()));
                allocated = Some(id);
            }
            Action::AssociateEip { allocation, eni } => {
                let id = allocation
                    .clone()
                    .or_else(|| allocated.clone())
                    .ok_or_else(|| AwsError::new("ec2:AssociateAddress", "no EIP allocated"))?;
                aws.ec2
                    .associate_address()
                    .allocation_id(&id)
                    .network_interface_id(eni)
                    .allow_reassociation(true)
                    .send()
                    .await
                    .map_err(|e| sdk_err(&format!("ec2:AssociateAddress {id} to untrust interface {eni}"), e))?;
                done.push(format!("EIP {id} → untrust interface {eni}"));
            }
            Action::DisassociateEip { association } => {
                let r = aws.ec2.disassociate_address().association_id(association).send().await;
                already_gone_is_done(
                    r.map_err(|e| sdk_err(&format!("ec2:DisassociateAddress {association}"), e)),
                    "InvalidAssociationID.NotFound",
                )?;
                done.push(format!("disassociated EIP ({association})"));
            }
            Action::ReleaseEip { allocation } => {
                let r = aws.ec2.release_address().allocation_id(allocation).send().await;
                already_gone_is_done(
                    r.map_err(|e| sdk_err(&format!("ec2:ReleaseAddress {allocation}"), e)),
                    "InvalidAllocationID.NotFound",
                )?;
                done.push(format!("released EIP {allocation}"));
            }
            Action::RouteToEni { table, eni, create } => {
                set_default_route(aws, table, DefaultRouteTo::Eni(eni), *create).await?;
                done.push(format!("{table}: 0.0.0.0/0 → firewall trust interface {eni}"));
            }
            Action::RouteToGateway { table, gateway, create } => {
                set_default_route(aws, table, DefaultRouteTo::Gateway(gateway), *create).await?;
                done.push(format!("{table}: 0.0.0.0/0 → internet gateway {gateway}"));
            }
        }
    }
    Ok(done)
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct OutboundReport {
    pub plan: OutboundPlan,
    pub done: Vec<String>,
}

/// Observe → plan → apply (used by `up` and every `sync`).
pub async fn ensure(aws: &Aws, ctx: &Context) -> Result<OutboundReport, AwsError> {
    let seen = observe(aws, ctx).await?;
    let plan = plan(&seen);
    let done = apply(aws, ctx, &plan).await?;
    Ok(OutboundReport { plan, done })
}

/// Undo (used by `down`): routes back to the IGW, EIPs released. Without a known IGW the routes
/// are left (the cluster stack's deletion removes them) and only the EIPs go.
pub async fn undo(aws: &Aws, ctx: &Context) -> Result<OutboundReport, AwsError> {
    let mut seen = observe(aws, ctx).await?;
    if ctx.igw.is_none() {
        seen.tables.clear();
    }
    let plan = plan_undo(&seen, ctx.igw.as_deref().unwrap_or_default());
    let done = apply(aws, ctx, &plan).await?;
    Ok(OutboundReport { plan, done })
}

/// The context from the stacks: cluster route tables (`ClusterRouteTable` of each cluster stack
/// that exists) and the IGW (`InternetGatewayId` of the firewall stack, else the configured one).
pub async fn context(
    aws: &Aws,
    deployment: &str,
    asg_name: &str,
    firewall_stack: &str,
    cluster_stacks: &[String],
    configured_igw: Option<&str>,
) -> Result<Context, AwsError> {
    let cfn = super::stacks::AwsCfn { client: &aws.cfn };
    let mut outputs: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for s in cluster_stacks.iter().chain(std::iter::once(&firewall_stack.to_string())) {
        if let Some(st) = super::stacks::CfnApi::describe(&cfn, s).await? {
            outputs.insert(s.clone(), st.outputs);
        }
    }
    let mut route_tables: Vec<String> = cluster_stacks.iter().filter_map(|s| outputs.get(s)?.get("ClusterRouteTable").cloned()).collect();
    route_tables.sort();
    route_tables.dedup();
    let igw = outputs.get(firewall_stack).and_then(|o| o.get("InternetGatewayId").cloned()).or(configured_igw.map(str::to_string));
    Ok(Context { deployment: deployment.to_string(), asg_name: asg_name.to_string(), route_tables, igw })
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
}

/// Where a cluster route table's default route points.
enum DefaultRouteTo<'a> {
    Eni(&'a str),
    Gateway(&'a str),
}

/// Creates (`create`) or replaces the default route of `table` towards `target`.
async fn set_default_route(aws: &Aws, table: &str, target: DefaultRouteTo<'_>, create: bool) -> Result<(), AwsError> {
    let (eni, gateway, what) = match target {
        DefaultRouteTo::Eni(e) => (Some(e.to_string()), None, format!("trust interface {e}")),
        DefaultRouteTo::Gateway(g) => (None, Some(g.to_string()), g.to_string()),
    };
    let op = if create { "ec2:CreateRoute" } else { "ec2:ReplaceRoute" };
    let sent = if create {
        aws.ec2
            .create_route()
            .route_table_id(table)
            .destination_cidr_block(DEFAULT_ROUTE)
            .set_network_interface_id(eni)
            .set_gateway_id(gateway)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| sdk_err(op, e))
    } else {
        aws.ec2
            .replace_route()
            .route_table_id(table)
            .destination_cidr_block(DEFAULT_ROUTE)
            .set_network_interface_id(eni)
            .set_gateway_id(gateway)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| sdk_err(op, e))
    };
    sent.map_err(|e| AwsError { op: format!("{op} {table} 0.0.0.0/0 → {what}"), ..e })
}

/// Undo steps are idempotent: a thing that is already gone (`not_found` code) counts as done.
fn already_gone_is_done<T>(r: Result<T, AwsError>, not_found: &str) -> Result<(), AwsError> {
    match r {
        Err(e) if !e.is_code(not_found) => Err(e),
        _ => Ok(()),
    }
}
