"""moto_server with the pano-eks test-harness bridges loaded. Started by tests/support/moto.rs:

    python tests/moto/moto_pano.py -H 127.0.0.1 -p PORT

Each bridge below makes moto behave like AWS where pano-eks depends on it. Every one is listed
in docs/testing.md; none of this is product code.

1. AWS::EKS::Cluster in CloudFormation: moto skips it. Here it is created (and deleted) through
   moto's own EKS backend, so eks:DescribeCluster finds the cluster a stack made.
2. DeleteStack: moto leaks route tables, associations, IGW attachments, IGWs, EIPs, NAT gateways,
   VPC endpoints and target groups, so a VPC stack never deletes; and when a resource fails it
   drops the stack instead of leaving it DELETE_FAILED. Here those resources are deleted, and a
   failed delete leaves the stack in DELETE_FAILED with the reason as an event (as AWS does).
3. Failed creates: moto leaves the stack CREATE_IN_PROGRESS forever and returns the error from
   CreateStack/ExecuteChangeSet. Here the stack rolls back to ROLLBACK_COMPLETE with a
   CREATE_FAILED event carrying the reason, and the call succeeds (as AWS does).
6. Stacks created through a change set (CreateChangeSet + ExecuteChangeSet) have empty
   outputs in moto; here they are computed after the resources exist.
4. DeleteSecurityGroup / DeleteSubnet succeed in moto while a detached ("available") ENI still
   uses the group or subnet; AWS refuses with DependencyViolation (known issue PLUG-2253). Here
   they refuse too (ENIs of terminated instances, which moto leaks as in-use, are not counted).
8. eks:DescribeClusterVersions: moto has no such route (404). Here it answers from the Amazon EKS
   Kubernetes release calendar (docs.aws.amazon.com/eks/latest/userguide/kubernetes-versions.html),
   each version's status computed from today's date as EKS does (MOTO_PANO_TODAY pins "today").
9. AWS Marketplace: moto's AMIs carry no product codes and every launch succeeds. Here an AMI
   tagged `moto-pano:product-code=CODE` carries that Marketplace product code (DescribeImages),
   and one also tagged `moto-pano:subscribed=false` stands for a product the account has not
   subscribed to: RunInstances (with or without DryRun) fails with OptInRequired, as AWS does.
10. ELB network interfaces: AWS gives a load balancer requester-managed ENIs described
   `ELB <type>/<name>/<id>` and deletes them (some minutes) after the load balancer. moto creates
   none; a test injects them, and here DeleteLoadBalancer deletes the ENIs of that description.
11. Bucket policies (docs/testing.md row 11): moto applies a statement without evaluating its Condition, so the TLS-only
   statement (Deny s3:* when aws:SecureTransport is false) denies everything. Here a statement
   whose only condition is aws:SecureTransport is evaluated as over TLS (the SDK talks HTTPS to
   AWS; the harness is plain HTTP only because it is local): it does not apply.
12. Load-balancer and Auto Scaling quotas: moto enforces none (its CreateRule carries
   "TODO: check for error 'TooManyRules'"). AWS refuses a rule or default action that would make
   an ALB use more than 100 unique target groups over its listeners
   (TooManyUniqueTargetGroupsPerLoadBalancer) or hold more than 100 rules (TooManyRules; the
   default quota), and an Auto Scaling group takes at most 50 ELB target groups (not adjustable;
   the error code is not documented: ValidationError here, the strictest plausible reading).
13. NLB listeners: moto takes any number. AWS refuses a 51st listener on a Network Load Balancer
   ("Quotas for your Network Load Balancers": 50 listeners per load balancer, not adjustable)
   with TooManyListeners (ELB API reference, CreateListener errors: "You've reached the limit on
   the number of listeners per load balancer"). Here CreateListener on an NLB holding 50 does.
"""
import datetime
import os
import sys

from moto.cloudformation import models as cfn_models
from moto.cloudformation import parsing
from moto.core.common_models import CloudFormationModel
from moto.ec2.exceptions import DependencyViolationError
from moto.ec2.models import ec2_backends
from moto.eks.models import eks_backends
from moto.elbv2.models import elbv2_backends


