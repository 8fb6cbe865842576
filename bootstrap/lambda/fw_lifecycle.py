"""Lifecycle-hook handler for the VM-Series firewall Auto Scaling group of a pano-eks deployment.

The firewall launch template gives each instance only eth0 (untrust). This function gives every
instance that ``<stack>-PANW-Firewall-ASG`` launches its two other interfaces, and removes them
again when the instance terminates:

* launch    -> wait (bounded) until the instance is ``running`` (the action arrives while it is
               still ``pending``, and EC2 refuses to attach interfaces to it then); then mgmt ENI
               at device index 1 (eth1) and trust ENI at device index 2 (eth2), both in the
               instance's AZ, source/dest check off, deleted with the instance; then CONTINUE.
               Still pending when the wait is used up: the invocation fails (NotRunningYet), so
               Lambda's asynchronous retry runs it again; the hooks' heartbeat (1200 s) outlives
               all three attempts of the 120 s function. An instance that will never run: ABANDON.
               Any failure removes what this invocation created and completes ABANDON, so Auto
               Scaling replaces the instance instead of running a firewall without interfaces.
* terminate -> detach and delete the ENIs tagged for the instance (the v1.0 lambda leaked them,
               which later blocked subnet/SG deletion); always CONTINUE.

Events come from EventBridge (``aws.autoscaling`` lifecycle actions) or, for the original v1.0
wiring, from SNS. Deliveries are at-least-once, so every step is idempotent: ENIs are found by
their tags and reused, creation carries an idempotency token, and an ENI already attached at the
right index is left alone.

Runtime: python3.12 (tested on 3.11), boto3/botocore only. Logs are one JSON object per line.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

LAUNCHING = "autoscaling:EC2_INSTANCE_LAUNCHING"
TERMINATING = "autoscaling:EC2_INSTANCE_TERMINATING"
TEST_NOTIFICATION = "autoscaling:TEST_NOTIFICATION"
EVENTBRIDGE_SOURCE = "aws.autoscaling"
DETAIL_TYPES = {
    "EC2 Instance-launch Lifecycle Action": LAUNCHING,
    "EC2 Instance-terminate Lifecycle Action": TERMINATING,
}

CONTINUE = "CONTINUE"
ABANDON = "ABANDON"

TAG_DEPLOYMENT = "pano-eks:deployment"
TAG_INSTANCE = "pano-eks:instance"
TAG_ROLE = "pano-eks:role"

ENV_DEPLOYMENT = "DEPLOYMENT"
ENV_MGMT_SUBNETS = "MGMT_SUBNETS"
ENV_TRUST_SUBNETS = "TRUST_SUBNETS"
ENV_MGMT_SG = "MGMT_SECURITY_GROUP"
ENV_TRUST_SG = "TRUST_SECURITY_GROUP"

_SUBNET_RE = re.compile(r"^subnet-[0-9a-f]{8,17}$")
_SG_RE = re.compile(r"^sg-[0-9a-f]{8,17}$")

# Every wait is bounded twice: by attempt count and by the invocation's deadline (remaining
# Lambda time minus COMPLETION_RESERVE_S, kept back so the lifecycle action can still be completed).
RUNNING_ATTEMPTS = 20
RUNNING_DELAY_S = 3.0
ENI_AVAILABLE_ATTEMPTS = 20
ENI_AVAILABLE_DELAY_S = 1.0
DETACH_ATTEMPTS = 30
DETACH_DELAY_S = 2.0
EVENTUAL_ATTEMPTS = 4
EVENTUAL_DELAY_S = 2.0
COMPLETION_RESERVE_S = 8.0
DESCRIBE_MAX_PAGES = 10
DEFAULT_BUDGET_S = 120.0  # when no Lambda context is available (local runs)

# Right after creation EC2 may not yet "see" a new ENI or a pending instance (eventual consistency);
# these codes are retried a few times on launch, never on terminate (there NotFound means gone).
_EVENTUAL_CODES = frozenset(
    {
        "InvalidNetworkInterfaceID.NotFound",
        "InvalidInstanceID.NotFound",
        "IncorrectState",
        "IncorrectInstanceState",
    }
)
_ENI_GONE_CODES = frozenset({"InvalidNetworkInterfaceID.NotFound"})
_ATTACHMENT_GONE_CODES = frozenset({"InvalidAttachmentID.NotFound"})

# Indirections so tests can run without real sleeps or real AWS endpoints.
_sleep: Callable[[float], None] = time.sleep
_clock: Callable[[], float] = time.monotonic


@dataclass(frozen=True)
class Role:
    """One of the two interfaces the lambda manages."""

    name: str  # value of the pano-eks:role tag
    device_index: int
    suffix: str  # eth1 / eth2, used in Description and Name


MGMT = Role("mgmt", 1, "eth1")
TRUST = Role("trust", 2, "eth2")
ROLES = (MGMT, TRUST)


class ConfigError(Exception):
    """Missing or invalid environment variable; the message starts with the variable's name."""


