"""Microsoft Sentinel / Log Analytics: candidate rows through azure-monitor-query's LogsQueryClient."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from . import LiveQueryError
from .candidates import candidate_query
from .rows import rows_from_columns
from .slices import Truncated

SERVER_TIMEOUT = 600  # seconds: the longest Log Analytics allows


def make_client(credential: Any = None, **client_options: Any) -> Any:
    """A LogsQueryClient with DefaultAzureCredential unless a credential is given (client_options reach the
    azure-core pipeline: `transport=` in tests, `endpoint=` for sovereign clouds)."""
    try:
        from azure.monitor.query import LogsQueryClient
    except ImportError:
        raise LiveQueryError("--sentinel needs the Azure SDK: pip install 'imds-detect[sentinel]'") from None
    if credential is None:
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential()
    return LogsQueryClient(credential, **client_options)


class SentinelSource:
    """Fetches one time slice of candidate rows from a workspace."""

    name = "sentinel"

    def __init__(self, workspace_id: str, client: Any) -> None:
        self.workspace_id = workspace_id
        self.client = client

    def fetch(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ServiceRequestError
        from azure.monitor.query import LogsQueryPartialResult

        query = candidate_query(start, end, "TimeGenerated")
        try:
            answer = self.client.query_workspace(self.workspace_id, query, timespan=(start, end + timedelta(seconds=1)),
                                                 server_timeout=SERVER_TIMEOUT)
        except HttpResponseError as error:
            # the SDK re-raises every error as a plain HttpResponseError: the sign-in failure is its context
            if isinstance(error, ClientAuthenticationError) or isinstance(error.__context__, ClientAuthenticationError):
                raise LiveQueryError(f"Sentinel: {auth_problem(error)}") from None
            raise LiveQueryError(f"Sentinel: {http_problem(error)}") from None
        except ServiceRequestError as error:
            raise LiveQueryError(f"Sentinel: cannot reach the service ({_first_line(error)})") from None
        if isinstance(answer, LogsQueryPartialResult):
            raise Truncated(str(answer.partial_error))
        rows: list[dict[str, Any]] = []
        for table in answer.tables:
            rows += rows_from_columns(list(table.columns), table.rows)
        return rows


def auth_problem(error: BaseException) -> str:
    """One line for a failed sign-in."""
    return (f"authentication failed ({_first_line(error)}); sign in with `az login`, or set "
            "AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET (DefaultAzureCredential)")


def http_problem(error: Any) -> str:
    """One line for an HTTP error of either service: throttling and permissions said plainly."""
    status = getattr(error, "status_code", None)
    response = getattr(error, "response", None)
    retry = response.headers.get("Retry-After") if response is not None and response.headers else None
    if status == 429:
        wait = f"; the service asks to wait {retry} s" if retry else ""
        return f"throttled (HTTP 429) after retries{wait}: narrow --since or try again later"
    if status in (401, 403):
        return (f"permission denied (HTTP {status}): the identity needs Log Analytics Reader on the workspace "
                "(Sentinel) or ThreatHunting.Read.All (Defender)")
    if status == 404:
        return "not found (HTTP 404): check the workspace id"
    return f"HTTP {status}: {_first_line(error)}"


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
