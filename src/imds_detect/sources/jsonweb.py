"""JSON web logs: one JSON object per line, fields found by name.

Two adapters share the reader:

- `json-web`: any JSON access log (nginx `escape=json` formats, ECS documents, load balancers, custom
  apps). Each field is looked up by a list of names (case-insensitive; a dotted name is a path into
  nested objects or a flat dotted key); `--json-field FIELD=NAME` replaces the list of one field.
- `azure-web`: Azure Application Gateway and Front Door access and WAF logs, as diagnostic settings write
  them (fields under `properties`, one record per line, or `{"records": [...]}` documents), and as Log
  Analytics exports them (`AzureDiagnostics` `clientIP_s` ..., or the resource-specific `AGWAccessLogs`
  columns). A WAF record's matched data is read as request text too; its action (Blocked, Matched ...)
  is kept.

Every request is INBOUND: the gateway or server received it.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, BinaryIO

import orjson

from ..model import INBOUND, Event, SourceRef
from .base import LineSource, Skip, SkipSink
from .httplog import HttpRecord, clf_time, epoch_time, http_event, raw_text, split_request, to_int
from .linelog import head_lines
from .timeparse import parse_timestamp

FIELD_NAMES = ("time", "client", "method", "request", "uri", "path", "query", "host", "status", "bytes",
               "user_agent", "body", "server", "destination", "action", "extra")
# Fields whose text the detections read (the prefilter looks for numeric host spellings in their values).
_SCANNED = ("request", "uri", "path", "query", "host", "body", "extra")


@dataclass(frozen=True)
class JsonFields:
    """Where each field is: alternatives tried in order (case-insensitive names, dotted paths)."""

    names: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def with_names(self, overrides: Mapping[str, str]) -> JsonFields:
        """These fields, each override replacing the whole list of its field; ValueError on an unknown field."""
        unknown = sorted(set(overrides) - set(FIELD_NAMES))
        if unknown:
            raise ValueError(f"unknown JSON field {unknown[0]!r} (expected one of {', '.join(FIELD_NAMES)})")
        names = dict(self.names)
        for key, value in overrides.items():
            names[key] = tuple(name.strip() for name in value.split(",") if name.strip())
        return replace(self, names=names)

    def free_text_keys(self) -> tuple[str, ...]:
        """The JSON keys (last path component) of the fields the detections read."""
        keys = {name.rsplit(".", 1)[-1] for part in _SCANNED for name in self.names.get(part, ())}
        return tuple(sorted(keys))


DEFAULT_FIELDS = JsonFields({
    "time": ("time", "timestamp", "@timestamp", "time_local", "time_iso8601", "datetime", "date", "ts",
             "timegenerated", "eventtime", "msec"),
    "client": ("remote_addr", "client_ip", "clientip", "client.ip", "source.ip", "client.address", "remote_ip",
               "c-ip", "src_ip", "ip", "client"),
    "method": ("request_method", "method", "http.request.method", "httpmethod", "verb", "cs-method"),
    "request": ("request", "request_line"),
    "uri": ("request_uri", "uri", "url.original", "url.full", "url", "request_url", "requesturi", "cs-uri"),
    "path": ("path", "url.path", "cs-uri-stem"),
    "query": ("args", "query_string", "query", "url.query", "cs-uri-query"),
    "host": ("http_host", "host", "url.domain", "hostname", "cs-host"),
    "status": ("status", "status_code", "http.response.status_code", "response_code", "httpstatus", "sc-status"),
    "bytes": ("body_bytes_sent", "bytes_sent", "http.response.body.bytes", "response_bytes", "bytes", "sentbytes",
              "sc-bytes", "size"),
    "user_agent": ("http_user_agent", "user_agent.original", "user_agent", "useragent", "cs(user-agent)", "agent"),
    "body": ("request_body", "http.request.body.content", "body", "post_data", "requestbody"),
    "server": ("server_name", "server", "vhost", "s-computername"),
    "destination": ("upstream_addr", "upstream"),
    "action": (),
    "extra": (),
})

AZURE_FIELDS = JsonFields({
    "time": ("time", "timestamp", "timegenerated", "properties.timestamp"),
    "client": ("properties.clientip", "clientip_s", "clientip", "properties.clientaddress"),
    "method": ("properties.httpmethod", "httpmethod_s", "httpmethod"),
    "request": (),
    "uri": ("properties.originalrequesturiwithargs", "originalrequesturiwithargs_s", "originalrequesturiwithargs",
            "properties.requesturi", "requesturi_s", "requesturi"),
    "path": (),
    "query": ("properties.requestquery", "requestquery_s", "requestquery"),
    "host": ("properties.originalhost", "originalhost_s", "originalhost", "properties.host", "host_s", "host",
             "properties.hostname", "hostname_s", "hostname"),
    "status": ("properties.httpstatus", "httpstatus_d", "httpstatus", "properties.httpstatuscode",
               "httpstatuscode_s", "httpstatuscode"),
    "bytes": ("properties.sentbytes", "sentbytes_d", "sentbytes", "properties.responsebytes", "responsebytes_s",
              "responsebytes"),
    "user_agent": ("properties.useragent", "useragent_s", "useragent"),
    "body": (),
    "server": ("properties.instanceid", "instanceid_s", "instanceid", "resource", "resourceid"),
    "destination": ("properties.serverrouted", "serverrouted_s", "serverrouted"),
    "action": ("properties.action", "action_s", "action"),
    "extra": ("properties.details.data", "details_data_s", "properties.details.message", "details_message_s"),
})
_AZURE_CATEGORIES = (b"applicationgatewayaccesslog", b"applicationgatewayfirewalllog", b"frontdooraccesslog",
                     b"frontdoorwebapplicationfirewalllog", b"agwaccesslogs", b"agwfirewalllogs")


def lookup(obj: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted, case-insensitive `path` (a flat dotted key wins), or None."""
    lowered = {key.lower(): value for key, value in obj.items()} if any(k != k.lower() for k in obj) else obj
    if path in lowered:
        return lowered[path]
    head, _, rest = path.partition(".")
    while rest:
        child = lowered.get(head)
        if isinstance(child, Mapping):
            found = lookup(child, rest)
            if found is not None:
                return found
        more, _, rest = rest.partition(".")
        head = f"{head}.{more}"
    return None


