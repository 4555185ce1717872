"""The native KQL of the Sentinel analytic rule and hunting queries, generated from the knowledge base.

Both patterns of the reference detection (network connections and process command lines), plus inspected
HTTP and DNS records, PowerShell commands and agent masquerades; every provider and address; the path class
as a column with the severity it implies; the identity-based allowlist (folder paths as exact regular
expressions, script agents by their interpreter's script argument) with the user's tuning.
"""

from __future__ import annotations

from ..config import Config
from ..detect import rules as engine_rules
from ..knowledge.agents import (
    AGENTS,
    NETWORK_TOOLS,
    NON_FETCHING_TOOLS,
    SHELLS_AND_INTERPRETERS,
    WRITABLE_DIRS,
    distinctive_agent_names,
)
from ..knowledge.endpoints import ADDRESSES, NAMES
from ..knowledge.paths import CREDENTIAL_VARIABLES
from . import hostforms, pathforms
from .allowfilters import COMMAND_LINE, HOST, IMAGE, PARENT, PROCESS_FIELDS, USER, Cond, EntryFilter, filters_for
from .globs import glob_regex, native_text, regex_escape

NOT_OUTBOUND = ("ListeningConnectionCreated", "InboundConnectionAccepted", "InboundInternetScanFailed",
                "HttpConnectionInspected", "DnsConnectionInspected")


def kql_string(text: str) -> str:
    """A KQL verbatim string literal."""
    return '@"' + text.replace('"', '""') + '"'


def kql_list(values: list[str] | tuple[str, ...]) -> str:
    return "dynamic([" + ", ".join(kql_string(v) for v in values) + "])"


def _value_regex(value: str) -> str:
    """A Sigma contains value (with `*`/`?` wildcards) as a regex fragment."""
    out = []
    index = 0
    while index < len(value):
        char = value[index]
        if char == "\\" and index + 1 < len(value) and value[index + 1] in "*?\\":
            out.append(regex_escape(value[index + 1]))
            index += 2
            continue
        out.append(r"[^\s\"']*" if char == "*" else "." if char == "?" else regex_escape(char))
        index += 1
    return "".join(out)


def any_regex(values: list[str] | tuple[str, ...]) -> str:
    return "(?i)(?:" + "|".join(_value_regex(v) for v in values) + ")"


class Columns:
    """Where a table keeps the acting process."""

    def __init__(self, path: str, name: str, command_line: str, parent: str, parent_path: str, user: str) -> None:
        self.path, self.name, self.command_line = path, name, command_line
        self.parent, self.parent_path, self.user = parent, parent_path, user


NETWORK_COLUMNS = Columns("InitiatingProcessFolderPath", "InitiatingProcessFileName",
                          "InitiatingProcessCommandLine", "InitiatingProcessParentFileName", "",
                          "InitiatingProcessAccountName")
PROCESS_COLUMNS = Columns("FolderPath", "FileName", "ProcessCommandLine", "InitiatingProcessFileName",
                          "InitiatingProcessFolderPath", "AccountName")
DEVICE_EVENT_COLUMNS = Columns("InitiatingProcessFolderPath", "InitiatingProcessFileName",
                               "InitiatingProcessCommandLine", "InitiatingProcessParentFileName", "",
                               "InitiatingProcessAccountName")


def globs_regex(patterns: tuple[str, ...]) -> str:
    parts = []
    for pattern in patterns:
        body = glob_regex(pattern, anchored=False)
        parts.append("(?i:" + body[4:] + ")" if body.startswith("(?i)") else body)
    return "^(?:" + "|".join(parts) + ")$"


def _script_regex(scripts: tuple[str, ...]) -> str:
    alternatives = []
    for script in scripts:
        body = glob_regex(script, anchored=False)
        alternatives.append("(?i:" + body[4:] + ")" if body.startswith("(?i)") else body)
    first = r"""^\s*(?:"[^"]*"|'[^']*'|\S+)(?:\s+-\S*)*\s+["']?"""
    return first + "(?:" + "|".join(alternatives) + r""")["']?(?:\s|$)"""