# 1. AWS::EKS::Cluster through moto's EKS backend.
class PanoEksCluster(CloudFormationModel):
    # moto's model metaclass derives the service from the module path.
    __module__ = "moto.eks.pano_eks_bridge"

    def __init__(self, name):
        self.name = name

    @staticmethod
    def cloudformation_name_type():
        return "Name"

    @staticmethod
    def cloudformation_type():
        return "AWS::EKS::Cluster"

    @classmethod
    def has_cfn_attr(cls, attr):
        return attr in ("Arn", "Endpoint", "CertificateAuthorityData")

    @property
    def physical_resource_id(self):
        return self.name

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        p = cloudformation_json.get("Properties", {})
        vpc = p.get("ResourcesVpcConfig", {})
        tags = {t["Key"]: t["Value"] for t in p.get("Tags", [])}
        eks_backends[account_id][region_name].create_cluster(
            name=resource_name,
            role_arn=p["RoleArn"],
            resources_vpc_config={
                "subnetIds": vpc.get("SubnetIds", []),
                "securityGroupIds": vpc.get("SecurityGroupIds", []),
                "endpointPublicAccess": vpc.get("EndpointPublicAccess", True),
                "endpointPrivateAccess": vpc.get("EndpointPrivateAccess", False),
            },
            version=p.get("Version"),
            tags=tags,
        )
        return cls(resource_name)

    @classmethod
    def delete_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name):
        backend = eks_backends[account_id][region_name]
        if resource_name in backend.clusters:
            backend.delete_cluster(resource_name)

    def delete(self, account_id, region_name):
        backend = eks_backends[account_id][region_name]
        if self.name in backend.clusters:
            backend.delete_cluster(self.name)


# 2. Delete what moto's CloudFormation leaks.
_orig_delete_resource = parsing.ResourceMap._delete_resource


def _delete_resource(self, parsed, resource_json):
    kind = resource_json.get("Type")
    ec2 = ec2_backends[self._account_id][self._region_name]
    if kind == "AWS::EC2::SubnetRouteTableAssociation":
        rt = ec2.route_tables.get(parsed.route_table_id)
        if rt is not None:
            for aid, sid in list(rt._associations.items()):
                if sid == parsed.subnet_id:
                    rt._associations.pop(aid)
        return
    if kind == "AWS::EC2::RouteTable":
        if parsed.id in ec2.route_tables:
            ec2.delete_route_table(parsed.id)  # DependencyViolation while associated: retried
        return
    if kind == "AWS::EC2::Route":
        return  # dies with its table
    if kind == "AWS::EC2::VPCGatewayAttachment":
        igw = ec2.internet_gateways.get(parsed.gateway_id) if parsed.gateway_id else None
        if igw is not None and igw.vpc is not None and igw.vpc.id == parsed.vpc_id:
            ec2.detach_internet_gateway(parsed.gateway_id, parsed.vpc_id)
        return
    if kind == "AWS::EC2::InternetGateway":
        igw = ec2.internet_gateways.get(parsed.id)
        if igw is not None:
            if igw.vpc is not None:
                raise DependencyViolationError(f"The internetGateway '{parsed.id}' has dependencies and cannot be deleted.")
            ec2.delete_internet_gateway(parsed.id)
        return
    if kind == "AWS::EC2::NatGateway":
        try:
            ec2.delete_nat_gateway(parsed.id)
        except Exception:
            pass
        return
    if kind == "AWS::EC2::EIP":
        try:
            ec2.release_address(allocation_id=parsed.allocation_id)
        except Exception:
            pass
        return
    if kind == "AWS::EC2::VPCEndpoint":
        try:
            ec2.delete_vpc_endpoints([parsed.id])
        except Exception:
            pass
        return
    if kind == "AWS::ElasticLoadBalancingV2::TargetGroup":
        elbv2 = elbv2_backends[self._account_id][self._region_name]
        if parsed.arn in elbv2.target_groups:
            elbv2.delete_target_group(parsed.arn)  # fails while a listener uses it: retried
        return
    return _orig_delete_resource(self, parsed, resource_json)


parsing.ResourceMap._delete_resource = _delete_resource

_orig_backend_delete_stack = cfn_models.CloudFormationBackend.delete_stack


