"""The Azure SDK's own requests transport over a recorded session (answers from files; no network)."""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from typing import Any

import requests
from azure.core.credentials import AccessToken, AccessTokenInfo
from azure.core.pipeline.transport import RequestsTransport
from requests.structures import CaseInsensitiveDict
from urllib3 import HTTPResponse

Answer = tuple[int, bytes, dict[str, str]]


class RecordedSession(requests.Session):
    """A requests session whose every request is answered by `answer(method, url, body)`; none leaves."""

    def __init__(self, answer: Callable[[str, str, bytes], Answer]) -> None:
        super().__init__()
        self.answer = answer
        self.sent: list[tuple[str, str, bytes]] = []

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        body = kwargs.get("data") or b""
        body = body if isinstance(body, bytes) else str(body).encode()
        self.sent.append((str(method), str(url), body))
        status, content, headers = self.answer(str(method), str(url), body)
        response = requests.Response()
        response.status_code = status
        all_headers = {"Content-Type": "application/json", "Content-Length": str(len(content)), **headers}
        response.raw = HTTPResponse(body=io.BytesIO(content), headers=all_headers, status=status,
                                    preload_content=False)
        response.headers = CaseInsensitiveDict(all_headers)
        response.url = str(url)
        response.reason = "OK" if status < 400 else "Error"
        response.request = requests.Request(str(method), str(url)).prepare()
        return response


def recorded_transport(answer: Callable[[str, str, bytes], Answer]) -> tuple[RequestsTransport, RecordedSession]:
    session = RecordedSession(answer)
    return RequestsTransport(session=session, session_owner=False), session


class FixedCredential:
    """A token credential that never signs in."""

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken("test-token", int(time.time()) + 3600)

    def get_token_info(self, *scopes: str, options: Any = None) -> AccessTokenInfo:
        return AccessTokenInfo("test-token", int(time.time()) + 3600)
