"""Host references in free text: every fetch form, parser confusion, encodings, negatives, random spellings."""

from __future__ import annotations

import base64
import ipaddress
import time

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from imds_detect.knowledge import endpoints
from imds_detect.knowledge.urls import (
    MAX_REFERENCES,
    MAX_TEXT_CHARS,
    HostReference,
    extract_host_references,
    find_metadata_references,
)

IMDS = "169.254.169.254"
METADATA_V4 = tuple(a.address for a in endpoints.ADDRESSES if ":" not in a.address and a.address_alone)
SPECIAL_V4 = {int(ipaddress.IPv4Address(ip)) for ip in endpoints.metadata_ips() if ":" not in ip} | {
    int(ipaddress.IPv4Address(n.address)) for n in endpoints.NEIGHBOURS if ":" not in n.address}


def _only_hit(text: str) -> HostReference:
    hits = find_metadata_references(text)
    assert len(hits) == 1, hits
    return hits[0][0]


def _by_host(text: str, value: str) -> list[HostReference]:
    return [ref for ref in extract_host_references(text) if ref.host.value == value]


# (text, form, canonical host, host_raw, port, path, raw)
FORMS: list[tuple[str, str, str, str, int | None, str, str]] = [
    ("curl http://0xa9fea9fe/latest/meta-data/", "url", IMDS, "0xa9fea9fe", None, "/latest/meta-data/",
     "http://0xa9fea9fe/latest/meta-data/"),
    ("curl -s https://169.254.169.254:443/latest/user-data", "url", IMDS, "169.254.169.254", 443,
     "/latest/user-data", "https://169.254.169.254:443/latest/user-data"),
    ("gopher://169.254.169.254:80/_GET%20/latest/meta-data", "url", IMDS, "169.254.169.254", 80,
     "/_GET%20/latest/meta-data", "gopher://169.254.169.254:80/_GET%20/latest/meta-data"),
    ("dict://0251.0376.0251.0376:80/info", "url", IMDS, "0251.0376.0251.0376", 80, "/info",
     "dict://0251.0376.0251.0376:80/info"),
    ("ws://[::ffff:a9fe:a9fe]/x", "url", IMDS, "[::ffff:a9fe:a9fe]", None, "/x", "ws://[::ffff:a9fe:a9fe]/x"),
    ("http://good.com@169.254.169.254/latest", "url", IMDS, "169.254.169.254", None, "/latest",
     "http://good.com@169.254.169.254/latest"),
    ("http://user:pw@169.254.169.254:80/latest", "url", IMDS, "169.254.169.254", 80, "/latest",
     "http://user:pw@169.254.169.254:80/latest"),
    (r"http:\\169.254.169.254\latest\meta-data", "url", IMDS, "169.254.169.254", None, r"\latest\meta-data",
     r"http:\\169.254.169.254\latest\meta-data"),
    (r"http:/\169.254.169.254/latest", "url", IMDS, "169.254.169.254", None, "/latest",
     r"http:/\169.254.169.254/latest"),
    ("http:///169.254.169.254/latest", "url", IMDS, "169.254.169.254", None, "/latest",
     "http:///169.254.169.254/latest"),
    ("HTTP://169.254.169.254/latest#frag", "url", IMDS, "169.254.169.254", None, "/latest#frag",
     "HTTP://169.254.169.254/latest#frag"),
    ("http://[fd00:ec2::254]/latest/", "url", "fd00:ec2::254", "[fd00:ec2::254]", None, "/latest/",
     "http://[fd00:ec2::254]/latest/"),
    ("http://[fd00:ec2::254%25eth0]:80/latest/", "url", "fd00:ec2::254", "[fd00:ec2::254%25eth0]", 80,
     "/latest/", "http://[fd00:ec2::254%25eth0]:80/latest/"),
    ("curl http://metadata/computeMetadata/v1/", "url", "metadata", "metadata", None, "/computeMetadata/v1/",
     "http://metadata/computeMetadata/v1/"),
    ("curl 'http://１６９．２５４．１６９．２５４/latest/'", "url", IMDS, "１６９．２５４．１６９．２５４", None,
     "/latest/", "http://１６９．２５４．１６９．２５４/latest/"),
    ("curl http://%31%36%39.254.169.254/latest", "url", IMDS, "%31%36%39.254.169.254", None, "/latest",
     "http://%31%36%39.254.169.254/latest"),
    ('{"u":"http:\\/\\/169.254.169.254\\/latest\\/meta-data"}', "url", IMDS, "169.254.169.254", None,
     "\\/latest\\/meta-data", "http:\\/\\/169.254.169.254\\/latest\\/meta-data"),
    ('python -c "print(urlopen(\\"http://169.254.169.254/latest/user-data\\").read())"', "url", IMDS,
     "169.254.169.254", None, "/latest/user-data", "http://169.254.169.254/latest/user-data"),
    ("curl http://169.254.169.254.nip.io/latest", "url", "169.254.169.254.nip.io", "169.254.169.254.nip.io",
     None, "/latest", "http://169.254.169.254.nip.io/latest"),
    # scheme-less
    ("curl 169.254.169.254/latest/meta-data/", "scheme-less", IMDS, "169.254.169.254", None,
     "/latest/meta-data/", "169.254.169.254/latest/meta-data/"),
    ("curl 0251.0376.0251.0376", "scheme-less", IMDS, "0251.0376.0251.0376", None, "", "0251.0376.0251.0376"),
    ("curl 2852039166/latest", "scheme-less", IMDS, "2852039166", None, "/latest", "2852039166/latest"),
    ("wget -qO- metadata.google.internal/computeMetadata/v1/", "scheme-less", "metadata.google.internal",
     "metadata.google.internal", None, "/computeMetadata/v1/", "metadata.google.internal/computeMetadata/v1/"),
    ("curl -H 'Metadata-Flavor: Google' metadata/computeMetadata/v1/", "scheme-less", "metadata", "metadata",
     None, "/computeMetadata/v1/", "metadata/computeMetadata/v1/"),
    ("curl -s metadata", "scheme-less", "metadata", "metadata", None, "", "metadata"),
    ("curl --url=169.254.169.254/latest", "scheme-less", IMDS, "169.254.169.254", None, "/latest",
     "169.254.169.254/latest"),
    ("curl [::ffff:a9fe:a9fe]:80/latest", "scheme-less", IMDS, "[::ffff:a9fe:a9fe]", 80, "/latest",
     "[::ffff:a9fe:a9fe]:80/latest"),
    ("curl localhost:40342/metadata/identity/oauth2/token", "scheme-less", "localhost", "localhost", 40342,
     "/metadata/identity/oauth2/token", "localhost:40342/metadata/identity/oauth2/token"),
    ("curl ①⑥⑨。②⑤④。①⑥⑨。②⑤④/latest", "scheme-less", IMDS, "①⑥⑨。②⑤④。①⑥⑨。②⑤④", None, "/latest",
     "①⑥⑨。②⑤④。①⑥⑨。②⑤④/latest"),
    ("see 169.254.169.254/latest/meta-data/iam/", "scheme-less", IMDS, "169.254.169.254", None,
     "/latest/meta-data/iam/", "169.254.169.254/latest/meta-data/iam/"),
    # raw sockets
    ("exec 3<>/dev/tcp/169.254.169.254/80", "dev-tcp", IMDS, "169.254.169.254", 80, "",
     "/dev/tcp/169.254.169.254/80"),
    ("cat < /dev/tcp/0xa9fea9fe/80", "dev-tcp", IMDS, "0xa9fea9fe", 80, "", "/dev/tcp/0xa9fea9fe/80"),
    ("/dev/tcp/１６９．２５４．１６９．２５４/８０", "dev-tcp", IMDS, "１６９．２５４．１６９．２５４", 80, "",
     "/dev/tcp/１６９．２５４．１６９．２５４/８０"),
    ("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 169.254.169.254 80", "nc", IMDS, "169.254.169.254", 80, "",
     "169.254.169.254"),
    ("ncat 0xa9.0xfe.0xa9.0xfe 80", "nc", IMDS, "0xa9.0xfe.0xa9.0xfe", 80, "", "0xa9.0xfe.0xa9.0xfe"),
    ("netcat fd00:ec2::254 80", "nc", "fd00:ec2::254", "fd00:ec2::254", 80, "", "fd00:ec2::254"),
    ("nc metadata 80", "nc", "metadata", "metadata", 80, "", "metadata"),
    ("socat - TCP:169.254.169.254:80,crlf", "socat", IMDS, "169.254.169.254", 80, "", "TCP:169.254.169.254:80"),
    ("socat stdio tcp4-connect:[::ffff:a9fe:a9fe]:80", "socat", IMDS, "[::ffff:a9fe:a9fe]", 80, "",
     "tcp4-connect:[::ffff:a9fe:a9fe]:80"),
    ("telnet 169.254.169.254 80", "telnet", IMDS, "169.254.169.254", 80, "", "169.254.169.254"),
    # PowerShell
    ("Invoke-RestMethod -Headers @{Metadata='true'} -Uri http://169.254.169.254/metadata/instance?api-version=2021"
     "-02-01", "powershell", IMDS, "169.254.169.254", None, "/metadata/instance?api-version=2021-02-01",
     "http://169.254.169.254/metadata/instance?api-version=2021-02-01"),
    ("iwr 169.254.169.254/latest/meta-data/ -UseBasicParsing", "powershell", IMDS, "169.254.169.254", None,
     "/latest/meta-data/", "169.254.169.254/latest/meta-data/"),
    ("irm -Uri metadata/computeMetadata/v1/ -Headers @{'Metadata-Flavor'='Google'}", "powershell", "metadata",
     "metadata", None, "/computeMetadata/v1/", "metadata/computeMetadata/v1/"),
    ("[Net.WebClient]::new().DownloadString('http://169.254.169.254/latest/user-data')", "powershell", IMDS,
     "169.254.169.254", None, "/latest/user-data", "http://169.254.169.254/latest/user-data"),
    ('(New-Object System.Net.WebClient).DownloadString("http://0xa9fea9fe/latest/")', "powershell", IMDS,
     "0xa9fea9fe", None, "/latest/", "http://0xa9fea9fe/latest/"),
    ("Invoke-WebRequest -Uri 'http://[fd00:ec2::254]/latest/api/token' -Method PUT", "powershell",
     "fd00:ec2::254", "[fd00:ec2::254]", None, "/latest/api/token", "http://[fd00:ec2::254]/latest/api/token"),
    # bare
    ("grep 169.254.169.254 notes.txt", "bare", IMDS, "169.254.169.254", None, "", "169.254.169.254"),
    ("ping -c1 [::ffff:a9fe:a9fe]", "bare", IMDS, "[::ffff:a9fe:a9fe]", None, "", "[::ffff:a9fe:a9fe]"),
    ("dst=169.254.169.254:80 proto=tcp", "bare", IMDS, "169.254.169.254", 80, "", "169.254.169.254:80"),
    ("remote 169.254.169.254.", "bare", IMDS, "169.254.169.254", None, "", "169.254.169.254"),
    ("resolved metadata.google.internal", "bare", "metadata.google.internal", "metadata.google.internal", None,
     "", "metadata.google.internal"),
    ("GET /proxy/169.254.169.254/latest/meta-data/ HTTP/1.1", "bare", IMDS, "169.254.169.254", None, "",
     "169.254.169.254"),
]


