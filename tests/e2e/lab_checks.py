"""The end-to-end test's assertions, run by lab/run at each checkpoint (LAB_CHECK):

    python tests/e2e/lab_checks.py CHECKPOINT LAB_ENV_FILE

CHECKPOINT: up | protected | relabeled | deleted | down. Exit status 0 = every assertion held.
Panorama is read back through pan-os-python (lab/lab.py `read_back`), candidate and running
config; AWS through boto3 against the lab's moto; status through `pano-eks status --output json`.
The environment is the lab's own (LAB_PANORAMA_* and AWS_* variables, the password variable).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import ssl
import stat
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "lab"))
import lab  # noqa: E402

CLUSTER_SUBNETS = {"192.168.110.0/24", "192.168.111.0/24"}
TRUST_GATEWAYS = {"192.168.2.1", "192.168.12.1"}
STACKS = {"demo-firewall", "demo-shop-cluster", "demo-shop-nodes"}
OUTBOUND = {"demo.out.shop.192.168.110.0_24", "demo.out.shop.192.168.111.0_24"}
# (namespace, name, label port, Service port) of the demo Services (lab/demo/guestbook.yaml).
# How long a checkpoint waits for the converge it follows to finish (sync --watch idle, every
# Panorama job FIN): a failure detector, not a performance check. Idle-machine figure: under 1 s
# (each checkpoint prints its own).
SETTLE_TIMEOUT = 180
DEMO = [("guestbook", "frontend", 82, 80), ("guestbook", "frontend-admin", 84, 8080), ("guestbook-staging", "frontend", 83, 80)]


def hostname(ns, name):
    """The NLB hostname lab/run publishes for a Service (same formula)."""
    h = hashlib.sha256(f"{ns}/{name}".encode()).hexdigest()[:10]
    return f"k8s-{ns[:8].replace('-', '')}-{name[:8].replace('-', '')}-{h}.elb.us-west-2.amazonaws.com"


def expected(services):
    """The exact set of our Panorama objects for these Services (ns, name, label port, port)."""
    return {
        # [sync.security] is on in the lab: a namespace tag per namespace with protected Services.
        "tags": ["pano-eks", "pano-eks.demo.shop"] + sorted({f"pano-eks.demo.shop.{ns}" for ns, _, _, _ in services}),
        "addresses": {f"demo.shop.{ns}.{n}": hostname(ns, n) for ns, n, _, _ in services},
        "services": {f"demo.tcp-{p}": f"tcp/{p}" for _, _, p, _ in services},
        "nat_in": {f"demo.in.shop.{ns}.{n}": (f"demo.tcp-{p}", f"demo.shop.{ns}.{n}", str(port)) for ns, n, p, port in services},
    }


def check_panorama(services, running, routes_expected=True):
    got = lab.read_back(running=running)
    where = "running" if running else "candidate"
    want = expected(services)
    assert got["tags"] == want["tags"], (where, got["tags"])
    assert got["addresses"] == want["addresses"], (where, got["addresses"])
    assert got["services"] == want["services"], (where, got["services"])
    nat = got["nat_rules"]
    assert set(nat) == set(want["nat_in"]) | OUTBOUND, (where, sorted(nat))
    for name, (svc, addr, port) in want["nat_in"].items():
        r = nat[name]
        assert (r["service"], r["translated"], str(r["translated_port"])) == (svc, addr, port), (where, name, r)
    for name in OUTBOUND:
        assert nat[name]["source_translation"] == "dynamic-ip-and-port", (where, name, nat[name])
    routes = got["static_routes"]
    # Right after `up` the firewalls had no trust interface yet (the lifecycle lambda ran after
    # up's first sync): no routes until the next sync discovers them.
    assert {r["destination"] for r in routes.values()} == (CLUSTER_SUBNETS if routes_expected else set()), (where, routes)
    assert all(r["nexthop"] in TRUST_GATEWAYS for r in routes.values()), (where, routes)
    print(f"ok: Panorama {where} holds exactly the expected objects: {sum(len(v) for v in got.values())}")


def sim_json(path):
    ctx = ssl.create_default_context(cafile=os.environ["LAB_PANORAMA_CA"])
    with urllib.request.urlopen(os.environ["LAB_PANORAMA_URL"] + path, context=ctx, timeout=10) as r:
        return json.loads(r.read())


def sync_metrics():
    """sync --watch's own gauges and counters (the unlabelled ones) from its /metrics."""
    with urllib.request.urlopen(os.environ["LAB_SYNC_METRICS_URL"], timeout=10) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and not line.startswith("#") and "{" not in parts[0]:
            out[parts[0]] = float(parts[1])
    return out


