#!/usr/bin/env python3
"""Microbenchmark of `find_metadata_references` (host extraction from command lines), µs per call.

    python benchmarks/bench_extraction.py [--repeat 3] [--scale 1.0] [--module imds_detect.knowledge.urls]

In the constructed classes every call gets a distinct string (a counter is spelled into each input), so
a cache keyed on the whole text or on a word cannot make the figures look better than a scan of varied
data where each command line carries a unique id; caches of common words and hosts warm up as they would
in a scan. The two Defender classes take the command lines of rows written by generate_defender.py (a
fresh file, another seed, each pass) that pass the metadata indicator gate, the input of the
command-line detector: once in file order, with the repeats real data has (cloud agents), and once each
distinct line. For each class the best of ``--repeat`` passes is printed. ``--module`` times another
implementation with the same API, e.g. a copy of an older ``urls.py``
(``PYTHONPATH=/tmp python benchmarks/bench_extraction.py --module urls_old``).
"""

from __future__ import annotations

import argparse
import base64
import importlib
import json
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from imds_detect.knowledge.indicators import could_mention_metadata

Inputs = Callable[[int], list[str]]

BENIGN_PLAIN = (
    '"C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe" --type=renderer --lang=en-US '
    "--renderer-client-id={n} --time-ticks-at-unix-epoch=-747114629{n} --launch-time-ticks=62877881013 "
    "--mojo-platform-channel-handle=4475 /prefetch:1",
    '"C:\\Program Files (x86)\\Microsoft\\Edge\\Application\\msedge.exe" --type=utility '
    "--utility-sub-type=network.mojom.NetworkService --lang=en-US --service-sandbox-type=none "
    "--mojo-platform-channel-handle={n} --field-trial-handle=2253,i,4806721262430{n},7",
    "C:\\Windows\\System32\\svchost.exe -k LocalServiceNetworkRestricted -p -s EventLog{n}",
    "python.exe C:\\Users\\svc-sql\\src\\reports\\build_report.py --month 2024-04 --run {n}",
    "sh /var/lib/amazon/ssm/i-0f45fe27350ca{n:05d}/document/orchestration/6d1e85cd-7463-4056-a17a-07197e08e983/"
    "awsrunShellScript/0.awsrunShellScript/_script.sh",
    'c:\\windows\\system32\\inetsrv\\w3wp.exe -ap "DefaultAppPool" -v "v4.0" -l "webengine4.dll" -a '
    '\\\\.\\pipe\\iisipm06c62e2d-a9b1-4bb6-afd7-{n:012d} -h '
    '"C:\\inetpub\\temp\\apppools\\DefaultAppPool\\DefaultAppPool.config" -w "" -m 0',
    "/usr/bin/dockerd -H fd:// --containerd=/run/containerd/containerd{n}.sock",
    "python3 -m pip install -r requirements-{n}.txt",
)
BENIGN_URLS = (
    "curl.exe -sSL -o C:\\Temp\\vc_redist{n}.x64.exe https://aka.ms/vs/17/release/vc_redist.x64.exe",
    "curl -sSfL -o /tmp/awscliv2.zip https://awscli.amazonaws.com/awscli-exe-linux-x86_64-{n}.zip",
    "git-remote-https origin https://github.com/contoso/infra{n}.git",
    'powershell.exe -NoProfile -Command "Invoke-RestMethod -Uri https://api.contoso.example/v1/items/{n} '
    '-Headers @{{Authorization=\'Bearer x\'}}"',
    "wget -q https://download.docker.com/linux/ubuntu/dists/jammy/pool/stable/amd64/containerd_{n}.deb",
    "python3 -c \"import requests; requests.get('https://pypi.org/simple/pkg{n}/', timeout=5)\"",
)
METADATA_PLAIN = (
    "curl -s http://169.254.169.254/latest/meta-data/iam/security-credentials/role{n}",
    "/usr/bin/curl -s -f -m 1 -H X-aws-ec2-metadata-token: AQAEAGq{n}EXAMPLE== "
    "http://169.254.169.254/latest/meta-data/managed-ssh-keys/active-keys/ec2-user/",
    'powershell.exe -NoP -C "Invoke-WebRequest -Headers @{{Metadata=\'true\'}} -Uri '
    'http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://'
    'management.azure.com/&n={n}"',
    'curl -s -H "Metadata-Flavor: Google" '
    "http://metadata.google.internal/computeMetadata/v1/instance/service-accounts/default/token?n={n}",
    "bash -c 'exec 3<>/dev/tcp/169.254.169.254/80; printf \"GET /latest/meta-data/{n} HTTP/1.0\\r\\n"
    "Host: 169.254.169.254\\r\\n\\r\\n\" >&3; cat <&3'",
    "iptables -A OUTPUT -d 169.254.169.254 -m owner ! --uid-owner {n} -j DROP",
)


def _templates(templates: tuple[str, ...]) -> Inputs:
    def make(count: int) -> list[str]:
        base = random.randrange(10**6)
        return [templates[i % len(templates)].format(n=base + i) for i in range(count)]
    return make