@pytest.mark.parametrize(("text", "form", "host", "host_raw", "port", "path", "raw"), FORMS)
def test_every_form_finds_the_exact_host_and_path(text: str, form: str, host: str, host_raw: str,
                                                   port: int | None, path: str, raw: str) -> None:
    ref = _only_hit(text)
    assert (ref.form, ref.host.value, ref.host_raw, ref.port, ref.path, ref.raw) == (
        form, host, host_raw, port, path, raw)
    assert text[ref.start : ref.end] == ref.raw


# Parser confusion: the host a real client (WHATWG / curl) contacts comes first; where parsers disagree
# the other reading is returned as well.
@pytest.mark.parametrize(
    ("text", "hosts"),
    [
        ("http://good.com@169.254.169.254/", [IMDS]),
        ("http://169.254.169.254#@good.com", [IMDS, "good.com"]),
        ("http://good.com#@169.254.169.254", ["good.com", IMDS]),
        ("http://good.com:80#@169.254.169.254/", ["good.com", IMDS]),
        ("http://good.com?@169.254.169.254/", ["good.com", IMDS]),
        ("http://169.254.169.254\\@good.com/", [IMDS, "good.com"]),
        ("http://a@b@169.254.169.254/", [IMDS]),
        ("http://169.254.169.254:80@good.com/", ["good.com"]),
    ],
)
def test_userinfo_and_fragment_confusion(text: str, hosts: list[str]) -> None:
    refs = extract_host_references(text)
    assert [ref.host.value for ref in refs] == hosts
    assert all(ref.form == "url" and ref.raw == text for ref in refs)
    assert bool(find_metadata_references(text)) is (IMDS in hosts)


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ("GET /fetch?url=http%3A%2F%2F169.254.169.254%2Flatest%2Fmeta-data HTTP/1.1", "/latest/meta-data"),
        ("/fetch?url=http%253A%252F%252F169.254.169.254%252Flatest", "/latest"),
        ("/f?u=http%25253A%25252F%25252F169.254.169.254%25252Flatest", "/latest"),
        ("https://app.example/render?target=http%3A%2F%2F0xa9fea9fe%2Flatest%2Fuser-data", "/latest/user-data"),
        (r"fetch('\x68\x74\x74\x70://\x31\x36\x39.254.169.254/latest')", "/latest"),
        (r"'\u0068ttp://169.254.169.254/latest'", "/latest"),
        (r"\u{68}ttp://169.254.169.254/latest", "/latest"),
        (r"$'\150ttp://169.254.169.254/latest'", "/latest"),
        ("&#104;ttp&#58;//169.254.169.254/latest", "/latest"),
        ("url=" + base64.b64encode(b"http://169.254.169.254/latest").decode(), "/latest"),
        ("powershell -enc " + base64.b64encode("iwr http://169.254.169.254/latest".encode("utf-16-le")).decode(),
         "/latest"),
        ("https://app.example/?next=http://169.254.169.254/latest", "/latest"),
    ],
)
def test_encoded_urls_are_decoded(text: str, path: str) -> None:
    hits = find_metadata_references(text)
    assert hits, text
    ref, hit = hits[0]
    assert hit.canonical == IMDS
    assert ref.path == path
    assert ref.form in ("url", "powershell")
    assert text[ref.start : ref.end] == ref.raw
    assert ref.raw in text and len(ref.raw) > len("169.254.169.254")