def wait_settled(what, watch=True):
    """Waits until the converge that produced the state a checkpoint checks is fully done: sync
    --watch says no converge is in progress (its converges end when the last push job is FIN) and
    Panorama has no commit or push job that is not FIN. Bounded by SETTLE_TIMEOUT; the message names
    what was still running."""
    start = time.monotonic()
    while True:
        m = sync_metrics() if watch else {}
        busy = [j for j in sim_json("/_sim/jobs") if j["status"] != "FIN"]
        converging = m.get("pano_eks_converge_in_progress") if watch else 0
        if converging == 0 and (not watch or m.get("pano_eks_reconciles_total", 0) >= 1) and not busy:
            print(f"ok: {what}: settled after {time.monotonic() - start:.1f}s (sync --watch idle, every Panorama job FIN)")
            return
        waited = time.monotonic() - start
        assert waited < SETTLE_TIMEOUT, (f"{what}: waited {waited:.0f}s for the converge to finish: "
                                         f"pano_eks_converge_in_progress={converging}, Panorama jobs not FIN: {busy}")
        time.sleep(0.2)


def check_pushes():
    """The last push of each scope (device group, template stack) is FIN/OK on both firewalls."""
    last = {}
    for j in sim_json("/_sim/jobs"):
        if j["type"] == "CommitAll":
            last[j["scope"]] = j
    assert "device-group:eks-dg" in last, f"no push of the device group: {last}"
    for scope, job in sorted(last.items()):
        assert job["status"] == "FIN" and job["result"] == "OK", job
        assert sorted(d["serial"] for d in job["devices"]) == ["007900000001", "007900000002"] and all(d["ok"] for d in job["devices"]), job
        print(f"ok: last push of {scope} (job {job['id']}) reached both firewalls")


def check_status(services):
    p = subprocess.run([os.environ["LAB_PANO_EKS"], "--config", os.environ["LAB_CONFIG"], "--output", "json", "status"], capture_output=True, text=True, check=True)
    st = json.loads(p.stdout)
    got = {(s["namespace"], s["name"]): (s["port"], s["state"], s["committed"]) for s in st["services"]}
    want = {(ns, n): (p, "protected", True) for ns, n, p, _ in services}
    assert got == want, got
    assert not st["problems"], st["problems"]
    print(f"ok: status JSON: {len(want)} Service(s) protected and committed")
    # The live verification status runs (issue 15): both firewalls' own answers green, and every
    # Service verified on both.
    v = st["verification"]
    assert v.get("summary", "").startswith("verified on 2/2 firewalls at "), v
    assert sorted(f["serial"] for f in v["firewalls"] if f["ok"]) == ["007900000001", "007900000002"], v
    for s in st["services"]:
        assert (s["verification"]["verified_on"], s["verification"]["firewalls"]) == (2, 2), s
    print(f"ok: status JSON: {v['summary']}")


def check_exposed(protected):
    """Issue 19: a Service behind an internet-facing load balancer is `exposed` (reason, problem,
    metric), while its objects are still written, and the others stay protected."""
    p = subprocess.run([os.environ["LAB_PANO_EKS"], "--config", os.environ["LAB_CONFIG"], "--output", "json", "status", "--no-verify"],
                       capture_output=True, text=True, check=True)
    st = json.loads(p.stdout)
    got = {(s["namespace"], s["name"]): s for s in st["services"]}
    exposed = got.pop(("guestbook", "frontend-public"))
    assert exposed["state"] == "exposed", exposed
    assert "aws-load-balancer-internal is absent" in exposed["reason"] and "internet-facing" in exposed["reason"], exposed
    # Its objects are still written (the firewall path works): its NAT rule is in the candidate,
    # read back with pan-os-python.
    rules = [n for n in lab.read_back()["nat_rules"] if "guestbook.frontend-public" in n]
    assert rules, "the exposed Service has no NAT rule in the candidate config"
    assert {k: v["state"] for k, v in got.items()} == {(ns, n): "protected" for ns, n, _, _ in protected}, got
    kinds = [(x["subject"], x["kind"]) for x in st["problems"]]
    assert ("shop/guestbook/frontend-public", "exposed") in kinds, st["problems"]
    print(f"ok: status JSON: guestbook/frontend-public exposed ({exposed['reason']}); the others protected")
    with urllib.request.urlopen(os.environ["LAB_SYNC_METRICS_URL"], timeout=10) as r:
        text = r.read().decode()
    assert 'pano_eks_services{cluster="shop",state="exposed"} 1' in text, [l for l in text.splitlines() if "pano_eks_services" in l]
    print("ok: sync --watch metrics: pano_eks_services{cluster=\"shop\",state=\"exposed\"} 1")