class LaunchError(Exception):
    """A launch precondition does not hold (wrong AZ, index taken, ...); the message says which."""


class NotRunningYet(Exception):
    """The instance is still pending after this invocation's bounded wait.

    Raised out of the handler on purpose, like CompletionError: nothing was created yet, and
    Lambda's asynchronous retry (about a minute later) finds the instance running.
    """


class CompletionError(Exception):
    """CONTINUE for a prepared launch could not be sent for a transient reason.

    Raised out of the handler on purpose: Lambda's async retry re-runs the (idempotent) launch and
    tries again, instead of letting the hook time out into ABANDON for a healthy firewall.
    """


@dataclass(frozen=True)
class Settings:
    """The template-provided environment, validated."""

    deployment: str
    mgmt_subnets: tuple[str, ...]
    trust_subnets: tuple[str, ...]
    mgmt_sg: str
    trust_sg: str

    def subnets(self, role: Role) -> tuple[str, ...]:
        return self.mgmt_subnets if role is MGMT else self.trust_subnets

    def security_group(self, role: Role) -> str:
        return self.mgmt_sg if role is MGMT else self.trust_sg

    def subnets_var(self, role: Role) -> str:
        return ENV_MGMT_SUBNETS if role is MGMT else ENV_TRUST_SUBNETS


def _required(environ: Mapping[str, str], name: str) -> str:
    value = (environ.get(name) or "").strip()
    if not value:
        raise ConfigError(f"{name} is not set (expected from the CloudFormation template)")
    return value


def _id_list(environ: Mapping[str, str], name: str, pattern: re.Pattern[str], kind: str) -> tuple[str, ...]:
    # Blank items are tolerated (an optional third AZ can leave ",," behind); malformed ids are not.
    items: list[str] = []
    for raw in _required(environ, name).split(","):
        item = raw.strip()
        if not item:
            continue
        if not pattern.match(item):
            raise ConfigError(f"{name}: {item!r} is not a {kind} id")
        if item not in items:
            items.append(item)
    if not items:
        raise ConfigError(f"{name} contains no {kind} id")
    return tuple(items)


def _single_id(environ: Mapping[str, str], name: str, pattern: re.Pattern[str], kind: str) -> str:
    value = _required(environ, name)
    if not pattern.match(value):
        raise ConfigError(f"{name}: {value!r} is not a {kind} id")
    return value


def _deployment(environ: Mapping[str, str]) -> str:
    value = _required(environ, ENV_DEPLOYMENT)
    if len(value) > 256:  # EC2 tag value limit
        raise ConfigError(f"{ENV_DEPLOYMENT} is longer than 256 characters")
    return value


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Validate the environment up front so a bad template fails with the variable's name."""
    return Settings(
        deployment=_deployment(environ),
        mgmt_subnets=_id_list(environ, ENV_MGMT_SUBNETS, _SUBNET_RE, "subnet"),
        trust_subnets=_id_list(environ, ENV_TRUST_SUBNETS, _SUBNET_RE, "subnet"),
        mgmt_sg=_single_id(environ, ENV_MGMT_SG, _SG_RE, "security group"),
        trust_sg=_single_id(environ, ENV_TRUST_SG, _SG_RE, "security group"),
    )


@dataclass(frozen=True)
class LifecycleEvent:
    """The fields of a lifecycle action that this function uses, whatever the transport."""

    transition: str
    asg_name: str
    hook_name: str
    instance_id: str
    token: str | None
    transport: str  # "eventbridge" or "sns"


