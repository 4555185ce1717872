"""Sigma rules generated from the knowledge base and the user's tuning (allowlist) configuration.

One rule per log source and level (levels follow the path class, as the engine's severity does), with
stable ids, MITRE tags, false-positive notes and, in every description, what a plain SIEM query cannot
see that the engine can.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Any

from ..config import Config
from ..detect import rules as engine_rules
from ..detect.allowlist import Allowlist
from ..knowledge.agents import (
    AGENTS,
    NETWORK_TOOLS,
    NON_FETCHING_TOOLS,
    SHELLS_AND_INTERPRETERS,
    WRITABLE_DIRS,
    distinctive_agent_names,
)
from ..knowledge.endpoints import ADDRESSES
from ..knowledge.paths import CREDENTIAL_VARIABLES
from . import hostforms, meta, pathforms
from .allowfilters import (
    COMMAND_LINE,
    HTTP_FIELDS,
    IMAGE,
    PARENT,
    PROCESS_FIELDS,
    URI,
    USER_AGENT,
    Cond,
    EntryFilter,
    filters_for,
)
from .globs import native_text, sigma_escape, sigma_path_value

ENGINE_ONLY = (
    "Unlike the imds-detect engine, a SIEM query matches strings and cannot canonicalise a host: "
    "listed here are the numeric (decimal, octal, hex, mixed-part), IPv4-mapped IPv6 and percent-encoded "
    "spellings of each metadata address, but not extra leading zeros, values wrapped modulo 2^32, "
    "full-width digits or other Unicode look-alikes, backslash escapes, base64 or hosts held in variables. "
    "It cannot tell whether a path starts a request, where a path ends, or whether a process only mentions "
    "a URL, and its allowlist wildcards may cross folders (the engine's never do)."
)

SIGMA_FIELDS = {
    "process": {IMAGE: "Image", COMMAND_LINE: "CommandLine", PARENT: "ParentImage", "user": "User",
                "host": "Computer"},
    "network": {IMAGE: "Image", COMMAND_LINE: "CommandLine", PARENT: "ParentImage", "user": "User",
                "host": "Computer"},
    "proxy": {USER_AGENT: "c-useragent", URI: "c-uri"},
}
FIELDS_AVAILABLE = {
    "process": PROCESS_FIELDS,
    "network": PROCESS_FIELDS,
    "proxy": HTTP_FIELDS - {"host"},
}

LOGSOURCES = {
    "process": {"category": "process_creation"},
    "network": {"category": "network_connection"},
    "proxy": {"category": "proxy"},
    "webserver": {"category": "webserver"},
    "dns": {"category": "dns_query"},
    "cloudtrail": {"product": "aws", "service": "cloudtrail"},
}
FILE_PREFIX = {"process": "proc_creation", "network": "net_connection", "proxy": "proxy", "webserver": "web",
               "dns": "dns_query", "cloudtrail": "aws_cloudtrail"}
TAGS = ["attack.credential-access", "attack.t1552.005"]


@dataclass(frozen=True)
class SigmaRuleDoc:
    """One generated rule: its file name, the engine rule it mirrors, and the rule as a mapping."""

    name: str
    family: str
    engine_rule: str
    data: dict[str, Any]

    @property
    def filename(self) -> str:
        return f"{FILE_PREFIX[self.family]}_{self.name}.yml"


@dataclass
class Notes:
    """What the export could not carry over (listed in the manifest and the docs)."""

    skipped: list[str]


def _ident(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


# -- allowlist filters ---------------------------------------------------------------------------------------------

def _cond_alternatives(cond: Cond, fields: dict[str, str]) -> list[dict[str, Any]]:
    name = fields[cond.field]
    if cond.op == "glob":
        grouped: dict[str, list[str]] = {}
        for pattern in cond.values:
            modifier, value = sigma_path_value(pattern)
            key = f"{name}|{modifier}" if modifier else name
            grouped.setdefault(key, []).append(value)
        return [{key: values} for key, values in grouped.items()]
    if cond.op == "name":
        values: list[str] = []
        for item in cond.values:
            base = sigma_escape(item)
            for form in (base, base + ".exe") if not base.lower().endswith(".exe") else (base,):
                values += ["/" + form, "\\" + form]
        return [{f"{name}|endswith": values}]
    if cond.op == "script":
        return [{f"{name}|contains": [" " + sigma_escape(native_text(s)).rstrip("*") for s in cond.values]}]
    if cond.op == "equals":
        return [{name: list(cond.values)}]
    return [{f"{name}|re": cond.values[0]}]


def allowlist_filters(entries: list[EntryFilter], family: str) -> tuple[dict[str, Any], list[str]]:
    """Sigma filter selections (`filter_main_*` defaults, `filter_optional_*` the user's), and skipped notes."""
    fields = SIGMA_FIELDS[family]
    selections: dict[str, Any] = {}
    skipped: list[str] = []
    for entry in entries:
        prefix = "filter_main" if entry.origin == "default" else "filter_optional"
        alternatives = [_cond_alternatives(cond, fields) for cond in entry.conds]
        merged: list[dict[str, Any]] = []
        for combo in itertools.product(*alternatives):
            selection: dict[str, Any] = {}
            for part in combo:
                if any(key in selection for key in part):
                    break
                selection.update(part)
            else:
                merged.append(selection)
                continue
            skipped.append(f"{entry.id}: two conditions on one field cannot share a Sigma selection")
            merged = []
            break
        for index, selection in enumerate(merged):
            suffix = f"_{index + 1}" if len(merged) > 1 else ""
            selections[f"{prefix}_{_ident(entry.id)}{suffix}"] = selection
    return selections, skipped


def _filter_condition(selections: dict[str, Any]) -> str:
    parts = []
    for prefix in ("filter_main", "filter_optional"):
        if any(key.startswith(prefix + "_") for key in selections):
            parts.append(f"not 1 of {prefix}_*")
    return "".join(" and " + part for part in parts)


# -- building blocks ----------------------------------------------------------------------------------------------

def host_selection(field: str) -> list[dict[str, Any]]:
    """Standard host spellings as substrings, encoded ones as one case-insensitive regular expression."""
    return [{f"{field}|contains": list(hostforms.plain_host_values())},
            {f"{field}|re|i": hostforms.encoded_host_regex()}]


def _tool_endings(names: frozenset[str] | set[str]) -> list[str]:
    values = []
    for name in sorted(names):
        values += ["/" + name, "\\" + name, "\\" + name + ".exe"] if not name.endswith(".exe") else ["\\" + name]
    return list(dict.fromkeys(values))


def _base(name: str, title: str, description: str, level: str, logsource: dict[str, str],
          detection: dict[str, Any], falsepositives: list[str]) -> dict[str, Any]:
    return {
        "title": title,
        "id": meta.stable_id(name),
        "status": "experimental",
        "description": description,
        "author": meta.AUTHOR,
        "date": meta.release_date(),
        "tags": list(TAGS),
        "logsource": dict(logsource),
        "detection": detection,
        "falsepositives": falsepositives,
        "level": level,
    }


def _finish(data: dict[str, Any], engine_rule: str) -> dict[str, Any]:
    """Drop selections the condition does not use (generated rules share building blocks)."""
    detection = data["detection"]
    condition = detection["condition"]
    for key in list(detection):
        if key == "condition":
            continue
        tokens = re.findall(r"\w+\*?", condition)
        used = key in tokens or any(t.endswith("*") and key.startswith(t[:-1]) for t in tokens)
        if not used:
            del detection[key]
    return data


AGENT_FP = "Cloud agents or inventory tools installed outside the paths of the allowlist (add them to the tuning file)"


def _leveled(family: str, stem: str, engine_rule: engine_rules.Rule, title: str, what: str,
             host_selection: list[dict[str, Any]] | None, path_field: str, marker_only: bool,
             extra: dict[str, Any], filters: dict[str, Any], falsepositives: list[str],
             base_condition: str = "") -> list[SigmaRuleDoc]:
    """Rules per level: high/medium by the path classes, low for the rest."""
    values = pathforms.values_by_level(marker_only)
    docs = []
    path_sel = {f"selection_path_{level}": {f"{path_field}|contains": list(values[level])}
                for level in ("high", "medium", "low") if values[level]}
    for level in ("high", "medium", "low"):
        detection: dict[str, Any] = {}
        if host_selection is not None:
            detection["selection_host"] = host_selection
        detection.update(extra)
        detection.update(path_sel)
        detection.update(filters)
        base = "selection_host" if host_selection is not None else base_condition
        if level == "high":
            path_cond = "selection_path_high"
        elif level == "medium":
            path_cond = "selection_path_medium and not selection_path_high"
        else:
            path_cond = "not selection_path_high and not selection_path_medium"
        cond = " and ".join(part for part in (base, path_cond) if part)
        detection["condition"] = cond + _filter_condition(filters)
        name = f"{stem}_{level}"
        description = (f"{what} Level {level}: "
                       + {"high": "the path reads credentials, tokens or user-data.",
                          "medium": "the path lists roles, reads identity documents or asks for an IMDSv2 token.",
                          "low": "other metadata, or no recognisable path."}[level]
                       + " " + ENGINE_ONLY)
        data = _base(name, f"{title} - {level.capitalize()} Path Class", description, level, LOGSOURCES[family],
                     detection, falsepositives)
        docs.append(SigmaRuleDoc(name, family, engine_rule.id, _finish(data, engine_rule.id)))
    return docs


def _process_filters(allowlist: Allowlist, rule: engine_rules.Rule, family: str, notes: Notes,
                     drop_fields: frozenset[str] = frozenset()) -> dict[str, Any]:
    available = FIELDS_AVAILABLE["process" if family in ("process", "network") else family] - drop_fields
    entries, skipped = filters_for(allowlist, rule.id, available)
    selections, more = allowlist_filters(entries, family)
    for note in skipped + more:
        if note not in notes.skipped:
            notes.skipped.append(note)
    return selections


# -- the rules ----------------------------------------------------------------------------------------------------

def network_rules(allowlist: Allowlist, notes: Notes, drop_fields: frozenset[str]) -> list[SigmaRuleDoc]:
    rule = engine_rules.NETWORK_CONNECTION
    filters = _process_filters(allowlist, rule, "network", notes, drop_fields)
    by_ports: dict[tuple[int, ...], list[str]] = {}
    for info in ADDRESSES:
        if info.address_alone and info.not_ports:
            by_ports.setdefault(tuple(sorted(info.not_ports)), []).append(info.address)
    detection: dict[str, Any] = {
        "selection_address": {"DestinationIp": list(hostforms.address_values()) + list(hostforms.metadata_names())},
        "selection_loopback_api": {"DestinationIp": list(hostforms.loopback_api_values()),
                                   "DestinationPort": hostforms.arc_port()},
        "selection_url": host_selection("DestinationHostname"),
    }
    for index, (ports, addresses) in enumerate(sorted(by_ports.items())):
        values: list[str] = []
        for address in addresses:
            values += [address, *(hostforms.ipv6_embeddings(address) if "." in address else
                                  hostforms.ipv6_forms(address))]
        detection[f"filter_main_not_api_port_{index + 1}"] = {"DestinationIp": list(dict.fromkeys(values)),
                                                              "DestinationPort": list(ports)}
    detection.update(filters)
    writable = {"Image|startswith": [native_text(d) for d in WRITABLE_DIRS]}
    tools = {"Image|endswith": _tool_endings(set(SHELLS_AND_INTERPRETERS) | set(NETWORK_TOOLS))}
    docs = []
    what = ("A process that is not a verified cloud agent connected to a cloud instance metadata or credential "
            "endpoint (T1552.005).")
    for level, extra_sel, level_cond, why in (
        ("high", {"selection_writable_dir": writable}, "selection_writable_dir",
         "the process runs from a world- or user-writable directory."),
        ("medium", {"selection_writable_dir": writable, "selection_tool": tools},
         "selection_tool and not selection_writable_dir", "the process is a shell, interpreter or network tool."),
        ("low", {"selection_writable_dir": writable, "selection_tool": tools},
         "not selection_writable_dir and not selection_tool", "any other process."),
    ):
        det = dict(detection)
        det.update(extra_sel)
        cond = "(selection_address or selection_loopback_api or selection_url) and " + level_cond
        filter_parts = [" and not 1 of filter_main_*"]
        if any(k.startswith("filter_optional_") for k in det):
            filter_parts.append(" and not 1 of filter_optional_*")
        det["condition"] = cond + "".join(filter_parts)
        name = f"imds_network_connection_{level}"
        description = (f"{what} A connection shows no path, so the level follows the process: {level}, {why} "
                       + ENGINE_ONLY)
        data = _base(name, f"Cloud Metadata Service Connection By Unexpected Process - {level.capitalize()}",
                     description, level, LOGSOURCES["network"], det,
                     [AGENT_FP, "SDKs and applications that discover their cloud environment at start-up"])
        docs.append(SigmaRuleDoc(name, "network", rule.id, _finish(data, rule.id)))
    return docs


def command_line_rules(allowlist: Allowlist, notes: Notes) -> list[SigmaRuleDoc]:
    rule = engine_rules.COMMAND_LINE
    filters = {"filter_main_non_fetching_tool": {"Image|endswith": _tool_endings(set(NON_FETCHING_TOOLS))}}
    filters.update(_process_filters(allowlist, rule, "process", notes))
    return _leveled(
        "process", "imds_command_line", rule, "Command Line Reaches Cloud Metadata Service",
        "A command line names a cloud instance metadata host (any listed spelling) while fetching from it "
        "(curl, wget, interpreters, PowerShell, /dev/tcp, nc, socat) (T1552.005).",
        host_selection("CommandLine"), "CommandLine", False, {}, filters,
        [AGENT_FP, "Administration scripts that read the instance id or region"])


def _variable_forms() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {"high": [], "medium": []}
    for variable, (_provider, path_class) in sorted(CREDENTIAL_VARIABLES.items()):
        upper = variable.upper()
        level = "high" if path_class in ("credential", "token") else "medium"
        out[level] += [f"${upper}", f"${{{upper}}}", f"%{upper}%", f"$env:{upper}", f"environ['{upper}",
                       f'environ["{upper}', f"getenv('{upper}", f'getenv("{upper}']
    return out


def hidden_host_rules(allowlist: Allowlist, notes: Notes) -> list[SigmaRuleDoc]:
    rule = engine_rules.HIDDEN_HOST
    filters = {"filter_main_non_fetching_tool": {"Image|endswith": _tool_endings(set(NON_FETCHING_TOOLS))}}
    filters.update(_process_filters(allowlist, rule, "process", notes))
    values = pathforms.values_by_level(True)
    variables = _variable_forms()
    docs = []
    for level in ("high", "medium", "low"):
        detection: dict[str, Any] = {
            "selection_path": {"CommandLine|contains": list(values[level])},
            "filter_main_host_visible": host_selection("CommandLine"),
        }
        higher = [lv for lv in ("high", "medium") if lv != level and
                  ("high", "medium", "low").index(lv) < ("high", "medium", "low").index(level)]
        for lv in higher:
            detection[f"filter_main_path_{lv}"] = {"CommandLine|contains": list(values[lv])}
        if variables.get(level):
            detection["selection_variable"] = {"CommandLine|contains": variables[level]}
        for lv in higher:
            if variables.get(lv):
                detection[f"filter_main_variable_{lv}"] = {"CommandLine|contains": variables[lv]}
        detection.update(filters)
        selection = "1 of selection_*" if "selection_variable" in detection else "selection_path"
        cond = selection + " and not 1 of filter_main_*"
        if any(k.startswith("filter_optional_") for k in detection):
            cond += " and not 1 of filter_optional_*"
        detection["condition"] = cond
        name = f"imds_hidden_host_{level}"
        description = ("A command line requests a path only cloud metadata services serve, or expands a "
                       "credential-endpoint variable, with the host hidden (a variable, a redirector, a proxy) "
                       f"(T1552.005). Level {level} follows the path class. " + ENGINE_ONLY)
        data = _base(name, f"Metadata Service Path Requested Through Hidden Host - {level.capitalize()}",
                     description, level, LOGSOURCES["process"], detection,
                     ["Applications whose own URLs contain a metadata-like path (the engine checks the path "
                      "starts a request; a SIEM query cannot)", AGENT_FP])
        docs.append(SigmaRuleDoc(name, "process", rule.id, _finish(data, rule.id)))
    return docs


def http_rules(allowlist: Allowlist, notes: Notes) -> list[SigmaRuleDoc]:
    rule = engine_rules.HTTP_REQUEST
    filters = _process_filters(allowlist, rule, "proxy", notes)
    marker_values = pathforms.values_by_level(True)
    markers = list(dict.fromkeys(v for lv in ("high", "medium", "low") for v in marker_values[lv]))
    return _leveled(
        "proxy", "imds_http_request", rule, "HTTP Request For Cloud Instance Metadata",
        "An HTTP request went to a cloud metadata endpoint, carried a metadata URL (SSRF), or asked for a path "
        "only metadata services serve, seen by a proxy or network inspection (T1552.005).",
        None, "c-uri", False,
        {"selection_host": host_selection("cs-host"), "selection_embedded": host_selection("c-uri"),
         "selection_marker": {"c-uri|contains": markers}},
        filters, ["Cloud agents whose requests pass a proxy (HTTP records carry no process identity)"],
        base_condition="(selection_host or selection_embedded or selection_marker)")


def webserver_rules(notes: Notes) -> list[SigmaRuleDoc]:
    rule = engine_rules.HTTP_REQUEST
    return _leveled(
        "webserver", "imds_ssrf_webserver", rule, "Metadata URL In Web Request",
        "A request to a web application carries a cloud metadata URL in its query or path: server-side request "
        "forgery aimed at instance credentials (T1552.005).",
        None, "cs-uri-query", False,
        {"selection_query": host_selection("cs-uri-query"), "selection_stem": host_selection("cs-uri-stem")},
        {}, ["Security scanners probing for SSRF (the request itself is still worth a look)"],
        base_condition="(selection_query or selection_stem)")


def dns_rules() -> list[SigmaRuleDoc]:
    rule = engine_rules.DNS_QUERY
    rebinding = {
        "selection_embedded": {"QueryName|contains": list(hostforms.embedded_labels())},
        "selection_suffix": {"QueryName|endswith": ["." + s for s in hostforms.dns_suffixes()]},
        "condition": "all of selection_*",
    }
    names = {"selection": {"QueryName": [n.name for n in __import__("imds_detect.knowledge.endpoints",
                                                                     fromlist=["NAMES"]).NAMES]},
             "condition": "selection"}
    docs = []
    for name, title, description, level, detection, fps in (
        ("imds_dns_query_embedded_address", "DNS Query For Name Embedding A Cloud Metadata Address",
         "A DNS query for a wildcard-DNS or rebinding name that embeds a cloud metadata address (dotted, dashed "
         "or hex): a way past SSRF filters to instance credentials (T1552.005). " + ENGINE_ONLY,
         "high", rebinding, ["Developers testing with wildcard DNS services"]),
        ("imds_dns_query_metadata_name", "DNS Query For Cloud Metadata Service Name",
         "A DNS query for a cloud provider's metadata service name. Routine on that provider (informational); "
         "useful context for other alerts (T1552.005). " + ENGINE_ONLY,
         "informational", names, ["Every workload on the provider resolves these names"]),
    ):
        data = _base(name, title, description, level, LOGSOURCES["dns"], detection, fps)
        docs.append(SigmaRuleDoc(name, "dns", rule.id, _finish(data, rule.id)))
    return docs


def masquerade_rule(allowlist: Allowlist, notes: Notes) -> SigmaRuleDoc:
    rule = engine_rules.AGENT_MASQUERADE
    distinctive = set(distinctive_agent_names())
    detection: dict[str, Any] = {}
    parts = []
    for agent in AGENTS:
        names = [n for n in agent.names if n in distinctive]
        if not names or not agent.paths:
            continue
        key = _ident(agent.id)
        detection[f"selection_{key}"] = {"Image|endswith": [e for n in names for e in ("/" + n, "\\" + n)]}
        alternatives = _cond_alternatives(Cond(IMAGE, "glob", agent.paths), SIGMA_FIELDS["process"])
        for index, alternative in enumerate(alternatives):
            detection[f"filter_main_{key}_{index + 1}"] = alternative
        parts.append(f"(selection_{key} and not 1 of filter_main_{key}_*)")
    filters = _process_filters(allowlist, rule, "process", notes)
    detection.update(filters)
    condition = "(" + " or ".join(parts) + ")"
    if filters:
        condition += " and not 1 of filter_optional_*"
    detection["condition"] = condition
    description = ("An executable named like a cloud agent runs from a path that agent never uses: a renamed tool "
                   "trying to pass a name-based allowlist (T1552.005). " + ENGINE_ONLY)
    data = _base("imds_agent_masquerade", "Cloud Agent Name Running From Unexpected Path", description, "high",
                 LOGSOURCES["process"], detection, ["Agents installed to a custom prefix (add its path to the "
                                                    "tuning file with rules = [\"imds-agent-masquerade\"])"])
    return SigmaRuleDoc("imds_agent_masquerade", "process", rule.id, _finish(data, rule.id))


def cloudtrail_rule() -> SigmaRuleDoc:
    detection = {
        "selection": {"eventSource": "ec2.amazonaws.com", "eventName": "ModifyInstanceMetadataOptions"},
        "selection_weakened": [
            {"requestParameters.ModifyInstanceMetadataOptionsRequest.HttpTokens": "optional"},
            {"requestParameters.ModifyInstanceMetadataOptionsRequest.HttpPutResponseHopLimit|gt": 1},
        ],
        "condition": "all of selection*",
    }
    description = ("Instance metadata options were weakened: IMDSv1 allowed again (HttpTokens optional) or the "
                   "IMDSv2 hop limit raised so containers can reach the service. This precedes credential theft "
                   "through SSRF (T1552.005). imds-detect reads host telemetry; this cloud-side rule has no "
                   "engine counterpart.")
    data = _base("imds_cloudtrail_metadata_options_weakened", "EC2 Instance Metadata Options Weakened",
                 description, "medium", LOGSOURCES["cloudtrail"], detection,
                 ["Legacy images that still need IMDSv1", "Container hosts that need a hop limit of 2"])
    data["tags"] = ["attack.credential-access", "attack.t1552.005", "attack.defense-evasion", "attack.t1562.001"]
    return SigmaRuleDoc("imds_cloudtrail_metadata_options_weakened", "cloudtrail", "cloudtrail",
                        _finish(data, "cloudtrail"))


def build_rules(config: Config, drop_fields: frozenset[str] = frozenset(),
                notes: Notes | None = None) -> list[SigmaRuleDoc]:
    """Every Sigma rule for `config`. `drop_fields` leaves out allowlist entries that need those fields
    (for back ends whose tables lack them, e.g. ASIM network sessions have no command line)."""
    notes = notes if notes is not None else Notes([])
    allowlist = config.allowlist
    docs = network_rules(allowlist, notes, drop_fields)
    docs += command_line_rules(allowlist, notes)
    docs += hidden_host_rules(allowlist, notes)
    docs.append(masquerade_rule(allowlist, notes))
    docs += http_rules(allowlist, notes)
    docs += webserver_rules(notes)
    docs += dns_rules()
    docs.append(cloudtrail_rule())
    return docs
