"""Executable identity: path normalisation and globs that an attacker cannot stretch."""

from imds_detect.detect.identity import exe_name, normalize_exe_path, path_matches, script_argument


def test_windows_paths_compare_case_insensitively_with_forward_slashes() -> None:
    assert normalize_exe_path("C:\\Program Files\\Amazon\\SSM\\amazon-ssm-agent.exe") == (
        "c:/program files/amazon/ssm/amazon-ssm-agent.exe")
    assert path_matches("C:\\PROGRAM FILES\\Amazon\\SSM\\amazon-ssm-agent.EXE", ("c:/program files/amazon/ssm/*.exe",))


def test_star_does_not_cross_directories() -> None:
    assert path_matches("/opt/aws/amazon-cloudwatch-agent/bin/agent", ("/opt/aws/amazon-cloudwatch-agent/bin/*",))
    assert not path_matches("/opt/aws/amazon-cloudwatch-agent/bin/x/agent", ("/opt/aws/amazon-cloudwatch-agent/bin/*",))


def test_dot_segments_cannot_escape_an_allowed_directory() -> None:
    assert not path_matches("/opt/aws/amazon-cloudwatch-agent/bin/../../../../tmp/agent",
                            ("/opt/aws/amazon-cloudwatch-agent/bin/*",))
    assert not path_matches("C:\\Program Files\\Amazon\\SSM\\..\\..\\..\\Users\\Public\\amazon-ssm-agent.exe",
                            ("c:/program files/amazon/ssm/*.exe",))


def test_posix_paths_are_case_sensitive() -> None:
    assert not path_matches("/usr/bin/Amazon-SSM-Agent", ("/usr/bin/amazon-ssm-agent",))


def test_missing_path_never_matches() -> None:
    assert not path_matches("", ("/usr/bin/*",))


def test_exe_name_strips_directories_quotes_and_exe() -> None:
    assert exe_name("C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\PowerShell.EXE") == "powershell"
    assert exe_name('"/usr/bin/curl"') == "curl"


def test_script_argument_skips_interpreter_options() -> None:
    assert script_argument("/usr/bin/python3 -u /usr/sbin/waagent -run-exthandlers") == "/usr/sbin/waagent"
    assert script_argument("python3 -c 'print(1)'") == "print(1)"