def check_aws_up():
    cfn, s3, ec2 = lab.aws("cloudformation"), lab.aws("s3"), lab.aws("ec2")
    for s in STACKS:
        assert cfn.describe_stacks(StackName=s)["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE", s
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket="demo-panw-bootstrap")["Contents"]}
    assert {"config/init-cfg.txt", "license/authcodes", "content/", "software/", "plugins/"} <= keys, keys
    init = s3.get_object(Bucket="demo-panw-bootstrap", Key="config/init-cfg.txt")["Body"].read().decode()
    assert "panorama-server=127.0.0.1" in init and "dgname=eks-dg" in init and "tplname=eks-stack" in init, init
    cred = Path(os.environ["LAB_RUN"]) / ".pano-eks/demo/shop/pan-user-credential.json"
    assert stat.S_IMODE(cred.stat().st_mode) == 0o600, oct(cred.stat().st_mode)
    assert json.loads(cred.read_text())["data"]["token"], "pan-user token exported"
    # Every firewall has its trust interface (eth2) from the lifecycle lambda.
    asg = lab.aws("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=["demo-firewall-PANW-Firewall-ASG"])["AutoScalingGroups"]
    ids = [i["InstanceId"] for g in asg for i in g["Instances"]]
    assert ids, "firewall instances"
    for r in ec2.describe_instances(InstanceIds=ids)["Reservations"]:
        for i in r["Instances"]:
            assert sorted(n["Attachment"]["DeviceIndex"] for n in i["NetworkInterfaces"]) == [0, 1, 2], i["InstanceId"]
    print(f"ok: stacks {sorted(STACKS)} CREATE_COMPLETE, bootstrap package, pan-user credential 0600, {len(ids)} firewalls with eth2")


def check_probe_path():
    """The load balancers' health-check path to the firewalls, as configured end to end (issue 13):
    the firewall stack's target group probes HTTPS 443 on eth0, eth0's security group admits that
    only from the load balancer's group, and in Panorama's running config the untrust interface
    carries the HTTPS-only profile permitted from the UNTRUST subnets."""
    cfn, elb, ec2 = lab.aws("cloudformation"), lab.aws("elbv2"), lab.aws("ec2")
    out = {o["OutputKey"]: o["OutputValue"] for o in cfn.describe_stacks(StackName="demo-firewall")["Stacks"][0]["Outputs"]}
    tg = elb.describe_target_groups(TargetGroupArns=[out["PublicTargetGroupArn"]])["TargetGroups"][0]
    assert (tg["HealthCheckProtocol"], tg["HealthCheckPort"]) == ("HTTPS", "443"), tg
    perms = ec2.describe_security_groups(GroupIds=[out["UntrustSecurityGroup"]])["SecurityGroups"][0]["IpPermissions"]
    assert any(p.get("FromPort", 0) <= 443 <= p.get("ToPort", 65535)
               and any(g["GroupId"] == out["ElbSecurityGroup"] for g in p.get("UserIdGroupPairs", [])) for p in perms), perms
    assert not any(p.get("IpRanges") for p in perms), f"eth0 admits addresses directly: {perms}"
    ctx = ssl.create_default_context(cafile=os.environ["LAB_PANORAMA_CA"])
    with urllib.request.urlopen(os.environ["LAB_PANORAMA_URL"] + "/_sim/config?which=running", context=ctx, timeout=10) as r:
        xml = "".join(line.strip() for line in r.read().decode().splitlines())
    xml = re.sub(r' (admin|dirtyId|time|uuid)="[^"]*"', "", xml)
    for want in ("<interface-management-profile>pano-eks-lb-probe</interface-management-profile>",
                 "<https>yes</https><permitted-ip><entry name=\"192.168.1.0/24\"/><entry name=\"192.168.11.0/24\"/></permitted-ip>"):
        assert want in xml, f"running config lacks {want}"
    print("ok: probe path: target group HTTPS 443 -> eth0 (from the LB's group only) -> profile pano-eks-lb-probe (UNTRUST subnets)")


def check_down():
    for running in (False, True):
        got = lab.read_back(running=running)
        assert not any(got.values()), ("running" if running else "candidate", got)
    for which in ("candidate", "running"):
        ctx = ssl.create_default_context(cafile=os.environ["LAB_PANORAMA_CA"])
        with urllib.request.urlopen(os.environ["LAB_PANORAMA_URL"] + f"/_sim/config?which={which}", context=ctx, timeout=10) as r:
            xml = r.read().decode()
        assert "pano-eks" not in xml and "pke-" not in xml, f"{which} config still mentions our objects"
    print("ok: Panorama candidate and running hold none of our objects")
    cfn, s3, ec2 = lab.aws("cloudformation"), lab.aws("s3"), lab.aws("ec2")
    live = [s["StackName"] for s in cfn.list_stacks()["StackSummaries"] if s["StackStatus"] != "DELETE_COMPLETE"]
    assert not live, live
    assert not [b["Name"] for b in s3.list_buckets().get("Buckets", []) if b["Name"].startswith("demo-")]
    # Per resource type: moto's DescribeTags also lists tags of deleted resources (its tag store
    # is not cleaned on delete), so it cannot serve as the residue check.
    flt = [{"Name": "tag:pano-eks:deployment", "Values": ["demo"]}]
    left = {
        "vpc": [v["VpcId"] for v in ec2.describe_vpcs(Filters=flt)["Vpcs"]],
        "subnet": [x["SubnetId"] for x in ec2.describe_subnets(Filters=flt)["Subnets"]],
        "security-group": [g["GroupId"] for g in ec2.describe_security_groups(Filters=flt)["SecurityGroups"]],
        "launch-template": [t["LaunchTemplateId"] for t in ec2.describe_launch_templates(Filters=flt)["LaunchTemplates"]],
        "internet-gateway": [g["InternetGatewayId"] for g in ec2.describe_internet_gateways(Filters=flt)["InternetGateways"]],
        "nat-gateway": [g["NatGatewayId"] for g in ec2.describe_nat_gateways(Filter=flt)["NatGateways"] if g["State"] != "deleted"],
        "load-balancer": [lb["LoadBalancerName"] for lb in lab.aws("elbv2").describe_load_balancers()["LoadBalancers"]],
        "eks-cluster": lab.aws("eks").list_clusters()["clusters"],
    }
    assert not any(left.values()), left
    running = [i["InstanceId"] for r in ec2.describe_instances(Filters=[{"Name": "instance-state-name", "Values": ["pending", "running"]}])["Reservations"] for i in r["Instances"]]
    assert not running, running
    # The primary ENIs of terminated instances stay "in-use" in moto (a documented moto gap,
    # docs/testing.md); any other ENI is residue.
    states = {i["InstanceId"]: i["State"]["Name"] for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]}
    enis = ec2.describe_network_interfaces()["NetworkInterfaces"]
    gap = [n["NetworkInterfaceId"] for n in enis if states.get((n.get("Attachment") or {}).get("InstanceId")) == "terminated"]
    residue = [n["NetworkInterfaceId"] for n in enis if n["NetworkInterfaceId"] not in gap]
    assert not residue, f"ENIs left: {residue}"
    print(f"ok: AWS: no stack, bucket, tagged resource, running instance or ENI left (moto gap: {len(gap)} ENI(s) of terminated instances)")


