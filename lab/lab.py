"""Helpers of the pano-eks lab (lab/run), run with the test venv's Python (boto3, pan-os-python).

Subcommands (all talk to the lab's own moto / panorama-sim on 127.0.0.1; nothing else):

  free-port                   print a free loopback TCP port
  prepare                     create the key pair `ops`; print an AMI id moto knows
  lifecycle DEPLOYMENT        run the firewall lifecycle lambda (bootstrap/lambda/fw_lifecycle.py)
                              for every instance of the firewall ASG, as EventBridge would: moto
                              cannot run Lambda, so this gives the firewalls their mgmt/trust ENIs
  inventory DEPLOYMENT        JSON: stacks and their status, bucket objects, tagged leftovers
  devices DEPLOYMENT          JSON for panorama-sim's POST /_sim/devices: the firewall ASG's instances
                              as moto reports them (sorted by id, as pano-eks's discovery sorts them)
                              with their untrust (eth0 = ethernet1/1, mgmt-interface-swap) and trust
                              (device index 2 = ethernet1/2) addresses and subnet lengths
  dns SUBNET HOST...          JSON for panorama-sim's POST /_sim/dns: each internal load-balancer
                              hostname -> one address in SUBNET (as AWS DNS answers for an internal NLB)
  sim-post PATH FILE          POST the JSON FILE to panorama-sim's control PATH (/_sim/devices, /_sim/dns)
  wait-idle METRICS_URL       wait until sync --watch has no converge in progress and every Panorama
                              job is FIN (what a verification after a change must wait for)
  allow-inbound               the operator's security pre-rule for the demo's inbound traffic
                              (untrust -> trust, any service), written and committed with pan-os-python
  panorama                    JSON: our Panorama objects read back with pan-os-python
  nat-rule NAME               one line: a NAT rule's service, destination and translation
  wait-status CONFIG N        poll `pano-eks status --output json` until N Services are protected
  wait-state CONFIG NS/NAME STATE   poll it until that Service has STATE; print its reason
                              and committed (prints the table once, at the end)

Environment: AWS_ENDPOINT_URL, AWS_REGION, dummy credentials (moto); LAB_PANORAMA_URL,
LAB_PANORAMA_CA, LAB_PANORAMA_USER, LAB_PANORAMA_PASSWORD_ENV (the *name* of the variable holding
the password), LAB_DEVICE_GROUP, LAB_TEMPLATE, LAB_VR.
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUR_TAG = "pano-eks"


def aws(service):
    import boto3

    return boto3.client(service, endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name=os.environ.get("AWS_REGION", "us-west-2"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        print(s.getsockname()[1])


def prepare():
    ec2 = aws("ec2")
    if not ec2.describe_key_pairs(Filters=[{"Name": "key-name", "Values": ["ops"]}])["KeyPairs"]:
        ec2.create_key_pair(KeyName="ops")
    images = ec2.describe_images()["Images"]
    print(sorted(i["ImageId"] for i in images)[0])


def _stack_resources(cfn, stack, rtype):
    try:
        res = cfn.describe_stack_resources(StackName=stack)["StackResources"]
    except Exception:  # noqa: BLE001 - stack gone
        return []
    return [r["PhysicalResourceId"] for r in res if r["ResourceType"] == rtype]


def lifecycle(deployment):
    """Invoke the real lifecycle handler, in-process, with the environment CloudFormation gave the
    function and one EventBridge launch event per ASG instance."""
    cfn, lam, asg, ec2 = aws("cloudformation"), aws("lambda"), aws("autoscaling"), aws("ec2")
    stack = f"{deployment}-firewall"
    fns = _stack_resources(cfn, stack, "AWS::Lambda::Function")
    groups = _stack_resources(cfn, stack, "AWS::AutoScaling::AutoScalingGroup")
    if not fns or not groups:
        sys.exit(f"lifecycle: stack {stack} has no lambda function or ASG")
    env = lam.get_function_configuration(FunctionName=fns[0])["Environment"]["Variables"]
    hooks = asg.describe_lifecycle_hooks(AutoScalingGroupName=groups[0]).get("LifecycleHooks", [])
    hook = next((h["LifecycleHookName"] for h in hooks if h["LifecycleTransition"].endswith("LAUNCHING")), "launch")
    instances = [i["InstanceId"] for g in asg.describe_auto_scaling_groups(AutoScalingGroupNames=groups)["AutoScalingGroups"] for i in g["Instances"]]
    os.environ.update(env)
    sys.path.insert(0, str(ROOT / "bootstrap" / "lambda"))
    import contextlib
    import io

    import fw_lifecycle

    for iid in sorted(instances):
        event = {
            "source": "aws.autoscaling",
            "detail-type": "EC2 Instance-launch Lifecycle Action",
            "detail": {"LifecycleTransition": "autoscaling:EC2_INSTANCE_LAUNCHING", "AutoScalingGroupName": groups[0],
                       "LifecycleHookName": hook, "EC2InstanceId": iid, "LifecycleActionToken": "lab-" + iid},
        }
        logs = io.StringIO()
        try:
            with contextlib.redirect_stdout(logs):
                out = fw_lifecycle.handler(event, None)
        except fw_lifecycle.CompletionError as exc:
            # The ENIs are in place; only CompleteLifecycleAction failed: moto holds no pending
            # lifecycle action (its ASG launched the instance without the hook), see the log.
            out = {"result": "CONTINUE", "enis": {}, "note": str(exc)}
        finally:
            sys.stderr.write(logs.getvalue())
        inst = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
        nics = sorted((n["Attachment"]["DeviceIndex"], n["NetworkInterfaceId"], n["SubnetId"]) for n in inst["NetworkInterfaces"])
        cidrs = {s["SubnetId"]: s["CidrBlock"] for s in ec2.describe_subnets(SubnetIds=[n[2] for n in nics])["Subnets"]}
        done = "ENIs in place" + (" (CompleteLifecycleAction refused: moto holds no pending action)" if "note" in out else "")
        print(f"  lifecycle lambda: {iid} ({inst['Placement']['AvailabilityZone']}) -> {out['result']}, {done}: "
              + ", ".join(f"eth{i} {cidrs.get(sn, sn)}" for i, _, sn in nics))
        if out["result"] != "CONTINUE":
            sys.exit(f"lifecycle lambda abandoned {iid}: {out.get('reason')}")


def inventory(deployment):
    cfn, s3, ec2 = aws("cloudformation"), aws("s3"), aws("ec2")
    stacks = {}
    for page in cfn.get_paginator("list_stacks").paginate():
        for s in page["StackSummaries"]:
            if s["StackName"].startswith(deployment + "-") and s["StackStatus"] != "DELETE_COMPLETE":
                stacks[s["StackName"]] = s["StackStatus"]
    buckets = {}
    for b in s3.list_buckets().get("Buckets", []):
        if b["Name"].startswith(deployment + "-"):
            keys = [o["Key"] for o in s3.list_objects_v2(Bucket=b["Name"]).get("Contents", [])]
            buckets[b["Name"]] = sorted(keys)
    tagged = {}
    flt = [{"Name": "tag:pano-eks:deployment", "Values": [deployment]}]
    for kind, call, key, idk in [
        ("vpc", ec2.describe_vpcs, "Vpcs", "VpcId"),
        ("subnet", ec2.describe_subnets, "Subnets", "SubnetId"),
        ("eni", ec2.describe_network_interfaces, "NetworkInterfaces", "NetworkInterfaceId"),
    ]:
        ids = [x[idk] for x in call(Filters=flt)[key]]
        if ids:
            tagged[kind] = ids
    instances = [i["InstanceId"] for r in ec2.describe_instances(Filters=[{"Name": "instance-state-name", "Values": ["pending", "running"]}])["Reservations"] for i in r["Instances"]]
    print(json.dumps({"stacks": stacks, "buckets": buckets, "tagged": tagged, "running_instances": instances}, indent=1, sort_keys=True))


def devices(deployment):
    """The firewalls as panorama-sim should know them: serial N (1-based, sorted by instance id)
    is the sim's generated `00790000000N` (fw-0N), so their device-group and template-stack
    membership and running configs stay; the interfaces are the ENIs moto reports."""
    cfn, asg, ec2 = aws("cloudformation"), aws("autoscaling"), aws("ec2")
    groups = _stack_resources(cfn, f"{deployment}-firewall", "AWS::AutoScaling::AutoScalingGroup")
    if not groups:
        sys.exit(f"devices: stack {deployment}-firewall has no ASG")
    ids = sorted(i["InstanceId"] for g in asg.describe_auto_scaling_groups(AutoScalingGroupNames=groups)["AutoScalingGroups"] for i in g["Instances"])
    out = []
    for n, iid in enumerate(ids, start=1):
        inst = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
        by_index = {ni["Attachment"]["DeviceIndex"]: ni for ni in inst["NetworkInterfaces"]}
        cidrs = {s["SubnetId"]: s["CidrBlock"] for s in ec2.describe_subnets(SubnetIds=[ni["SubnetId"] for ni in by_index.values()])["Subnets"]}

        def addr(index):
            ni = by_index.get(index)
            if ni is None:
                sys.exit(f"devices: {iid} has no interface at device index {index} (did the lifecycle step run?)")
            return f"{ni['PrivateIpAddress']}/{cidrs[ni['SubnetId']].split('/')[1]}"

        out.append({"serial": f"00790{n:07d}", "hostname": f"fw-{n:02d}", "ip": by_index.get(1, by_index[0])["PrivateIpAddress"],
                    "interfaces": [{"name": "ethernet1/1", "zone": "untrust", "address": addr(0)},
                                   {"name": "ethernet1/2", "zone": "trust", "address": addr(2)}]})
    print(json.dumps(out, indent=1))


def dns(subnet, *hosts):
    """Each hostname resolves to one address in SUBNET, stable per name (.10 to .209)."""
    import hashlib
    import ipaddress

    net = ipaddress.ip_network(subnet)
    print(json.dumps({h: [str(net.network_address + 10 + int(hashlib.sha256(h.encode()).hexdigest(), 16) % 200)] for h in hosts}, indent=1))


def _sim_url(path):
    ctx = ssl.create_default_context(cafile=os.environ["LAB_PANORAMA_CA"])
    return os.environ["LAB_PANORAMA_URL"].rstrip("/") + path, ctx


def sim_post(path, file):
    import urllib.request

    url, ctx = _sim_url(path)
    req = urllib.request.Request(url, data=Path(file).read_bytes(), method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, context=ctx, timeout=30) as r:
        r.read()


def wait_idle(metrics_url, timeout=180):
    """Bounded wait (a failure detector) for sync --watch idle and every Panorama job FIN."""
    import urllib.request

    start = time.monotonic()
    while time.monotonic() - start < float(timeout):
        text = urllib.request.urlopen(metrics_url, timeout=10).read().decode()
        busy = "pano_eks_converge_in_progress 0" not in text.splitlines()
        url, ctx = _sim_url("/_sim/jobs")
        jobs = json.loads(urllib.request.urlopen(url, context=ctx, timeout=10).read())
        if not busy and all(j["status"] == "FIN" for j in jobs):
            return 0
        time.sleep(0.2)
    sys.exit(f"waited {time.monotonic() - start:.0f}s for sync --watch to be idle and every Panorama job FIN")


def allow_inbound():
    """The security rule an operator adds for the demo's inbound traffic (pano-eks writes NAT, not
    security policy): a pre-rule in the device group, committed by this admin (pano-eks's partial
    commits never take another admin's changes); the next push of the device group carries it."""
    from panos.panorama import DeviceGroup
    from panos.policies import PreRulebase, SecurityRule

    pano = panorama()
    dg = DeviceGroup(os.environ.get("LAB_DEVICE_GROUP", "eks-dg"))
    pano.add(dg)
    rb = PreRulebase()
    dg.add(rb)
    rule = SecurityRule(name="lab-allow-inbound", fromzone=["untrust"], tozone=["trust"], source=["any"], destination=["any"],
                        application=["any"], service=["any"], action="allow", description="lab: the demo's inbound traffic")
    rb.add(rule)
    rule.create()
    pano.commit(sync=True, admins=[os.environ["LAB_PANORAMA_USER"]])
    print("  security pre-rule lab-allow-inbound (untrust -> trust, allow) committed by", os.environ["LAB_PANORAMA_USER"])


# ---------------------------------------------------------------- Panorama, through pan-os-python


def panorama():
    """A pan-os-python Panorama whose pan-python transport trusts only the sim's CA."""
    from panos.base import PanDevice
    from panos.panorama import Panorama

    ctx = ssl.create_default_context(cafile=os.environ["LAB_PANORAMA_CA"])
    base = PanDevice.XapiWrapper
    if not getattr(base, "_lab_verifying", False):

        class Verifying(base):
            _lab_verifying = True

            def __init__(self, *args, **kwargs):
                kwargs.setdefault("ssl_context", ctx)
                base.__init__(self, *args, **kwargs)

        PanDevice.XapiWrapper = Verifying
    u = urllib.parse.urlparse(os.environ["LAB_PANORAMA_URL"])
    password = os.environ[os.environ["LAB_PANORAMA_PASSWORD_ENV"]]
    return Panorama(u.hostname, os.environ["LAB_PANORAMA_USER"], password, port=u.port)


def read_back(pano=None, running=False):
    """Every object of ours in the device group and template, as plain data (candidate config, or
    running with running=True)."""
    from panos.network import StaticRoute, VirtualRouter
    from panos.objects import AddressObject, ServiceObject, Tag
    from panos.panorama import DeviceGroup, Template
    from panos.policies import NatRule, PreRulebase

    pano = pano or panorama()
    dg = DeviceGroup(os.environ.get("LAB_DEVICE_GROUP", "eks-dg"))
    pano.add(dg)
    rb = PreRulebase()
    dg.add(rb)
    tmpl = Template(os.environ.get("LAB_TEMPLATE", "eks-template"))
    pano.add(tmpl)
    vr = VirtualRouter(os.environ.get("LAB_VR", "vr-default"))
    tmpl.add(vr)

    def ours(o):
        return OUR_TAG in (o.tag or [])

    out = {
        "tags": sorted(t.name for t in Tag.refreshall(dg, add=False, running_config=running) if t.name == OUR_TAG or t.name.startswith(OUR_TAG + ".")),
        "addresses": {a.name: a.value for a in AddressObject.refreshall(dg, add=False, running_config=running) if ours(a)},
        "services": {s.name: f"{s.protocol}/{s.destination_port}" for s in ServiceObject.refreshall(dg, add=False, running_config=running) if ours(s)},
        "nat_rules": {
            r.name: {"service": r.service, "destination": r.destination, "source": r.source,
                     "to_interface": r.to_interface, "source_translation": r.source_translation_type,
                     "translated": r.destination_dynamic_translated_address or r.destination_translated_address,
                     "translated_port": r.destination_dynamic_translated_port or r.destination_translated_port}
            for r in NatRule.refreshall(rb, add=False, running_config=running) if ours(r)
        },
        "static_routes": {r.name: {"destination": r.destination, "nexthop": r.nexthop} for r in StaticRoute.refreshall(vr, add=False, running_config=running) if r.name.startswith("pke-")},
    }
    return out


def panorama_json():
    print(json.dumps(read_back(), indent=1, sort_keys=True))


def nat_rule(name_part):
    rules = read_back()["nat_rules"]
    hits = {n: r for n, r in rules.items() if name_part in n}
    if not hits:
        print(f"  NAT rule *{name_part}*: none")
    for n, r in sorted(hits.items()):
        print(f"  NAT rule {n}: service {r['service']} -> {r['translated']}:{r['translated_port']}")


def _poll_status(config, until, what, timeout):
    """Polls `pano-eks status --output json` until `until(status)` is true. The bound is a
    failure detector (idle machine: 1-3 s); the message says how long it waited and what status
    said last."""
    start = time.monotonic()
    last = None
    while time.monotonic() - start < float(timeout):
        p = subprocess.run([os.environ["LAB_PANO_EKS"], "--config", config, "--output", "json", "status", "--no-verify"], capture_output=True, text=True)
        if p.returncode == 0:
            last = json.loads(p.stdout)
            if until(last):
                return last
        time.sleep(0.5)
    print(json.dumps(last, indent=1), file=sys.stderr)
    sys.exit(f"waited {time.monotonic() - start:.0f}s for {what}; the last status is above")


def wait_status(config, n, timeout=180):
    """Polls `status` until N Services are protected and committed."""
    _poll_status(config, lambda st: len([s for s in st["services"] if s["state"] == "protected" and s.get("committed")]) >= int(n),
                 f"{n} protected and committed Services", timeout)
    return 0


def wait_state(config, service, state, timeout=180):
    """Polls `status` until the Service NS/NAME has STATE and prints its reason."""
    ns, _, name = service.partition("/")

    def hit(st):
        return [s for s in st["services"] if (s["namespace"], s["name"]) == (ns, name) and s["state"] == state]

    st = _poll_status(config, hit, f"{service} to be {state}", timeout)
    print(f"     {service}: {state}: {hit(st)[0].get('reason', '')}")
    return 0


def main(argv):
    cmd, args = argv[0], argv[1:]
    fn = {"free-port": free_port, "prepare": prepare, "lifecycle": lifecycle, "inventory": inventory, "panorama": panorama_json,
          "nat-rule": nat_rule, "wait-status": wait_status, "wait-state": wait_state, "devices": devices, "dns": dns, "allow-inbound": allow_inbound,
          "sim-post": sim_post, "wait-idle": wait_idle}[cmd]
    return fn(*args) or 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