def _encoded(count: int) -> list[str]:
    base = random.randrange(10**6)
    out: list[str] = []
    for i in range(count):
        n = base + i
        url = f"http://169.254.169.254/latest/meta-data/iam/security-credentials/role{n}"
        kind = i % 5
        if kind == 0:
            out.append("GET /fetch?url=" + "".join(f"%{ord(c):02X}" if c in ":/." else c for c in url) + " HTTP/1.1")
        elif kind == 1:
            out.append("python3 -c \"import urllib.request as u; u.urlopen('"
                       + "".join(f"\\x{ord(c):02x}" if c.isdigit() else c for c in url[:30]) + url[30:] + "')\"")
        elif kind == 2:
            out.append("node -e \"fetch('" + "".join(f"\\u{ord(c):04x}" if c in "htp" else c for c in url)
                       + "').then(r => r.text())\"")
        elif kind == 3:
            script = f"Invoke-RestMethod -Headers @{{Metadata='true'}} -Uri {url}"
            out.append("powershell.exe -NoP -NonI -EncodedCommand "
                       + base64.b64encode(script.encode("utf-16-le")).decode())
        else:
            out.append(f"curl -s http://%31%36%39.254.169.254/latest/{n} && echo &#104;ttp&#58;//169.254.169.254/{n}")
    return out


def _adversarial(count: int) -> list[str]:
    base = random.randrange(10**6)
    rng = random.Random(base)
    shapes = (
        lambda k, n: ":" * k + str(n),
        lambda k, n: "http:" * (k // 5) + str(n),
        lambda k, n: "%25" * (k // 3) + str(n),
        lambda k, n: "a'" * (k // 2) + str(n),
        lambda k, n: "1." * (k // 2) + str(n),
        lambda k, n: "http://a/?u=" * (k // 12) + str(n),
        lambda k, n: "\\u0041" * (k // 6) + str(n),
        lambda k, n: base64.b64encode(rng.randbytes(k * 3 // 4)).decode() + str(n),
        lambda k, n: "".join(rng.choice("ab1.:/\\@#?%[]-x0'\" =&;|") for _ in range(k)) + str(n),
        lambda k, n: ("curl http://169.254.169.254/latest " * (k // 36)) + str(n),
    )
    out: list[str] = []
    for i in range(count):
        size = (4096, 16384, 65536)[i % 3]
        out.append(shapes[i // 3 % len(shapes)](size, base + i))
    return out


GENERATOR = Path(__file__).resolve().parent / "generate_defender.py"
COMMAND_LINE_FIELDS = ("ProcessCommandLine", "InitiatingProcessCommandLine")


def _defender_lines(count: int, distinct: bool) -> list[str]:
    """Command lines with a metadata indicator from a freshly generated Defender file (planted rows 1 in 20)."""
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "rows.jsonl"
        subprocess.run([sys.executable, str(GENERATOR), "--size", "40MB", "--ratio", "20", "--out", str(out),
                        "--seed", str(random.randrange(10**6))], check=True, capture_output=True)
        lines: list[str] = []
        with out.open(encoding="utf-8") as rows:
            for row in rows:
                record = json.loads(row)
                lines.extend(value for field in COMMAND_LINE_FIELDS
                             if isinstance(value := record.get(field), str) and could_mention_metadata(value))
    if distinct:
        lines = list(dict.fromkeys(lines))
    return lines[:count]


CLASSES: dict[str, tuple[Inputs, int]] = {
    "benign, no URL": (_templates(BENIGN_PLAIN), 2000),
    "benign, ordinary URLs": (_templates(BENIGN_URLS), 2000),
    "metadata URL, plain": (_templates(METADATA_PLAIN), 2000),
    "metadata, encoded (%, \\x, \\u, &#, base64)": (_encoded, 1000),
    "adversarial, 4-64 KiB": (_adversarial, 30),
    "Defender rows with an indicator, file order": (lambda count: _defender_lines(count, False), 2000),
    "Defender rows with an indicator, distinct": (lambda count: _defender_lines(count, True), 2000),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the number of inputs per class")
    parser.add_argument("--module", default="imds_detect.knowledge.urls")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    random.seed(args.seed)
    find = importlib.import_module(args.module).find_metadata_references
    print(f"{args.module}.find_metadata_references, best of {args.repeat} passes")
    print(f"{'input class':<46} {'calls':>6} {'avg chars':>10} {'µs/call':>10}")
    for name, (make, count) in CLASSES.items():
        count = max(1, int(count * args.scale))
        best = float("inf")
        chars = 0
        for _ in range(args.repeat):
            inputs = make(count)  # fresh strings every pass
            count = len(inputs)
            chars = sum(map(len, inputs)) // max(1, count)
            start = time.perf_counter()
            for text in inputs:
                find(text)
            best = min(best, (time.perf_counter() - start) / max(1, count))
        print(f"{name:<46} {count:>6} {chars:>10} {best * 1e6:>10.1f}")


if __name__ == "__main__":
    main()