def main(checkpoint, env_file):
    for line in Path(env_file).read_text().splitlines():
        k, _, v = line.partition("=")
        os.environ.setdefault(k, v)
    print(f"-- checkpoint {checkpoint}")
    if checkpoint == "up":
        wait_settled("after up", watch=False)
        check_aws_up()
        check_probe_path()
        check_panorama([], running=False, routes_expected=False)
        check_panorama([], running=True, routes_expected=False)
    elif checkpoint == "protected":
        wait_settled("3 Services protected")
        check_panorama(DEMO, running=False)
        check_panorama(DEMO, running=True)
        check_pushes()
        check_status(DEMO)
    elif checkpoint == "relabeled":
        now = [("guestbook", "frontend", 85, 80)] + DEMO[1:]
        wait_settled("relabel 82 -> 85")
        check_panorama(now, running=False)
        check_panorama(now, running=True)
        check_pushes()
        check_status(now)
    elif checkpoint == "deleted":
        now = [("guestbook", "frontend", 85, 80), DEMO[1]]
        wait_settled("guestbook-staging/frontend deleted")
        check_panorama(now, running=False)
        check_panorama(now, running=True)
        check_pushes()
        check_status(now)
    elif checkpoint == "exposed":
        wait_settled("guestbook/frontend-public created")
        check_exposed([("guestbook", "frontend", 85, 80), DEMO[1]])
    elif checkpoint == "down":
        wait_settled("after down", watch=False)
        check_down()
    else:
        sys.exit(f"unknown checkpoint {checkpoint}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