def _delete_stack(self, name_or_stack_id):
    stack = self.stacks.get(name_or_stack_id)
    if stack is None:
        stack = next((s for s in self.stacks.values() if s.name == name_or_stack_id), None)
    if stack is None:
        return _orig_backend_delete_stack(self, name_or_stack_id)
    try:
        stack._add_stack_event("DELETE_IN_PROGRESS", resource_status_reason="User Initiated")
        stack.resource_map.delete()
    except Exception as e:  # AWS: DeleteStack succeeds, the stack ends DELETE_FAILED
        reason = getattr(e, "message", None) or str(e)
        stack.status = "DELETE_FAILED"
        stack.status_reason = reason
        stack._add_stack_event("DELETE_FAILED", resource_status_reason=reason)
        return
    self.stacks.pop(stack.stack_id, None)
    for export in stack.exports:
        self.exports.pop(export.name, None)
    stack._add_stack_event("DELETE_COMPLETE")
    stack.status = "DELETE_COMPLETE"
    self.deleted_stacks[stack.stack_id] = stack


cfn_models.CloudFormationBackend.delete_stack = _delete_stack


# 3. A failed create rolls back.
_orig_create_resources = cfn_models.Stack.create_resources


def _create_resources(self):
    try:
        _orig_create_resources(self)
        # 6. A stack created through a change set has its outputs computed before its resources
        # existed (empty); AWS computes them at the end of the create.
        self.output_map = self._create_output_map()
    except Exception as e:
        reason = getattr(e, "message", None) or str(e)
        self._add_stack_event("CREATE_FAILED", resource_status_reason=reason)
        self._add_stack_event("ROLLBACK_IN_PROGRESS", resource_status_reason="The following resource(s) failed to create.")
        try:
            self.resource_map.delete()
        except Exception:
            pass
        self.status = "ROLLBACK_COMPLETE"
        self.status_reason = reason
        self._add_stack_event("ROLLBACK_COMPLETE")


cfn_models.Stack.create_resources = _create_resources



# 3b/6. Change sets: moto executes them through ResourceMap.update, so a failure escapes from
# ExecuteChangeSet and the outputs are never computed. Same AWS behaviour as above.
_orig_execute_change_set = cfn_models.CloudFormationBackend.execute_change_set


def _execute_change_set(self, change_set_name, stack_name=None):
    cs = self.change_sets.get(change_set_name) or next((c for c in self.change_sets.values() if c.change_set_name == change_set_name), None)
    try:
        _orig_execute_change_set(self, change_set_name, stack_name)
    except Exception as e:
        if cs is None:
            raise
        stack = self.stacks[cs.stack_id]
        reason = getattr(e, "message", None) or str(e)
        if cs.change_set_type == "CREATE":
            stack._add_stack_event("CREATE_FAILED", resource_status_reason=reason)
            stack._add_stack_event("ROLLBACK_IN_PROGRESS", resource_status_reason="The following resource(s) failed to create.")
            try:
                stack.resource_map.delete()
            except Exception:
                pass
            stack.status = "ROLLBACK_COMPLETE"
            stack._add_stack_event("ROLLBACK_COMPLETE")
        else:
            stack._add_stack_event("UPDATE_FAILED", resource_status_reason=reason)
            stack.status = "UPDATE_ROLLBACK_COMPLETE"
            stack._add_stack_event("UPDATE_ROLLBACK_COMPLETE")
        stack.status_reason = reason
        return
    stack = self.stacks[cs.stack_id]
    stack._parse_template()  # the executed template, not the empty one the stack was made with
    stack.output_map = stack._create_output_map()


cfn_models.CloudFormationBackend.execute_change_set = _execute_change_set

# 4. Detached ENIs keep their security groups and subnets alive.
def _available_enis(ec2, pred):
    # moto's NAT gateway ENIs have no instance but are in-use: only truly detached ENIs count.
    return [e for e in ec2.enis.values() if e.instance is None and getattr(e, "status", "available") == "available" and pred(e)]


from moto.ec2.models.security_groups import SecurityGroupBackend  # noqa: E402
from moto.ec2.models.subnets import SubnetBackend  # noqa: E402

_orig_delete_sg = SecurityGroupBackend.delete_security_group


