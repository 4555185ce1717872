"""Bounded per-credential summaries: what the cloud detections keep instead of every record."""

from __future__ import annotations

import bisect
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from .. import limits as _limits
from ..model import Event, SourceRef, iso_utc

MAX_CALLS = 20  # the earliest calls kept per (credential, address)
MAX_DISTINCT = 8  # user agents, keys, principals kept per summary
RAW_LIMIT = 4096


def add_bounded(values: set[str], value: str, limit: int = MAX_DISTINCT) -> None:
    if value and (value in values or len(values) < limit):
        values.add(value)


def merge_sets(into: dict[str, set[str]], other: dict[str, set[str]], limit: int = 64) -> None:
    """Union of two key -> bounded set maps."""
    for key, values in other.items():
        target = into.setdefault(key, set())
        for value in values:
            add_bounded(target, value, limit)


def room_for(workloads: dict[Any, WorkloadUse], event: Event) -> bool:
    """Whether a new workload session can be tracked (limits.max_cloud_sessions); when not, the call is counted
    and reported at its record, and not judged."""
    cap = _limits.active().max_cloud_sessions
    if len(workloads) < cap:
        return True
    _limits.hit("max_cloud_sessions", file=event.source.file, line=event.source.line,
                detail=f"{cap} workload sessions already tracked: this call of a further one is not judged")
    return False


def merge_workloads(into: dict[Any, WorkloadUse], other: dict[Any, WorkloadUse]) -> None:
    """Add the workloads another worker tracked (each stayed under max_cloud_sessions: together at most
    --jobs times it, and nothing a worker tracked is dropped)."""
    for key, use in other.items():
        if key in into:
            into[key].merge(use)
        else:
            into[key] = use


def raw_of(record: dict[str, Any]) -> str:
    """The record as compact JSON, cut for evidence."""
    try:
        return orjson.dumps(record, default=str).decode()[:RAW_LIMIT]
    except TypeError:
        return repr(record)[:RAW_LIMIT]


@dataclass(slots=True)
class CallNote:
    """One cloud call kept as evidence."""

    time: datetime
    service: str
    operation: str
    source_ip: str
    user_agent: str
    error: str
    source: SourceRef

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"time": iso_utc(self.time), "service": self.service, "operation": self.operation,
                                "source_ip": self.source_ip, "user_agent": self.user_agent,
                                "source": f"{self.source.file}:{self.source.line}"}
        if self.error:
            data["error"] = self.error
        return data


def note_of(event: Event) -> CallNote:
    call = event.cloud
    assert call is not None
    return CallNote(event.timestamp, call.service, call.operation, call.source_ip, call.user_agent, call.error,
                    event.source)


@dataclass
class IpUse:
    """Every use of one workload's credentials from one address, summarised."""

    address: str
    first: datetime
    last: datetime
    count: int = 0
    user_agents: Counter[str] = field(default_factory=Counter)
    calls: list[CallNote] = field(default_factory=list)  # the MAX_CALLS earliest, in time order
    first_source: SourceRef | None = None
    first_raw: str = ""
    deliveries: set[str] = field(default_factory=set)  # ec2RoleDelivery values
    keys: set[str] = field(default_factory=set)  # access keys / token ids

    def add(self, event: Event, delivery: str = "", key: str = "") -> None:
        call = event.cloud
        assert call is not None
        self.count += 1
        self.last = max(self.last, event.timestamp)
        if call.user_agent in self.user_agents or len(self.user_agents) < MAX_DISTINCT:
            self.user_agents[call.user_agent] += 1
        add_bounded(self.deliveries, delivery)
        add_bounded(self.keys, key)
        if len(self.calls) < MAX_CALLS or event.timestamp < self.calls[-1].time:
            bisect.insort(self.calls, note_of(event), key=lambda note: note.time)
            del self.calls[MAX_CALLS:]
        if self.first_source is None or event.timestamp < self.first:  # ties: the first read, as merge()
            self.first = event.timestamp
            self.first_source = event.source
            self.first_raw = raw_of(call.record)

    def merge(self, other: IpUse) -> None:
        """Add the uses another scan (a worker process) summarised."""
        self.count += other.count
        self.last = max(self.last, other.last)
        for agent, count in other.user_agents.items():
            if agent in self.user_agents or len(self.user_agents) < MAX_DISTINCT:
                self.user_agents[agent] += count
        for value in other.deliveries:
            add_bounded(self.deliveries, value)
        for value in other.keys:
            add_bounded(self.keys, value)
        self.calls = sorted(self.calls + other.calls, key=lambda note: note.time)[:MAX_CALLS]
        if other.first_source is not None and (self.first_source is None or other.first < self.first):
            self.first, self.first_source, self.first_raw = other.first, other.first_source, other.first_raw


@dataclass
class WorkloadUse:
    """The credentials of one workload (instance, task, pod, VM) and where they were used from."""

    provider: str  # aws | gcp | azure
    kind: str  # ec2-instance | ecs-task | eks-pod | gce-vm | azure-vm
    workload: str  # instance id, task id, pod session, service account, VM name
    role: str = ""  # role, service account or identity name
    account: str = ""
    principals: set[str] = field(default_factory=set)
    uses: dict[str, IpUse] = field(default_factory=dict)  # public addresses
    own: set[str] = field(default_factory=set)  # addresses proven the workload's own (its agents call from them)
    own_families: set[str] = field(default_factory=set)  # user-agent families seen from its own side
    internal: int = 0  # calls from the provider itself, VPC endpoints or private addresses
    detail: dict[str, str] = field(default_factory=dict)

    def use(self, event: Event, delivery: str = "", key: str = "") -> None:
        call = event.cloud
        assert call is not None
        add_bounded(self.principals, call.principal, 4)
        found = self.uses.get(call.source_ip)
        if found is None:
            found = self.uses[call.source_ip] = IpUse(call.source_ip, event.timestamp, event.timestamp)
        found.add(event, delivery, key)

    def merge(self, other: WorkloadUse) -> None:
        """Add what another scan (a worker process) summarised about the same workload."""
        for principal in other.principals:
            add_bounded(self.principals, principal, 4)
        for address, ip_use in other.uses.items():
            if address in self.uses:
                self.uses[address].merge(ip_use)
            else:
                self.uses[address] = ip_use
        self.own |= other.own
        for family in other.own_families:
            add_bounded(self.own_families, family, 16)
        self.internal += other.internal
        self.role = self.role or other.role
        self.detail = {**other.detail, **self.detail}