def test_encoded_reference_spans_the_encoded_text() -> None:
    text = "GET /fetch?url=http%3A%2F%2F169.254.169.254%2Flatest HTTP/1.1"
    ref = _only_hit(text)
    assert ref.raw == "http%3A%2F%2F169.254.169.254%2Flatest"
    assert ref.host_raw == "169.254.169.254"


@pytest.mark.parametrize(
    "text",
    ["curl 169.254.169.2''54/latest", 'curl 169.254."169".254/latest', "curl 1^69.254.169.254/latest",
     "curl 169.254.''169.254"],
)
def test_glued_quotes_and_carets(text: str) -> None:
    hits = find_metadata_references(text)
    assert [hit.canonical for _, hit in hits] == [IMDS]


def test_nested_url_keeps_its_own_form_and_path() -> None:
    refs = extract_host_references("curl 'https://a.example/go?u=http://169.254.169.254/latest/x'")
    assert [(r.host.value, r.form, r.path) for r in refs] == [
        ("a.example", "url", "/go?u=http://169.254.169.254/latest/x"),
        (IMDS, "url", "/latest/x"),
    ]


def test_several_references_are_ordered_and_offsets_are_exact() -> None:
    text = "curl http://169.254.169.254/a; wget 169.254.170.2/v2/credentials/x && nc 100.100.100.200 80"
    hits = find_metadata_references(text)
    assert [(hit.canonical, ref.form) for ref, hit in hits] == [
        (IMDS, "url"), ("169.254.170.2", "scheme-less"), ("100.100.100.200", "nc")]
    for ref, _ in hits:
        assert text[ref.start : ref.end] == ref.raw