def _delete_security_group(self, name=None, group_id=None):
    if group_id:
        users = _available_enis(self, lambda e: any(getattr(g, "id", g) == group_id for g in e._group_set))
        if users:
            raise DependencyViolationError(f"resource {group_id} has a dependent object")
    return _orig_delete_sg(self, name=name, group_id=group_id)


SecurityGroupBackend.delete_security_group = _delete_security_group

_orig_delete_subnet = SubnetBackend.delete_subnet


def _delete_subnet(self, subnet_id):
    users = _available_enis(self, lambda e: e.subnet is not None and e.subnet.id == subnet_id)
    if users:
        raise DependencyViolationError(f"The subnet '{subnet_id}' has dependencies and cannot be deleted.")
    return _orig_delete_subnet(self, subnet_id)


SubnetBackend.delete_subnet = _delete_subnet


# 5. Reads never re-create deleted resources.
# moto's ResourceMap is a lazy Mapping: __getitem__ parses (creates) any resource not parsed yet.
# After a partial delete (a stack left DELETE_FAILED), DescribeStackResources and the evaluation
# of Outputs on DescribeStacks go through it and re-create what was already deleted: an ASG comes
# back with fresh instances, which then block the VPC's deletion again. CloudFormation never
# creates on read: once a delete has started, a deleted resource reads as its last state (its
# outputs still describe, as on AWS) and nothing is created.
class _Graveyard(dict):
    def __init__(self, live):
        super().__init__(live)
        self.buried = {}

    def pop(self, key, *default):
        value = super().pop(key, *default)
        if value is not None:
            self.buried[key] = value
        return value


_orig_rm_delete = parsing.ResourceMap.delete


def _rm_delete(self):
    if not isinstance(self._parsed_resources, _Graveyard):
        self._parsed_resources = _Graveyard(self._parsed_resources)
    return _orig_rm_delete(self)


parsing.ResourceMap.delete = _rm_delete
_orig_rm_getitem = parsing.ResourceMap.__getitem__


def _rm_getitem(self, key):
    parsed = self._parsed_resources
    if isinstance(parsed, _Graveyard) and key not in parsed:
        if key not in self._resource_json_map:
            raise KeyError(key)
        return parsed.buried.get(key)
    return _orig_rm_getitem(self, key)


parsing.ResourceMap.__getitem__ = _rm_getitem


# 8. eks:DescribeClusterVersions from the EKS release calendar (dates UTC; the calendar's table,
# and endoflife.date/amazon-eks for 1.35).
EKS_CALENDAR = [
    # version, EKS release, end of standard support, end of extended support
    ("1.29", "2024-01-23", "2025-03-23", "2026-03-23"),
    ("1.30", "2024-05-23", "2025-07-23", "2026-07-23"),
    ("1.31", "2024-09-26", "2025-11-26", "2026-11-26"),
    ("1.32", "2025-01-23", "2026-03-23", "2027-03-23"),
    ("1.33", "2025-05-29", "2026-07-29", "2027-07-29"),
    ("1.34", "2025-10-02", "2026-12-02", "2027-12-02"),
    ("1.35", "2026-01-27", "2027-03-27", "2028-03-27"),
]


def _day(d):
    return datetime.datetime.strptime(d, "%Y-%m-%d").replace(tzinfo=datetime.timezone.utc)


def eks_today():
    """Today for the calendar: MOTO_PANO_TODAY=YYYY-MM-DD pins it (the tests do, so that they do
    not change verdict as versions age); otherwise the real date, as EKS uses."""
    pinned = os.environ.get("MOTO_PANO_TODAY")
    return _day(pinned) if pinned else datetime.datetime.now(datetime.timezone.utc)


def eks_cluster_versions(now, include_all=False, only=None):
    out = []
    for version, release, std, ext in EKS_CALENDAR:
        if now >= _day(ext):
            status = "UNSUPPORTED"
        elif now >= _day(std):
            status = "EXTENDED_SUPPORT"
        else:
            status = "STANDARD_SUPPORT"
        if (only and version not in only) or (status == "UNSUPPORTED" and not include_all):
            continue
        out.append({
            "clusterVersion": version,
            "clusterType": "eks",
            "defaultPlatformVersion": "eks.1",
            "defaultVersion": False,
            "releaseDate": _day(release),
            "endOfStandardSupportDate": _day(std),
            "endOfExtendedSupportDate": _day(ext),
            "status": status,
            "versionStatus": status,
            "kubernetesPatchVersion": version + ".0",
        })
    standard = [v for v in out if v["versionStatus"] == "STANDARD_SUPPORT"]
    if standard:
        standard[0]["defaultVersion"] = True  # EKS's default: the oldest in standard support
    return out


