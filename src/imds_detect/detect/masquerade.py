"""Agent masquerade: a binary named like a cloud agent running from a path that agent never uses."""

from __future__ import annotations

from ..knowledge.agents import AgentIdentity, agents_named
from ..model import Endpoint, Event, ProcessInfo, Severity
from .findings import Finding
from .identity import path_matches
from .rules import AGENT_MASQUERADE


def impersonated_agent(process: ProcessInfo) -> AgentIdentity | None:
    """The agent whose name this process bears without running from that agent's paths."""
    if not process.path:
        return None
    name = process.name or process.path.replace("\\", "/").rsplit("/", 1)[-1]
    candidates = agents_named(name)
    if not candidates:
        return None
    if any(path_matches(process.path, agent.paths) for agent in candidates):
        return None
    return candidates[0]


def detect_masquerade(event: Event) -> list[Finding]:
    """A finding when the event's process impersonates an agent."""
    agent = impersonated_agent(event.process)
    if agent is None:
        return []
    endpoint = Endpoint(agent.provider, "", "", None, "", "unknown")
    expected = ", ".join(agent.paths[:3])
    reasons = [f"name {event.process.name or event.process.path!r} is the {agent.id} agent's, "
               f"but it runs from {event.process.path!r} (expected {expected})"]
    return [Finding(AGENT_MASQUERADE, Severity.HIGH, endpoint, reasons)]
