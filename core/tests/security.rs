//! `[sync.security]` table tests: the allow, outbound and group entries the planner adds, their
//! order in the plan, their placement in the rulebase (moves of our own rules only), conflicts,
//! holds and what follows a relabel, a re-annotation and a delete.

mod common;

use common::*;
use pano_eks_core::panorama::model::{AddressGroup, GroupValue, Position, SecurityRule};
use pano_eks_core::settings::SecuritySettings;
use pano_eks_core::*;

fn secure(place: Position) -> PlanSettings {
    let mut s = settings();
    s.security = Some(SecuritySettings { placement: place, ..SecuritySettings::default() });
    s
}

fn run_with(s: &PlanSettings, f: &Facts, o: &Observed) -> Plan {
    plan(s, f, o).unwrap()
}

fn converge_with(s: &PlanSettings, f: &Facts, start: &Observed) -> Observed {
    let mut o = start.clone();
    o.apply(&run_with(s, f, start).operations);
    o
}

/// Someone else's rule: not tagged by us.
fn foreign_rule(name: &str) -> SecurityRule {
    SecurityRule {
        name: name.into(),
        from: vec!["any".into()],
        to: vec!["any".into()],
        source: vec!["any".into()],
        destination: vec!["any".into()],
        application: vec!["any".into()],
        service: vec!["any".into()],
        action: "allow".into(),
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

fn rule_order(o: &Observed) -> Vec<&str> {
    o.security_rules.iter().map(|r| r.name.as_str()).collect()
}

fn two_services() -> Facts {
    facts(
        vec![cluster("shop", &["192.168.110.0/24"], vec![svc("default", "frontend", "82"), svc("payments", "api", "83")])],
        vec![fw("i-0abc", "192.168.2.0/24")],
    )
}

const IN_FRONTEND: &str = "prod.in.shop.default.frontend";
const IN_API: &str = "prod.in.shop.payments.api";
const OUT: &str = "prod.out.shop.192.168.110.0_24";

#[test]
fn security_on_adds_rules_groups_and_namespace_tags_in_dependency_order() {
    let s = secure(Position::Top);
    let start = Observed { security_rules: vec![foreign_rule("allow-all")], ..Default::default() };
    let p = run_with(&s, &two_services(), &start);
    assert!(p.problems.is_empty(), "{:#?}", p.problems);

    // Addresses carry the namespace tag; a tag object exists for it.
    let addr = p.operations.iter().find_map(|o| match o {
        Operation::Create { object: Object::Address(a) } if a.name == "prod.shop.payments.api" => Some(a),
        _ => None,
    });
    assert_eq!(addr.unwrap().tags, vec!["pano-eks", "pano-eks.prod.shop", "pano-eks.prod.shop.payments"]);
    let tags = op_names(&p, Kind::Tag);
    assert!(
        tags.contains(&"pano-eks.prod.shop.default".to_owned()) && tags.contains(&"pano-eks.prod.shop.payments".to_owned()),
        "{tags:?}"
    );

    // Groups: one per cluster, one per namespace, filters quoting the tags.
    let groups: Vec<(String, GroupValue)> = p
        .operations
        .iter()
        .filter_map(|o| match o {
            Operation::Create { object: Object::AddressGroup(g) } => Some((g.name.clone(), g.value.clone())),
            _ => None,
        })
        .collect();
    let dynamic = |f: &str| GroupValue::Dynamic(f.to_owned());
    assert_eq!(
        groups,
        vec![
            ("prod.shop".into(), dynamic("'pano-eks.prod.shop'")),
            ("prod.shop.default".into(), dynamic("'pano-eks.prod.shop.default'")),
            ("prod.shop.payments".into(), dynamic("'pano-eks.prod.shop.payments'")),
        ]
    );

    // Rules: the allow rule per Service (untrust → post-NAT zone trust, its pre-NAT service
    // object), the outbound rule per subnet; named and tagged like the NAT rules.
    let rules: Vec<&SecurityRule> = p
        .operations
        .iter()
        .filter_map(|o| match o {
            Operation::Create { object: Object::SecurityRule(r) } => Some(r),
            _ => None,
        })
        .collect();
    assert_eq!(rules.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), vec![IN_FRONTEND, IN_API, OUT]);
    let fe = rules[0];
    assert_eq!(
        (fe.from.as_slice(), fe.to.as_slice(), fe.service.as_slice()),
        (&["untrust".to_owned()][..], &["trust".to_owned()][..], &["prod.tcp-82".to_owned()][..])
    );
    assert_eq!(
        (fe.action.as_str(), fe.log_end, fe.tags.as_slice()),
        ("allow", true, &["pano-eks".to_owned(), "pano-eks.prod.shop".to_owned()][..])
    );
    assert_eq!((rules[2].from[0].as_str(), rules[2].to[0].as_str(), rules[2].source[0].as_str()), ("trust", "untrust", "192.168.110.0/24"));
    assert_eq!(status(&p, "default", "frontend").security_rule.as_deref(), Some(IN_FRONTEND));

    // Order: upserts (tags → objects → NAT → groups → rules) → moves → deletes.
    let pos = |kind: Kind, name: &str| p.operations.iter().position(|o| o.kind() == kind && o.name() == name).unwrap();
    assert!(pos(Kind::Tag, "pano-eks.prod.shop.payments") < pos(Kind::AddressGroup, "prod.shop.payments"));
    assert!(pos(Kind::Service, "prod.tcp-82") < pos(Kind::SecurityRule, IN_FRONTEND));
    let first_move = p.operations.iter().position(|o| matches!(o, Operation::Move { .. })).unwrap();
    assert!(p.operations[..first_move].iter().all(|o| !matches!(o, Operation::Move { .. } | Operation::Delete { .. })));

    // New rules land at the bottom; placement top moves exactly ours above the foreign one.
    let moves: Vec<(&str, &Position)> = p
        .operations
        .iter()
        .filter_map(|o| match o {
            Operation::Move { name, to, .. } => Some((name.as_str(), to)),
            _ => None,
        })
        .collect();
    assert_eq!(
        moves,
        vec![(IN_FRONTEND, &Position::Top), (IN_API, &Position::After(IN_FRONTEND.into())), (OUT, &Position::After(IN_API.into()))]
    );
    let after = converge_with(&s, &two_services(), &start);
    assert_eq!(rule_order(&after), vec![IN_FRONTEND, IN_API, OUT, "allow-all"]);

    // In place: a resync makes no write and no move.
    let again = run_with(&s, &two_services(), &after);
    assert!(again.is_noop(), "{:#?}", again.operations);
    assert_eq!(status(&again, "default", "frontend").state, ServiceState::Protected);
    assert_eq!(status(&again, "payments", "api").security_rule.as_deref(), Some(IN_API));
}

#[test]
fn a_foreign_rule_named_like_ours_is_a_conflict_and_the_others_proceed() {
    let s = secure(Position::Bottom);
    let start = Observed { security_rules: vec![foreign_rule(IN_FRONTEND)], ..Default::default() };
    let p = run_with(&s, &two_services(), &start);
    let fe = status(&p, "default", "frontend");
    assert_eq!(fe.state, ServiceState::Conflict);
    assert!(fe.reason.contains("security rule") && fe.reason.contains("not owned"), "{}", fe.reason);
    assert!(p.problems.iter().any(|x| x.kind == ProblemKind::NameConflict && x.subject == "shop/default/frontend"));
    // Nothing of ours touches the foreign rule: no update, delete or move of it.
    assert!(p.operations.iter().all(|o| !(o.kind() == Kind::SecurityRule && o.name() == IN_FRONTEND)), "{:#?}", p.operations);
    assert_eq!(status(&p, "payments", "api").security_rule.as_deref(), Some(IN_API));
    // Ours go to the bottom, below the foreign rule, which keeps its place.
    let after = converge_with(&s, &two_services(), &start);
    assert_eq!(rule_order(&after), vec![IN_FRONTEND, IN_API, OUT]);
    assert!(after.security_rules[0].tags.is_empty(), "the foreign rule is unchanged");
}

#[test]
fn our_block_after_an_anchor_follows_the_anchor_and_a_missing_anchor_moves_nothing() {
    let s = secure(Position::After("corp-first".into()));
    let start = Observed { security_rules: vec![foreign_rule("corp-first"), foreign_rule("corp-deny")], ..Default::default() };
    let placed = converge_with(&s, &two_services(), &start);
    assert_eq!(rule_order(&placed), vec!["corp-first", IN_FRONTEND, IN_API, OUT, "corp-deny"]);
    assert!(run_with(&s, &two_services(), &placed).is_noop());

    // An admin moves the anchor to the end: our block follows; foreign rules keep their order.
    let mut moved = placed.clone();
    let anchor = moved.security_rules.remove(0);
    moved.security_rules.push(anchor);
    let p = run_with(&s, &two_services(), &moved);
    assert!(p.operations.iter().all(|o| matches!(o, Operation::Move { .. })), "{:#?}", p.operations);
    assert!(p.operations.iter().all(|o| o.name().starts_with("prod.")), "only our rules move");
    let mut after = moved.clone();
    after.apply(&p.operations);
    assert_eq!(rule_order(&after), vec!["corp-deny", "corp-first", IN_FRONTEND, IN_API, OUT]);
    assert!(run_with(&s, &two_services(), &after).is_noop());

    // The anchor is gone: a clear problem, nothing moves (creates still land, at the bottom).
    let s = secure(Position::Before("no-such-rule".into()));
    let p = run_with(&s, &two_services(), &start);
    assert!(p.operations.iter().all(|o| !matches!(o, Operation::Move { .. })));
    let problem = p.problems.iter().find(|x| x.kind == ProblemKind::Placement).expect("placement problem");
    assert!(problem.message.contains("no-such-rule") && problem.message.contains("not moved"), "{}", problem.message);
    assert_eq!(op_names(&p, Kind::SecurityRule), vec![IN_FRONTEND, IN_API, OUT]);
}

#[test]
fn bad_annotations_make_that_service_invalid_and_the_others_proceed() {
    let mut s = secure(Position::Top);
    let mut f = two_services();
    f.clusters[0].services[0].annotations.insert("pano-eks/applications".into(), "web-browsing,,ssl".into());
    let p = run_with(&s, &f, &Observed::default());
    let fe = status(&p, "default", "frontend");
    assert_eq!(fe.state, ServiceState::Invalid);
    assert!(fe.reason.contains("pano-eks/applications") && fe.reason.contains("empty item"), "{}", fe.reason);
    assert!(p.operations.iter().all(|o| !o.name().contains("frontend")), "an invalid Service gets no objects");
    assert_eq!(status(&p, "payments", "api").state, ServiceState::Planned);

    // An unknown profile group: invalid; a known one (shared or the DG): on the rule.
    f.clusters[0].services[0].annotations.clear();
    f.clusters[0].services[0].annotations.insert("pano-eks/profile-group".into(), "strict".into());
    let p = run_with(&s, &f, &Observed::default());
    assert_eq!(status(&p, "default", "frontend").state, ServiceState::Invalid);
    assert!(p.problems.iter().any(|x| x.kind == ProblemKind::InvalidAnnotation && x.message.contains("\"strict\"")));
    let known = Observed { profile_groups: vec!["strict".into(), "default".into()], ..Default::default() };
    s.security.as_mut().unwrap().profile_group = Some("default".into());
    let p = run_with(&s, &f, &known);
    let groups: Vec<(String, Option<String>)> = p
        .operations
        .iter()
        .filter_map(|o| match o {
            Operation::Create { object: Object::SecurityRule(r) } if r.name.starts_with("prod.in.") => {
                Some((r.name.clone(), r.profile_group.clone()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(groups, vec![(IN_FRONTEND.into(), Some("strict".into())), (IN_API.into(), Some("default".into()))]);
}

#[test]
fn re_annotate_relabel_and_delete_follow() {
    let s = secure(Position::Top);
    let base = converge_with(&s, &two_services(), &Observed::default());
    // Panorama gave the rule a uuid: an update keeps it.
    let mut seen = base.clone();
    seen.security_rules[0].uuid = Some("u-1".into());

    // Re-annotate: only the allow rule changes, in place, with its uuid.
    let mut f = two_services();
    f.clusters[0].services[0].annotations.insert("pano-eks/applications".into(), "web-browsing".into());
    let p = run_with(&s, &f, &seen);
    assert_eq!(p.operations.len(), 1, "{:#?}", p.operations);
    let Operation::Update { object: Object::SecurityRule(r) } = &p.operations[0] else { panic!("{:?}", p.operations[0]) };
    assert_eq!(
        (r.name.as_str(), r.application.as_slice(), r.uuid.as_deref()),
        (IN_FRONTEND, &["web-browsing".to_owned()][..], Some("u-1"))
    );

    // Relabel: a new service object, both rules updated to it, the old service deleted after.
    let mut f = two_services();
    f.clusters[0].services[0].labels.insert("panw-tg-port".into(), "90".into());
    let p = run_with(&s, &f, &base);
    let pos = |kind: Kind, name: &str| p.operations.iter().position(|o| o.kind() == kind && o.name() == name).unwrap();
    assert!(pos(Kind::Service, "prod.tcp-90") < pos(Kind::SecurityRule, IN_FRONTEND));
    assert!(pos(Kind::SecurityRule, IN_FRONTEND) < pos(Kind::Service, "prod.tcp-82"));

    // Delete a Service: its rule goes before its objects, its namespace group before its tag.
    let mut f = two_services();
    f.clusters[0].services.remove(1);
    let p = run_with(&s, &f, &base);
    let gone = deletes(&p);
    let at = |kind: Kind, name: &str| {
        gone.iter().position(|(k, n)| *k == kind && n == name).unwrap_or_else(|| panic!("{kind:?} {name} in {gone:?}"))
    };
    assert!(at(Kind::SecurityRule, IN_API) < at(Kind::Address, "prod.shop.payments.api"));
    assert!(at(Kind::SecurityRule, IN_API) < at(Kind::Service, "prod.tcp-83"));
    assert!(at(Kind::AddressGroup, "prod.shop.payments") < at(Kind::Tag, "pano-eks.prod.shop.payments"));
    assert!(p.operations.iter().all(|o| !matches!(o, Operation::Move { .. })), "the rest of the block stays in place");
    let mut after = base.clone();
    after.apply(&p.operations);
    assert!(run_with(&s, &f, &after).is_noop());
}

#[test]
fn held_entries_turning_security_off_and_foreign_references() {
    let s = secure(Position::Top);
    let base = converge_with(&s, &two_services(), &Observed::default());

    // A frozen cluster's rules and groups stay as they are.
    let mut f = two_services();
    f.clusters[0].services.clear();
    f.frozen_clusters = vec!["shop".into()];
    let p = run_with(&s, &f, &base);
    assert!(
        p.operations.iter().all(|o| !matches!(o.kind(), Kind::SecurityRule | Kind::AddressGroup) || !matches!(o, Operation::Delete { .. })),
        "{:#?}",
        p.operations
    );

    // A foreign rule writes policy against our namespace group: the group is held, not deleted.
    let mut referenced = base.clone();
    referenced.referrers.push(Referrer {
        kind: ReferrerKind::SecurityRule,
        name: "ops-to-payments".into(),
        location: "device group eks-dg pre-rulebase".into(),
        names: vec!["prod.shop.payments".into()],
        tags: vec![],
    });
    let mut f = two_services();
    f.clusters[0].services.remove(1);
    let p = run_with(&s, &f, &referenced);
    assert!(!deletes(&p).iter().any(|(k, n)| *k == Kind::AddressGroup && n == "prod.shop.payments"));
    assert!(p.problems.iter().any(|x| x.kind == ProblemKind::InUse && x.message.contains("ops-to-payments")));

    // Security off: everything of it goes (rules before objects), addresses lose the namespace tag.
    let p = run(&two_services(), &base);
    let gone = deletes(&p);
    for name in [IN_FRONTEND, IN_API, OUT] {
        assert!(gone.contains(&(Kind::SecurityRule, name.to_owned())), "{name}: {gone:?}");
    }
    assert!(
        gone.contains(&(Kind::AddressGroup, "prod.shop".to_owned()))
            && gone.contains(&(Kind::Tag, "pano-eks.prod.shop.default".to_owned()))
    );
    let updated: Vec<&Address> = p
        .operations
        .iter()
        .filter_map(|o| match o {
            Operation::Update { object: Object::Address(a) } => Some(a),
            _ => None,
        })
        .collect();
    assert_eq!(updated.len(), 2);
    assert!(updated.iter().all(|a| a.tags == vec!["pano-eks".to_owned(), "pano-eks.prod.shop".to_owned()]));
    let mut off = base.clone();
    off.apply(&p.operations);
    assert!(run(&two_services(), &off).is_noop() && off.security_rules.is_empty() && off.address_groups.is_empty());

    // A foreign group holding our group's name is a conflict, never written.
    let taken = Observed {
        address_groups: vec![AddressGroup {
            name: "prod.shop".into(),
            value: GroupValue::Static(vec![]),
            description: None,
            tags: vec![],
            unmodelled: vec![],
        }],
        ..Default::default()
    };
    let p = run_with(&s, &two_services(), &taken);
    assert!(p.operations.iter().all(|o| !(o.kind() == Kind::AddressGroup && o.name() == "prod.shop")));
    assert!(p.problems.iter().any(|x| x.kind == ProblemKind::NameConflict && x.subject == "prod.shop"));
}