from moto.core.responses import ActionResult  # noqa: E402
from moto.eks import urls as eks_urls  # noqa: E402
from moto.eks.responses import EKSResponse  # noqa: E402


def _describe_cluster_versions(self):
    qs = self.querystring
    include_all = (qs.get("includeAll") or ["false"])[0].lower() == "true"
    only = qs.get("clusterVersions") or None
    return ActionResult({"clusterVersions": eks_cluster_versions(eks_today(), include_all, only)})


EKSResponse.describe_cluster_versions = _describe_cluster_versions
eks_urls.url_paths["{0}/cluster-versions$"] = eks_urls.response.dispatch


# 9. Marketplace product codes and subscriptions, driven by tags on the AMI.
from moto.ec2.exceptions import EC2ClientError  # noqa: E402
from moto.ec2.models.tags import TagBackend  # noqa: E402
from moto.ec2.responses.instances import InstanceResponse  # noqa: E402

_orig_create_tags = TagBackend.create_tags


def _create_tags(self, resource_ids, tags):
    result = _orig_create_tags(self, resource_ids, tags)
    code = tags.get("moto-pano:product-code")
    if code:
        for rid in resource_ids:
            if rid.startswith("ami-") and rid in self.amis:
                self.amis[rid].product_codes = [{"ProductCodeId": code, "ProductCodeType": "marketplace"}]
    return result


TagBackend.create_tags = _create_tags


class OptInRequired(EC2ClientError):
    code = "OptInRequired"

    def __init__(self, ami):
        super().__init__(
            "OptInRequired",
            f"In order to use this AWS Marketplace product you need to accept terms and subscribe. "
            f"To do so please visit https://aws.amazon.com/marketplace/pp?sku={ami}",
        )


_orig_run_instances = InstanceResponse.run_instances


def _run_instances(self):
    image_id = self._get_param("ImageId")
    tags = self.ec2_backend.tags.get(image_id, {})
    if tags.get("moto-pano:product-code") and tags.get("moto-pano:subscribed") == "false":
        raise OptInRequired(image_id)
    return _orig_run_instances(self)


InstanceResponse.run_instances = _run_instances


# 10. A deleted load balancer's ENIs go with it.
from moto.elbv2.models import ELBv2Backend  # noqa: E402

_orig_delete_lb = ELBv2Backend.delete_load_balancer


def _delete_load_balancer(self, arn):
    result = _orig_delete_lb(self, arn)
    if ":loadbalancer/" in arn:
        description = "ELB " + arn.split(":loadbalancer/", 1)[1]
        ec2 = ec2_backends[self.account_id][self.region_name]
        for eni in [e for e in ec2.enis.values() if e.description == description]:
            ec2.delete_network_interface(eni.id)
    return result


ELBv2Backend.delete_load_balancer = _delete_load_balancer
# 11. Bucket policy statements conditioned on aws:SecureTransport, evaluated as over TLS.
import json  # noqa: E402

from moto.s3 import models as s3_models  # noqa: E402

_orig_get_permission = s3_models.FakeBucket.get_permission


def _tls_only(statement):
    cond = statement.get("Condition") or {}
    return list(cond) == ["Bool"] and list(cond["Bool"]) == ["aws:SecureTransport"]


def _get_permission(self, action, resource):
    if self.policy is None:
        return _orig_get_permission(self, action, resource)
    doc = json.loads(self.policy.decode())
    statements = doc.get("Statement") or []
    if isinstance(statements, dict):
        statements = [statements]
    kept = []
    for st in statements:
        if _tls_only(st):
            value = str(st["Condition"]["Bool"]["aws:SecureTransport"]).lower()
            if value != "true":
                continue  # the request is over TLS: a "SecureTransport false" statement does not apply
            st = {k: v for k, v in st.items() if k != "Condition"}
        kept.append(st)
    saved = self.policy
    self.policy = json.dumps(dict(doc, Statement=kept)).encode() if kept else None
    try:
        return _orig_get_permission(self, action, resource)
    finally:
        self.policy = saved