def _first(obj: Mapping[str, Any], names: tuple[str, ...]) -> Any:
    for name in names:
        value = lookup(obj, name)
        if value is not None and value != "" and not isinstance(value, (Mapping, list)):
            return value
    return None


def _text(value: Any) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    return "" if text == "-" else text


def parse_time(value: Any) -> datetime:
    """An ISO 8601, access-log or epoch time (seconds, or milliseconds when that large)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return epoch_time(value / 1000 if value > 1e11 else value)
    text = _text(value)
    if "/" in text[:6]:
        return clf_time(text)
    try:
        return parse_timestamp(text)
    except ValueError:
        return epoch_time(text)


class JsonWebAdapter:
    """JSON-lines web logs with fields found by name."""

    record_edges = (b"{", b"}")
    decode_percent = True
    json_lines = True  # a line is a JSON record (limits.max_json_record_bytes)
    table = "web-access"

    def __init__(self, name: str = "json-web", fields: JsonFields = DEFAULT_FIELDS) -> None:
        self.name = name
        self.fields = fields
        self.free_text_keys = fields.free_text_keys()

    def sniff(self, head: bytes) -> bool:
        """JSON-lines objects with a time and a request target under the names this adapter knows."""
        lines = head_lines(head, 5)
        if not lines or not lines[0].lstrip().startswith("{"):
            return False
        try:
            obj = orjson.loads(lines[0])
        except orjson.JSONDecodeError:
            return False
        if not isinstance(obj, dict):
            return False
        names = self.fields.names
        return (_first(obj, names.get("time", ())) is not None
                and any(_first(obj, names.get(part, ())) is not None for part in ("request", "uri", "path")))

    def is_line_oriented(self, head: bytes) -> bool:
        return True

    def parse_line(self, line: bytes, file: str, line_number: int, record: int, on_skip: SkipSink) -> Event | None:
        """The event of one JSON line, or None after reporting why not."""
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError as error:
            on_skip(Skip("malformed-json", file, line_number, str(error)[:120]))
            return None
        if not isinstance(obj, dict):
            on_skip(Skip("not-an-object", file, line_number, type(obj).__name__))
            return None
        return self.event(obj, SourceRef(self.name, file, line_number, record), raw_text(line), on_skip)

    def event(self, obj: Mapping[str, Any], source: SourceRef, raw: str, on_skip: SkipSink) -> Event | None:
        """The event of one record, or None after reporting why not."""
        names = self.fields.names

        def get(part: str) -> str:
            return _text(_first(obj, names.get(part, ())))

        try:
            moment = parse_time(_first(obj, names.get("time", ())))
        except ValueError as error:
            on_skip(Skip("bad-timestamp", source.file, source.line, str(error)[:120]))
            return None
        method, target = get("method"), ""
        request = get("request")
        if request:
            method_in_line, target = split_request(request)
            method = method or method_in_line
        target = target or get("uri") or get("path")
        query = get("query")
        if query and "?" not in target:
            target += query if query.startswith("?") else "?" + query
        if not target:
            on_skip(Skip("no-request", source.file, source.line, "no request target under the configured names"))
            return None
        body = "\n".join(text for text in (get("body"), get("extra")) if text)
        record = HttpRecord(time=moment, client=get("client"), method=method, target=target, host=get("host"),
                            status=to_int(_first(obj, names.get("status", ()))),
                            response_bytes=to_int(_first(obj, names.get("bytes", ()))),
                            user_agent=get("user_agent"), body=body, server=get("server"),
                            destination=get("destination"), action=get("action"))
        return http_event(record, source, INBOUND, raw, self.table)

    def parse(self, stream: BinaryIO, file: str, on_skip: SkipSink) -> Iterator[Event]:
        """Every event of a JSON-lines file (the engine reads it line by line with the prefilter instead)."""
        record = 0
        for number, line in enumerate(stream, start=1):
            stripped = line.rstrip(b"\r\n")
            if not stripped.strip():
                continue
            event = self.parse_line(stripped, file, number, record, on_skip)
            record += 1
            if event is not None:
                yield event


class AzureWebAdapter(JsonWebAdapter):
    """Azure Application Gateway / Front Door access and WAF logs."""

    table = "azure-gateway"

    def __init__(self) -> None:
        super().__init__("azure-web", AZURE_FIELDS)

    def sniff(self, head: bytes) -> bool:
        """A JSON head naming one of the gateway log categories (or their Log Analytics tables)."""
        body = head.lstrip()[:8192].lower()
        return body.startswith((b"{", b"[")) and any(category in body for category in _AZURE_CATEGORIES)

    def is_line_oriented(self, head: bytes) -> bool:
        """One record per line, unless the file is a `{"records": [...]}` document or a JSON array."""
        body = b"".join(head[:200].split())
        return not (body.startswith(b"[") or body.startswith(b'{"records"'))

    def parse(self, stream: BinaryIO, file: str, on_skip: SkipSink) -> Iterator[Event]:
        """Records of a whole document (`{"records": [...]}` or an array), or of JSON lines."""
        data = stream.read()
        if self.is_line_oriented(data[:4096]):
            yield from super().parse(io.BytesIO(data), file, on_skip)
            return
        try:
            document = orjson.loads(data)
        except orjson.JSONDecodeError as error:
            on_skip(Skip("malformed-json", file, 1, str(error)[:120]))
            return
        rows = document.get("records") if isinstance(document, dict) else document
        if not isinstance(rows, list):
            on_skip(Skip("bad-document", file, 1, "expected {\"records\": [...]} or a JSON array"))
            return
        for index, row in enumerate(rows):
            if not isinstance(row, dict):
                on_skip(Skip("not-an-object", file, 1, type(row).__name__))
                continue
            event = self.event(row, SourceRef(self.name, file, 1, index), orjson.dumps(row).decode()[:4096], on_skip)
            if event is not None:
                yield event


JSON_WEB_ADAPTER = JsonWebAdapter()
AZURE_WEB_ADAPTER = AzureWebAdapter()
_CHECK: LineSource = JSON_WEB_ADAPTER
