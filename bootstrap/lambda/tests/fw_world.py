"""Test world for the lifecycle lambda: a moto (in-process) VPC with firewall subnets.

Kept out of conftest.py under a unique module name: the project runs this suite in one pytest
process with other suites that have their own conftest.py, so `from conftest import` is ambiguous.

moto 5.2.5 is more lenient than AWS in ways that matter here, so the handler talks to it through
two thin wrappers that put the AWS behaviour back (each divergence is listed on the class). The
wrappers only refuse or delay things AWS refuses or delays; they never make a call succeed that
AWS would reject.
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any, Callable

import boto3
import pytest
from botocore.exceptions import ClientError

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import fw_lifecycle  # noqa: E402

REGION = "us-east-1"
DEPLOYMENT = "demo"
ASG = "demo-PANW-Firewall-ASG"
LAUNCH_HOOK = f"{ASG}-life-cycle-launch"
TERMINATE_HOOK = f"{ASG}-life-cycle-terminate"


def client_error(operation: str, code: str, message: str = "injected") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, operation)


class StrictEc2:
    """The moto EC2 client, with a call log and the AWS rules moto does not enforce.

    Divergences of moto 5.2.5 from AWS that this wrapper corrects:
    * DeleteNetworkInterface of an attached (or still detaching) ENI succeeds in moto; AWS fails
      with InvalidNetworkInterface.InUse. Here it fails.
    * AttachNetworkInterface at a device index that is already taken, or of an ENI that is in use,
      silently replaces/steals in moto; AWS rejects it. Here it is rejected.
    * ModifyNetworkInterfaceAttribute(Attachment={DeleteOnTermination}) is accepted and ignored by
      moto. Here the attachment id is checked against the ENI (AWS would reject a wrong one) and the
      flag is recorded and shown in DescribeNetworkInterfaces.
    * moto ENIs are "available" at once and detach instantly. AWS returns "pending" from create and
      takes a while to detach; `create_lag`/`detach_lag` make the next N describes of that ENI show
      pending / in-use+detaching, so the handler's bounded waits are really exercised.
    * moto instances are "running" at once. On AWS the launch lifecycle action arrives while the
      instance is still "pending", and AttachNetworkInterface on it fails with
      IncorrectInstanceState. `instance_lag[id] = n` makes the next n DescribeInstances show it
      pending (and attaching refused meanwhile); `instance_state[id]` forces a state for good.

    `fail[name]` may hold a callable(kwargs) run before the real call; it raises to inject a failure.
    """

    def __init__(self, real: Any, create_lag: int = 1, detach_lag: int = 2):
        self._real = real
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.fail: dict[str, Callable[[dict[str, Any]], None]] = {}
        self.create_lag = create_lag
        self.detach_lag = detach_lag
        self.delete_on_termination: dict[str, bool] = {}  # attachment id -> flag
        self._pending: dict[str, int] = {}
        self._detaching: dict[str, tuple[int, dict[str, Any]]] = {}
        self.instance_lag: dict[str, int] = {}
        self.instance_state: dict[str, str] = {}

    # -- plumbing
    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._real, name)
        if name.startswith("_") or name in ("meta", "exceptions") or not callable(attr):
            return attr

        def call(**kwargs: Any) -> Any:
            self._record(name, kwargs)
            return attr(**kwargs)

        return call

    def _record(self, name: str, kwargs: dict[str, Any]) -> None:
        self.calls.append((name, copy.deepcopy(kwargs)))
        hook = self.fail.get(name)
        if hook:
            hook(kwargs)

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    def _raw_eni(self, eni_id: str) -> dict[str, Any] | None:
        found = self._real.describe_network_interfaces(
            Filters=[{"Name": "network-interface-id", "Values": [eni_id]}]
        )["NetworkInterfaces"]
        return found[0] if found else None

    # -- overridden operations
    def create_network_interface(self, **kwargs: Any) -> dict[str, Any]:
        self._record("create_network_interface", kwargs)
        resp = self._real.create_network_interface(**kwargs)
        if self.create_lag:
            resp["NetworkInterface"]["Status"] = "pending"
            self._pending[resp["NetworkInterface"]["NetworkInterfaceId"]] = self.create_lag
        return resp

    def describe_network_interfaces(self, **kwargs: Any) -> dict[str, Any]:
        self._record("describe_network_interfaces", kwargs)
        resp = self._real.describe_network_interfaces(**kwargs)
        for eni in resp["NetworkInterfaces"]:
            eni_id = eni["NetworkInterfaceId"]
            self.show_delete_on_termination(eni)
            if self._pending.get(eni_id):
                self._pending[eni_id] -= 1
                eni["Status"] = "pending"
            if eni_id in self._detaching:
                left, old = self._detaching[eni_id]
                eni["Status"] = "in-use"
                eni["Attachment"] = dict(old, Status="detaching")
                if left > 1:
                    self._detaching[eni_id] = (left - 1, old)
                else:
                    del self._detaching[eni_id]
        return resp

    def _instance_state(self, instance_id: str, consume: bool) -> str | None:
        if instance_id in self.instance_state:
            return self.instance_state[instance_id]
        if self.instance_lag.get(instance_id):
            if consume:
                self.instance_lag[instance_id] -= 1
            return "pending"
        return None

    def describe_instances(self, **kwargs: Any) -> dict[str, Any]:
        self._record("describe_instances", kwargs)
        resp = self._real.describe_instances(**kwargs)
        for reservation in resp.get("Reservations", []):
            for instance in reservation.get("Instances", []):
                state = self._instance_state(instance["InstanceId"], consume=True)
                if state:
                    instance["State"] = {"Code": {"pending": 0, "shutting-down": 32, "terminated": 48,
                                                  "stopping": 64, "stopped": 80}.get(state, 16), "Name": state}
        return resp

    def show_delete_on_termination(self, eni: dict[str, Any]) -> dict[str, Any]:
        att = eni.get("Attachment")
        if att and att.get("AttachmentId") in self.delete_on_termination:
            att["DeleteOnTermination"] = self.delete_on_termination[att["AttachmentId"]]
        return eni

    def attach_network_interface(self, **kwargs: Any) -> dict[str, Any]:
        self._record("attach_network_interface", kwargs)
        eni_id, instance_id, index = kwargs["NetworkInterfaceId"], kwargs["InstanceId"], kwargs["DeviceIndex"]
        eni = self._raw_eni(eni_id)
        if eni is None:
            raise client_error("AttachNetworkInterface", "InvalidNetworkInterfaceID.NotFound", eni_id)
        if eni.get("Attachment") or self._pending.get(eni_id) or eni_id in self._detaching:
            raise client_error("AttachNetworkInterface", "InvalidNetworkInterface.InUse",
                               f"Interface {eni_id} is not available")
        state = self._instance_state(instance_id, consume=False)
        if state and state != "running":
            raise client_error("AttachNetworkInterface", "IncorrectInstanceState",
                               f"The instance '{instance_id}' is not in a valid state for this operation.")
        instance = self._real.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
        for ni in instance.get("NetworkInterfaces", []):
            if ni["Attachment"]["DeviceIndex"] == index:
                raise client_error("AttachNetworkInterface", "InvalidParameterValue",
                                   f"Instance '{instance_id}' already has an interface attached at device index '{index}'.")
        return self._real.attach_network_interface(**kwargs)

    def modify_network_interface_attribute(self, **kwargs: Any) -> dict[str, Any]:
        self._record("modify_network_interface_attribute", kwargs)
        if "Attachment" in kwargs:
            eni = self._raw_eni(kwargs["NetworkInterfaceId"])
            att_id = kwargs["Attachment"]["AttachmentId"]
            if not eni or (eni.get("Attachment") or {}).get("AttachmentId") != att_id:
                raise client_error("ModifyNetworkInterfaceAttribute", "InvalidAttachmentID.NotFound", att_id)
            self.delete_on_termination[att_id] = kwargs["Attachment"]["DeleteOnTermination"]
            return {}
        return self._real.modify_network_interface_attribute(**kwargs)

    def detach_network_interface(self, **kwargs: Any) -> dict[str, Any]:
        self._record("detach_network_interface", kwargs)
        old = None
        for eni in self._real.describe_network_interfaces(
            Filters=[{"Name": "attachment.attachment-id", "Values": [kwargs["AttachmentId"]]}]
        )["NetworkInterfaces"]:
            old = (eni["NetworkInterfaceId"], eni["Attachment"])
        resp = self._real.detach_network_interface(**kwargs)
        if old and self.detach_lag:
            self._detaching[old[0]] = (self.detach_lag, old[1])
        return resp

    def delete_network_interface(self, **kwargs: Any) -> dict[str, Any]:
        self._record("delete_network_interface", kwargs)
        eni_id = kwargs["NetworkInterfaceId"]
        eni = self._raw_eni(eni_id)
        if eni is not None and (eni.get("Attachment") or eni_id in self._detaching):
            raise client_error("DeleteNetworkInterface", "InvalidNetworkInterface.InUse",
                               f"The network interface '{eni_id}' is currently in use.")
        return self._real.delete_network_interface(**kwargs)


class RecordingAutoScaling:
    """The moto Auto Scaling client, except CompleteLifecycleAction.

    moto 5.2.5 raises NotImplementedError for CompleteLifecycleAction, so that one call is
    answered here: it is recorded, the hook must exist on the group (moto's put_lifecycle_hook
    data), and like AWS a second completion of the same action fails with ValidationError
    ("No active Lifecycle Action found"). `error` injects a failure for the next completion.
    """

    def __init__(self, real: Any):
        self._real = real
        self.completions: list[dict[str, Any]] = []
        self.attempts: list[dict[str, Any]] = []
        self.error: Exception | None = None
        self._done: set[tuple[str, str]] = set()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def complete_lifecycle_action(self, **kwargs: Any) -> dict[str, Any]:
        self.attempts.append(dict(kwargs))
        if self.error is not None:
            err, self.error = self.error, None
            raise err
        hooks = self._real.describe_lifecycle_hooks(AutoScalingGroupName=kwargs["AutoScalingGroupName"])
        if kwargs["LifecycleHookName"] not in {h["LifecycleHookName"] for h in hooks["LifecycleHooks"]}:
            raise client_error("CompleteLifecycleAction", "ValidationError", "No such lifecycle hook")
        key = (kwargs["InstanceId"], kwargs["LifecycleHookName"])
        if key in self._done:
            raise client_error("CompleteLifecycleAction", "ValidationError",
                               f"No active Lifecycle Action found with instance ID {kwargs['InstanceId']}")
        self._done.add(key)
        self.completions.append(dict(kwargs))
        return {}


class FakeClock:
    """Monotonic clock that only moves when the handler sleeps; records every sleep."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class FakeContext:
    def __init__(self, remaining_ms: int = 120_000):
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


