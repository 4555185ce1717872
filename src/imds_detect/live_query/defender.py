"""Microsoft Defender XDR advanced hunting through Microsoft Graph `security/runHuntingQuery`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from . import LiveQueryError
from .candidates import candidate_query
from .rows import plain_value
from .sentinel import _first_line, auth_problem, http_problem
from .slices import Truncated

GRAPH = "https://graph.microsoft.com"
SCOPE = "https://graph.microsoft.com/.default"
ROW_LIMIT = 100_000  # advanced hunting returns at most this many rows per query


def make_pipeline(credential: Any = None, transport: Any = None, endpoint: str = GRAPH, retry_total: int = 3,
                  ) -> Any:
    """An azure-core pipeline client with bearer-token auth and the SDK's retry policy (429 and 5xx retried)."""
    try:
        from azure.core import PipelineClient
        from azure.core.pipeline.policies import (
            BearerTokenCredentialPolicy,
            HeadersPolicy,
            RetryPolicy,
            UserAgentPolicy,
        )
    except ImportError:
        raise LiveQueryError("--defender needs the Azure SDK: pip install 'imds-detect[sentinel]'") from None
    if credential is None:
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential()
    policies = [HeadersPolicy({"Content-Type": "application/json"}), UserAgentPolicy("imds-detect"),
                RetryPolicy(retry_total=retry_total, retry_backoff_factor=1.0),
                BearerTokenCredentialPolicy(credential, SCOPE)]
    options: dict[str, Any] = {"policies": policies}
    if transport is not None:
        options["transport"] = transport
    return PipelineClient(endpoint, **options)


class DefenderSource:
    """Fetches one time slice of candidate rows by advanced hunting."""

    name = "defender"

    def __init__(self, client: Any, version: str = "v1.0") -> None:
        self.client = client
        self.url = f"{GRAPH}/{version}/security/runHuntingQuery"

    def fetch(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ServiceRequestError
        from azure.core.rest import HttpRequest

        request = HttpRequest("POST", self.url, content=orjson.dumps({"Query": candidate_query(start, end)}),
                              headers={"Content-Type": "application/json"})
        try:
            response = self.client.send_request(request)
            response.raise_for_status()
        except ClientAuthenticationError as error:
            raise LiveQueryError(f"Defender: {auth_problem(error)}") from None
        except HttpResponseError as error:
            raise LiveQueryError(f"Defender: {http_problem(error)}") from None
        except ServiceRequestError as error:
            raise LiveQueryError(f"Defender: cannot reach Microsoft Graph ({_first_line(error)})") from None
        try:
            answer = orjson.loads(response.read())
            results = answer["results"]
        except (orjson.JSONDecodeError, KeyError, TypeError) as error:
            raise LiveQueryError(f"Defender: unexpected answer from runHuntingQuery ({error})") from None
        if len(results) >= ROW_LIMIT:
            raise Truncated(f"{len(results)} rows")
        return [{key: plain_value(value) for key, value in row.items()} for row in results]
