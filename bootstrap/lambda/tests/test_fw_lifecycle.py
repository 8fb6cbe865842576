"""Behaviour of the firewall lifecycle lambda against moto (see conftest for moto's divergences)."""

from __future__ import annotations

from typing import Any

import pytest
from fw_world import (
    ASG,
    DEPLOYMENT,
    LAUNCH_HOOK,
    REGION,
    TERMINATE_HOOK,
    client_error,
    sns_event,
)

import fw_lifecycle
from fw_lifecycle import LAUNCHING, TERMINATING

ROLES = (("mgmt", 1, "eth1"), ("trust", 2, "eth2"))


def tags(eni: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in eni.get("TagSet", [])}


def by_role(enis: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out = {tags(e)["pano-eks:role"]: e for e in enis}
    assert len(out) == len(enis), "two ENIs share a role"
    return out


def calls(world, name: str) -> list[dict[str, Any]]:
    return [kwargs for n, kwargs in world.ec2.calls if n == name]


def completion(instance_id: str, hook: str, result: str) -> dict[str, str]:
    return {
        "LifecycleHookName": hook,
        "AutoScalingGroupName": ASG,
        "LifecycleActionResult": result,
        "LifecycleActionToken": f"token-{instance_id}-{hook}",
        "InstanceId": instance_id,
    }


# --------------------------------------------------------------------------- launch


@pytest.mark.parametrize("az", ["us-east-1a", "us-east-1b"])
def test_launch_creates_and_attaches_mgmt_and_trust(world, az):
    iid = world.launch_instance(az)

    out = world.run(world.eventbridge(iid))

    assert out["result"] == "CONTINUE" and out["completed"] is True
    enis = by_role(world.tagged_enis(iid))
    assert set(enis) == {"mgmt", "trust"}
    on_instance = world.instance_enis(iid)
    assert sorted(on_instance) == [0, 1, 2]
    creates = {kw["TagSpecifications"][0]["Tags"][2]["Value"]: kw for kw in calls(world, "create_network_interface")}
    for role, index, suffix in ROLES:
        eni = enis[role]
        assert eni["SubnetId"] == world.subnets[(role, az)], "subnet of the instance's AZ"
        assert creates[role]["Groups"] == [world.sg[role]]
        assert eni["Description"] == f"{ASG}-{suffix}"
        assert eni["SourceDestCheck"] is False
        assert eni["Attachment"]["InstanceId"] == iid
        assert eni["Attachment"]["DeviceIndex"] == index
        assert on_instance[index]["NetworkInterfaceId"] == eni["NetworkInterfaceId"]
        # moto ignores DeleteOnTermination; StrictEc2 shows the flag sent for this very attachment.
        assert eni["Attachment"]["DeleteOnTermination"] is True
        assert tags(eni) == {
            "pano-eks:deployment": DEPLOYMENT,
            "pano-eks:instance": iid,
            "pano-eks:role": role,
            "Name": f"{ASG}-{suffix}",
        }
        assert out["enis"][role] == eni["NetworkInterfaceId"]
    # Idempotency tokens: one per role, stable for a re-delivery of the same action.
    tokens = {kw["ClientToken"] for kw in creates.values()}
    assert len(tokens) == 2 and all(len(t) <= 64 for t in tokens)
    # moto cannot complete lifecycle actions; RecordingAutoScaling records the call instead.
    assert world.asg.completions == [completion(iid, LAUNCH_HOOK, "CONTINUE")]
    # The new ENIs come back "pending" (as on AWS), so the handler had to wait before attaching.
    assert world.clock.sleeps


def test_launch_waits_for_a_pending_instance(world):
    # The launch action arrives while the instance is still pending (as on AWS): attaching then
    # fails with IncorrectInstanceState, so the handler waits (bounded) for "running" first.
    iid = world.launch_instance()
    world.ec2.instance_lag[iid] = 5

    out = world.run(world.eventbridge(iid))

    assert out["result"] == "CONTINUE" and out["completed"] is True, out
    assert sorted(world.instance_enis(iid)) == [0, 1, 2]
    assert world.clock.sleeps.count(fw_lifecycle.RUNNING_DELAY_S) >= 4
    # Nothing was created before the instance was running.
    names = world.ec2.names()
    last_describe = max(i for i, n in enumerate(names) if n == "describe_instances")
    assert names.index("create_network_interface") > last_describe
    assert world.asg.completions == [completion(iid, LAUNCH_HOOK, "CONTINUE")]


def test_launch_still_pending_is_retried_not_abandoned(world):
    # Still pending when this invocation's wait is used up: the handler fails the invocation so
    # Lambda's asynchronous retry runs it again later (the hook's heartbeat outlives the retries);
    # it neither abandons a healthy, slow instance nor creates anything yet.
    iid = world.launch_instance()
    world.ec2.instance_lag[iid] = 10_000
    start = world.clock.now

    with pytest.raises(fw_lifecycle.NotRunningYet):
        world.run(world.eventbridge(iid))

    waited = world.clock.now - start
    assert 0 < waited <= fw_lifecycle.RUNNING_ATTEMPTS * fw_lifecycle.RUNNING_DELAY_S
    assert waited <= 120.0 - fw_lifecycle.COMPLETION_RESERVE_S
    assert world.asg.attempts == [] and world.tagged_enis(iid) == []
    assert "create_network_interface" not in world.ec2.names()
    # The retry, once the instance runs, completes the launch.
    world.ec2.instance_lag[iid] = 0
    assert world.run(world.eventbridge(iid))["result"] == "CONTINUE"


def test_launch_waits_only_within_the_deadline(world):
    iid = world.launch_instance()
    world.ec2.instance_lag[iid] = 10_000
    start = world.clock.now
    with pytest.raises(fw_lifecycle.NotRunningYet):
        world.run(world.eventbridge(iid), remaining_ms=20_000)
    assert world.clock.now - start <= 20.0 - fw_lifecycle.COMPLETION_RESERVE_S


@pytest.mark.parametrize("state", ["shutting-down", "terminated", "stopping", "stopped"])
def test_launch_of_an_instance_that_will_never_run_abandons(world, state):
    iid = world.launch_instance()
    world.ec2.instance_state[iid] = state

    out = world.run(world.eventbridge(iid))

    assert out["result"] == "ABANDON" and state in out["reason"]
    assert world.tagged_enis(iid) == []
    assert world.asg.completions == [completion(iid, LAUNCH_HOOK, "ABANDON")]


def test_a_reused_eni_is_never_retagged(world):
    # The lambda's IAM policy allows CreateTags only as part of CreateNetworkInterface
    # (ec2:CreateAction), so an existing ENI whose Name tag differs is left as it is.
    iid = world.launch_instance()
    world.run(world.eventbridge(iid))
    eni = world.tagged_enis(iid)[0]["NetworkInterfaceId"]
    world.raw_ec2.create_tags(Resources=[eni], Tags=[{"Key": "Name", "Value": "renamed"}])
    n = len(world.ec2.calls)

    out = world.run(world.eventbridge(iid))

    assert out["result"] == "CONTINUE"
    assert "create_tags" not in world.ec2.names()[n:]


def test_launch_twice_reuses_the_enis(world):
    iid = world.launch_instance()
    event = world.eventbridge(iid)
    first = world.run(event)
    before = {e["NetworkInterfaceId"]: e["Attachment"]["AttachmentId"] for e in world.tagged_enis(iid)}
    n = len(world.ec2.calls)

    second = world.run(event)  # duplicate delivery

    after = {e["NetworkInterfaceId"]: e["Attachment"]["AttachmentId"] for e in world.tagged_enis(iid)}
    assert after == before and len(after) == 2
    assert second["result"] == "CONTINUE" and second["enis"] == first["enis"]
    mutating = {"create_network_interface", "attach_network_interface", "detach_network_interface",
                "delete_network_interface", "modify_network_interface_attribute"}
    assert not mutating & {name for name, _ in world.ec2.calls[n:]}
    # AWS (and the recorder) refuse a second completion of the same action: logged, not raised.
    assert second["completed"] is False
    assert world.asg.completions == [completion(iid, LAUNCH_HOOK, "CONTINUE")]


def test_launch_resumes_after_a_partial_earlier_run(world):
    """An earlier invocation died after creating the mgmt ENI: it is reused, not duplicated."""
    iid = world.launch_instance("us-east-1b")
    leftover = world.raw_ec2.create_network_interface(
        SubnetId=world.subnets[("mgmt", "us-east-1b")], Groups=[world.sg["mgmt"]],
        Description=f"{ASG}-eth1",
        TagSpecifications=[{"ResourceType": "network-interface", "Tags": [
            {"Key": "pano-eks:deployment", "Value": DEPLOYMENT},
            {"Key": "pano-eks:instance", "Value": iid},
            {"Key": "pano-eks:role", "Value": "mgmt"},
        ]}],
    )["NetworkInterface"]["NetworkInterfaceId"]

    out = world.run(world.eventbridge(iid))

    assert out["result"] == "CONTINUE"
    enis = by_role(world.tagged_enis(iid))
    assert enis["mgmt"]["NetworkInterfaceId"] == leftover
    assert enis["mgmt"]["Attachment"]["DeviceIndex"] == 1
    assert enis["mgmt"]["SourceDestCheck"] is False
    # Not retagged: CreateTags is allowed only at creation (the lambda's IAM condition).
    assert "Name" not in tags(enis["mgmt"])
    assert len(calls(world, "create_network_interface")) == 1  # only trust


def test_launch_retries_when_continue_cannot_be_sent(world):
    """A transient completion failure raises (Lambda retries); the retry reuses the ENIs."""
    iid = world.launch_instance()
    world.asg.error = client_error("CompleteLifecycleAction", "Throttling", "Rate exceeded")

    with pytest.raises(fw_lifecycle.CompletionError):
        world.run(world.eventbridge(iid))
    assert len(world.tagged_enis(iid)) == 2

    out = world.run(world.eventbridge(iid))
    assert out["result"] == "CONTINUE" and out["completed"] is True
    assert len(world.tagged_enis(iid)) == 2
    assert len(calls(world, "create_network_interface")) == 2


def test_attach_that_a_concurrent_delivery_won_counts_as_success(world):
    iid = world.launch_instance()

    def race(kwargs):
        if kwargs["DeviceIndex"] == 2:  # the twin invocation attaches first
            world.raw_ec2.attach_network_interface(**kwargs)
            raise client_error("AttachNetworkInterface", "InvalidNetworkInterface.InUse", "in use")

    world.ec2.fail["attach_network_interface"] = race
    out = world.run(world.eventbridge(iid))

    assert out["result"] == "CONTINUE"
    assert by_role(world.tagged_enis(iid))["trust"]["Attachment"]["DeviceIndex"] == 2


# --------------------------------------------------------------------------- launch failures


def test_attach_failure_removes_created_enis_and_abandons(world, log_lines):
    iid = world.launch_instance()

    def fail_trust(kwargs):
        if kwargs["DeviceIndex"] == 2:
            raise client_error("AttachNetworkInterface", "AttachmentLimitExceeded", "too many")

    world.ec2.fail["attach_network_interface"] = fail_trust
    out = world.run(world.eventbridge(iid))

    assert out["result"] == "ABANDON" and out["completed"] is True
    assert "AttachmentLimitExceeded" in out["reason"]
    assert out["left"] == []
    assert world.tagged_enis(iid) == []
    assert sorted(world.instance_enis(iid)) == [0]
    # The mgmt ENI was attached: it must be detached (force) before the delete that AWS would refuse.
    names = world.ec2.names()
    assert names.index("detach_network_interface") < max(i for i, n in enumerate(names) if n == "delete_network_interface")
    assert calls(world, "detach_network_interface")[0]["Force"] is True
    assert len(calls(world, "delete_network_interface")) == 2
    assert world.asg.completions == [completion(iid, LAUNCH_HOOK, "ABANDON")]
    failed = [l for l in log_lines() if l["step"] == "launch.failed"]
    assert failed and failed[0]["instance"] == iid and "AttachmentLimitExceeded" in failed[0]["reason"]


def test_create_failure_removes_the_first_eni_and_abandons(world):
    iid = world.launch_instance()

    def fail_trust(kwargs):
        if kwargs["SubnetId"] == world.subnets[("trust", "us-east-1a")]:
            raise client_error("CreateNetworkInterface", "InsufficientFreeAddressesInSubnet", "full")

    world.ec2.fail["create_network_interface"] = fail_trust
    out = world.run(world.eventbridge(iid))

    assert out["result"] == "ABANDON" and "InsufficientFreeAddressesInSubnet" in out["reason"]
    assert world.tagged_enis(iid) == []
    assert world.asg.completions == [completion(iid, LAUNCH_HOOK, "ABANDON")]


def test_failure_leaves_enis_it_did_not_create(world):
    """Device index 1 is taken by someone else's ENI: ABANDON, delete only our own new ENI."""
    iid = world.launch_instance()
    foreign = world.raw_ec2.create_network_interface(SubnetId=world.subnets[("mgmt", "us-east-1a")])
    foreign_id = foreign["NetworkInterface"]["NetworkInterfaceId"]
    world.raw_ec2.attach_network_interface(NetworkInterfaceId=foreign_id, InstanceId=iid, DeviceIndex=1)

    out = world.run(world.eventbridge(iid))

    assert out["result"] == "ABANDON" and "device index 1" in out["reason"] and foreign_id in out["reason"]
    assert world.tagged_enis(iid) == []
    assert world.instance_enis(iid)[1]["NetworkInterfaceId"] == foreign_id
    assert len(calls(world, "delete_network_interface")) == 1  # the mgmt ENI it had just created
    assert foreign_id not in [kw["NetworkInterfaceId"] for kw in calls(world, "delete_network_interface")]


@pytest.mark.parametrize("error", [
    client_error("CompleteLifecycleAction", "ValidationError", "No active Lifecycle Action found"),
    client_error("CompleteLifecycleAction", "Throttling", "Rate exceeded"),
])
def test_failed_abandon_is_logged_not_raised(world, error, log_lines):
    iid = world.launch_instance()
    world.ec2.fail["attach_network_interface"] = lambda kw: (_ for _ in ()).throw(
        client_error("AttachNetworkInterface", "InvalidParameterValue", "bad"))
    world.asg.error = error

    out = world.run(world.eventbridge(iid))  # must not raise

    assert out["result"] == "ABANDON" and out["completed"] is False
    assert "InvalidParameterValue" in out["reason"]  # the first error is the one reported
    assert world.tagged_enis(iid) == []
    completes = [l for l in log_lines() if l["step"] == "lifecycle.complete"]
    assert completes and completes[-1]["level"] == "ERROR"


@pytest.mark.parametrize("var", [
    "DEPLOYMENT", "MGMT_SUBNETS", "TRUST_SUBNETS", "MGMT_SECURITY_GROUP", "TRUST_SECURITY_GROUP",
])
def test_missing_env_var_abandons_naming_it(world, monkeypatch, var):
    iid = world.launch_instance()
    monkeypatch.delenv(var)

    out = world.run(world.eventbridge(iid))

    assert out["result"] == "ABANDON"
    assert out["reason"].startswith(var)
    assert world.ec2.calls == []  # validated before touching EC2
    assert world.asg.completions == [completion(iid, LAUNCH_HOOK, "ABANDON")]


@pytest.mark.parametrize("var,value", [
    ("MGMT_SUBNETS", "subnet-nothex!"),
    ("TRUST_SUBNETS", " , ,"),
    ("MGMT_SECURITY_GROUP", "subnet-0123456789abcdef0"),
    ("TRUST_SECURITY_GROUP", "sg-1,sg-2"),
    ("DEPLOYMENT", "   "),
])
def test_invalid_env_var_abandons_naming_it(world, monkeypatch, var, value):
    iid = world.launch_instance()
    monkeypatch.setenv(var, value)

    out = world.run(world.eventbridge(iid))

    assert out["result"] == "ABANDON" and out["reason"].startswith(var)
    assert world.tagged_enis(iid) == []


def test_instance_in_an_az_without_subnets_abandons(world):
    iid = world.launch_instance("us-east-1c")

    out = world.run(world.eventbridge(iid))

    assert out["result"] == "ABANDON"
    assert "us-east-1c" in out["reason"] and "MGMT_SUBNETS" in out["reason"]
    assert calls(world, "create_network_interface") == []
    assert world.tagged_enis(iid) == []
    assert world.asg.completions == [completion(iid, LAUNCH_HOOK, "ABANDON")]


def test_two_subnets_of_a_role_in_one_az_is_refused(world, monkeypatch):
    extra = world.raw_ec2.create_subnet(VpcId=world.vpc, CidrBlock="10.0.100.0/24",
                                        AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]
    monkeypatch.setenv("TRUST_SUBNETS", world.env["TRUST_SUBNETS"] + "," + extra)
    iid = world.launch_instance()

    out = world.run(world.eventbridge(iid))

    assert out["result"] == "ABANDON" and "TRUST_SUBNETS" in out["reason"] and extra in out["reason"]


def test_unknown_subnet_in_env_abandons(world, monkeypatch):
    monkeypatch.setenv("MGMT_SUBNETS", "subnet-0123456789abcdef0")
    iid = world.launch_instance()

    out = world.run(world.eventbridge(iid))

    assert out["result"] == "ABANDON" and "subnet-0123456789abcdef0" in out["reason"]


# --------------------------------------------------------------------------- transports


def test_sns_wrapped_launch(world):
    iid = world.launch_instance("us-east-1b")

    out = world.run(world.sns(iid))

    assert out["result"] == "CONTINUE"
    enis = by_role(world.tagged_enis(iid))
    assert enis["trust"]["SubnetId"] == world.subnets[("trust", "us-east-1b")]
    assert world.asg.completions == [completion(iid, LAUNCH_HOOK, "CONTINUE")]


def _ignored_events(world) -> dict[str, Any]:
    test_notification = {
        "AccountId": "123456789012", "RequestId": "r-1", "AutoScalingGroupARN": "arn:...",
        "AutoScalingGroupName": ASG, "Service": "AWS Auto Scaling",
        "Event": "autoscaling:TEST_NOTIFICATION", "Time": "2026-01-01T00:00:00Z",
    }
    launch_ok = world.eventbridge("i-0123456789abcdef0")
    launch_ok["detail-type"] = "EC2 Instance Launch Successful"
    wrong_source = world.eventbridge("i-0123456789abcdef0")
    wrong_source["source"] = "my.app"
    mismatch = world.eventbridge("i-0123456789abcdef0", TERMINATING)
    mismatch["detail-type"] = "EC2 Instance-launch Lifecycle Action"
    no_instance = world.eventbridge("i-0123456789abcdef0")
    del no_instance["detail"]["EC2InstanceId"]
    return {
        "sns test notification": sns_event(test_notification),
        "eventbridge test notification": dict(world.eventbridge("x"), detail=test_notification),
        "other detail-type": launch_ok,
        "other source": wrong_source,
        "detail-type/transition mismatch": mismatch,
        "missing instance id": no_instance,
        "sns non-json": {"Records": [{"Sns": {"Message": "not json"}}]},
        "empty records": {"Records": []},
        "empty": {},
        "not a dict": ["x"],
    }


def test_other_events_are_ignored_without_aws_calls(world, log_lines):
    for name, event in _ignored_events(world).items():
        out = world.run(event)
        assert out["action"] == "ignored", name
    assert world.ec2.calls == [] and world.asg.attempts == []
    ignored = [l for l in log_lines() if l["step"] == "event.ignored"]
    assert len(ignored) == len(_ignored_events(world))
    assert any("test notification" in l["reason"] for l in ignored)


# --------------------------------------------------------------------------- terminate


def test_terminate_detaches_and_deletes_the_enis(world):
    iid = world.launch_instance()
    world.run(world.eventbridge(iid))
    eni_ids = sorted(e["NetworkInterfaceId"] for e in world.tagged_enis(iid))
    sleeps_before = len(world.clock.sleeps)

    out = world.run(world.eventbridge(iid, TERMINATING))

    assert out["result"] == "CONTINUE" and out["completed"] is True
    assert sorted(out["removed"]) == eni_ids and out["left"] == []
    assert world.tagged_enis(iid) == []
    assert sorted(world.instance_enis(iid)) == [0]  # eth0 belongs to the instance, untouched
    detaches = calls(world, "detach_network_interface")
    assert len(detaches) == 2 and all(d["Force"] is True for d in detaches)
    assert sorted(d["NetworkInterfaceId"] for d in calls(world, "delete_network_interface")) == eni_ids
    assert len(world.clock.sleeps) > sleeps_before  # waited for the detach (lag in StrictEc2)
    assert world.asg.completions[-1] == completion(iid, TERMINATE_HOOK, "CONTINUE")


def test_terminate_via_sns(world):
    iid = world.launch_instance()
    world.run(world.sns(iid))

    out = world.run(world.sns(iid, TERMINATING))

    assert out["result"] == "CONTINUE" and world.tagged_enis(iid) == []


def test_terminate_when_enis_are_already_gone(world):
    iid = world.launch_instance()

    out = world.run(world.eventbridge(iid, TERMINATING))

    assert out["result"] == "CONTINUE" and out["completed"] is True
    assert out["removed"] == [] and out["left"] == []
    assert calls(world, "detach_network_interface") == calls(world, "delete_network_interface") == []
    assert world.asg.completions == [completion(iid, TERMINATE_HOOK, "CONTINUE")]


def test_terminate_when_an_eni_vanishes_midway(world):
    iid = world.launch_instance()
    world.run(world.eventbridge(iid))

    def vanish(kwargs):
        world.raw_ec2.delete_network_interface(**kwargs)  # deleted by someone else just now
        raise client_error("DeleteNetworkInterface", "InvalidNetworkInterfaceID.NotFound", "gone")

    world.ec2.fail["delete_network_interface"] = vanish
    out = world.run(world.eventbridge(iid, TERMINATING))

    assert out["result"] == "CONTINUE" and out["left"] == []
    assert world.tagged_enis(iid) == []


def test_terminate_completes_even_when_detach_never_finishes(world):
    """The detach wait is bounded; what could not be deleted is reported, CONTINUE still sent."""
    iid = world.launch_instance()
    world.run(world.eventbridge(iid))
    world.ec2.detach_lag = 10_000
    before = len(world.clock.sleeps)

    out = world.run(world.eventbridge(iid, TERMINATING))

    assert out["result"] == "CONTINUE" and out["completed"] is True
    assert len(out["left"]) == 2 and all("InUse" in l["reason"] for l in out["left"])
    assert 0 < len(world.clock.sleeps) - before < fw_lifecycle.DETACH_ATTEMPTS
    assert world.asg.completions[-1] == completion(iid, TERMINATE_HOOK, "CONTINUE")


def test_waits_stop_at_the_lambda_deadline(world):
    iid = world.launch_instance()
    world.run(world.eventbridge(iid))
    world.ec2.detach_lag = 10_000
    start, before = world.clock.now, len(world.clock.sleeps)

    out = world.run(world.eventbridge(iid, TERMINATING), remaining_ms=12_000)

    assert out["completed"] is True
    waited = world.clock.now - start
    assert waited <= 12.0 - fw_lifecycle.COMPLETION_RESERVE_S
    assert len(world.clock.sleeps) > before


def test_terminate_completes_when_describe_fails(world):
    iid = world.launch_instance()

    def boom(kwargs):
        raise client_error("DescribeNetworkInterfaces", "UnauthorizedOperation", "denied")

    world.ec2.fail["describe_network_interfaces"] = boom
    out = world.run(world.eventbridge(iid, TERMINATING))

    assert out["result"] == "CONTINUE" and out["completed"] is True
    assert "UnauthorizedOperation" in out["left"][0]["reason"]


def test_terminate_without_env_still_cleans_up(world, monkeypatch):
    iid = world.launch_instance()
    world.run(world.eventbridge(iid))
    for var in ("DEPLOYMENT", "MGMT_SUBNETS", "TRUST_SUBNETS", "MGMT_SECURITY_GROUP", "TRUST_SECURITY_GROUP"):
        monkeypatch.delenv(var)

    out = world.run(world.eventbridge(iid, TERMINATING))

    assert out["result"] == "CONTINUE" and world.tagged_enis(iid) == []


def test_terminate_only_touches_its_own_instance(world):
    keep, drop = world.launch_instance("us-east-1a"), world.launch_instance("us-east-1b")
    world.run(world.eventbridge(keep))
    world.run(world.eventbridge(drop))
    kept = sorted(e["NetworkInterfaceId"] for e in world.tagged_enis(keep))

    world.run(world.eventbridge(drop, TERMINATING))

    assert world.tagged_enis(drop) == []
    assert sorted(e["NetworkInterfaceId"] for e in world.tagged_enis(keep)) == kept
    assert sorted(world.instance_enis(keep)) == [0, 1, 2]


def test_terminate_never_detaches_from_another_instance(world):
    """An ENI tagged for the dying instance but attached elsewhere is reported, not pulled off."""
    dying, other = world.launch_instance(), world.launch_instance()
    odd = world.raw_ec2.create_network_interface(
        SubnetId=world.subnets[("mgmt", "us-east-1a")],
        TagSpecifications=[{"ResourceType": "network-interface", "Tags": [
            {"Key": "pano-eks:deployment", "Value": DEPLOYMENT},
            {"Key": "pano-eks:instance", "Value": dying},
            {"Key": "pano-eks:role", "Value": "mgmt"}]}],
    )["NetworkInterface"]["NetworkInterfaceId"]
    world.raw_ec2.attach_network_interface(NetworkInterfaceId=odd, InstanceId=other, DeviceIndex=3)

    out = world.run(world.eventbridge(dying, TERMINATING))

    assert out["result"] == "CONTINUE"
    assert out["left"] == [{"eni": odd, "reason": f"attached to {other}"}]
    assert world.instance_enis(other)[3]["NetworkInterfaceId"] == odd
    assert calls(world, "detach_network_interface") == []


# --------------------------------------------------------------------------- logging and wiring


def test_every_log_line_is_json_and_names_the_instance(world, log_lines):
    iid = world.launch_instance()
    world.run(world.eventbridge(iid))
    world.run(world.eventbridge(iid, TERMINATING))

    lines = log_lines()  # json.loads on every line
    assert lines and all({"level", "step"} <= set(l) for l in lines)
    eni_lines = [l for l in lines if l["step"].startswith("eni.")]
    assert eni_lines and all(l["instance"] == iid and l["eni"].startswith("eni-") for l in eni_lines)
    dumped = "\n".join(map(str, lines))
    assert world.env["MGMT_SECURITY_GROUP"] not in dumped and "TRUST_SECURITY_GROUP" not in dumped


def test_real_clients_are_bounded(aws_env):
    ec2, autoscaling = fw_lifecycle._make_clients()
    assert ec2.meta.region_name == REGION and autoscaling.meta.service_model.service_name == "autoscaling"
    assert ec2.meta.config.retries["total_max_attempts"] == 5
    assert ec2.meta.config.read_timeout == 20


def test_packed_sources_are_runtime_only():
    """The Rust packer zips every top-level *.py here: no test code or test-only imports there."""
    from pathlib import Path

    root = Path(fw_lifecycle.__file__).parent
    packed = sorted(p for p in root.glob("*.py"))
    assert "fw_lifecycle.py" in [p.name for p in packed]
    for path in packed:
        text = path.read_text()
        assert not path.name.startswith(("test_", "conftest")), path.name
        assert "import pytest" not in text and "moto" not in text, path.name