class World:
    """A VPC with UNTRUST/MGMT/TRUST subnets in us-east-1a and us-east-1b (UNTRUST only in 1c)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        self.raw_ec2 = boto3.client("ec2", region_name=REGION)
        self.raw_asg = boto3.client("autoscaling", region_name=REGION)
        self.ec2 = StrictEc2(self.raw_ec2)
        self.asg = RecordingAutoScaling(self.raw_asg)
        self.clock = FakeClock()
        self.monkeypatch = monkeypatch

        ec2 = self.raw_ec2
        self.vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        self.subnets: dict[tuple[str, str], str] = {}
        cidr = 0
        for az, roles in (("us-east-1a", ("untrust", "mgmt", "trust")),
                          ("us-east-1b", ("untrust", "mgmt", "trust")),
                          ("us-east-1c", ("untrust",))):
            for role in roles:
                self.subnets[(role, az)] = ec2.create_subnet(
                    VpcId=self.vpc, CidrBlock=f"10.0.{cidr}.0/24", AvailabilityZone=az
                )["Subnet"]["SubnetId"]
                cidr += 1
        self.sg = {
            role: ec2.create_security_group(GroupName=f"{role}-sg", Description=role, VpcId=self.vpc)["GroupId"]
            for role in ("untrust", "mgmt", "trust")
        }
        self.ami = "ami-12c6146b"  # one of moto's built-in images (listing them all is slow)
        ec2.describe_images(ImageIds=[self.ami])
        ec2.create_launch_template(
            LaunchTemplateName="demo-PANW-Firewall-LaunchTemplate",
            LaunchTemplateData={"ImageId": self.ami, "InstanceType": "m5.xlarge",
                                "SecurityGroupIds": [self.sg["untrust"]]},
        )
        # DesiredCapacity 0: instances are started by launch_instance() so their AZ is known.
        self.raw_asg.create_auto_scaling_group(
            AutoScalingGroupName=ASG,
            LaunchTemplate={"LaunchTemplateName": "demo-PANW-Firewall-LaunchTemplate", "Version": "$Latest"},
            MinSize=0, MaxSize=4, DesiredCapacity=0,
            VPCZoneIdentifier=",".join(self.subnets[("untrust", az)] for az in ("us-east-1a", "us-east-1b")),
        )
        self.raw_asg.put_lifecycle_hook(
            AutoScalingGroupName=ASG, LifecycleHookName=LAUNCH_HOOK,
            LifecycleTransition=fw_lifecycle.LAUNCHING, HeartbeatTimeout=300, DefaultResult="ABANDON",
        )
        self.raw_asg.put_lifecycle_hook(
            AutoScalingGroupName=ASG, LifecycleHookName=TERMINATE_HOOK,
            LifecycleTransition=fw_lifecycle.TERMINATING, HeartbeatTimeout=300, DefaultResult="CONTINUE",
        )
        self.env = {
            "DEPLOYMENT": DEPLOYMENT,
            "MGMT_SUBNETS": ",".join(self.subnets[("mgmt", az)] for az in ("us-east-1a", "us-east-1b")),
            "TRUST_SUBNETS": ",".join(self.subnets[("trust", az)] for az in ("us-east-1a", "us-east-1b")),
            "MGMT_SECURITY_GROUP": self.sg["mgmt"],
            "TRUST_SECURITY_GROUP": self.sg["trust"],
        }
        for key, value in self.env.items():
            monkeypatch.setenv(key, value)
        monkeypatch.setattr(fw_lifecycle, "_make_clients", lambda: (self.ec2, self.asg))
        monkeypatch.setattr(fw_lifecycle, "_sleep", self.clock.sleep)
        monkeypatch.setattr(fw_lifecycle, "_clock", self.clock)

    def launch_instance(self, az: str = "us-east-1a") -> str:
        return self.raw_ec2.run_instances(
            ImageId=self.ami, MinCount=1, MaxCount=1, InstanceType="m5.xlarge",
            SubnetId=self.subnets[("untrust", az)], SecurityGroupIds=[self.sg["untrust"]],
        )["Instances"][0]["InstanceId"]

    @staticmethod
    def _message(instance_id: str, transition: str) -> dict[str, Any]:
        hook = LAUNCH_HOOK if transition == fw_lifecycle.LAUNCHING else TERMINATE_HOOK
        return {
            "LifecycleActionToken": f"token-{instance_id}-{hook}",
            "AutoScalingGroupName": ASG,
            "LifecycleHookName": hook,
            "EC2InstanceId": instance_id,
            "LifecycleTransition": transition,
            "Origin": "EC2" if transition == fw_lifecycle.LAUNCHING else "AutoScalingGroup",
            "Destination": "AutoScalingGroup" if transition == fw_lifecycle.LAUNCHING else "EC2",
        }

    def eventbridge(self, instance_id: str, transition: str = fw_lifecycle.LAUNCHING) -> dict[str, Any]:
        detail_type = {v: k for k, v in fw_lifecycle.DETAIL_TYPES.items()}[transition]
        return {
            "version": "0", "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
            "detail-type": detail_type, "source": "aws.autoscaling", "account": "123456789012",
            "time": "2026-01-01T00:00:00Z", "region": REGION,
            "resources": [f"arn:aws:autoscaling:{REGION}:123456789012:autoScalingGroup:x:autoScalingGroupName/{ASG}"],
            "detail": self._message(instance_id, transition),
        }

    def sns(self, instance_id: str, transition: str = fw_lifecycle.LAUNCHING) -> dict[str, Any]:
        message = dict(self._message(instance_id, transition), Service="AWS Auto Scaling",
                       AccountId="123456789012", RequestId="r-1", Time="2026-01-01T00:00:00Z")
        return sns_event(message)

    def run(self, event: Any, remaining_ms: int = 120_000) -> dict[str, Any]:
        return fw_lifecycle.handler(event, FakeContext(remaining_ms))

    def tagged_enis(self, instance_id: str) -> list[dict[str, Any]]:
        """The instance's tagged ENIs as AWS would show them (no call recorded, no lag consumed)."""
        return [self.ec2.show_delete_on_termination(e) for e in self.raw_ec2.describe_network_interfaces(
            Filters=[{"Name": "tag:pano-eks:instance", "Values": [instance_id]}]
        )["NetworkInterfaces"]]

    def instance_enis(self, instance_id: str) -> dict[int, dict[str, Any]]:
        """Device index -> ENI as the instance sees it."""
        inst = self.raw_ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
        return {ni["Attachment"]["DeviceIndex"]: ni for ni in inst["NetworkInterfaces"]}


def sns_event(message: dict[str, Any]) -> dict[str, Any]:
    return {"Records": [{"EventSource": "aws:sns", "EventVersion": "1.0",
                         "Sns": {"Type": "Notification", "Subject": "Auto Scaling: Lifecycle action",
                                 "Message": json.dumps(message)}}]}