_EXE_SUFFIX = r")(?:\.exe)?$"


def _names_regex(values: tuple[str, ...]) -> str:
    names = "|".join(regex_escape(n.removesuffix(".exe")) for n in values).replace(r"\*", "[^/]*")
    return "(?i)^(?:" + names + _EXE_SUFFIX


def _cond_kql(cond: Cond, cols: Columns) -> str:
    if cond.field == IMAGE and cond.op == "glob":
        return f"{cols.path} matches regex {kql_string(globs_regex(cond.values))}"
    if cond.field == IMAGE and cond.op == "name":
        return f"{cols.name} matches regex {kql_string(_names_regex(cond.values))}"
    if cond.field == COMMAND_LINE and cond.op == "script":
        return f"{cols.command_line} matches regex {kql_string(_script_regex(cond.values))}"
    if cond.field == PARENT and cond.op == "name":
        return f"{cols.parent} matches regex {kql_string(_names_regex(cond.values))}"
    if cond.field == PARENT and cond.op == "glob":
        return (f"{cols.parent_path} matches regex {kql_string(globs_regex(cond.values))}" if cols.parent_path
                else "false")
    if cond.field == USER:
        return f"{cols.user} in~ ({', '.join(kql_string(u) for u in cond.values)})"
    if cond.field == HOST:
        names = "|".join(regex_escape(n).replace(r"\*", ".*") for n in cond.values)
        return f"DeviceName matches regex {kql_string('(?i)^(?:' + names + ')$')}"
    column = cols.command_line
    return f"{column} matches regex {kql_string(cond.values[0])}"


def allowlist_clause(filters: list[EntryFilter], cols: Columns) -> str:
    """`| where not(...)` lines, one per entry, each commented with the entry id and origin."""
    lines = []
    for entry in filters:
        predicate = " and ".join(_cond_kql(cond, cols) for cond in entry.conds)
        lines.append(f"| where not({predicate}) // allowlist {entry.id} ({entry.origin})")
    return "\n".join(lines)


def _path_class_case(column: str) -> str:
    values = pathforms.values_by_level(False)
    return (f"case({column} matches regex {kql_string(any_regex(values['high']))}, \"High\",\n"
            f"    {column} matches regex {kql_string(any_regex(values['medium']))}, \"Medium\",\n"
            f"    \"Low\")")


def _process_severity(cols: Columns) -> str:
    writable = "|".join(regex_escape(native_text(d)).replace("\\\\", r"[\\/]") for d in WRITABLE_DIRS)
    tools = "|".join(regex_escape(t) for t in sorted(set(SHELLS_AND_INTERPRETERS) | set(NETWORK_TOOLS)))
    writable_re = kql_string("(?i)^(?:" + writable + ")")
    tools_re = kql_string("(?i)^(?:" + tools + ")[0-9.]*" + _EXE_SUFFIX[1:])
    return (f"case({cols.path} matches regex {writable_re}, \"High\",\n"
            f"    {cols.name} matches regex {tools_re}, \"Medium\",\n"
            f"    \"Low\")")


def _not_api_ports() -> str:
    clauses = []
    for info in ADDRESSES:
        if info.address_alone and info.not_ports:
            forms = (hostforms.ipv6_embeddings(info.address) if "." in info.address
                     else hostforms.ipv6_forms(info.address))
            addresses = list(dict.fromkeys((info.address, *forms)))
            ports = ", ".join(str(p) for p in sorted(info.not_ports))
            listed = ", ".join(kql_string(a) for a in addresses)
            clauses.append(f"(RemoteIP in~ ({listed}) and RemotePort in ({ports}))")
    return " or ".join(clauses)


