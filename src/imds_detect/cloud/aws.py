"""AWS: collect per-workload summaries from CloudTrail calls, then judge them when the scan ends.

Workload credentials recognised (from the session ARN ``assumed-role/<role>/<session>``):

- EC2 instance profiles: the session name is the instance id (``i-...``); ``ec2RoleDelivery`` says whether
  IMDSv1 (``1.0``) or IMDSv2 (``2.0``) handed them out.
- ECS task roles: sessions that ``ecs-tasks.amazonaws.com`` issued (``AssumeRole`` seen), or named like a task id.
- EKS Pod Identity: sessions issued by ``pods.eks.amazonaws.com`` or returned by ``AssumeRoleForPodIdentity``
  (then the cluster is known, and the nodes' addresses are where that call came from), or named ``eks-...``.

What is learned about addresses on the way: the instance's own addresses (``RunInstances`` responses,
``AssociateAddress``/``AllocateAddress``, calls by its on-instance agents), the addresses people use (IAM
users, root, federated and SSO users, console sessions), and who ran commands on an instance
(``SendCommand``, ``StartSession``, EC2 Instance Connect). Memory grows with workloads and addresses, not
with records.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..knowledge.cloud import (
    EC2_SERVICE,
    ECS_TASKS_SERVICE,
    EKS_POD_IDENTITY_CALL,
    EKS_POD_IDENTITY_SERVICE,
    EKS_POD_SESSION_PREFIX,
    HARDENING_CALLS,
    INSTANCE_COMMAND_CALLS,
    INSTANCE_ID,
    address_kind,
    classify_user_agent,
    ecs_task_session,
    instance_session,
    is_aws_source,
)
from ..model import Alert, Event, iso_utc
from .aws_hardening import hardening_alerts
from .evidence import MAX_DISTINCT, WorkloadUse, add_bounded, merge_sets, merge_workloads, room_for
from .offinstance import Grounds, judge
from .settings import CloudSettings

_POD_TAGS = (("cluster", "eks-cluster-name"), ("namespace", "kubernetes-namespace"),
             ("service_account", "kubernetes-service-account"), ("pod", "kubernetes-pod-name"))


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _get(mapping: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(mapping, Mapping):
            return None
        mapping = mapping.get(key)
    return mapping


def _walk_addresses(value: Any, depth: int = 0) -> Iterator[tuple[str, str]]:
    """(key, address) for address-valued members anywhere in a RunInstances item."""
    if depth > 8:
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            lowered = str(key).lower()
            if isinstance(item, str) and lowered in ("privateipaddress", "publicip", "ipaddress", "ipv6address"):
                yield lowered, item
            else:
                yield from _walk_addresses(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            yield from _walk_addresses(item, depth + 1)


@dataclass
class Command:
    """Someone ran a command or a session on an instance."""

    time: datetime
    operation: str
    principal: str
    source_ip: str


@dataclass
class AwsCollector:
    """Everything the AWS detections need, kept as summaries."""

    settings: CloudSettings
    alerts: list[Alert] = field(default_factory=list)  # judged record by record (hardening)
    workloads: dict[tuple[str, str], WorkloadUse] = field(default_factory=dict)  # (kind, id)
    people: dict[str, set[str]] = field(default_factory=dict)
    agent_addresses: set[str] = field(default_factory=set)
    assigned: dict[str, set[str]] = field(default_factory=dict)  # instance -> public addresses given to it
    private: dict[str, set[str]] = field(default_factory=dict)  # instance -> private addresses (host joins)
    dns_names: dict[str, str] = field(default_factory=dict)  # private DNS name -> instance
    allocations: dict[str, str] = field(default_factory=dict)  # EIP allocation id -> public address
    pending_associations: list[tuple[str, str]] = field(default_factory=list)  # (instance, allocation id)
    issued: dict[str, tuple[str, datetime]] = field(default_factory=dict)  # instance -> (role ARN, first issue)
    ecs_sessions: set[str] = field(default_factory=set)
    eks_sessions: dict[str, dict[str, str]] = field(default_factory=dict)  # session name -> cluster, namespace...
    cluster_addresses: dict[str, set[str]] = field(default_factory=dict)  # EKS cluster -> node addresses
    commands: dict[str, list[Command]] = field(default_factory=dict)  # instance -> who ran commands on it

    # -- reading ------------------------------------------------------------------------------------
    def observe(self, event: Event) -> None:
        call = event.cloud
        assert call is not None
        record = call.record
        if call.operation in HARDENING_CALLS:
            self.alerts.extend(hardening_alerts(event))
        if not call.error:
            self._learn(event, record)
        identity = record.get("userIdentity")
        identity = identity if isinstance(identity, Mapping) else {}
        workload = self._workload_of(call.principal, _text(identity.get("type")))
        if workload is None:
            self._person(call.principal, _text(identity.get("type")), call.source_ip, call.user_agent)
            return
        kind, workload_id, role = workload
        use = self.workloads.get((kind, workload_id))
        if use is None:
            if not room_for(self.workloads, event):
                return
            use = self.workloads[(kind, workload_id)] = WorkloadUse("aws", kind, workload_id, role, call.account)
        source = call.source_ip
        agent = classify_user_agent(call.user_agent)
        if is_aws_source(source) or address_kind(source) != "public" or record.get("vpcEndpointId"):
            use.internal += 1
            add_bounded(use.own_families, agent.family, 16)
            return
        if agent.kind == "agent":
            use.own.add(source)
            self.agent_addresses.add(source)
            add_bounded(use.own_families, agent.family, 16)
            return
        context = _get(identity, "sessionContext")
        use.use(event, _text(_get(context, "ec2RoleDelivery")), _text(identity.get("accessKeyId")))

    def _workload_of(self, principal: str, identity_type: str) -> tuple[str, str, str] | None:
        """(kind, workload id, role) for a workload session ARN."""
        if identity_type != "AssumedRole" or ":assumed-role/" not in principal:
            return None
        parts = principal.split(":assumed-role/", 1)[1].split("/")
        if len(parts) < 2:
            return None
        role, session = parts[0], parts[-1]
        instance = instance_session(session)
        if instance is not None:
            return "ec2-instance", instance, role
        if session in self.ecs_sessions or ecs_task_session(session):
            return "ecs-task", session, role
        if session in self.eks_sessions or session.startswith(EKS_POD_SESSION_PREFIX):
            return "eks-pod", session, role
        return None

    def _person(self, principal: str, identity_type: str, source: str, user_agent: str) -> None:
        """Remember addresses people call from (IAM users, root, federated/SSO users, console sessions)."""
        if address_kind(source) != "public":
            return
        person = identity_type in ("IAMUser", "Root", "FederatedUser") or "/AWSReservedSSO_" in principal or \
            classify_user_agent(user_agent).kind == "console"
        if person and principal:
            add_bounded(self.people.setdefault(source, set()), principal, MAX_DISTINCT)

    def _learn(self, event: Event, record: Mapping[str, Any]) -> None:
        call = event.cloud
        assert call is not None
        operation = call.operation
        params = record.get("requestParameters")
        params = params if isinstance(params, Mapping) else {}
        response = record.get("responseElements")
        response = response if isinstance(response, Mapping) else {}
        if operation == "AssumeRole" and call.principal_type == "AWSService":
            self._issued(call.principal, params, event.timestamp)
        elif operation == "RunInstances":
            for item in _get(response, "instancesSet", "items") or []:
                self._launched(item)
        elif operation == "AllocateAddress" and response.get("allocationId") and response.get("publicIp"):
            self.allocations[_text(response["allocationId"])] = _text(response["publicIp"])
        elif operation == "AssociateAddress" and INSTANCE_ID.fullmatch(_text(params.get("instanceId"))):
            instance = _text(params["instanceId"]).lower()
            if params.get("publicIp"):
                self.assigned.setdefault(instance, set()).add(_text(params["publicIp"]))
            elif params.get("allocationId"):
                self.pending_associations.append((instance, _text(params["allocationId"])))
        elif operation == EKS_POD_IDENTITY_CALL:
            self._pod_identity(params, response, call.source_ip)
        elif operation in INSTANCE_COMMAND_CALLS:
            for instance in self._targets(params):
                found = self.commands.setdefault(instance, [])
                if len(found) < MAX_DISTINCT:
                    found.append(Command(event.timestamp, operation, call.principal, call.source_ip))

    def _issued(self, service: str, params: Mapping[str, Any], moment: datetime) -> None:
        session = _text(params.get("roleSessionName"))
        if service == EC2_SERVICE and instance_session(session):
            known = self.issued.get(session.lower())
            if known is None or moment < known[1]:
                self.issued[session.lower()] = (_text(params.get("roleArn")), moment)
        elif service == ECS_TASKS_SERVICE and session:
            self.ecs_sessions.add(session)
        elif service == EKS_POD_IDENTITY_SERVICE and session:
            tags = {_text(tag.get("key")) or _text(tag.get("Key")): _text(tag.get("value")) or _text(tag.get("Value"))
                    for tag in params.get("tags") or [] if isinstance(tag, Mapping)}
            self.eks_sessions.setdefault(session, {}).update(
                {name: tags[key] for name, key in _POD_TAGS if tags.get(key)})

    def _launched(self, item: Any) -> None:
        if not isinstance(item, Mapping) or not INSTANCE_ID.fullmatch(_text(item.get("instanceId"))):
            return
        instance = _text(item["instanceId"]).lower()
        for key, address in _walk_addresses(item):
            kind = address_kind(address)
            if kind == "private" and key == "privateipaddress":
                self.private.setdefault(instance, set()).add(address)
            elif kind == "public":
                self.assigned.setdefault(instance, set()).add(address)
        name = _text(item.get("privateDnsName")).lower()
        if name:
            self.dns_names[name] = instance

    def _pod_identity(self, params: Mapping[str, Any], response: Mapping[str, Any], source: str) -> None:
        cluster = _text(params.get("clusterName"))
        if not cluster:
            return
        if address_kind(source) == "public":
            add_bounded(self.cluster_addresses.setdefault(cluster, set()), source, 64)
        arn = _text(_get(response, "assumedRoleUser", "arn"))
        session = arn.rsplit("/", 1)[-1] if "/" in arn else _text(_get(response, "assumedRoleUser", "assumeRoleId")
                                                                   ).rsplit(":", 1)[-1]
        if session:
            detail = self.eks_sessions.setdefault(session, {})
            detail["cluster"] = cluster
            for name, key in (("namespace", "namespace"), ("service_account", "serviceAccount")):
                value = _text(_get(response, "subject", key))
                if value:
                    detail[name] = value

    @staticmethod
    def _targets(params: Mapping[str, Any]) -> set[str]:
        found = {_text(item).lower() for item in params.get("instanceIds") or [] if INSTANCE_ID.fullmatch(_text(item))}
        for key in ("target", "instanceId"):
            if INSTANCE_ID.fullmatch(_text(params.get(key))):
                found.add(_text(params[key]).lower())
        for target in params.get("targets") or []:
            if isinstance(target, Mapping) and _text(target.get("key")).lower() == "instanceids":
                found.update(_text(value).lower() for value in target.get("values") or []
                             if INSTANCE_ID.fullmatch(_text(value)))
        return found

    def merge(self, other: AwsCollector) -> None:
        """Add another scan's summaries (a worker process that read other files)."""
        self.alerts.extend(other.alerts)
        merge_workloads(self.workloads, other.workloads)
        merge_sets(self.people, other.people)
        self.agent_addresses |= other.agent_addresses
        merge_sets(self.assigned, other.assigned)
        merge_sets(self.private, other.private)
        merge_sets(self.cluster_addresses, other.cluster_addresses)
        self.dns_names.update(other.dns_names)
        self.allocations.update(other.allocations)
        self.pending_associations.extend(other.pending_associations)
        for instance, (role, moment) in other.issued.items():
            if instance not in self.issued or moment < self.issued[instance][1]:
                self.issued[instance] = (role, moment)
        self.ecs_sessions |= other.ecs_sessions
        for session, detail in other.eks_sessions.items():
            self.eks_sessions.setdefault(session, {}).update(detail)
        for instance, commands in other.commands.items():
            self.commands.setdefault(instance, []).extend(commands)
            del self.commands[instance][MAX_DISTINCT:]

    # -- judging ------------------------------------------------------------------------------------
    def finish(self) -> list[Alert]:
        for instance, allocation in self.pending_associations:
            if allocation in self.allocations:
                self.assigned.setdefault(instance, set()).add(self.allocations[allocation])
        grounds = Grounds(self.people, self.agent_addresses, self._context)
        alerts = list(self.alerts)
        for (kind, _), use in sorted(self.workloads.items()):
            if kind == "eks-pod":
                self._pod_detail(use)
            home, sources = self._home(use)
            alerts.extend(judge(use, home, sources, grounds, self.settings))
        return alerts

    def _home(self, use: WorkloadUse) -> tuple[set[str], str]:
        home: set[str] = set()
        sources: list[str] = []
        for label, addresses in (("inventory", self.settings.inventory.addresses(use.workload)),
                                 ("assigned in the logs", self.assigned.get(use.workload, set())),
                                 ("its agents call from there", use.own),
                                 ("the cluster's nodes call AssumeRoleForPodIdentity from there",
                                  self.cluster_addresses.get(use.detail.get("cluster", ""), set()))):
            if addresses:
                home |= addresses
                sources.append(label)
        return home, "; ".join(sources)

    def _pod_detail(self, use: WorkloadUse) -> None:
        detail = self.eks_sessions.get(use.workload)
        if detail is None:  # eks-<cluster>-<pod>-<uuid>: the longest known cluster name that fits
            clusters = [name for name in self.cluster_addresses if use.workload.startswith(f"eks-{name}-")]
            detail = {"cluster": max(clusters, key=len)} if clusters else {}
        use.detail.update({f"eks_{key}" if key != "cluster" else "cluster": value for key, value in detail.items()})

    def _context(self, use: WorkloadUse, address: str) -> list[str]:
        reasons: list[str] = []
        if use.kind == "ec2-instance":
            issued = self.issued.get(use.workload)
            if issued:
                reasons.append(f"credentials issued to the instance by ec2.amazonaws.com at {iso_utc(issued[1])} "
                               f"({issued[0]})")
            for command in self.commands.get(use.workload, []):
                same = " (the same address)" if command.source_ip == address else ""
                reasons.append(f"{command.principal} ran {command.operation} on the instance from "
                               f"{command.source_ip}{same} at {iso_utc(command.time)}")
        if use.kind == "ecs-task" and use.workload not in self.ecs_sessions:
            reasons.append("taken for an ECS task session by its name (the issuing AssumeRole was not in the logs)")
        return reasons

    # -- for the host-cloud correlation -------------------------------------------------------------
    def instance_for_private_address(self) -> dict[str, str]:
        """Private address -> instance, for addresses that belong to exactly one instance in the logs."""
        owners: dict[str, set[str]] = {}
        for instance, addresses in self.private.items():
            for address in addresses:
                owners.setdefault(address, set()).add(instance)
        return {address: next(iter(ids)) for address, ids in owners.items() if len(ids) == 1}
