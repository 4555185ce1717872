"""What a logged response suggests about a metadata request (answered with a secret, refused, redirected)."""

from __future__ import annotations

from ..knowledge.paths import RESPONSE_SIZES
from ..model import Event, EventKind, RequestInfo

LIKELY_SUCCESS, FAILED, REDIRECTED, UNCLEAR = "likely-success", "failed", "redirected", "unclear"
# Actions of gateways and proxies that mean the request never reached its target.
_BLOCKING_ACTIONS = ("block", "blocked", "deny", "denied", "tcp_denied")


def judge_response(status: int | None, size: int | None, path_class: str, action: str = "") -> tuple[str, str]:
    """(outcome, reason) of a response with `status` and body `size` to a request of `path_class`."""
    lowered = action.lower()
    if lowered and any(lowered == word or lowered.startswith(word + "/") for word in _BLOCKING_ACTIONS):
        return FAILED, f"refused by the gateway or proxy (action {action})"
    if status is None:
        return "", ""
    if 200 <= status < 300:
        low, high = RESPONSE_SIZES.get(path_class, RESPONSE_SIZES["unknown"])
        if size is None:
            return UNCLEAR, f"answered {status}; the response size is not logged"
        if low <= size <= high:
            what = "a credential document" if path_class in ("credential", "token") else f"a {path_class} answer"
            return LIKELY_SUCCESS, f"answered {status} with {size} bytes, the size of {what}: it probably worked"
        return UNCLEAR, f"answered {status} with {size} bytes, not the size of a {path_class} answer"
    if 300 <= status < 400:
        return REDIRECTED, f"answered {status}: redirected (possibly toward the metadata service)"
    if status >= 400 or status == 0:
        return FAILED, f"answered {status}: the attempt failed"
    return UNCLEAR, f"answered {status}"


def request_info(event: Event, path_class: str) -> tuple[RequestInfo | None, str]:
    """The request details of an HTTP event from a web, proxy or network log, and the outcome reason."""
    if event.kind is not EventKind.HTTP or not (event.client_ip or event.direction or event.http_status is not None):
        return None, ""
    outcome, reason = judge_response(event.http_status, event.response_bytes, path_class, event.action)
    info = RequestInfo(client=event.client_ip, direction=event.direction, method=event.http_method,
                       host=event.http_host, uri=event.http_uri, status=event.http_status,
                       response_bytes=event.response_bytes, user_agent=event.user_agent, outcome=outcome)
    return info, reason
