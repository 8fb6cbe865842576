//! The front load balancer room (with `sync.manage_alb`): which target groups, listeners and
//! rules the public load balancer needs so that each protected Service reaches the firewalls.
//!
//! * [`alb`]: an ALB front (target group + listener rule per Service, priorities, conflicts), and
//!   the AWS ownership tags and names both fronts use.
//! * [`nlb`]: an NLB front (listener + target group per Service port, the 50-listener limit, its
//!   security group's ingress).
//! * [`shards`]: more ALBs when one cannot hold every Service (100 target groups, 100 rules),
//!   the stable Service → front assignment, and the firewall group's 50-attachment limit.
//! * [`nlb_shards`]: more NLBs when one cannot hold every Service port (50 listeners), by the
//!   same assignment and attachment budget.

pub mod alb;
pub mod nlb;
pub mod nlb_shards;
pub mod shards;
