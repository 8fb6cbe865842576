use std::collections::BTreeMap;

use super::*;

fn state(status: &str) -> StackState {
    StackState { id: "arn:stack/x".into(), status: status.into(), ..Default::default() }
}

#[test]
fn decide_table() {
    assert_eq!(decide(None), Action::Create);
    for (status, want) in [
        ("DELETE_COMPLETE", Action::Create),
        ("REVIEW_IN_PROGRESS", Action::Create),
        ("ROLLBACK_COMPLETE", Action::Recreate),
        ("ROLLBACK_FAILED", Action::Recreate),
        ("CREATE_IN_PROGRESS", Action::Wait),
        ("UPDATE_COMPLETE_CLEANUP_IN_PROGRESS", Action::Wait),
        ("DELETE_IN_PROGRESS", Action::Wait),
        ("CREATE_COMPLETE", Action::Update),
        ("UPDATE_COMPLETE", Action::Update),
        ("UPDATE_ROLLBACK_COMPLETE", Action::Update),
        ("IMPORT_COMPLETE", Action::Update),
    ] {
        assert_eq!(decide(Some(&state(status))), want, "{status}");
    }
    assert!(matches!(decide(Some(&state("UPDATE_ROLLBACK_FAILED"))), Action::Blocked(m) if m.contains("continue")));
    assert!(matches!(decide(Some(&state("DELETE_FAILED"))), Action::Blocked(m) if m.contains("down")));
}

#[test]
fn settled_table() {
    for (s, want) in [
        ("CREATE_COMPLETE", Some(true)),
        ("UPDATE_COMPLETE", Some(true)),
        ("DELETE_COMPLETE", Some(true)),
        ("CREATE_IN_PROGRESS", None),
        ("UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS", None),
        ("ROLLBACK_COMPLETE", Some(false)),
        ("UPDATE_ROLLBACK_COMPLETE", Some(false)),
        ("DELETE_FAILED", Some(false)),
        ("CREATE_FAILED", Some(false)),
    ] {
        assert_eq!(settled(s), want, "{s}");
    }
}

fn ev(id: &str, logical: &str, ty: &str, status: &str, reason: Option<&str>) -> StackEvent {
    StackEvent {
        id: id.into(),
        logical_id: logical.into(),
        resource_type: ty.into(),
        status: status.into(),
        reason: reason.map(str::to_string),
    }
}

#[test]
fn failure_reasons_are_the_failed_resources_of_the_latest_operation_oldest_first() {
    const S: &str = "AWS::CloudFormation::Stack";
    // Newest first.
    let events = vec![
        ev("9", "demo", S, "ROLLBACK_COMPLETE", None),
        ev("8", "Sg", "AWS::EC2::SecurityGroup", "DELETE_COMPLETE", None),
        ev("7", "demo", S, "ROLLBACK_IN_PROGRESS", Some("The following resource(s) failed to create: [Subnet1]")),
        ev("6", "Sg", "AWS::EC2::SecurityGroup", "CREATE_FAILED", Some("Resource creation cancelled")),
        ev("5", "Subnet1", "AWS::EC2::Subnet", "CREATE_FAILED", Some("The CIDR '10.9.0.0/24' is invalid.")),
        ev("4", "Vpc", "AWS::EC2::VPC", "CREATE_COMPLETE", None),
        ev("3", "demo", S, "CREATE_IN_PROGRESS", Some("User Initiated")),
        ev("2", "Old", "AWS::EC2::VPC", "CREATE_FAILED", Some("an earlier run")),
        ev("1", "demo", S, "CREATE_IN_PROGRESS", Some("User Initiated")),
    ];
    assert_eq!(
        failure_reasons(&events, "demo"),
        vec!["Subnet1 (AWS::EC2::Subnet): CREATE_FAILED The CIDR '10.9.0.0/24' is invalid.".to_string()]
    );
    let delete = vec![
        ev("2", "demo", S, "DELETE_FAILED", Some("resource sg-1 has a dependent object")),
        ev("1", "demo", S, "DELETE_IN_PROGRESS", Some("User Initiated")),
    ];
    assert_eq!(failure_reasons(&delete, "demo"), vec!["stack demo: DELETE_FAILED resource sg-1 has a dependent object".to_string()]);
}

#[test]
fn unchanged_needs_same_body_parameters_and_tags() {
    let req = DeployRequest {
        name: "s".into(),
        template: TemplateSource::Body("b".into()),
        body: "b\n".into(),
        parameters: BTreeMap::from([("P".to_string(), "1".to_string())]),
        tags: BTreeMap::from([("t".to_string(), "v".to_string())]),
    };
    let mut st = state("CREATE_COMPLETE");
    st.parameters = req.parameters.clone();
    st.tags = BTreeMap::from([("t".to_string(), "v".to_string()), ("aws:extra".to_string(), "x".to_string())]);
    assert!(unchanged(&st, Some("b"), &req));
    assert!(!unchanged(&st, Some("c"), &req));
    assert!(!unchanged(&st, None, &req));
    let mut p = st.clone();
    p.parameters.insert("P".into(), "2".into());
    assert!(!unchanged(&p, Some("b"), &req));
    let mut t = st.clone();
    t.tags.clear();
    assert!(!unchanged(&t, Some("b"), &req));
}

#[test]
fn an_empty_change_set_and_a_delete_that_must_wait() {
    assert!(change_set_is_empty("The submitted information didn't contain changes. Submit different information to create a change set."));
    assert!(change_set_is_empty("No updates are to be performed."));
    assert!(!change_set_is_empty("Template format error: unsupported structure."));
    for (status, want) in [
        ("CREATE_IN_PROGRESS", true),
        ("UPDATE_IN_PROGRESS", true),
        ("UPDATE_ROLLBACK_IN_PROGRESS", true),
        ("DELETE_IN_PROGRESS", false),
        ("REVIEW_IN_PROGRESS", false),
        ("CREATE_COMPLETE", false),
        ("ROLLBACK_COMPLETE", false),
    ] {
        assert_eq!(delete_waits_first(status), want, "{status}");
    }
}

#[test]
fn resources_count_as_done_once_created_or_updated() {
    for (status, want) in [
        ("CREATE_COMPLETE", true),
        ("UPDATE_COMPLETE", true),
        ("UPDATE_IN_PROGRESS", true),
        ("UPDATE_COMPLETE_CLEANUP_IN_PROGRESS", true),
        ("CREATE_IN_PROGRESS", false),
        ("CREATE_FAILED", false),
        ("DELETE_COMPLETE", false),
    ] {
        assert_eq!(is_resource_done(status), want, "{status}");
    }
}

#[test]
fn events_and_change_summaries_read_as_one_line() {
    let e = StackEvent {
        id: "1".into(),
        logical_id: "Vpc".into(),
        resource_type: "AWS::EC2::VPC".into(),
        status: "CREATE_FAILED".into(),
        reason: Some("limit".into()),
    };
    assert_eq!(format_event(&e), "CREATE_FAILED AWS::EC2::VPC Vpc: limit");
    let c = |a: &str, r: Option<&str>| Change {
        action: a.into(),
        logical_id: "X".into(),
        resource_type: "T".into(),
        replacement: r.map(str::to_string),
    };
    assert_eq!(
        summarize(&[c("Add", None), c("Modify", Some("True")), c("Modify", Some("False"))]),
        "1 to add, 2 to modify (1 replaced), 0 to remove"
    );
}
