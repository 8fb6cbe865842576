"""pano-eks cfn-lint rules: what a real AWS account (not moto, not cfn-lint's schemas) needs from the
rendered templates (issue 13). Loaded with `cfn-lint --append-rules tests/cfn-rules`; the sweep in
`render::cfn::tests::cfn_lint_sweep` runs them over every rendered variant, and every rule has a
canary in `tests/cfn-rules/canaries/` that must trip it (so a rule that stopped matching anything
is noticed). See docs/cfn-lint.md for what each rule protects and its sources.
"""

from __future__ import annotations

from typing import Any, Iterator

from cfnlint.rules import CloudFormationLintRule, RuleMatch

# The port `panorama prepare` opens on the untrust interface with its interface management
# profile (HTTPS); mirrors `pano_eks_core::prepare::PROBE_PORT` (a Rust test keeps them equal).
PROBE_PORT = 443
# Lambda's asynchronous invocation retries a failed event twice by default, about 1 and 2 minutes
# apart (AWS Lambda developer guide, "Asynchronous invocation").
ASYNC_RETRY_DELAYS_S = (60, 120)
ECR_LAYER_BUCKET = "prod-${AWS::Region}-starport-layer-bucket"


def _resources(cfn: Any, *types: str) -> Iterator[tuple[str, dict]]:
    for name, res in (cfn.template.get("Resources") or {}).items():
        if isinstance(res, dict) and (not types or res.get("Type") in types):
            yield name, res


def _props(res: dict) -> dict:
    p = res.get("Properties")
    return p if isinstance(p, dict) else {}


def _depends_on(res: dict) -> list[str]:
    d = res.get("DependsOn") or []
    return [d] if isinstance(d, str) else list(d)


def _ref_target(v: Any) -> str | None:
    """The logical id a `!Ref X` / `!GetAtt X.GroupId` points at."""
    if isinstance(v, dict):
        if "Ref" in v:
            return v["Ref"]
        if "Fn::GetAtt" in v:
            g = v["Fn::GetAtt"]
            return g[0] if isinstance(g, list) else str(g).split(".")[0]
    return None


def _port(v: Any) -> int | None:
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


class PublicLoadBalancerAfterGateway(CloudFormationLintRule):
    id = "E9001"
    shortdesc = "Internet-facing load balancer depends on the gateway attachment"
    description = (
        "In a template that attaches an internet gateway, every internet-facing load balancer must "
        "DependsOn the attachment: created after it, deleted before it (else 'VPC has no internet gateway')."
    )
    source_url = "https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-attribute-dependson.html"
    tags = ["pano-eks", "elb"]

    def match(self, cfn: Any) -> list[RuleMatch]:
        attachments = [n for n, _ in _resources(cfn, "AWS::EC2::VPCGatewayAttachment")]
        if not attachments:
            return []
        out = []
        for name, res in _resources(cfn, "AWS::ElasticLoadBalancingV2::LoadBalancer"):
            if _props(res).get("Scheme", "internet-facing") != "internet-facing":
                continue
            missing = [a for a in attachments if a not in _depends_on(res)]
            if missing:
                out.append(RuleMatch(["Resources", name], f"{name} does not DependsOn {', '.join(missing)}"))
        return out


def _launch_template_groups(cfn: Any) -> set[str]:
    groups: set[str] = set()
    for _, lt in _resources(cfn, "AWS::EC2::LaunchTemplate"):
        data = _props(lt).get("LaunchTemplateData") or {}
        for g in data.get("SecurityGroupIds") or []:
            if t := _ref_target(g):
                groups.add(t)
    return groups


def _ingress(cfn: Any, group: str) -> list[dict]:
    """Inline rules of `group` plus its AWS::EC2::SecurityGroupIngress resources."""
    rules = []
    res = (cfn.template.get("Resources") or {}).get(group) or {}
    rules.extend(r for r in _props(res).get("SecurityGroupIngress") or [] if isinstance(r, dict))
    for _, r in _resources(cfn, "AWS::EC2::SecurityGroupIngress"):
        if _ref_target(_props(r).get("GroupId")) == group:
            rules.append(_props(r))
    return rules