def lets() -> str:
    names = [n.name for n in NAMES]
    variables = []
    for variable in sorted(CREDENTIAL_VARIABLES):
        variables.append(regex_escape(variable))
    variable_re = r"(?i)(?:\$\{?|%|\$env:|environ\[['\"]|getenv\(['\"])(?:" + "|".join(variables) + r")\b"
    markers = pathforms.values_by_level(True)
    suffix_re = "(?i)[.](?:" + "|".join(regex_escape(s) for s in hostforms.dns_suffixes()) + ")$"
    return "\n".join([
        f"let MetadataAddresses = {kql_list(hostforms.address_values())};",
        f"let MetadataNames = {kql_list(names)};",
        f"let HostRegex = {kql_string(any_regex(hostforms.text_host_values()))};",
        f"let MarkerRegex = {kql_string(any_regex([v for lv in ('high', 'medium', 'low') for v in markers[lv]]))};",
        f"let VariableRegex = {kql_string(variable_re)};",
        f"let EmbeddedRegex = {kql_string(any_regex(hostforms.embedded_labels()))};",
        f"let SuffixRegex = {kql_string(suffix_re)};",
        f"let NonFetchingTools = {kql_list(sorted(NON_FETCHING_TOOLS))};",
    ])


COMMON = ("Timestamp, DeviceName, AccountName, ProcessName, ProcessPath, CommandLine, RemoteIP, RemotePort, "
          "RemoteUrl, DetectionRule, PathClassSeverity, Severity, Evidence")


def network_part(config: Config) -> str:
    filters, _ = filters_for(config.allowlist, engine_rules.NETWORK_CONNECTION.id, PROCESS_FIELDS)
    cols = NETWORK_COLUMNS
    return "\n".join([
        "let Network = DeviceNetworkEvents",
        f"| where ActionType !in ({', '.join(kql_string(a) for a in NOT_OUTBOUND)})",
        "| where (RemoteIP in~ (MetadataAddresses) or RemoteIP in~ (MetadataNames)"
        f" or (RemoteIP in (\"127.0.0.1\", \"::1\") and RemotePort == {hostforms.arc_port()})"
        " or RemoteUrl matches regex HostRegex)",
        f"| where not({_not_api_ports()})",
        allowlist_clause(filters, cols),
        f"| extend DetectionRule = \"{engine_rules.NETWORK_CONNECTION.id}\", PathClassSeverity = \"None\",",
        f"    Severity = {_process_severity(cols)}",
        f"| project Timestamp, DeviceName, AccountName = {cols.user}, ProcessName = {cols.name}, "
        f"ProcessPath = {cols.path}, CommandLine = {cols.command_line}, RemoteIP, RemotePort, RemoteUrl, "
        "DetectionRule, PathClassSeverity, Severity, Evidence = RemoteIP;",
    ])


def process_part(config: Config) -> str:
    cols = PROCESS_COLUMNS
    filters, _ = filters_for(config.allowlist, engine_rules.COMMAND_LINE.id, PROCESS_FIELDS)
    return "\n".join([
        "let Process = DeviceProcessEvents",
        "| where ProcessCommandLine matches regex HostRegex or ProcessCommandLine matches regex MarkerRegex"
        " or ProcessCommandLine matches regex VariableRegex",
        "| where not(tolower(replace_regex(FileName, @\"(?i)\\.exe$\", \"\")) in (NonFetchingTools))",
        allowlist_clause(filters, cols),
        "| extend HostVisible = ProcessCommandLine matches regex HostRegex",
        f"| extend DetectionRule = iff(HostVisible, \"{engine_rules.COMMAND_LINE.id}\", "
        f"\"{engine_rules.HIDDEN_HOST.id}\"),",
        f"    PathClassSeverity = {_path_class_case('ProcessCommandLine')}",
        "| extend Severity = iff(PathClassSeverity == \"Low\" and not(HostVisible) and "
        "ProcessCommandLine matches regex VariableRegex, \"High\", PathClassSeverity)",
        "| project Timestamp, DeviceName, AccountName, ProcessName = FileName, ProcessPath = FolderPath, "
        "CommandLine = ProcessCommandLine, RemoteIP = \"\", RemotePort = int(null), RemoteUrl = \"\", "
        "DetectionRule, PathClassSeverity, Severity, Evidence = ProcessCommandLine;",
    ])


