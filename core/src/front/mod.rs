//! The front load balancer room (with `sync.manage_alb`): which target groups, listeners and
//! rules the public load balancer needs so that each protected Service reaches the firewalls.
//!
//! * [`alb`]: an ALB front (target group + listener rule per Service, priorities, conflicts), and
//!   the AWS ownership tags and names both fronts use.
//! * [`nlb`]: an NLB front (listener + target group per Service port, the 50-listener limit, its
//!   security group's ingress).

pub mod alb;
pub mod nlb;