def _admits(rule: dict, port: int) -> bool:
    if str(rule.get("IpProtocol")) in ("-1", "all"):
        return True
    if str(rule.get("IpProtocol")) not in ("tcp", "6"):
        return False
    lo, hi = _port(rule.get("FromPort")), _port(rule.get("ToPort"))
    return lo is not None and hi is not None and lo <= port <= hi


class HealthCheckReachesFirewall(CloudFormationLintRule):
    id = "E9002"
    shortdesc = "Firewall target groups probe the port the firewall answers, and it is admitted"
    description = (
        f"A target group of the firewall auto scaling group health-checks port {PROBE_PORT} (opened by "
        "`panorama prepare` with an interface management profile), and the firewall's eth0 security "
        "group admits that port from the load balancer's security group."
    )
    source_url = "https://docs.aws.amazon.com/elasticloadbalancing/latest/application/target-group-health-checks.html"
    tags = ["pano-eks", "elb"]

    def match(self, cfn: Any) -> list[RuleMatch]:
        out = []
        asg_tgs: set[str] = set()
        for _, asg in _resources(cfn, "AWS::AutoScaling::AutoScalingGroup"):
            for t in _props(asg).get("TargetGroupARNs") or []:
                if n := _ref_target(t):
                    asg_tgs.add(n)
        lb_groups: set[str] = set()
        for _, lb in _resources(cfn, "AWS::ElasticLoadBalancingV2::LoadBalancer"):
            for g in _props(lb).get("SecurityGroups") or []:
                if n := _ref_target(g):
                    lb_groups.add(n)
        fw_groups = _launch_template_groups(cfn)
        for name in sorted(asg_tgs):
            tg = (cfn.template.get("Resources") or {}).get(name) or {}
            p = _props(tg)
            hc = p.get("HealthCheckPort", "traffic-port")
            port = _port(p.get("Port")) if hc == "traffic-port" else _port(hc)
            if port != PROBE_PORT:
                out.append(RuleMatch(["Resources", name, "Properties", "HealthCheckPort"],
                                     f"{name} health-checks port {hc}, which no firewall answers (want {PROBE_PORT})"))
                continue
            if str(p.get("HealthCheckProtocol", "")).upper() not in ("HTTPS", "TCP"):
                out.append(RuleMatch(["Resources", name], f"{name} probes {PROBE_PORT} with {p.get('HealthCheckProtocol')}, not HTTPS/TCP"))
            if not lb_groups:
                out.append(RuleMatch(["Resources", name], "the load balancer has no security group to admit its probes from"))
                continue
            admitted = any(
                _admits(r, port) and _ref_target(r.get("SourceSecurityGroupId")) in lb_groups
                for g in fw_groups for r in _ingress(cfn, g)
            )
            if not admitted:
                out.append(RuleMatch(["Resources", name], f"no firewall security group admits tcp {port} from the load balancer"))
        return out