s3_models.FakeBucket.get_permission = _get_permission


# 12. ALB: 100 unique target groups and 100 rules per load balancer; ASG: 50 target groups.
from moto.autoscaling.exceptions import ValidationError as AsgValidationError  # noqa: E402
from moto.autoscaling.models import AutoScalingBackend  # noqa: E402
from moto.elbv2.exceptions import ELBClientError  # noqa: E402

ALB_TARGET_GROUPS = 100
ALB_RULES = 100
ASG_TARGET_GROUPS = 50


def _action_tgs(self, actions):
    out = set()
    for a in actions:
        data = a.data if hasattr(a, "data") else a
        if (data.get("Type") or "").lower() == "forward":
            out.update(self._get_target_group_arns_from(action_data=data))
    return out


def _lb_usage(self, lb_arn, skip_listener_default=None):
    """(unique target groups, non-default rules) of a load balancer over all its listeners."""
    lb = self.load_balancers.get(lb_arn)
    tgs, rules = set(), 0
    for listener in (lb.listeners.values() if lb else []):
        if listener.arn != skip_listener_default:
            tgs |= _action_tgs(self, listener.default_actions)
        for rule in listener._non_default_rules.values():
            tgs |= _action_tgs(self, rule.actions)
            rules += 1
    return tgs, rules


def _check_lb(self, listener_arn, new_actions, adds_rule, replaces_default=False):
    listener = self.describe_listeners(None, [listener_arn])[0]
    tgs, rules = _lb_usage(self, listener.load_balancer_arn, listener_arn if replaces_default else None)
    if adds_rule and rules + 1 > ALB_RULES:
        raise ELBClientError("TooManyRules", "You've reached the limit on the number of rules per load balancer.")
    if len(tgs | _action_tgs(self, new_actions)) > ALB_TARGET_GROUPS:
        raise ELBClientError(
            "TooManyUniqueTargetGroupsPerLoadBalancer",
            "You've reached the limit on the number of unique target groups per load balancer across all listeners.",
        )


_orig_create_rule = ELBv2Backend.create_rule
_orig_modify_listener = ELBv2Backend.modify_listener


def _create_rule(self, listener_arn, conditions, priority, actions, tags=None):
    _check_lb(self, listener_arn, actions, adds_rule=True)
    return _orig_create_rule(self, listener_arn, conditions, priority, actions, tags)


def _modify_listener(self, arn, port=None, protocol=None, ssl_policy=None, certificates=None, actions=None):
    if actions:
        _check_lb(self, arn, actions, adds_rule=False, replaces_default=True)
    return _orig_modify_listener(self, arn, port, protocol, ssl_policy, certificates, actions)


ELBv2Backend.create_rule = _create_rule
ELBv2Backend.modify_listener = _modify_listener

_orig_attach_tgs = AutoScalingBackend.attach_load_balancer_target_groups


def _attach_tgs(self, group_name, target_group_arns):
    group = self.autoscaling_groups[group_name]
    if len(set(group.target_group_arns) | set(target_group_arns)) > ASG_TARGET_GROUPS:
        raise AsgValidationError(
            f"Elastic Load Balancing target groups per Auto Scaling group: at most {ASG_TARGET_GROUPS}"
        )
    return _orig_attach_tgs(self, group_name, target_group_arns)


AutoScalingBackend.attach_load_balancer_target_groups = _attach_tgs


# 13. NLB: 50 listeners per load balancer.
NLB_LISTENERS = 50
_orig_create_listener = ELBv2Backend.create_listener


def _create_listener(self, load_balancer_arn, protocol, port, *args, **kwargs):
    lb = self.load_balancers.get(load_balancer_arn)
    if lb is not None and lb.type == "network" and len(lb.listeners) >= NLB_LISTENERS:
        raise ELBClientError("TooManyListeners", "You've reached the limit on the number of listeners per load balancer.")
    return _orig_create_listener(self, load_balancer_arn, protocol, port, *args, **kwargs)


ELBv2Backend.create_listener = _create_listener


if __name__ == "__main__":
    from moto.server import main

    main(sys.argv[1:])
