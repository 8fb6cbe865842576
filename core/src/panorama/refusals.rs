//! A refused write blocks nothing else: when Panorama refuses some operations of a plan (a
//! schema or reference error, PAN-OS's own message), the adapter writes the rest and hands the
//! refusals here. This decides what they mean: which Services are not protected and why, and
//! what is reported for entries that belong to no Service (tags, outbound rules, routes, and
//! deletes of a Service that is gone). Nothing is remembered: the next converge plans the
//! refused operations again, so they land as soon as the cause is gone.

use serde::{Deserialize, Serialize};

use crate::panorama::model::{Kind, Operation};
use crate::panorama::plan::Plan;
use crate::panorama::status::{Problem, ProblemKind, ServiceState, ServiceStatus};

/// One operation Panorama refused: its index in [`Plan::operations`] and PAN-OS's message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    pub operation: usize,
    pub message: String,
}

fn verb(op: &Operation) -> &'static str {
    match op {
        Operation::Create { .. } => "create",
        Operation::Update { .. } => "update",
        Operation::Delete { .. } => "delete",
        Operation::Move { .. } => "move",
    }
}

fn what(kind: Kind) -> &'static str {
    match kind {
        Kind::Tag => "tag",
        Kind::Address => "address",
        Kind::Service => "service object",
        Kind::NatRule => "NAT rule",
        Kind::StaticRoute => "static route",
        Kind::AddressGroup => "address group",
        Kind::SecurityRule => "security rule",
    }
}

impl Plan {
    /// The plan as it went in, given the operations Panorama refused: each Service whose
    /// address, service object or NAT rule was refused becomes [`ServiceState::Refused`] (not
    /// protected, with PAN-OS's message), and every refusal is a [`ProblemKind::Refused`]
    /// problem against that Service, or against the entry itself when no Service needs it.
    /// The refused operations are removed from `operations`, which then lists what was written.
    pub fn with_refusals(mut self, refusals: &[Refusal]) -> Plan {
        if refusals.is_empty() {
            return self;
        }
        let mut refused = vec![None; self.operations.len()];
        for r in refusals {
            if let Some(slot) = refused.get_mut(r.operation) {
                *slot = Some(r.message.as_str());
            }
        }
        for (op, msg) in self.operations.iter().zip(&refused) {
            let Some(msg) = msg else { continue };
            let (kind, name) = (op.kind(), op.name());
            let message = format!("Panorama refused to {} {} {name}: {msg}", verb(op), what(kind));
            let mut hit = false;
            for st in &mut self.services {
                let needs = match kind {
                    Kind::Address => st.address.as_deref() == Some(name),
                    Kind::Service => st.service_object.as_deref() == Some(name),
                    Kind::NatRule => st.nat_rule.as_deref() == Some(name),
                    // A refused move leaves the rule in force where it is: reported, not a refusal of the Service.
                    Kind::SecurityRule => st.security_rule.as_deref() == Some(name) && !matches!(op, Operation::Move { .. }),
                    Kind::Tag | Kind::StaticRoute | Kind::AddressGroup => false,
                };
                if !needs || !matches!(st.state, ServiceState::Planned | ServiceState::Protected | ServiceState::Refused) {
                    continue;
                }
                hit = true;
                st.reason = if st.state == ServiceState::Refused { format!("{}; {message}", st.reason) } else { message.clone() };
                st.state = ServiceState::Refused;
                let subject = format!("{}/{}/{}", st.cluster, st.namespace, st.name);
                self.problems.push(Problem { subject, kind: ProblemKind::Refused, message: message.clone() });
            }
            if !hit {
                self.problems.push(Problem { subject: name.to_owned(), kind: ProblemKind::Refused, message });
            }
        }
        let mut i = 0;
        self.operations.retain(|_| {
            i += 1;
            refused[i - 1].is_none()
        });
        self.problems.sort();
        self
    }