class SecurityGroupRules(CloudFormationLintRule):
    id = "E9003"
    shortdesc = "No all-protocol inline ingress; firewall eth0 only from the load balancer"
    description = (
        "Inline ingress rules never admit all protocols (that is also where moto's FromPort/ToPort -1 "
        "workaround lived); the firewall eth0 group admits only the load balancer's security group; no "
        "management rule admits a whole VPC CIDR."
    )
    source_url = "https://docs.aws.amazon.com/elasticloadbalancing/latest/network/load-balancer-security-groups.html"
    tags = ["pano-eks", "security-group"]

    def match(self, cfn: Any) -> list[RuleMatch]:
        out = []
        fw_groups = _launch_template_groups(cfn)
        for name, sg in _resources(cfn, "AWS::EC2::SecurityGroup"):
            for i, r in enumerate(_props(sg).get("SecurityGroupIngress") or []):
                if not isinstance(r, dict):
                    continue
                path = ["Resources", name, "Properties", "SecurityGroupIngress", i]
                if str(r.get("IpProtocol")) in ("-1", "all"):
                    out.append(RuleMatch(path, f"{name} has an inline all-protocol ingress rule"))
                if _ref_target(r.get("CidrIp")) == "VpcCidr":
                    out.append(RuleMatch(path, f"{name} admits the whole VPC CIDR"))
        for g in sorted(fw_groups):
            for r in _ingress(cfn, g):
                if "SourceSecurityGroupId" not in r:
                    src = r.get("CidrIp") or r.get("CidrIpv6") or r.get("SourcePrefixListId")
                    out.append(RuleMatch(["Resources", g], f"firewall eth0 group {g} admits {src} directly, not only the load balancer"))
        return out


class ImdsV2Required(CloudFormationLintRule):
    id = "E9004"
    shortdesc = "Launch templates require IMDSv2"
    description = (
        "Every launch template sets MetadataOptions.HttpTokens: required, unless its Metadata carries "
        "`pano-eks/imdsv1` (the documented opt-out for old VM-Series images)."
    )
    source_url = "https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/configuring-IMDS-new-instances.html"
    tags = ["pano-eks", "ec2"]

    def match(self, cfn: Any) -> list[RuleMatch]:
        out = []
        for name, lt in _resources(cfn, "AWS::EC2::LaunchTemplate"):
            opts = (_props(lt).get("LaunchTemplateData") or {}).get("MetadataOptions") or {}
            if opts.get("HttpTokens") == "required":
                continue
            if opts.get("HttpTokens") == "optional" and "pano-eks/imdsv1" in (lt.get("Metadata") or {}):
                continue
            out.append(RuleMatch(["Resources", name], f"{name} does not require IMDSv2 (HttpTokens {opts.get('HttpTokens')})"))
        return out


class HookOutlivesLambdaRetries(CloudFormationLintRule):
    id = "E9005"
    shortdesc = "Lifecycle hook heartbeat well above the lambda's total retry time"
    description = (
        "Each lifecycle hook's HeartbeatTimeout is at least twice the time Lambda can spend on one "
        "event: (retries + 1) x function timeout + the asynchronous retry delays."
    )
    source_url = "https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html"
    tags = ["pano-eks", "lambda", "autoscaling"]

    def match(self, cfn: Any) -> list[RuleMatch]:
        functions = {n: _props(f) for n, f in _resources(cfn, "AWS::Lambda::Function")}
        if not functions:
            return []
        retries = {n: 2 for n in functions}
        for _, c in _resources(cfn, "AWS::Lambda::EventInvokeConfig"):
            fn = _ref_target(_props(c).get("FunctionName"))
            if fn in retries:
                retries[fn] = int(_props(c).get("MaximumRetryAttempts", 2))
        worst = max(
            (retries[n] + 1) * int(p.get("Timeout", 3)) + sum(ASYNC_RETRY_DELAYS_S[: retries[n]])
            for n, p in functions.items()
        )
        out = []
        for name, asg in _resources(cfn, "AWS::AutoScaling::AutoScalingGroup"):
            for i, h in enumerate(_props(asg).get("LifecycleHookSpecificationList") or []):
                hb = _port(h.get("HeartbeatTimeout")) or 3600
                if hb < 2 * worst:
                    out.append(RuleMatch(
                        ["Resources", name, "Properties", "LifecycleHookSpecificationList", i, "HeartbeatTimeout"],
                        f"heartbeat {hb}s is not well above the lambda's worst case of {worst}s (want >= {2 * worst}s)"))
        return out