def log(step: str, level: str = "INFO", **fields: Any) -> None:
    """Emit one JSON line; CloudWatch Logs keeps stdout lines as separate events."""
    record = {"level": level, "step": step}
    record.update(fields)
    print(json.dumps(record, sort_keys=True, default=str), flush=True)


def parse_event(event: Any) -> tuple[LifecycleEvent | None, str]:
    """Return (lifecycle event, "") or (None, why it is ignored)."""
    if not isinstance(event, dict):
        return None, "event is not a JSON object"

    if "Records" in event:
        records = event.get("Records")
        if not isinstance(records, list) or not records or not isinstance(records[0], dict):
            return None, "Records is empty or malformed"
        sns = records[0].get("Sns")
        if not isinstance(sns, dict) or not isinstance(sns.get("Message"), str):
            return None, "Records[0] is not an SNS notification"
        try:
            message = json.loads(sns["Message"])
        except ValueError:
            return None, "SNS Message is not JSON"
        if not isinstance(message, dict):
            return None, "SNS Message is not a JSON object"
        transport = "sns"
        expected = None
    elif "detail" in event:
        if event.get("source") != EVENTBRIDGE_SOURCE:
            return None, f"EventBridge source {event.get('source')!r} is not {EVENTBRIDGE_SOURCE}"
        expected = DETAIL_TYPES.get(event.get("detail-type"))  # type: ignore[arg-type]
        if expected is None:
            return None, f"detail-type {event.get('detail-type')!r} is not a lifecycle action"
        message = event.get("detail")
        if not isinstance(message, dict):
            return None, "EventBridge detail is not a JSON object"
        transport = "eventbridge"
    else:
        return None, "neither an EventBridge nor an SNS event"

    if message.get("Event") == TEST_NOTIFICATION:
        return None, "Auto Scaling test notification"
    transition = message.get("LifecycleTransition")
    if transition not in (LAUNCHING, TERMINATING):
        return None, f"LifecycleTransition {transition!r} is not handled"
    if expected is not None and transition != expected:
        return None, f"detail-type {event.get('detail-type')!r} disagrees with {transition}"

    fields = {}
    for key in ("AutoScalingGroupName", "LifecycleHookName", "EC2InstanceId"):
        value = message.get(key)
        if not isinstance(value, str) or not value.strip():
            return None, f"lifecycle message lacks {key}"
        fields[key] = value.strip()
    token = message.get("LifecycleActionToken")
    return (
        LifecycleEvent(
            transition=transition,
            asg_name=fields["AutoScalingGroupName"],
            hook_name=fields["LifecycleHookName"],
            instance_id=fields["EC2InstanceId"],
            token=token if isinstance(token, str) and token else None,
            transport=transport,
        ),
        "",
    )


def _code(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "ClientError"))
    return type(exc).__name__


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        op = getattr(exc, "operation_name", "") or "AWS call"
        return f"{op} failed: {err.get('Code', 'ClientError')}: {err.get('Message', '')}".rstrip()
    return f"{type(exc).__name__}: {exc}"


class Invocation:
    """Clients, clock and deadline of one invocation; owns every bounded wait."""

    def __init__(self, ec2: Any, autoscaling: Any, deadline: float,
                 sleep: Callable[[float], None], clock: Callable[[], float]):
        self.ec2 = ec2
        self.autoscaling = autoscaling
        self.deadline = deadline
        self.sleep = sleep
        self.clock = clock

    def can_wait(self, seconds: float) -> bool:
        return self.clock() + seconds <= self.deadline

    def poll(self, check: Callable[[], bool], attempts: int, delay: float) -> bool:
        """Call check until it is true, at most `attempts` times and never past the deadline."""
        for attempt in range(attempts):
            if check():
                return True
            if attempt == attempts - 1 or not self.can_wait(delay):
                break
            self.sleep(delay)
        return False

    def call(self, step: str, fn: Callable[..., Any], **kwargs: Any) -> Any:
        """Call fn, retrying the eventual-consistency error codes a bounded number of times."""
        for attempt in range(1, EVENTUAL_ATTEMPTS + 1):
            try:
                return fn(**kwargs)
            except ClientError as exc:
                code = _code(exc)
                if code not in _EVENTUAL_CODES or attempt == EVENTUAL_ATTEMPTS or not self.can_wait(EVENTUAL_DELAY_S):
                    raise
                log(step, level="WARNING", result="retry", code=code, attempt=attempt)
                self.sleep(EVENTUAL_DELAY_S)
        raise AssertionError("unreachable")  # pragma: no cover