# --------------------------------------------------------------------------------------------------
# Negatives
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "echo version 1.69.254",
        "echo metadata",
        "curl --metadata foo https://example.com/",
        "kubectl get pods -o wide --metadata",
        "Metadata: true",
        "curl -H 'Metadata: true' -H Metadata-Flavor:Google https://example.com/",
        "Invoke-RestMethod -Headers @{'Metadata'='true'} -Uri https://example.com/",
        "python3.11 -m pip install setuptools==69.2.54",
        "tar xzf release-169.254.169.tar.gz",
        "echo 169.254.169.253 169.254.169.123 168.63.129.16",
        "dig @169.254.169.254 example.com",  # GCP's resolver: a DNS tool implies port 53
        "nslookup example.com 169.254.169.254",
        "curl http://169.254.169.254:53/",
        "nc -u 169.254.169.254 123",
        "echo 7147006462",  # a wrapped number in running text is not taken as an address
        "curl http://127.0.0.1/metadata/identity/oauth2/token",
        "size=2852039167 bytes",
        "see instance-data and metadata in the docs",
        "https://example.com/metadata/computeMetadata/v1/",
        "curl -o metadata https://example.com/file",
        "/usr/share/doc/metadata/README",
    ],
)
def test_no_metadata_hit(text: str) -> None:
    assert find_metadata_references(text) == []


