#!/usr/bin/env python3
"""Web-log throughput: generate realistic combined-format access logs, scan them, compare with ripgrep.

The generated log imitates a busy site (the shape of a real Apache combined log: static assets, pages, API
calls, searches with percent-encoded queries, bots, redirects and errors, many clients, real-world user
agents). About one line in `--ratio` is a planted SSRF attempt, each from its own client, with the metadata
URL in a rotating host spelling (dotted, integer, hex, octal, short forms, IPv6 forms, full-width, percent-
encoded once or twice, base64, wildcard DNS, provider names) and place (query parameter, path segment,
absolute-form target, userinfo trick). `<out>.labels.json` lists the planted line numbers.

The run measures, in the same invocation and on a warm page cache:

- `imds-detect scan --jobs 1` (one process; pinned to one CPU with `--cpu`): MB/s, lines/s, peak RSS, alerts;
- `rg -c -F 169.254.169.254` on the same file (the literal a naive string match would use), for scale.

It prints figures and never asserts on time. Example:

    python benchmarks/bench_weblogs.py --size 1GB --out bench-data/access.log
    python benchmarks/bench_weblogs.py --size 200MB --out /tmp/a.log --generate-only
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

START = datetime(2026, 11, 27, 0, 0, 0, tzinfo=UTC)
USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 "
    "Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 "
    "Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "curl/8.5.0", "python-requests/2.32.3", "Go-http-client/1.1", "kube-probe/1.31",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.81 Mobile "
    "Safari/537.36",
)
STATIC = ("/static/css/site.{h}.css", "/static/js/app.{h}.js", "/images/products/{n}.jpg", "/favicon.ico",
          "/fonts/inter-var.woff2", "/images/banner-{n}.webp")
PAGES = ("/", "/index.html", "/products/{n}", "/category/{w}", "/blog/{y}/{w}-{w2}", "/about", "/contact",
         "/cart", "/checkout/step-{d}", "/account/orders/{n}", "/docs/{w}/getting-started", "/robots.txt",
         "/sitemap.xml")
API = ("/api/v2/products?page={d}&limit=50", "/api/v2/cart/items/{n}", "/api/v2/users/{n}/preferences",
       "/api/v2/search?q={q}&sort=relevance", "/api/v2/recommendations?session={h}", "/graphql",
       "/api/v2/stock?sku={n}")
WORDS = ("shoes", "winter", "jacket", "wool", "socks", "running", "kids", "sale", "linen", "denim", "boots",
         "gift", "cards", "hiking", "rain", "coat", "summer", "dress", "shirt", "cotton")
REFERERS = ("-", "https://www.example-shop.com/", "https://www.google.com/", "https://www.bing.com/search?q=shoes",
            "https://www.example-shop.com/category/shoes", "https://t.co/x1y2z3")
SPELLINGS = ("169.254.169.254", "2852039166", "0xa9fea9fe", "0251.0376.0251.0376", "169.254.43518", "169.16689662",
             "0xA9.0xFE.0xA9.0xFE", "425.510.425.510", "[::ffff:169.254.169.254]", "[::ffff:a9fe:a9fe]",
             "[fd00:ec2::254]", "１６９．２５４．１６９．２５４", "169。254。169。254",
             "%31%36%39.%32%35%34.%31%36%39.%32%35%34", "metadata.google.internal", "169.254.169.254.nip.io",
             "a9fea9fe.nip.io", "169-254-169-254.sslip.io", "169.254.170.2", "100.100.100.200")
PATHS = ("/latest/meta-data/iam/security-credentials/", "/latest/meta-data/iam/security-credentials/web-role",
         "/latest/user-data", "/computeMetadata/v1/instance/service-accounts/default/token",
         "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://vault.azure.net",
         "/latest/api/token", "/v2/credentials/7b6e5a4c-1d2e-4f3a-9b8c-0d1e2f3a4b5c")


def _nginx_escape(text: str) -> str:
    return "".join(c if 0x20 <= ord(c) < 0x7F and c != '"' else "".join(f"\\x{b:02X}" for b in c.encode())
                   for c in text)


def _planted(index: int) -> str:
    """The request target of the `index`-th planted SSRF attempt."""
    host = SPELLINGS[index % len(SPELLINGS)]
    path = PATHS[index % len(PATHS)]
    url = f"http://{host}{path}"
    place = (index // len(SPELLINGS)) % 6
    if place == 0:
        return "/fetch?url=" + url
    if place == 1:
        return "/fetch?url=" + quote(url, safe="")
    if place == 2:
        return "/preview?src=" + quote(quote(url, safe=""), safe="")
    if place == 3:
        return "/img?u=" + base64.urlsafe_b64encode(url.encode()).decode()
    if place == 4:
        return f"/fetch?url=http://cdn.example-shop.com@{host}{path}"
    return url  # absolute-form: the Host trick through a proxying server


def _target(rng: random.Random) -> str:
    roll = rng.random()
    fill = {"h": f"{rng.getrandbits(32):08x}", "n": str(rng.randrange(1, 99999)), "d": str(rng.randrange(1, 9)),
            "w": rng.choice(WORDS), "w2": rng.choice(WORDS), "y": str(rng.randrange(2015, 2027))}
    if roll < 0.55:
        return rng.choice(STATIC).format(**fill)
    if roll < 0.80:
        return rng.choice(PAGES).format(**fill)
    words = [rng.choice(WORDS) for _ in range(rng.randrange(1, 4))]
    query = quote(" ".join(words)) if rng.random() < 0.3 else "+".join(words)
    return rng.choice(API).format(q=query, **fill)


def generate(out: Path, size: int, ratio: int, seed: int = 7) -> dict[str, Any]:
    """Write about `size` bytes of combined-format lines; every `ratio`-th line (about) is a planted attempt."""
    rng = random.Random(seed)
    clients = [f"{rng.randrange(1, 223)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
               for _ in range(5000)]
    planted: list[int] = []
    written = lines = 0
    moment = START
    with out.open("w", encoding="utf-8", newline="\n") as handle:
        chunk: list[str] = []
        while written < size:
            lines += 1
            moment += timedelta(microseconds=rng.randrange(0, 40000))
            stamp = moment.strftime("%d/%b/%Y:%H:%M:%S +0000")
            if rng.randrange(ratio) == 0:
                index = len(planted)
                client = f"203.0.{113 + index // 250 % 2}.{index % 250 + 1}" if index < 500 else \
                    f"198.18.{index // 250 % 256}.{index % 250 + 1}"
                target = _nginx_escape(_planted(index))
                line = (f'{client} - - [{stamp}] "GET {target} HTTP/1.1" {rng.choice((200, 400, 403, 500))} '
                        f'{rng.choice((0, 153, 1402, 5120))} "-" "python-requests/2.32.3"\n')
                planted.append(lines)
            else:
                status = rng.choices((200, 304, 301, 404, 500), (85, 8, 3, 3, 1))[0]
                size_sent = 0 if status == 304 else rng.randrange(200, 250000)
                method = "GET" if rng.random() < 0.92 else rng.choice(("POST", "HEAD", "PUT"))
                line = (f'{rng.choice(clients)} - - [{stamp}] "{method} {_target(rng)} HTTP/1.1" {status} {size_sent} '
                        f'"{rng.choice(REFERERS)}" "{rng.choice(USER_AGENTS)}"\n')
            chunk.append(line)
            written += len(line.encode())
            if len(chunk) >= 4096:
                handle.write("".join(chunk))
                chunk.clear()
        handle.write("".join(chunk))
    labels = {"lines": lines, "bytes": written, "planted": planted, "ratio": ratio, "seed": seed}
    Path(str(out) + ".labels.json").write_text(json.dumps(labels), encoding="utf-8")
    return labels


_MEASURE = ("import resource, subprocess, sys, os, time\n"
            "cpu = int(sys.argv[1])\n"
            "if cpu >= 0 and hasattr(os, 'sched_setaffinity'): os.sched_setaffinity(0, {cpu})\n"
            "start = time.perf_counter()\n"
            "done = subprocess.run(sys.argv[3:], stdout=open(sys.argv[2], 'wb'), stderr=subprocess.PIPE)\n"
            "elapsed = time.perf_counter() - start\n"
            "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
            "sys.stdout.write(f'{elapsed} {peak} {done.returncode}\\n'); sys.stderr.write(done.stderr.decode())\n")


def measure(command: list[str], cpu: int, stdout: Path) -> tuple[float, int, int, str]:
    """(seconds, peak RSS in KiB, exit code, stderr) of one command run in a fresh measuring process."""
    done = subprocess.run([sys.executable, "-c", _MEASURE, str(cpu), str(stdout), *command],
                          capture_output=True, text=True, check=True)
    elapsed, peak, code = done.stdout.split()
    return float(elapsed), int(peak), int(code), done.stderr


def _size(text: str) -> int:
    units = {"KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30}
    for unit, factor in units.items():
        if text.upper().endswith(unit):
            return int(float(text[: -len(unit)]) * factor)
    return int(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--size", default="1GB", help="bytes to generate (e.g. 200MB, 1GB)")
    parser.add_argument("--out", type=Path, default=Path("bench-data/access.log"))
    parser.add_argument("--ratio", type=int, default=20000, help="about one planted attempt per RATIO lines")
    parser.add_argument("--cpu", type=int, default=0, help="CPU to pin each measured command to (-1: no pinning)")
    parser.add_argument("--reuse", action="store_true", help="reuse --out when it exists")
    parser.add_argument("--generate-only", action="store_true")
    args = parser.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    labels_path = Path(str(args.out) + ".labels.json")
    if args.reuse and args.out.exists() and labels_path.exists():
        labels = json.loads(labels_path.read_text())
    else:
        began = time.perf_counter()
        labels = generate(args.out, _size(args.size), args.ratio)
        print(f"generated {labels['bytes'] / 1e6:.0f} MB, {labels['lines']} lines, "
              f"{len(labels['planted'])} planted attempts in {time.perf_counter() - began:.0f} s")
    if args.generate_only:
        return 0
    size, lines = args.out.stat().st_size, int(labels["lines"])
    with args.out.open("rb") as handle:  # warm the page cache for both tools
        while handle.read(1 << 24):
            pass
    alerts_out = args.out.with_suffix(".alerts.jsonl")
    rows = []
    scan = [shutil.which("imds-detect") or "imds-detect", "scan", "--jobs", "1", "--output", "jsonl", "-q",
            str(args.out)]
    elapsed, peak, code, stderr = measure(scan, args.cpu, alerts_out)
    alerts = [json.loads(line) for line in alerts_out.read_text().splitlines() if line.strip()]
    found = {alert["source"]["line"] for alert in alerts}
    planted = set(labels["planted"])
    rows.append(("imds-detect scan (1 job)", elapsed, peak, f"exit {code}, {len(alerts)} alerts, "
                 f"{len(planted & found)}/{len(planted)} planted found, {len(found - planted)} others"))
    summary = [line for line in stderr.splitlines() if line.startswith("imds-detect:") or line.startswith("  ")]
    rg = shutil.which("rg")
    if rg:
        count_out = args.out.with_suffix(".rg.txt")
        rg_elapsed, rg_peak, _, _ = measure([rg, "-c", "-F", "169.254.169.254", str(args.out)], args.cpu, count_out)
        rows.append(("rg -c -F 169.254.169.254", rg_elapsed, rg_peak,
                     f"{count_out.read_text().strip() or 0} matching lines"))
    print(f"input: {args.out} ({size / 1e6:.0f} MB, {lines} lines), pinned to CPU {args.cpu}")
    print(f"{'command':28} {'seconds':>8} {'MB/s':>8} {'lines/s':>11} {'peak RSS':>9}  notes")
    for name, seconds, rss, notes in rows:
        print(f"{name:28} {seconds:8.2f} {size / 1e6 / seconds:8.0f} {lines / seconds:11.0f} "
              f"{rss / 1024:7.0f}MB  {notes}")
    print("\n".join(summary))
    return 0 if code in (0, 1) else code


if __name__ == "__main__":
    sys.exit(main())
