//! ADAPTER: cluster egress through a firewall (`network.outbound_via_firewall`). The decision
//! (which firewall, when to move the EIP and the default routes, what `down` undoes) is
//! [`pano_eks_core::egress`]; this module reads the firewalls' interfaces, the cluster route
//! tables and our EIPs into its [`Observed`], and applies its actions, deciding nothing.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{DomainType, Filter, ResourceType, Tag, TagSpecification};
use serde::Serialize;

pub use pano_eks_core::egress::{
    Action, DEFAULT_ROUTE, Eip, Firewall, OUTBOUND_TAG, OUTBOUND_TAG_VALUE, Observed, OutboundPlan, RouteTable, RouteTarget,
    TRUST_DEVICE_INDEX, UNTRUST_DEVICE_INDEX, plan, plan_removal, plan_undo,
};

use super::{Aws, AwsError, DEPLOYMENT_TAG, sdk_err};

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
                super::already_done(
                    r.map_err(|e| sdk_err(&format!("ec2:DisassociateAddress {association}"), e)),
                    &["InvalidAssociationID.NotFound"],
                )?;
                done.push(format!("disassociated EIP ({association})"));
            }
            Action::ReleaseEip { allocation } => {
                let r = aws.ec2.release_address().allocation_id(allocation).send().await;
                super::already_done(
                    r.map_err(|e| sdk_err(&format!("ec2:ReleaseAddress {allocation}"), e)),
                    &["InvalidAllocationID.NotFound"],
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
    let seen = observe(aws, ctx).await?;
    let plan = plan_removal(&seen, ctx.igw.as_deref());
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
    let igw = pano_eks_core::egress::gateway_to_restore(
        outputs.get(firewall_stack).and_then(|o| o.get("InternetGatewayId").cloned()),
        configured_igw,
    );
    Ok(Context { deployment: deployment.to_string(), asg_name: asg_name.to_string(), route_tables, igw })
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
