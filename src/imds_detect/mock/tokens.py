"""Session tokens of token-protected metadata services (AWS IMDSv2, Alibaba hardened mode)."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable

MAX_TTL = 21600  # seconds; both AWS and Alibaba allow 1..21600


def parse_ttl(value: str | None) -> int | None:
    """The TTL a token request asks for, or None when missing, malformed or out of 1..21600."""
    if value is None or not value.strip().isdigit():
        return None
    ttl = int(value.strip())
    return ttl if 1 <= ttl <= MAX_TTL else None


class TokenStore:
    """Issued tokens and their expiry; `clock` returns seconds (injectable for tests)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._expiry: dict[str, float] = {}
        self._lock = threading.Lock()

    def issue(self, ttl: int) -> str:
        token = "AQAEA" + secrets.token_urlsafe(42)
        with self._lock:
            self._expiry[token] = self._clock() + ttl
        return token

    def state(self, token: str | None) -> str:
        """"missing", "valid", "expired" or "invalid"."""
        if token is None:
            return "missing"
        with self._lock:
            expiry = self._expiry.get(token.strip())
        if expiry is None:
            return "invalid"
        return "valid" if self._clock() < expiry else "expired"