def powershell_part(config: Config) -> str:
    cols = DEVICE_EVENT_COLUMNS
    filters, _ = filters_for(config.allowlist, engine_rules.COMMAND_LINE.id, PROCESS_FIELDS)
    return "\n".join([
        "let PowerShell = DeviceEvents",
        "| where ActionType == \"PowerShellCommand\"",
        "| extend Command = tostring(parse_json(AdditionalFields).Command)",
        "| where Command matches regex HostRegex",
        allowlist_clause(filters, cols),
        f"| extend DetectionRule = \"{engine_rules.COMMAND_LINE.id}\",",
        f"    PathClassSeverity = {_path_class_case('Command')}",
        "| project Timestamp, DeviceName, AccountName = InitiatingProcessAccountName, "
        "ProcessName = InitiatingProcessFileName, ProcessPath = InitiatingProcessFolderPath, CommandLine = Command, "
        "RemoteIP = \"\", RemotePort = int(null), RemoteUrl = \"\", DetectionRule, PathClassSeverity, "
        "Severity = PathClassSeverity, Evidence = Command;",
    ])


def http_part() -> str:
    return "\n".join([
        "let Http = DeviceNetworkEvents",
        "| where ActionType == \"HttpConnectionInspected\"",
        "| extend Fields = parse_json(AdditionalFields)",
        "| extend HttpHost = tostring(Fields.host), Uri = tostring(Fields.uri)",
        "| where RemoteIP in~ (MetadataAddresses) or HttpHost matches regex HostRegex or Uri matches regex HostRegex"
        " or Uri matches regex MarkerRegex",
        f"| extend DetectionRule = \"{engine_rules.HTTP_REQUEST.id}\", PathClassSeverity = {_path_class_case('Uri')}",
        "| project Timestamp, DeviceName, AccountName = \"\", ProcessName = \"\", ProcessPath = \"\", "
        "CommandLine = \"\", RemoteIP, RemotePort, RemoteUrl = strcat(HttpHost, Uri), DetectionRule, "
        "PathClassSeverity, Severity = PathClassSeverity, Evidence = strcat(HttpHost, Uri);",
    ])


def dns_part() -> str:
    return "\n".join([
        "let Dns = DeviceNetworkEvents",
        "| where ActionType == \"DnsConnectionInspected\"",
        "| extend Query = tolower(trim_end(@\"\\.\", tostring(parse_json(AdditionalFields).query)))",
        "| where (Query matches regex EmbeddedRegex and Query matches regex SuffixRegex) or Query in (MetadataNames)",
        f"| extend DetectionRule = \"{engine_rules.DNS_QUERY.id}\", PathClassSeverity = \"None\",",
        "    Severity = iff(Query in (MetadataNames), \"Informational\", \"High\")",
        "| project Timestamp, DeviceName, AccountName = \"\", ProcessName = \"\", ProcessPath = \"\", "
        "CommandLine = \"\", RemoteIP, RemotePort, RemoteUrl = Query, DetectionRule, PathClassSeverity, Severity, "
        "Evidence = Query;",
    ])


def masquerade_predicate(cols: Columns) -> str:
    distinctive = set(distinctive_agent_names())
    clauses = []
    for agent in AGENTS:
        names = [n for n in agent.names if n in distinctive]
        if not names or not agent.paths:
            continue
        name_list = ", ".join(kql_string(n) for n in names)
        clauses.append(f"({cols.name} in~ ({name_list}) and not({cols.path} matches regex "
                       f"{kql_string(globs_regex(agent.paths))}))")
    return "(" + "\n    or ".join(clauses) + ")"