class S3EndpointServesClusters(CloudFormationLintRule):
    id = "E9006"
    shortdesc = "S3 gateway endpoint policy allows the ECR layer bucket"
    description = (
        "An S3 gateway endpoint on a route table that carries traffic to the internet must let ECR "
        "image layers through (bucket prod-<region>-starport-layer-bucket)."
    )
    source_url = "https://docs.aws.amazon.com/AmazonECR/latest/userguide/vpc-endpoints.html"
    tags = ["pano-eks", "vpc-endpoint"]

    def match(self, cfn: Any) -> list[RuleMatch]:
        out = []
        for name, ep in _resources(cfn, "AWS::EC2::VPCEndpoint"):
            p = _props(ep)
            if p.get("VpcEndpointType", "Gateway") != "Gateway":
                continue
            doc = p.get("PolicyDocument")
            if doc is None:
                continue  # no policy: full access
            text = repr(doc)
            open_all = any(
                s.get("Effect") == "Allow" and s.get("Resource") in ("*", ["*"])
                for s in (doc.get("Statement") or []) if isinstance(s, dict)
            )
            if not open_all and ECR_LAYER_BUCKET not in text:
                out.append(RuleMatch(["Resources", name, "Properties", "PolicyDocument"],
                                     f"{name} policy does not allow the ECR layer bucket {ECR_LAYER_BUCKET}"))
        return out


class CreateTagsOnlyAtCreation(CloudFormationLintRule):
    id = "E9007"
    shortdesc = "ec2:CreateTags is conditioned on the creating action"
    description = (
        "An IAM statement allowing ec2:CreateTags without other actions must carry the condition "
        "ec2:CreateAction (so it tags only what the same call creates, never an existing resource)."
    )
    source_url = "https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/supported-iam-actions-tagging.html"
    tags = ["pano-eks", "iam"]

    def match(self, cfn: Any) -> list[RuleMatch]:
        out = []
        for name, role in _resources(cfn, "AWS::IAM::Role"):
            for pi, pol in enumerate(_props(role).get("Policies") or []):
                for si, st in enumerate((pol.get("PolicyDocument") or {}).get("Statement") or []):
                    actions = st.get("Action")
                    actions = [actions] if isinstance(actions, str) else list(actions or [])
                    if "ec2:CreateTags" not in actions or st.get("Effect") != "Allow":
                        continue
                    cond = repr(st.get("Condition") or {})
                    if "ec2:CreateAction" not in cond:
                        out.append(RuleMatch(["Resources", name, "Properties", "Policies", pi, "PolicyDocument", "Statement", si],
                                             f"{name}: ec2:CreateTags without an ec2:CreateAction condition"))
        return out


class EksPublicEndpointScoped(CloudFormationLintRule):
    id = "E9008"
    shortdesc = "EKS public endpoint limited to listed CIDRs"
    description = (
        "An EKS cluster with a public endpoint sets PublicAccessCidrs (default 0.0.0.0/0 is the whole "
        "internet); pano-eks fills it from clusters[].endpoint_public_cidrs or firewalls.ssh_from."
    )
    source_url = "https://docs.aws.amazon.com/eks/latest/userguide/cluster-endpoint.html"
    tags = ["pano-eks", "eks"]

    def match(self, cfn: Any) -> list[RuleMatch]:
        out = []
        for name, c in _resources(cfn, "AWS::EKS::Cluster"):
            vpc = _props(c).get("ResourcesVpcConfig") or {}
            if vpc.get("EndpointPublicAccess", True) is False or str(vpc.get("EndpointPublicAccess")).lower() == "false":
                continue
            cidrs = vpc.get("PublicAccessCidrs")
            if cidrs is None or cidrs == ["0.0.0.0/0"]:
                out.append(RuleMatch(["Resources", name, "Properties", "ResourcesVpcConfig"],
                                     f"{name} has a public endpoint open to the whole internet (no PublicAccessCidrs)"))
        return out