    /// Services whose writes Panorama refused.
    pub fn refused_services(&self) -> impl Iterator<Item = &ServiceStatus> {
        self.services.iter().filter(|s| s.state == ServiceState::Refused)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::panorama::model::{Address, AddressValue, Object};

    fn status(name: &str, state: ServiceState) -> ServiceStatus {
        ServiceStatus {
            cluster: "shop".into(),
            namespace: "default".into(),
            name: name.into(),
            port: Some(82),
            state,
            reason: "this plan writes its address, service and NAT rule".into(),
            nat_rule: Some(format!("demo.in.shop.default.{name}")),
            address: Some(format!("demo.shop.default.{name}")),
            service_object: Some("demo.tcp-82".into()),
            security_rule: None,
        }
    }

    fn addr(name: &str) -> Operation {
        Operation::Create {
            object: Object::Address(Address {
                name: name.into(),
                value: AddressValue::Fqdn("h.example".into()),
                description: None,
                tags: vec![],
                unmodelled: vec![],
            }),
        }
    }

    fn plan(ops: Vec<Operation>, services: Vec<ServiceStatus>) -> Plan {
        Plan { operations: ops, device_group_changed: true, template_changed: false, services, clusters: vec![], problems: vec![] }
    }

    #[test]
    fn refusals_map_to_the_services_that_need_the_entry() {
        let ops = vec![
            addr("demo.shop.default.a"),
            addr("demo.shop.default.b"),
            Operation::Delete { kind: Kind::NatRule, name: "demo.in.shop.default.gone".into() },
            Operation::Delete { kind: Kind::Service, name: "demo.tcp-82".into() },
        ];
        let services = vec![status("a", ServiceState::Planned), status("b", ServiceState::Planned), status("c", ServiceState::Protected)];
        let cases: Vec<(Vec<Refusal>, Vec<(&str, ServiceState)>, Vec<&str>, usize)> = vec![
            // (refusals, states of a b c, problem subjects, operations left)
            (vec![], vec![("a", ServiceState::Planned), ("b", ServiceState::Planned), ("c", ServiceState::Protected)], vec![], 4),
            (
                vec![Refusal { operation: 1, message: "b -> fqdn is invalid".into() }],
                vec![("a", ServiceState::Planned), ("b", ServiceState::Refused), ("c", ServiceState::Protected)],
                vec!["shop/default/b"],
                3,
            ),
            // A delete for a Service that is gone is reported by the entry's name.
            (
                vec![Refusal { operation: 2, message: "x".into() }],
                vec![("a", ServiceState::Planned), ("b", ServiceState::Planned), ("c", ServiceState::Protected)],
                vec!["demo.in.shop.default.gone"],
                3,
            ),
            // A shared service object: every Service using it is refused, protected ones too.
            (
                vec![Refusal { operation: 3, message: "cannot be deleted because of references from: r1".into() }],
                vec![("a", ServiceState::Refused), ("b", ServiceState::Refused), ("c", ServiceState::Refused)],
                vec!["shop/default/a", "shop/default/b", "shop/default/c"],
                3,
            ),
            // An index past the end is ignored (nothing panics, nothing is dropped).
            (
                vec![Refusal { operation: 9, message: "x".into() }],
                vec![("a", ServiceState::Planned), ("b", ServiceState::Planned), ("c", ServiceState::Protected)],
                vec![],
                4,
            ),
        ];
        for (refusals, states, subjects, left) in cases {
            let p = plan(ops.clone(), services.clone()).with_refusals(&refusals);
            let got: Vec<(&str, ServiceState)> = p.services.iter().map(|s| (s.name.as_str(), s.state)).collect();
            assert_eq!(got, states, "{refusals:?}");
            let subj: Vec<&str> = p.problems.iter().map(|x| x.subject.as_str()).collect();
            assert_eq!(subj, subjects, "{refusals:?}");
            assert!(p.problems.iter().all(|x| x.kind == ProblemKind::Refused));
            assert_eq!(p.operations.len(), left);
            assert!(p.operations.iter().all(|o| !refusals.iter().any(|r| ops.get(r.operation) == Some(o))), "refused ops are gone");
        }
    }

    #[test]
    fn the_reason_carries_panos_own_message() {
        let p = plan(vec![addr("demo.shop.default.a")], vec![status("a", ServiceState::Planned)])
            .with_refusals(&[Refusal { operation: 0, message: "demo.shop.default.a -> fqdn 'x' is invalid".into() }]);
        assert_eq!(
            p.services[0].reason,
            "Panorama refused to create address demo.shop.default.a: demo.shop.default.a -> fqdn 'x' is invalid"
        );
        assert_eq!(p.refused_services().count(), 1);
    }
}