def masquerade_part() -> str:
    cols = PROCESS_COLUMNS
    return "\n".join([
        "let Masquerade = DeviceProcessEvents",
        "| where isnotempty(FolderPath)",
        f"| where {masquerade_predicate(cols)}",
        f"| extend DetectionRule = \"{engine_rules.AGENT_MASQUERADE.id}\", PathClassSeverity = \"None\", "
        "Severity = \"High\"",
        "| project Timestamp, DeviceName, AccountName, ProcessName = FileName, ProcessPath = FolderPath, "
        "CommandLine = ProcessCommandLine, RemoteIP = \"\", RemotePort = int(null), RemoteUrl = \"\", "
        "DetectionRule, PathClassSeverity, Severity, Evidence = FolderPath;",
    ])


def analytic_query(config: Config, header: str) -> str:
    """The whole analytic-rule query (no time filter: the rule's queryPeriod bounds it)."""
    return "\n".join([
        header.rstrip("\n"),
        lets(),
        network_part(config),
        process_part(config),
        powershell_part(config),
        http_part(),
        dns_part(),
        masquerade_part(),
        "union Network, Process, PowerShell, Http, Dns, Masquerade",
        "| extend Severity = iff(ProcessName in~ (" + ", ".join(
            kql_string(n) for n in distinctive_agent_names()) + ") and DetectionRule != "
        f"\"{engine_rules.AGENT_MASQUERADE.id}\" and ProcessPath matches regex @\"(?i)^(?:/tmp/|/var/tmp/|/dev/shm/|"
        "c:\\\\users\\\\|c:\\\\windows\\\\temp\\\\)\", \"High\", Severity)",
        "| sort by Timestamp desc",
    ]) + "\n"


def hunting_queries(config: Config, header: str) -> dict[str, tuple[str, str]]:
    """name -> (description, query) of the hunting queries."""
    prefix = header.rstrip("\n") + "\n" + lets() + "\n"
    rare = prefix + "\n".join([
        "DeviceNetworkEvents",
        "| where Timestamp > ago(30d)",
        "| where RemoteIP in~ (MetadataAddresses) or RemoteUrl matches regex HostRegex",
        "| summarize Connections = count(), FirstSeen = min(Timestamp), LastSeen = max(Timestamp),",
        "    Devices = dcount(DeviceName) by InitiatingProcessFolderPath, InitiatingProcessFileName",
        "| where Devices <= 2",
        "| sort by Devices asc, Connections asc",
    ]) + "\n"
    cred_values = pathforms.values_by_level(False)["high"]
    creds = prefix + "\n".join([
        f"let CredentialRegex = {kql_string(any_regex(cred_values))};",
        "DeviceProcessEvents",
        "| where Timestamp > ago(30d)",
        "| where ProcessCommandLine matches regex CredentialRegex",
        "| where ProcessCommandLine matches regex HostRegex or ProcessCommandLine matches regex MarkerRegex",
        "| summarize Reads = count(), FirstSeen = min(Timestamp), LastSeen = max(Timestamp),",
        "    Commands = make_set(ProcessCommandLine, 20) by DeviceName, AccountName, FolderPath",
        "| sort by Reads desc",
    ]) + "\n"
    masq = header.rstrip("\n") + "\n" + "\n".join([
        "DeviceProcessEvents",
        "| where Timestamp > ago(30d)",
        "| where isnotempty(FolderPath)",
        f"| where {masquerade_predicate(PROCESS_COLUMNS)}",
        "| summarize Executions = count(), FirstSeen = min(Timestamp), LastSeen = max(Timestamp)",
        "    by DeviceName, FileName, FolderPath, SHA256",
    ]) + "\n"
    return {
        "imds_rare_process_metadata_access": (
            "Processes that reached a cloud metadata endpoint on at most two devices in 30 days: new software, "
            "or an attacker's tool, among the agents that call it everywhere.", rare),
        "imds_credential_path_reads": (
            "Command lines that read instance credentials, tokens or user-data over 30 days, by device, account "
            "and executable.", creds),
        "imds_agent_masquerade": (
            "Executables named like cloud agents running from paths those agents never use, over 30 days.", masq),
    }