# --------------------------------------------------------------------------- EC2 helpers


def _tag_filters(instance_id: str, deployment: str | None, role: Role | None = None) -> list[dict[str, Any]]:
    filters = [{"Name": f"tag:{TAG_INSTANCE}", "Values": [instance_id]}]
    if deployment:
        filters.append({"Name": f"tag:{TAG_DEPLOYMENT}", "Values": [deployment]})
    if role:
        filters.append({"Name": f"tag:{TAG_ROLE}", "Values": [role.name]})
    return filters


def _describe_enis(inv: Invocation, filters: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Describe by filter: an id that does not exist (yet or any more) is absent, not an error."""
    enis: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"Filters": filters}
    for _ in range(DESCRIBE_MAX_PAGES):
        page = inv.ec2.describe_network_interfaces(**kwargs)
        enis.extend(page.get("NetworkInterfaces", []))
        if not page.get("NextToken"):
            break
        kwargs["NextToken"] = page["NextToken"]
    return enis


def _describe_eni(inv: Invocation, eni_id: str) -> dict[str, Any] | None:
    found = _describe_enis(inv, [{"Name": "network-interface-id", "Values": [eni_id]}])
    return found[0] if found else None


def _tags(resource: Mapping[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in resource.get("TagSet", resource.get("Tags", [])) or []}


def _describe_instance(inv: Invocation, instance_id: str) -> dict[str, Any]:
    resp = inv.call("instance.describe", inv.ec2.describe_instances, InstanceIds=[instance_id])
    for reservation in resp.get("Reservations", []):
        for instance in reservation.get("Instances", []):
            if instance.get("InstanceId") == instance_id:
                return instance
    raise LaunchError(f"instance {instance_id} not found")


# States from which an instance never becomes running (EC2 instance lifecycle).
_NEVER_RUNNING = frozenset({"shutting-down", "terminated", "stopping", "stopped"})


def _wait_running(inv: Invocation, instance_id: str) -> dict[str, Any]:
    """The instance once it is running; NotRunningYet if still pending at the bound."""
    seen: dict[str, Any] = {}

    def running() -> bool:
        instance = _describe_instance(inv, instance_id)
        seen["instance"] = instance
        state = (instance.get("State") or {}).get("Name")
        if state in _NEVER_RUNNING:
            raise LaunchError(f"instance {instance_id} is {state}; it will not run")
        return state == "running"

    if inv.poll(running, RUNNING_ATTEMPTS, RUNNING_DELAY_S):
        return seen["instance"]
    state = (seen["instance"].get("State") or {}).get("Name")
    log("instance.wait", level="WARNING", instance=instance_id, state=state, result="not running yet")
    raise NotRunningYet(f"instance {instance_id} is still {state}; Lambda retries this event")


def _pick_subnets(inv: Invocation, settings: Settings, az: str, vpc_id: str | None) -> dict[str, str]:
    """Map role name -> the one configured subnet of that role in the instance's AZ."""
    wanted = sorted(set(settings.mgmt_subnets) | set(settings.trust_subnets))
    # By filter, so that a subnet that does not exist is reported by id and variable below.
    resp = inv.call("subnets.describe", inv.ec2.describe_subnets,
                    Filters=[{"Name": "subnet-id", "Values": wanted}])
    by_id = {s["SubnetId"]: s for s in resp.get("Subnets", [])}
    picked: dict[str, str] = {}
    for role in ROLES:
        var = settings.subnets_var(role)
        missing = [s for s in settings.subnets(role) if s not in by_id]
        if missing:
            raise LaunchError(f"{var}: subnet(s) {', '.join(missing)} not found")
        in_az = [s for s in settings.subnets(role) if by_id[s].get("AvailabilityZone") == az]
        if not in_az:
            covered = sorted({by_id[s].get("AvailabilityZone", "?") for s in settings.subnets(role)})
            raise LaunchError(
                f"no {role.name} subnet in the instance's AZ {az}: {var} covers {', '.join(covered)}"
            )
        if len(in_az) > 1:
            raise LaunchError(f"{var} has {len(in_az)} subnets in {az} ({', '.join(in_az)}); expected one per AZ")
        subnet = by_id[in_az[0]]
        if vpc_id and subnet.get("VpcId") != vpc_id:
            raise LaunchError(
                f"{var}: subnet {in_az[0]} is in {subnet.get('VpcId')}, the instance is in {vpc_id}"
            )
        picked[role.name] = in_az[0]
    return picked


def _client_token(event: LifecycleEvent, role: Role) -> str:
    """Same instance+role+lifecycle action -> same token, so concurrent duplicates share one ENI."""
    digest = hashlib.sha256(
        f"{event.instance_id}|{role.name}|{event.token or ''}".encode()
    ).hexdigest()
    return f"pano-eks-{digest[:48]}"  # ClientToken is limited to 64 ASCII characters


def _supports_client_token(ec2: Any) -> bool:
    try:
        shape = ec2.meta.service_model.operation_model("CreateNetworkInterface").input_shape
        return "ClientToken" in shape.members
    except Exception:  # noqa: BLE001 - a stub client without a model: just skip the token
        return False


def _eni_tags(settings: Settings, event: LifecycleEvent, role: Role) -> list[dict[str, str]]:
    return [
        {"Key": TAG_DEPLOYMENT, "Value": settings.deployment},
        {"Key": TAG_INSTANCE, "Value": event.instance_id},
        {"Key": TAG_ROLE, "Value": role.name},
        {"Key": "Name", "Value": f"{event.asg_name}-{role.suffix}"},
    ]


def _find_or_create_eni(inv: Invocation, settings: Settings, event: LifecycleEvent, role: Role,
                        subnet_id: str, created: list[str]) -> dict[str, Any]:
    existing = _describe_enis(inv, _tag_filters(event.instance_id, settings.deployment, role))
    if existing:
        # Prefer the one already on this instance; more than one means an earlier bug or race.
        existing.sort(key=lambda e: (
            (e.get("Attachment") or {}).get("InstanceId") != event.instance_id,
            e["NetworkInterfaceId"],
        ))
        eni = existing[0]
        if len(existing) > 1:
            log("eni.duplicates", level="WARNING", instance=event.instance_id, role=role.name,
                using=eni["NetworkInterfaceId"], others=[e["NetworkInterfaceId"] for e in existing[1:]])
        if eni.get("SubnetId") != subnet_id:
            raise LaunchError(
                f"existing {role.name} ENI {eni['NetworkInterfaceId']} is in {eni.get('SubnetId')}, expected {subnet_id}"
            )
        log("eni.reuse", instance=event.instance_id, role=role.name, eni=eni["NetworkInterfaceId"],
            status=eni.get("Status"))
        return eni

    params: dict[str, Any] = {
        "SubnetId": subnet_id,
        "Groups": [settings.security_group(role)],
        "Description": f"{event.asg_name}-{role.suffix}",
        "TagSpecifications": [{"ResourceType": "network-interface", "Tags": _eni_tags(settings, event, role)}],
    }
    if _supports_client_token(inv.ec2):
        params["ClientToken"] = _client_token(event, role)
    eni = inv.ec2.create_network_interface(**params)["NetworkInterface"]
    created.append(eni["NetworkInterfaceId"])
    log("eni.create", instance=event.instance_id, role=role.name, eni=eni["NetworkInterfaceId"],
        subnet=subnet_id, result="ok")
    return eni


def _attached_here(eni: Mapping[str, Any] | None, instance_id: str) -> dict[str, Any] | None:
    att = (eni or {}).get("Attachment") or {}
    if att.get("InstanceId") == instance_id and att.get("Status") in ("attaching", "attached"):
        return att
    return None


def _prepare_eni(inv: Invocation, settings: Settings, event: LifecycleEvent, role: Role,
                 subnet_id: str, index_owner: Mapping[int, str], created: list[str]) -> str:
    """Make sure one correctly configured ENI of `role` is attached to the instance."""
    eni = _find_or_create_eni(inv, settings, event, role, subnet_id, created)
    eni_id = eni["NetworkInterfaceId"]
    instance_id = event.instance_id

    if eni.get("SourceDestCheck", True) is not False:
        inv.call("eni.source_dest_check", inv.ec2.modify_network_interface_attribute,
                 NetworkInterfaceId=eni_id, SourceDestCheck={"Value": False})
        log("eni.source_dest_check", instance=instance_id, eni=eni_id, value=False, result="ok")

    att = _attached_here(eni, instance_id)
    if att is not None:
        if att.get("DeviceIndex") != role.device_index:
            raise LaunchError(
                f"{role.name} ENI {eni_id} is attached at device index {att.get('DeviceIndex')}, expected {role.device_index}"
            )
        log("eni.attach", instance=instance_id, eni=eni_id, device_index=role.device_index, result="already attached")
    else:
        other = (eni.get("Attachment") or {})
        if other.get("InstanceId") and other.get("Status") in ("attaching", "attached"):
            raise LaunchError(f"{role.name} ENI {eni_id} is attached to another instance {other['InstanceId']}")
        owner = index_owner.get(role.device_index)
        if owner and owner != eni_id:
            raise LaunchError(f"device index {role.device_index} of {instance_id} is already used by {owner}")

        def available() -> bool:
            current = _describe_eni(inv, eni_id)
            return bool(current) and current.get("Status") == "available"

        if eni.get("Status") != "available" and not inv.poll(available, ENI_AVAILABLE_ATTEMPTS, ENI_AVAILABLE_DELAY_S):
            raise LaunchError(f"{role.name} ENI {eni_id} did not become available")
        try:
            inv.call("eni.attach", inv.ec2.attach_network_interface,
                     NetworkInterfaceId=eni_id, InstanceId=instance_id, DeviceIndex=role.device_index)
        except ClientError:
            # A concurrent duplicate delivery may have attached it a moment ago: that is success.
            current = _describe_eni(inv, eni_id)
            att = _attached_here(current, instance_id)
            if att is None or att.get("DeviceIndex") != role.device_index:
                raise
            log("eni.attach", instance=instance_id, eni=eni_id, result="attached concurrently")
        eni = _describe_eni(inv, eni_id) or {}
        att = _attached_here(eni, instance_id)
        if att is None:
            raise LaunchError(f"{role.name} ENI {eni_id} is not attached after AttachNetworkInterface")
        log("eni.attach", instance=instance_id, eni=eni_id, device_index=role.device_index,
            attachment=att.get("AttachmentId"), result="ok")

    if not att.get("DeleteOnTermination"):
        inv.call("eni.delete_on_termination", inv.ec2.modify_network_interface_attribute,
                 NetworkInterfaceId=eni_id,
                 Attachment={"AttachmentId": att["AttachmentId"], "DeleteOnTermination": True})
        log("eni.delete_on_termination", instance=instance_id, eni=eni_id, value=True, result="ok")

    # Tags are set only by CreateNetworkInterface (TagSpecifications): the function's IAM policy
    # allows ec2:CreateTags only with ec2:CreateAction = CreateNetworkInterface, so it can never
    # mark an existing ENI as the deployment's. A reused ENI was found by those very tags.
    wanted = {t["Key"]: t["Value"] for t in _eni_tags(settings, event, role)}
    differ = sorted(k for k, v in wanted.items() if _tags(eni).get(k) != v)
    if differ:
        log("eni.tag", level="WARNING", instance=instance_id, eni=eni_id, differ=differ,
            result="left as is (tags are only set at creation)")
    return eni_id


def _remove_enis(inv: Invocation, instance_id: str, eni_ids: list[str]) -> list[dict[str, str]]:
    """Detach (force) from `instance_id`, wait until available, delete. Returns what was left."""
    left: list[dict[str, str]] = []
    pending: list[str] = []
    for eni_id in eni_ids:
        eni = _describe_eni(inv, eni_id)
        if eni is None:
            log("eni.delete", instance=instance_id, eni=eni_id, result="already gone")
            continue
        att = eni.get("Attachment") or {}
        if att.get("InstanceId") and att.get("InstanceId") != instance_id and att.get("Status") != "detached":
            # Never pull an interface off some other instance.
            log("eni.detach", level="ERROR", instance=instance_id, eni=eni_id,
                attached_to=att.get("InstanceId"), result="skipped")
            left.append({"eni": eni_id, "reason": f"attached to {att.get('InstanceId')}"})
            continue
        if att.get("Status") in ("attaching", "attached"):
            try:
                inv.ec2.detach_network_interface(AttachmentId=att["AttachmentId"], Force=True)
                log("eni.detach", instance=instance_id, eni=eni_id, attachment=att["AttachmentId"], result="ok")
            except ClientError as exc:
                if _code(exc) not in _ATTACHMENT_GONE_CODES | _ENI_GONE_CODES:
                    log("eni.detach", level="ERROR", instance=instance_id, eni=eni_id, error=_reason(exc))
                    left.append({"eni": eni_id, "reason": _reason(exc)})
                    continue
        pending.append(eni_id)

    if pending:
        def all_available() -> bool:
            found = _describe_enis(inv, [{"Name": "network-interface-id", "Values": pending}])
            return all(e.get("Status") == "available" for e in found)

        if not inv.poll(all_available, DETACH_ATTEMPTS, DETACH_DELAY_S):
            log("eni.detach.wait", level="WARNING", instance=instance_id, enis=pending, result="timeout")

    for eni_id in pending:
        try:
            inv.ec2.delete_network_interface(NetworkInterfaceId=eni_id)
            log("eni.delete", instance=instance_id, eni=eni_id, result="ok")
        except ClientError as exc:
            if _code(exc) in _ENI_GONE_CODES:
                log("eni.delete", instance=instance_id, eni=eni_id, result="already gone")
                continue
            log("eni.delete", level="ERROR", instance=instance_id, eni=eni_id, error=_reason(exc))
            left.append({"eni": eni_id, "reason": _reason(exc)})
    return left


# --------------------------------------------------------------------------- lifecycle actions


def _complete(inv: Invocation, event: LifecycleEvent, result: str) -> tuple[bool, bool]:
    """Complete the lifecycle action. Returns (completed, worth_retrying); never raises.

    ValidationError means the token expired or the action was already completed (e.g. by a
    duplicate delivery); retrying cannot help, so it is only logged.
    """
    params: dict[str, Any] = {
        "LifecycleHookName": event.hook_name,
        "AutoScalingGroupName": event.asg_name,
        "LifecycleActionResult": result,
        "InstanceId": event.instance_id,
    }
    if event.token:
        params["LifecycleActionToken"] = event.token
    try:
        inv.autoscaling.complete_lifecycle_action(**params)
    except ClientError as exc:
        final = _code(exc) == "ValidationError"
        log("lifecycle.complete", level="ERROR", instance=event.instance_id, hook=event.hook_name,
            action=result, error=_reason(exc), retryable=not final)
        return False, not final
    except BotoCoreError as exc:  # network/endpoint trouble after botocore's own retries
        log("lifecycle.complete", level="ERROR", instance=event.instance_id, hook=event.hook_name,
            action=result, error=_reason(exc), retryable=True)
        return False, True
    log("lifecycle.complete", instance=event.instance_id, hook=event.hook_name, action=result, result="ok")
    return True, False


def on_launch(inv: Invocation, event: LifecycleEvent, environ: Mapping[str, str]) -> dict[str, Any]:
    created: list[str] = []
    enis: dict[str, str] = {}
    try:
        settings = load_settings(environ)
        instance = _wait_running(inv, event.instance_id)
        log("instance.running", instance=event.instance_id)
        az = (instance.get("Placement") or {}).get("AvailabilityZone")
        if not az:
            raise LaunchError(f"instance {event.instance_id} has no availability zone")
        subnets = _pick_subnets(inv, settings, az, instance.get("VpcId"))
        log("launch.subnets", instance=event.instance_id, az=az, subnets=subnets)
        index_owner = {
            ni["Attachment"]["DeviceIndex"]: ni["NetworkInterfaceId"]
            for ni in instance.get("NetworkInterfaces", [])
            if ni.get("Attachment", {}).get("DeviceIndex") is not None
        }
        for role in ROLES:
            enis[role.name] = _prepare_eni(inv, settings, event, role, subnets[role.name], index_owner, created)
    except NotRunningYet:
        raise  # nothing created yet: let Lambda retry the event (see NotRunningYet)
    except Exception as exc:  # noqa: BLE001 - any failure must end in cleanup + ABANDON
        reason = str(exc) if isinstance(exc, (ConfigError, LaunchError)) else _reason(exc)
        log("launch.failed", level="ERROR", instance=event.instance_id, reason=reason, created=created)
        left: list[dict[str, str]] = []
        if created:
            try:
                left = _remove_enis(inv, event.instance_id, created)
            except Exception as cleanup_exc:  # noqa: BLE001 - still ABANDON; the ENIs stay tagged
                left = [{"eni": e, "reason": _reason(cleanup_exc)} for e in created]
        if left:
            log("launch.cleanup", level="ERROR", instance=event.instance_id, left=left)
        completed, _ = _complete(inv, event, ABANDON)
        return {"action": "launch", "instance": event.instance_id, "result": ABANDON,
                "completed": completed, "reason": reason, "left": left}

    completed, retry = _complete(inv, event, CONTINUE)
    if retry:
        raise CompletionError(f"could not complete CONTINUE for {event.instance_id}; ENIs {enis} are in place")
    return {"action": "launch", "instance": event.instance_id, "result": CONTINUE,
            "completed": completed, "enis": enis}


def on_terminate(inv: Invocation, event: LifecycleEvent, environ: Mapping[str, str]) -> dict[str, Any]:
    left: list[dict[str, str]] = []
    removed: list[str] = []
    try:
        deployment = None
        try:
            deployment = _deployment(environ)
        except ConfigError as exc:
            # The instance tag alone identifies our ENIs; a broken env must not stop the cleanup.
            log("terminate.config", level="ERROR", instance=event.instance_id, reason=str(exc))
        enis = _describe_enis(inv, _tag_filters(event.instance_id, deployment))
        eni_ids = sorted(e["NetworkInterfaceId"] for e in enis)
        log("terminate.found", instance=event.instance_id, enis=eni_ids)
        left = _remove_enis(inv, event.instance_id, eni_ids)
        removed = [e for e in eni_ids if e not in {x["eni"] for x in left}]
    except Exception as exc:  # noqa: BLE001 - terminate always ends in CONTINUE
        log("terminate.failed", level="ERROR", instance=event.instance_id, reason=_reason(exc))
        left.append({"eni": "?", "reason": _reason(exc)})
    if left:
        log("terminate.left", level="ERROR", instance=event.instance_id, left=left)
    completed, _ = _complete(inv, event, CONTINUE)
    return {"action": "terminate", "instance": event.instance_id, "result": CONTINUE,
            "completed": completed, "removed": removed, "left": left}


# --------------------------------------------------------------------------- entry point


def _make_clients() -> tuple[Any, Any]:
    """Short timeouts and bounded retries, so one slow call cannot eat the hook's heartbeat."""
    config = BotoConfig(retries={"mode": "standard", "total_max_attempts": 5},
                        connect_timeout=5, read_timeout=20)
    return boto3.client("ec2", config=config), boto3.client("autoscaling", config=config)


def _deadline(context: Any, clock: Callable[[], float]) -> float:
    remaining = DEFAULT_BUDGET_S
    getter = getattr(context, "get_remaining_time_in_millis", None)
    if callable(getter):
        try:
            remaining = float(getter()) / 1000.0
        except (TypeError, ValueError):
            pass
    return clock() + max(remaining - COMPLETION_RESERVE_S, 0.0)


def handler(event: Any, context: Any) -> dict[str, Any]:
    """Lambda entry point (fw_lifecycle.handler)."""
    parsed, why = parse_event(event)
    if parsed is None:
        log("event.ignored", reason=why)
        return {"action": "ignored", "reason": why}
    log("event.received", transport=parsed.transport, transition=parsed.transition,
        instance=parsed.instance_id, asg=parsed.asg_name, hook=parsed.hook_name)
    ec2, autoscaling = _make_clients()
    inv = Invocation(ec2, autoscaling, _deadline(context, _clock), _sleep, _clock)
    if parsed.transition == LAUNCHING:
        outcome = on_launch(inv, parsed, os.environ)
    else:
        outcome = on_terminate(inv, parsed, os.environ)
    log("event.done", **outcome)
    return outcome
