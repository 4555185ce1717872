"""The TOML tuning file: what it can add and remove, and one clear error for every mistake."""

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from imds_detect.config import ConfigError, load_config
from imds_detect.model import Event, EventKind, ProcessInfo, Severity, SourceRef


def _event(path: str, name: str = "", cmd: str = "", parent: str = "", user: str = "", host: str = "h1") -> Event:
    return Event(EventKind.NETWORK, datetime(2026, 1, 1, tzinfo=UTC), SourceRef("test", "t", 1, 0),
                 host=host, user=user, process=ProcessInfo(name=name or path.rsplit("/", 1)[-1], path=path,
                                                           command_line=cmd, parent_name=parent))


def _write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "imds.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_defaults_are_loaded_and_can_be_dropped() -> None:
    ssm = _event("/usr/bin/amazon-ssm-agent")
    assert load_config(None).allowlist.match(ssm, "imds-network-connection") is not None
    assert load_config(None, use_defaults=False).allowlist.match(ssm, "imds-network-connection") is None


def test_entry_by_path_and_command_line(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, '''
[[allowlist.entry]]
id = "inventory"
path = "/opt/corp/bin/inventory"
command_line = "--collect"
'''))
    assert config.allowlist.match(_event("/opt/corp/bin/inventory", cmd="inventory --collect"), "x") is not None
    assert config.allowlist.match(_event("/opt/corp/bin/inventory", cmd="inventory --other"), "x") is None
    assert config.allowlist.match(_event("/tmp/inventory", cmd="inventory --collect"), "x") is None


def test_disable_a_default_entry(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, 'allowlist.disable = ["aws-ssm-agent"]\n'))
    assert config.allowlist.match(_event("/usr/bin/amazon-ssm-agent"), "imds-network-connection") is None
    assert config.allowlist.match(_event("/usr/bin/google_guest_agent"), "imds-network-connection") is not None


def test_defaults_false_in_file(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, "[allowlist]\ndefaults = false\n"))
    assert config.allowlist.entries == []


def test_min_severity(tmp_path: Path) -> None:
    assert load_config(_write(tmp_path, '[scan]\nmin_severity = "high"\n')).min_severity == Severity.HIGH


@pytest.mark.parametrize(("text", "fragment"), [
    ("[allowlist]\nbogus = 1\n", "unknown key allowlist.bogus"),
    ("nonsense = [", "not valid TOML"),
    ('[[allowlist.entry]]\nid = "x"\nname = "cloud-init"\n', "must name the process by 'path'"),
    ('[[allowlist.entry]]\nid = "x"\nparent = "amazon-ssm-agent"\n', "must name the process by 'path'"),
    ('[[allowlist.entry]]\nid = "x"\npath = "/usr/bin/python3"\n', "shell, interpreter or download tool"),
    ('[[allowlist.entry]]\nid = "x"\npath = "/usr/bin/curl"\n', "shell, interpreter or download tool"),
    ('[[allowlist.entry]]\npath = "/opt/x"\n', "allowlist.entry[0].id is required"),
    ('[[allowlist.entry]]\nid = "x"\npath = "/opt/x"\ncommand_line = "("\n', "invalid regular expression"),
    ('[[allowlist.entry]]\nid = "x"\npath = "/opt/x"\nrules = ["nope"]\n', "unknown rule 'nope'"),
    ('[[allowlist.entry]]\nid = "x"\npath = "/opt/x"\npth = "/opt/y"\n', "unknown key allowlist.entry[0].pth"),
    ('allowlist.disable = ["not-an-entry"]\n', "no default entry 'not-an-entry'"),
    ('[scan]\nmin_severity = "urgent"\n', "unknown severity"),
])
def test_bad_config_is_one_clear_line(tmp_path: Path, text: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config(_write(tmp_path, text))
    message = str(raised.value)
    assert fragment in message
    assert "\n" not in message
    assert str(tmp_path / "imds.toml") in message


def test_interpreter_entry_is_allowed_when_narrowed_or_explicit(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, '''
[[allowlist.entry]]
id = "narrow"
path = "/usr/bin/python3"
command_line = "^/usr/bin/python3 /opt/corp/probe.py$"
[[allowlist.entry]]
id = "explicit"
path = "/usr/local/bin/node"
allow_interpreter = true
'''), use_defaults=False)
    assert [e.id for e in config.allowlist.entries] == ["narrow", "explicit"]


def test_missing_config_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(str(tmp_path / "absent.toml"))


def test_the_readme_example_config_loads(tmp_path: Path) -> None:
    """The `imds.toml` shown in the README is valid: every table and key in it is accepted."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    match = re.search(r"```toml\n# imds.toml\n(.*?)```", readme, re.S)
    assert match is not None
    path = tmp_path / "imds.toml"
    path.write_text(match.group(1), encoding="utf-8")
    config = load_config(str(path))
    assert config.min_severity is not None and config.min_severity.label == "medium"
    assert any(entry.id == "corp-inventory" for entry in config.allowlist.entries)
    assert config.web_log_formats and dict(pair.split("=", 1) for pair in config.web_json_fields)["uri"] == "http.url"
