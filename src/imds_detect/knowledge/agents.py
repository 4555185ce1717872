"""Legitimate metadata clients (cloud agents) by identity, and the tools attackers use instead.

An agent is identified by where its executable lives (glob patterns), never by its name alone: a
binary named `cloud-init` in /tmp is a masquerade. Windows patterns are matched case-insensitively
with `\\` read as `/`; POSIX patterns are matched case-sensitively.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AgentIdentity:
    """A cloud agent that legitimately reads instance metadata."""

    id: str
    provider: str
    description: str
    names: tuple[str, ...]  # executable file names (lower case); used to spot masquerades
    paths: tuple[str, ...]  # glob patterns of the executable's full path
    parent_names: tuple[str, ...] = ()  # if set, the parent must be one of these
    users: tuple[str, ...] = ()  # if set, the user must be one of these
    # Interpreted agents: the process is an interpreter (INTERPRETER_PATHS) whose script argument
    # (the first argument that is not an option) matches one of these globs.
    scripts: tuple[str, ...] = ()
    # Allowed even though the binary is a generic tool, because parent AND user pin it down.
    generic_tool: bool = False
    # Interpreted daemons, for logs without their exec-time argv (auditd connect records of a long-running
    # process whose execve predates the log; its PROCTITLE may be a rewritten title such as "(g_daemon)"):
    # the names (Linux comm, cut to 15 bytes) the agent's interpreter process carries. Only allowed with a
    # system Python path, init as the parent, root, no login session, and no script argument in sight (a
    # command line that names a script must name the agent's script: see `scripts`).
    daemon_titles: tuple[str, ...] = ()


# System Python interpreters: the only executables a daemon_titles entry can allow.
SYSTEM_PYTHON_PATHS: tuple[str, ...] = ("/usr/bin/python*", "/bin/python*", "/usr/libexec/platform-python*")

# Interpreters that run script-based agents; only their script argument identifies the agent.
INTERPRETER_PATHS: tuple[str, ...] = (
    "/usr/bin/python*", "/bin/python*", "/usr/local/bin/python*", "/usr/libexec/platform-python*",
    "/bin/sh", "/usr/bin/sh", "/bin/bash", "/usr/bin/bash", "/bin/dash", "/usr/bin/dash",
)


AGENTS: tuple[AgentIdentity, ...] = (
    # AWS
    AgentIdentity("aws-ssm-agent", "aws", "AWS Systems Manager agent and workers",
                  ("amazon-ssm-agent", "ssm-agent-worker", "ssm-session-worker", "ssm-document-worker",
                   "amazon-ssm-agent.exe", "ssm-agent-worker.exe", "ssm-session-worker.exe",
                   "ssm-document-worker.exe"),
                  ("/usr/bin/amazon-ssm-agent", "/usr/bin/ssm-agent-worker", "/usr/bin/ssm-session-worker",
                   "/usr/bin/ssm-document-worker", "/snap/amazon-ssm-agent/*/amazon-ssm-agent",
                   "/snap/amazon-ssm-agent/*/ssm-agent-worker", "/snap/amazon-ssm-agent/*/ssm-session-worker",
                   "/snap/amazon-ssm-agent/*/ssm-document-worker",
                   "c:/program files/amazon/ssm/*.exe")),
    AgentIdentity("aws-ec2-instance-connect", "aws",
                  "EC2 Instance Connect fetching managed SSH keys (curl run by eic_curl_authorized_keys)",
                  ("curl",), ("/usr/bin/curl",), parent_names=("eic_curl_authorized_keys",),
                  users=("ec2-instance-connect",), generic_tool=True),
    AgentIdentity("aws-ec2-net-utils", "aws", "amazon-ec2-net-utils policy routing and hostname helpers",
                  ("setup-policy-routes", "set-hostname-imds"),
                  ("/usr/bin/setup-policy-routes", "/usr/bin/set-hostname-imds",
                   "/usr/lib/amazon-ec2-net-utils/*", "/usr/sbin/setup-policy-routes")),
    AgentIdentity("cloud-init", "multi-cloud", "cloud-init instance initialisation",
                  ("cloud-init", "ds-identify"),
                  ("/usr/bin/cloud-init", "/usr/lib/cloud-init/ds-identify", "/usr/libexec/cloud-init/ds-identify"),
                  scripts=("/usr/bin/cloud-init", "/usr/lib/cloud-init/ds-identify",
                           "/usr/libexec/cloud-init/ds-identify")),
    AgentIdentity("aws-cfn-bootstrap", "aws", "CloudFormation helper scripts",
                  ("cfn-init", "cfn-hup", "cfn-signal", "cfn-get-metadata", "aws-cfn-bootstrap"),
                  ("/opt/aws/bin/cfn-*", "/opt/aws/apitools/cfn-init/bin/*", "/usr/local/bin/cfn-*",
                   "c:/program files/amazon/cfn-bootstrap/*.exe"),
                  scripts=("/opt/aws/bin/cfn-*", "/opt/aws/apitools/cfn-init/bin/*", "/usr/local/bin/cfn-*")),
    AgentIdentity("aws-ec2launch", "aws", "EC2Launch v2 and legacy EC2Config",
                  ("ec2launch.exe", "ec2config.exe", "ec2configservice.exe", "ec2launchservice.exe"),
                  ("c:/program files/amazon/ec2launch/*.exe", "c:/program files/amazon/ec2configservice/*.exe",
                   "c:/programdata/amazon/ec2-windows/launch/*.exe")),
    AgentIdentity("aws-cloudwatch-agent", "aws", "Amazon CloudWatch agent",
                  ("amazon-cloudwatch-agent", "start-amazon-cloudwatch-agent", "amazon-cloudwatch-agent.exe"),
                  ("/opt/aws/amazon-cloudwatch-agent/bin/*",
                   "c:/program files/amazon/amazoncloudwatchagent/*.exe")),
    AgentIdentity("aws-ecs-agent", "aws", "Amazon ECS container agent", ("agent", "amazon-ecs-agent"),
                  ("/agent", "/usr/libexec/amazon-ecs-init", "/usr/bin/amazon-ecs-agent")),
    AgentIdentity("aws-vpc-cni", "aws", "EKS VPC CNI (aws-node)", ("aws-k8s-agent", "aws-vpc-cni"),
                  ("/app/aws-k8s-agent", "/app/aws-vpc-cni")),
    AgentIdentity("aws-inspector", "aws", "Amazon Inspector SSM plugin",
                  ("inspectorssmplugin", "inspectorssmplugin.exe"),
                  ("/opt/aws/inspector/bin/*", "/usr/bin/inspectorssmplugin",
                   "c:/program files/amazon/inspector/*.exe")),
    # Azure
    AgentIdentity("azure-waagent", "azure", "Azure Linux guest agent (WALinuxAgent)", ("waagent",),
                  ("/usr/sbin/waagent",),
                  scripts=("/usr/sbin/waagent", "/var/lib/waagent/walinuxagent-*/bin/walinuxagent-*.egg",
                           "bin/walinuxagent-*.egg")),
    AgentIdentity("azure-windows-guest-agent", "azure", "Azure Windows guest agent",
                  ("windowsazureguestagent.exe", "waappagent.exe", "azureguestagent.exe"),
                  ("c:/windowsazure/guestagent_*/windowsazureguestagent.exe", "c:/windowsazure/packages/*.exe",
                   "c:/windowsazure/guestagent_*/*.exe")),
    AgentIdentity("azure-monitor-agent", "azure", "Azure Monitor Agent",
                  ("mdsd", "amacoreagent", "monagentcore.exe", "monagentlauncher.exe", "monagenthost.exe"),
                  ("/opt/microsoft/azuremonitoragent/bin/*",
                   "c:/packages/plugins/microsoft.azure.monitor.azuremonitorwindowsagent/*/monagent/*.exe")),
    AgentIdentity("microsoft-defender", "azure", "Microsoft Defender for Endpoint",
                  ("wdavdaemon", "mssense.exe", "sensecncproxy.exe"),
                  ("/opt/microsoft/mdatp/sbin/wdavdaemon",
                   "c:/program files/windows defender advanced threat protection/*.exe")),
    AgentIdentity("azure-arc-himds", "azure-arc", "Azure Arc hybrid instance metadata service",
                  ("himds", "himds.exe", "azcmagent", "azcmagent.exe", "gc_service", "gc_arc_service.exe"),
                  ("/opt/azcmagent/bin/*", "c:/program files/azureconnectedmachineagent/*.exe",
                   "c:/program files/azureconnectedmachineagent/*/*.exe")),
    # GCP
    AgentIdentity("gcp-guest-agent", "gcp", "Google guest environment",
                  ("google_guest_agent", "google_metadata_script_runner", "google_authorized_keys",
                   "google_oslogin_nss", "gce_workload_cert_refresh", "google_guest_compat_manager",
                   "gcewindowsagent.exe", "googleguestagent.exe", "gcemetadatascripts.exe"),
                  ("/usr/bin/google_guest_agent", "/usr/bin/google_metadata_script_runner",
                   "/usr/bin/google_authorized_keys", "/usr/bin/gce_workload_cert_refresh",
                   "/usr/bin/google_guest_compat_manager", "/usr/lib/google/*",
                   "c:/program files/google/compute engine/agent/*.exe",
                   "c:/program files/google/compute engine/metadata_scripts/*.exe")),
    AgentIdentity("gcp-osconfig", "gcp", "Google OS Config agent", ("google_osconfig_agent",),
                  ("/usr/bin/google_osconfig_agent", "c:/program files/google/osconfig/*.exe")),
    AgentIdentity("gcp-legacy-daemons", "gcp", "Legacy Google compute-image-packages python daemons",
                  ("google_accounts", "google_accounts_daemon", "google_ip_forwa", "google_ip_forwarding_daemon",
                   "google_clock_sk", "google_clock_skew_daemon", "google_network_daemon",
                   "google_network_"),
                  ("/usr/bin/google_accounts_daemon", "/usr/bin/google_ip_forwarding_daemon",
                   "/usr/bin/google_clock_skew_daemon", "/usr/bin/google_network_daemon"),
                  scripts=("/usr/bin/google_accounts_daemon", "/usr/bin/google_ip_forwarding_daemon",
                           "/usr/bin/google_clock_skew_daemon", "/usr/bin/google_network_daemon",
                           "/usr/bin/google_metadata_script_runner", "/usr/bin/google_instance_setup"),
                  daemon_titles=("google_accounts", "google_ip_forwa", "google_clock_sk", "google_network_")),
    AgentIdentity("gke-metadata-server", "gcp", "GKE workload identity metadata server",
                  ("gke-metadata-server",), ("/gke-metadata-server", "/usr/bin/gke-metadata-server")),
    AgentIdentity("oracle-cloud-agent", "oracle", "Oracle Cloud Agent",
                  ("oracle-cloud-agent", "agent"), ("/usr/libexec/oracle-cloud-agent/*",
                                                    "/var/lib/oracle-cloud-agent/*")),
    AgentIdentity("datadog-agent", "third-party", "Datadog agent",
                  ("agent", "process-agent", "trace-agent", "security-agent", "system-probe"),
                  ("/opt/datadog-agent/bin/*", "/opt/datadog-agent/embedded/bin/*",
                   "c:/program files/datadog/datadog agent/bin/*.exe",
                   "c:/program files/datadog/datadog agent/bin/agent/*.exe")),
)

# Masquerade checks only use names that identify one agent; generic names (python3, agent, curl) do not.
_GENERIC_NAMES = frozenset({"python", "python3", "python2.7", "agent", "curl"})


def _by_name() -> dict[str, tuple[AgentIdentity, ...]]:
    names: dict[str, list[AgentIdentity]] = {}
    for agent in AGENTS:
        for agent_name in agent.names:
            if agent_name not in _GENERIC_NAMES and agent not in names.setdefault(agent_name, []):
                names[agent_name].append(agent)
    return {agent_name: tuple(agents) for agent_name, agents in names.items()}


def agents_named(name: str) -> tuple[AgentIdentity, ...]:
    """Agents whose distinctive executable name is `name` (case-insensitive)."""
    return _AGENTS_BY_NAME.get(name.lower(), ())


def distinctive_agent_names() -> tuple[str, ...]:
    """Every agent executable name that identifies one agent (for masquerade checks and prefilters)."""
    return tuple(sorted({n for agent in AGENTS for n in agent.names if n not in _GENERIC_NAMES}))


# Tools that can fetch a URL or open a socket: with a metadata host in their command line they are access.
NETWORK_TOOLS: frozenset[str] = frozenset({
    "curl", "wget", "wget2", "http", "https", "httpie", "xh", "aria2c", "lwp-request", "get", "fetch",
    "nc", "ncat", "netcat", "socat", "telnet", "openssl", "busybox", "lynx", "links", "w3m",
    "python", "python2", "python3", "perl", "ruby", "php", "node", "nodejs", "deno", "bun", "java", "lua",
    "bash", "sh", "zsh", "dash", "ksh", "ash",
    "powershell", "pwsh", "cmd", "bitsadmin", "certutil", "mshta", "cscript", "wscript", "rundll32",
    "aws", "az", "gcloud", "gsutil", "kubectl",
})

# PowerShell commands and .NET types that fetch URLs (matched case-insensitively as words).
POWERSHELL_FETCHERS: frozenset[str] = frozenset({
    "invoke-webrequest", "invoke-restmethod", "iwr", "irm", "curl", "wget", "net.webclient", "webclient",
    "downloadstring", "downloaddata", "downloadfile", "httpclient", "getasync", "system.net.http",
    "start-bitstransfer", "net.sockets.tcpclient", "tcpclient", "webrequest", "httpwebrequest",
})

# Programs whose command line may mention a metadata URL without fetching it.
NON_FETCHING_TOOLS: frozenset[str] = frozenset({
    "grep", "egrep", "fgrep", "rg", "ag", "ack", "cat", "less", "more", "head", "tail", "echo", "printf",
    "vi", "vim", "nvim", "nano", "emacs", "code", "notepad", "notepad.exe", "sed", "awk", "gawk", "tee",
    "apt", "apt-get", "dpkg", "yum", "dnf", "rpm", "zypper", "apk", "pip", "pip3", "npm", "yarn", "brew",
    "choco", "winget", "git", "man", "find", "ls", "stat", "file", "strings", "diff", "wc", "sort", "uniq",
    "jq", "yq", "findstr", "type", "select-string", "printenv", "env", "logger", "systemd-cat",
    # Network configuration and diagnostics: they name the address to block, route or watch it, not to read it.
    "iptables", "ip6tables", "iptables-save", "iptables-restore", "nft", "xtables-nft-multi",
    "xtables-legacy-multi", "netsh", "route", "ip", "ufw", "firewall-cmd", "ping", "ping6", "traceroute",
    "tracert", "arp", "ss", "netstat", "tcpdump", "tshark", "conntrack",
})

SHELLS_AND_INTERPRETERS: frozenset[str] = frozenset({
    "bash", "sh", "zsh", "dash", "ksh", "ash", "fish", "csh", "tcsh", "busybox",
    "python", "python2", "python3", "perl", "ruby", "php", "node", "nodejs", "deno", "bun", "lua", "java",
    "powershell", "pwsh", "cmd", "cscript", "wscript", "mshta",
})

# User-agent prefixes (lower case) of agents; HTTP records carry no process, so these are claims only.
AGENT_USER_AGENTS: dict[str, str] = {
    "walinuxagent/": "azure-waagent",
    "amazon-ec2-net-utils/": "aws-ec2-net-utils",
    "amazon-ssm-agent/": "aws-ssm-agent",
    "cloud-init/": "cloud-init",
    "google-guest-agent/": "gcp-guest-agent",
    "aws-sdk-": "aws-sdk",
    "botocore/": "aws-sdk",
    "azure-identity": "azure-sdk",
    "google-api-go-client": "gcp-sdk",
}

# Directories anyone can write to: a metadata client running from one is suspicious on its face.
WRITABLE_DIRS: tuple[str, ...] = (
    "/tmp/", "/var/tmp/", "/dev/shm/", "/run/user/", "/home/", "/root/",
    "c:/users/", "c:/windows/temp/", "c:/programdata/", "c:/perflogs/", "c:/$recycle.bin/",
)


_AGENTS_BY_NAME = _by_name()
