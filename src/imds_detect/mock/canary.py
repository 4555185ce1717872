"""Canary credentials: fake secrets with a recognisable pattern, so that any later use of them is detectable.

Every credential the mock hands out (AWS/ECS/Alibaba keys and session tokens, Azure and GCP access
tokens, secrets in user data) contains ``IMDSCANARY`` followed by a 6-digit upper-case hex issue id. The
id is logged with the request that received it, so a key seen later (CloudTrail, a proxy log, a paste
site) leads back to the request that leaked it. They are shaped like the real thing (an AWS access key
id is 20 characters starting with ``ASIA``) but never valid anywhere.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import threading

CANARY_TAG = "IMDSCANARY"
CANARY_PATTERN = re.compile(CANARY_TAG + r"([0-9A-F]{6})")


class CanaryIssuer:
    """Hands out unique issue ids (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._issued: set[str] = set()

    def new_id(self) -> str:
        with self._lock:
            while True:
                issue = secrets.token_hex(3).upper()
                if issue not in self._issued:
                    self._issued.add(issue)
                    return issue


def find_canaries(text: str) -> list[str]:
    """The issue ids of every canary in `text`, in order of appearance (repeats removed)."""
    return list(dict.fromkeys(CANARY_PATTERN.findall(text)))


def is_canary(text: str) -> bool:
    """Whether `text` contains a canary credential."""
    return CANARY_PATTERN.search(text) is not None


def _filler(issue: str, purpose: str, length: int, alphabet: str) -> str:
    digest = hashlib.sha512(f"{purpose}:{issue}".encode()).digest()
    return "".join(alphabet[byte % len(alphabet)] for byte in (digest * (length // len(digest) + 1))[:length])


_UPPER_DIGITS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_BASE64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_BASE64URL = _BASE64[:62] + "-_"


def access_key_id(issue: str, prefix: str = "ASIA") -> str:
    """An access key id (AWS: 20 characters, ``ASIA`` for temporary keys)."""
    return prefix + CANARY_TAG + issue


def secret_key(issue: str, length: int = 40) -> str:
    """A secret access key of `length` characters."""
    head = CANARY_TAG + issue
    return head + _filler(issue, "secret", length - len(head), _BASE64)


def session_token(issue: str) -> str:
    """A session token (long opaque base64, as STS returns)."""
    return CANARY_TAG + issue + "//" + _filler(issue, "token", 300, _BASE64) + "="


def bearer_token(issue: str, prefix: str = "") -> str:
    """An opaque OAuth access token (GCP: ``ya29.`` prefix)."""
    return prefix + CANARY_TAG + issue + "." + _filler(issue, "bearer", 160, _BASE64URL)


def jwt(issue: str, claims: dict[str, object]) -> str:
    """A JWT-shaped token whose signature part carries the canary (the claims say it is a canary too)."""

    def part(obj: dict[str, object]) -> str:
        raw = json.dumps(obj, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    header = part({"typ": "JWT", "alg": "RS256", "kid": "imds-detect-canary"})
    body = part({**claims, "canary": "imds-detect mock: not a real token"})
    return f"{header}.{body}.{CANARY_TAG}{issue}{_filler(issue, 'sig', 80, _BASE64URL)}"


def user_secret(issue: str) -> str:
    """A password-like secret to plant in user data."""
    return CANARY_TAG + issue + _filler(issue, "userdata", 16, _UPPER_DIGITS)