def test_grep_is_still_an_extraction() -> None:
    refs = extract_host_references("grep 169.254.169.254 notes.txt")
    assert [(r.host.value, r.form) for r in refs] == [(IMDS, "bare")]


def test_version_numbers_are_not_reported_as_hosts() -> None:
    assert extract_host_references("echo version 1.69.254 and 2.0 and 3.1.4") == []


def test_ordinary_references_are_returned_without_hits() -> None:
    refs = extract_host_references("curl https://example.com/x && nc 10.0.0.5 4444 && ping [2001:db8::1]")
    assert [(r.host.value, r.form, r.port) for r in refs] == [
        ("example.com", "url", None), ("10.0.0.5", "nc", 4444), ("2001:db8::1", "bare", None)]
    assert find_metadata_references("curl https://example.com/x && nc 10.0.0.5 4444") == []


def test_unparsable_text_does_not_crash() -> None:
    for text in ["", "http://", "http://[", "http://[::1", "://", "a:b:c:d", "%%%%", "\\x", "\\u{110000}",
                 "&#99999999;", "nc", "/dev/tcp/", "socat TCP:", "[" * 50, "curl ''"]:
        assert isinstance(extract_host_references(text), list)


def test_huge_input_is_bounded() -> None:
    padding = "x " * (MAX_TEXT_CHARS // 2)
    assert find_metadata_references(padding + "http://169.254.169.254/") == []  # past the 64 KiB cap
    assert find_metadata_references("http://169.254.169.254/ " + padding)
    start = time.perf_counter()
    for text in (":" * 70000, "http:" * 14000, "%25" * 23000, "a'" * 35000, "1." * 35000,
                 "http://a/?u=" * 5000, "\\u0041" * 11000):
        extract_host_references(text)
    assert time.perf_counter() - start < 20


def test_many_ordinary_references_cannot_hide_a_metadata_one() -> None:
    text = " ".join(f"10.0.{i // 250}.{i % 250}" for i in range(MAX_REFERENCES + 50)) + " 169.254.169.254"
    assert len(text) < MAX_TEXT_CHARS
    assert [hit.canonical for _, hit in find_metadata_references(text)] == [IMDS]


# --------------------------------------------------------------------------------------------------
# Random spellings in every form
# --------------------------------------------------------------------------------------------------

_FULLWIDTH_DOTS = (".", "\uff0e", "\u3002", "\uff61")


@st.composite
def _spelled_ipv4(draw: st.DrawFn, value: int) -> str:
    """inet_aton spellings (1-4 parts, radix, zeros, case, wrap), full-width and percent-encoding."""
    count = draw(st.integers(1, 4))
    octets = [(value >> s) & 0xFF for s in (24, 16, 8, 0)]
    last = 0
    for octet in octets[count - 1 :]:
        last = last << 8 | octet
    parts = [*octets[: count - 1], last]
    if count == 1 and draw(st.booleans()):
        parts[0] += draw(st.integers(1, 3)) << 32
    texts = []
    for part in parts:
        radix = draw(st.sampled_from(["dec", "oct", "hex"]))
        zeros = "0" * draw(st.integers(0, 2))
        if radix == "dec":
            texts.append(str(part))
        elif radix == "oct":
            texts.append("0" + zeros + format(part, "o"))
        else:
            digits = "".join(c.upper() if draw(st.booleans()) else c for c in zeros + format(part, "x"))
            texts.append(draw(st.sampled_from(["0x", "0X"])) + digits)
    text = ".".join(texts)
    if draw(st.booleans()):
        chars = []
        for char in text:
            if char.isdigit() and draw(st.booleans()):
                chars.append(chr(0xFF10 + int(char)))
            elif char == "." and draw(st.booleans()):
                chars.append(draw(st.sampled_from(_FULLWIDTH_DOTS)))
            else:
                chars.append(char)
        text = "".join(chars)
    for _ in range(draw(st.integers(0, 2))):
        text = "".join("".join(f"%{b:02x}" for b in c.encode()) if draw(st.booleans()) else c for c in text)
    return text


TEMPLATES = [
    ("curl http://{h}/latest/meta-data/", "url", "/latest/meta-data/"),
    ("curl -s {h}/latest/meta-data/", "scheme-less", "/latest/meta-data/"),
    ("wget -qO- 'http://x@{h}:80/latest'", "url", "/latest"),
    ("exec 3<>/dev/tcp/{h}/80", "dev-tcp", ""),
    ("nc -w 2 {h} 80", "nc", ""),
    ("socat - TCP:{h}:80", "socat", ""),
    ("telnet {h} 80", "telnet", ""),
    ("iwr -Uri http://{h}/latest", "powershell", "/latest"),
    ("Invoke-RestMethod {h}/latest", "powershell", "/latest"),
]


@settings(max_examples=500, deadline=None)
@given(data=st.data(), address=st.sampled_from(METADATA_V4), template=st.sampled_from(TEMPLATES))
def test_random_metadata_spellings_in_every_form(data: st.DataObject, address: str,
                                                 template: tuple[str, str, str]) -> None:
    pattern, form, path = template
    spelled = data.draw(_spelled_ipv4(int(ipaddress.IPv4Address(address))))
    text = pattern.format(h=spelled)
    hits = find_metadata_references(text)
    assert hits, text
    ref, hit = hits[0]
    assert hit.canonical == address
    assert (ref.form, ref.host_raw, ref.path) == (form, spelled, path)


@settings(max_examples=400, deadline=None)
@given(data=st.data(), value=st.integers(0, 2**32 - 1), template=st.sampled_from(TEMPLATES))
def test_random_ordinary_spellings_in_every_form_are_not_hits(data: st.DataObject, value: int,
                                                             template: tuple[str, str, str]) -> None:
    assume(value not in SPECIAL_V4 and value % 2**32 not in SPECIAL_V4)
    spelled = data.draw(_spelled_ipv4(value))
    text = template[0].format(h=spelled)
    assert find_metadata_references(text) == []
    if "http://" in template[0] or template[1] in ("dev-tcp", "socat"):  # the host is explicit there
        found = [ref.host.value for ref in extract_host_references(text)]
        assert str(ipaddress.IPv4Address(value)) in found


@settings(max_examples=300, deadline=None)
@given(text=st.text(alphabet=st.sampled_from([*"ab1.:/\\@#?%[]-x0'\" =&;|", "\uff0e", "１", "\u3002"]),
                    max_size=80))
def test_random_text_gives_consistent_offsets(text: str) -> None:
    for ref in extract_host_references(text):
        assert 0 <= ref.start < ref.end <= len(text)
        assert text[ref.start : ref.end] == ref.raw
        assert ref.form in ("url", "scheme-less", "dev-tcp", "nc", "socat", "telnet", "powershell", "bare")
