"""Host canonicalisation and metadata matching: explicit spellings, random spellings, neighbours, ports."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from imds_detect.knowledge import endpoints
from imds_detect.knowledge.hosts import (
    MAX_HOST_CHARS,
    CanonicalHost,
    canonical_host,
    metadata_host,
    split_host_port,
)

METADATA_V4 = tuple(a.address for a in endpoints.ADDRESSES if ":" not in a.address and a.address_alone)
METADATA_V6 = tuple(a.address for a in endpoints.ADDRESSES if ":" in a.address and a.address_alone)
NEIGHBOUR_IPS = tuple(sorted({n.address for n in endpoints.NEIGHBOURS if n.ports is None}))
ALL_SPECIAL = frozenset(endpoints.metadata_ips()) | frozenset(n.address for n in endpoints.NEIGHBOURS)
SUFFIXES = endpoints.WILDCARD_DNS_SUFFIXES + endpoints.REBINDING_SUFFIXES

# --------------------------------------------------------------------------------------------------
# Explicit spellings: (text, canonical metadata value, via)
# --------------------------------------------------------------------------------------------------

IMDS = "169.254.169.254"
ECS = "169.254.170.2"
ALI = "100.100.100.200"
OCI = "192.0.0.192"
V6 = "fd00:ec2::254"

SPELLINGS: list[tuple[str, str, str]] = [
    # 169.254.169.254: inet_aton forms
    ("169.254.169.254", IMDS, "address"),
    ("0xa9fea9fe", IMDS, "address"),
    ("0XA9FEA9FE", IMDS, "address"),
    ("0xA9.0xFE.0xA9.0xFE", IMDS, "address"),
    ("0xa9.0xfe.0xa9fe", IMDS, "address"),
    ("0xa9.0xfea9fe", IMDS, "address"),
    ("2852039166", IMDS, "address"),
    ("7147006462", IMDS, "address"),  # + 2^32
    ("11441973758", IMDS, "address"),  # + 2 * 2^32
    ("0251.0376.0251.0376", IMDS, "address"),
    ("00000251.00376.000251.0000376", IMDS, "address"),
    ("025177524776", IMDS, "address"),
    ("169.254.43518", IMDS, "address"),
    ("169.16689662", IMDS, "address"),
    ("0251.254.0xa9.254", IMDS, "address"),
    ("0xa9.254.0251.0xfe", IMDS, "address"),
    ("169.0xfe.43518", IMDS, "address"),
    ("0x0000a9fea9fe", IMDS, "address"),
    ("425.510.425.510", IMDS, "address"),  # each part wrapped modulo 256
    ("169.254.169.254.", IMDS, "address"),
    # IPv6 embeddings
    ("[::ffff:169.254.169.254]", IMDS, "address"),
    ("::ffff:a9fe:a9fe", IMDS, "address"),
    ("[::FFFF:A9FE:A9FE]", IMDS, "address"),
    ("0:0:0:0:0:ffff:a9fe:a9fe", IMDS, "address"),
    ("0000:0000:0000:0000:0000:ffff:169.254.169.254", IMDS, "address"),
    ("[::169.254.169.254]", IMDS, "address"),
    ("::a9fe:a9fe", IMDS, "address"),
    ("[::ffff:a9fe:a9fe%25eth0]", IMDS, "address"),
    ("::ffff:169.254.169.254%eth0", IMDS, "address"),
    # Unicode
    ("１６９．２５４．１６９．２５４", IMDS, "address"),
    ("①⑥⑨．②⑤④．①⑥⑨．②⑤④", IMDS, "address"),
    ("169。254。169。254", IMDS, "address"),
    ("169｡254｡169｡254", IMDS, "address"),
    ("０ｘａ９ｆｅａ９ｆｅ", IMDS, "address"),
    ("169.254.169.2\u00ad54", IMDS, "address"),
    ("\u200b169.254.169.254", IMDS, "address"),
    # Percent-encoding, once or several times
    ("%31%36%39.%32%35%34.%31%36%39.%32%35%34", IMDS, "address"),
    ("%2531%2536%2539.254.169.254", IMDS, "address"),
    ("%252531%252536%252539.254.169.254", IMDS, "address"),
    ("%EF%BC%91%EF%BC%96%EF%BC%99.254.169.254", IMDS, "address"),
    ("%5B%3A%3Affff%3Aa9fe%3Aa9fe%5D", IMDS, "address"),
    ("169%2e254%2E169%2e254", IMDS, "address"),
    # fd00:ec2::254
    ("fd00:ec2::254", V6, "address"),
    ("[FD00:EC2::254]", V6, "address"),
    ("fd00:0ec2:0000:0000:0000:0000:0000:0254", V6, "address"),
    ("fd00:ec2:0:0:0:0:0:254", V6, "address"),
    ("[fd00:ec2::254%25eth0]", V6, "address"),
    ("fd00:ec2::254%eth0", V6, "address"),
    ("ｆｄ００：ｅｃ２：：２５４", V6, "address"),
    ("%66d00:ec2::254", V6, "address"),
    ("fd00:ec2::0.0.2.84", V6, "address"),
    ("[fd00:ec2:0::254]", V6, "address"),
    ("fd00:ec2::23", "fd00:ec2::23", "address"),
    # 169.254.170.2 (ECS)
    ("169.254.170.2", ECS, "address"),
    ("0xa9feaa02", ECS, "address"),
    ("2852039170", ECS, "address"),
    ("0251.0376.0252.02", ECS, "address"),
    ("169.254.43522", ECS, "address"),
    ("[::ffff:169.254.170.2]", ECS, "address"),
    ("１６９．２５４．１７０．２", ECS, "address"),
    ("169.254.170.23", "169.254.170.23", "address"),
    # 100.100.100.200 (Alibaba)
    ("100.100.100.200", ALI, "address"),
    ("0x646464c8", ALI, "address"),
    ("1684301000", ALI, "address"),
    ("0144.0144.0144.0310", ALI, "address"),
    ("100.6579400", ALI, "address"),
    ("::ffff:6464:64c8", ALI, "address"),
    ("%31%30%30.100.100.200", ALI, "address"),
    # 192.0.0.192 (Oracle)
    ("192.0.0.192", OCI, "address"),
    ("0xc00000c0", OCI, "address"),
    ("3221225664", OCI, "address"),
    ("0300.0.0.0300", OCI, "address"),
    ("192.192", OCI, "address"),
    ("192.0.192", OCI, "address"),
    ("[::ffff:c000:c0]", OCI, "address"),
    ("⑲②.0.0.⑲②", OCI, "address"),
    ("0xC0.0.0.0xC0", OCI, "address"),
    # Names
    ("metadata.google.internal", "metadata.google.internal", "name"),
    ("METADATA.GOOGLE.INTERNAL.", "metadata.google.internal", "name"),
    ("metadata.goog", "metadata.goog", "name"),
    ("ｍｅｔａｄａｔａ．ｇｏｏｇｌｅ．ｉｎｔｅｒｎａｌ", "metadata.google.internal", "name"),
    ("metadata", "metadata", "name"),
    ("instance-data", "instance-data", "name"),
    ("instance-data.ec2.internal", "instance-data.ec2.internal", "name"),
    ("metadata.tencentyun.com", "metadata.tencentyun.com", "name"),
    ("api.metadata.cloud.ibm.com", "api.metadata.cloud.ibm.com", "name"),
    ("%6detadata.google.internal", "metadata.google.internal", "name"),
    ("metadata。google。internal", "metadata.google.internal", "name"),
    # Wildcard and rebinding DNS
    ("169.254.169.254.nip.io", IMDS, "wildcard-dns"),
    ("app.169.254.169.254.nip.io", IMDS, "wildcard-dns"),
    ("169-254-169-254.sslip.io", IMDS, "wildcard-dns"),
    ("x-169-254-169-254.sslip.io", IMDS, "wildcard-dns"),
    ("a9fea9fe.nip.io", IMDS, "wildcard-dns"),
    ("app-a9fea9fe.nip.io", IMDS, "wildcard-dns"),
    ("169.254.169.254.NIP.IO.", IMDS, "wildcard-dns"),
    ("fd00-ec2--254.sslip.io", V6, "wildcard-dns"),
    ("--ffff-a9fe-a9fe.sslip.io", IMDS, "wildcard-dns"),
    ("169.254.170.2.nip.io", ECS, "wildcard-dns"),
    ("100-100-100-200.traefik.me", ALI, "wildcard-dns"),
    ("7f000001.a9fea9fe.rbndr.us", IMDS, "rebinding-dns"),
    ("make-1.2.3.4-rebind-169.254.169.254-rr.1u.ms", IMDS, "rebinding-dns"),
    ("make-169-254-169-254-rr.1u.ms", IMDS, "rebinding-dns"),
]


def test_spelling_table_is_big_enough() -> None:
    assert len(SPELLINGS) >= 60
    assert len({text for text, _, _ in SPELLINGS}) == len(SPELLINGS)


@pytest.mark.parametrize(("text", "canonical", "via"), SPELLINGS)
def test_explicit_spelling_is_a_metadata_hit(text: str, canonical: str, via: str) -> None:
    hit = metadata_host(text)
    assert hit is not None, text
    assert hit.canonical == canonical
    assert hit.via == via
    if via == "address":
        host = canonical_host(text)
        assert host is not None
        assert host.value == canonical
        assert host.kind == ("ipv6" if ":" in canonical else "ipv4")


@pytest.mark.parametrize(
    ("text", "notes"),
    [
        ("0xa9fea9fe", {"hex", "integer"}),
        ("7147006462", {"integer", "wrapped-mod-2^32"}),
        ("0251.0376.0251.0376", {"octal"}),
        ("00000251.0376.0251.0376", {"octal", "leading-zeros"}),
        ("0x00a9.0xfe.0xa9.0xfe", {"hex", "leading-zeros"}),
        ("169.254.43518", {"short-form"}),
        ("425.510.425.510", {"wrapped-part"}),
        ("::ffff:a9fe:a9fe", {"ipv4-mapped"}),
        ("::a9fe:a9fe", {"ipv4-compatible"}),
        ("[fd00:ec2::254%25eth0]", {"bracketed", "zone-id"}),
        ("%31%36%39.254.169.254", {"percent-decoded"}),
        ("１６９．２５４．１６９．２５４", {"unicode-nfkc", "unicode-dot"}),
        ("169.254.169.254.", {"trailing-dot"}),
        ("169.254.169.2\u00ad54", {"ignored-chars"}),
        ("bücher.example", {"idna"}),
    ],
)
def test_notes_say_how_the_host_was_decoded(text: str, notes: set[str]) -> None:
    host = canonical_host(text)
    assert host is not None
    assert notes <= set(host.notes), host.notes


def test_plain_address_has_no_notes() -> None:
    assert canonical_host("169.254.169.254") == CanonicalHost("ipv4", "169.254.169.254", ())


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("Example.COM.", "name", "example.com"),
        ("bücher.example", "name", "xn--bcher-kva.example"),
        ("10.0.0.1", "ipv4", "10.0.0.1"),
        ("1.69.254", "ipv4", "1.69.0.254"),
        ("[2001:DB8::1]", "ipv6", "2001:db8::1"),
        ("2001:0db8:0000:0000:0000:0000:0000:0001", "ipv6", "2001:db8::1"),
        ("::1", "ipv6", "::1"),
        ("::", "ipv6", "::"),
        ("1.2.3.4.5", "name", "1.2.3.4.5"),  # not IPv4 (5 parts): a resolver looks it up as a name
        ("08.1.1.1", "name", "08.1.1.1"),  # invalid octal: not a number either
        ("0x", "ipv4", "0.0.0.0"),
    ],
)
def test_ordinary_hosts_are_canonicalised(text: str, kind: str, value: str) -> None:
    host = canonical_host(text)
    assert host is not None
    assert (host.kind, host.value) == (kind, value)


@pytest.mark.parametrize(
    "text",
    ["", "   ", "a b", "169.254.169.254/latest", "http://169.254.169.254", "[169.254", "a..b", "-x-.$",
     "%", "%zz", "[]", "169.254.169.254:80", "exa\tmple.com", "[fd00:ec2::254", "::ffff:a9fe:a9fe%",
     "x" * (MAX_HOST_CHARS + 1)],
)
def test_implausible_hosts_are_rejected(text: str) -> None:
    assert canonical_host(text) is None


# --------------------------------------------------------------------------------------------------
# Ports, neighbours, loopback
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["169.254.169.253", "fd00:ec2::253", "fd00:ec2::123", "169.254.169.123", "168.63.129.16", "0xa9fea9fd",
     "::ffff:a9fe:a9fd", "0251.0376.0251.0175", "[fd00:ec2::253]", "169.254.169.253.nip.io",
     "a9fea97b.nip.io", "a83f8110.nip.io", "fd00-ec2--123.sslip.io"],
)
def test_neighbours_are_never_hits(text: str) -> None:
    assert canonical_host(text) is not None
    for port in (None, 53, 80, 123, 443):
        assert metadata_host(text, port) is None


@pytest.mark.parametrize(
    "text",
    ["10.0.0.1", "8.8.8.8", "169.254.169.1", "169.254.0.1", "example.com", "metadata.google.internal.evil.com",
     "evil-metadata.google.internal", "google.internal", "nip.io", "1.2.3.4.nip.io", "a9fe.nip.io",
     "169.254.169.254.example.com", "127.0.0.1", "::1", "localhost", "1.69.254", "metadata.evil"],
)
def test_ordinary_hosts_are_not_hits(text: str) -> None:
    assert metadata_host(text) is None


@pytest.mark.parametrize(("port", "expected"), [(None, True), (80, True), (443, True), (8080, True),
                                                (53, False), (123, False), (67, False)])
def test_link_local_ports(port: int | None, expected: bool) -> None:
    assert (metadata_host("169.254.169.254", port) is not None) is expected
    assert (metadata_host("0xa9fea9fe", port) is not None) is expected
    assert (metadata_host("metadata.google.internal", port) is not None) is expected


@pytest.mark.parametrize("text", ["127.0.0.1", "127.1", "0x7f000001", "[::1]", "::ffff:127.0.0.1", "localhost",
                                  "LOCALHOST.", "himds.localhost", "2130706433"])
def test_arc_loopback_counts_only_on_its_port(text: str) -> None:
    hit = metadata_host(text, endpoints.ARC_PORT)
    assert hit is not None
    assert hit.provider == "azure-arc"
    assert metadata_host(text) is None
    assert metadata_host(text, 80) is None


def test_host_port_text_is_accepted_by_metadata_host() -> None:
    hit = metadata_host("169.254.169.254:80")
    assert hit is not None and hit.canonical == IMDS
    assert metadata_host("169.254.169.254:53") is None
    assert metadata_host("127.0.0.1:40342") is not None
    assert metadata_host("[fd00:ec2::254]:80") is not None


def test_provider_comes_from_endpoints() -> None:
    assert metadata_host("100.100.100.200") is not None
    assert metadata_host("0x646464c8").provider == "alibaba"  # type: ignore[union-attr]
    assert metadata_host("metadata.goog").provider == "gcp"  # type: ignore[union-attr]
    assert metadata_host("169.254.170.2.nip.io").provider == "aws-ecs"  # type: ignore[union-attr]
    assert metadata_host("fd00:ec2::254").provider == "aws"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("169.254.169.254:80", ("169.254.169.254", 80)), ("[fd00:ec2::254]:8080", ("[fd00:ec2::254]", 8080)),
     ("fd00:ec2::254", ("fd00:ec2::254", None)), ("host", ("host", None)), ("host:", ("host", None)),
     ("host:８０", ("host", 80)), ("host:x", None), ("host:99999", None), ("[::1]x", None)],
)
def test_split_host_port(text: str, expected: tuple[str, int | None] | None) -> None:
    assert split_host_port(text) == expected


def test_split_host_port_can_refuse_an_empty_port() -> None:
    assert split_host_port("Metadata:", allow_empty_port=False) is None


# --------------------------------------------------------------------------------------------------
# Random spellings
# --------------------------------------------------------------------------------------------------

_CIRCLED = {str(d): chr(0x2460 + d - 1) for d in range(1, 10)} | {"0": "\u24ea"}
_DOTS = (".", "\uff0e", "\u3002", "\uff61")


def _fullwidth(char: str, style: int) -> str:
    if char.isdigit():
        return chr(0xFF10 + int(char)) if style == 0 else _CIRCLED[char]
    if char == ".":
        return _DOTS[1 + style % 3]
    if "a" <= char <= "z":
        return chr(0xFF41 + ord(char) - ord("a")) if style == 0 else chr(0x24D0 + ord(char) - ord("a"))
    if "A" <= char <= "Z":
        return chr(0xFF21 + ord(char) - ord("A"))
    return {":": "\uff1a", "[": "\uff3b", "]": "\uff3d"}.get(char, char)


@st.composite
def unicode_and_percent(draw: st.DrawFn, text: str, percent: bool = True) -> str:
    """Optionally full-width / enclose random characters, then percent-encode random characters 1-3 times."""
    if draw(st.booleans()):
        chars = []
        for char in text:
            chars.append(_fullwidth(char, draw(st.integers(0, 2))) if draw(st.booleans()) else char)
        text = "".join(chars)
    rounds = draw(st.integers(0, 3)) if percent else 0
    for _ in range(rounds):
        out = []
        for char in text:
            if draw(st.booleans()):
                hexcase = draw(st.booleans())
                out.append("".join(f"%{b:02X}" if hexcase else f"%{b:02x}" for b in char.encode("utf-8")))
            else:
                out.append(char)
        text = "".join(out)
    return text


def _split_parts(value: int, count: int) -> list[int]:
    octets = [(value >> shift) & 0xFF for shift in (24, 16, 8, 0)]
    head = octets[: count - 1]
    rest = 0
    for octet in octets[count - 1 :]:
        rest = rest << 8 | octet
    return [*head, rest]


@st.composite
def number_spelling(draw: st.DrawFn, value: int) -> str:
    radix = draw(st.sampled_from(["dec", "oct", "hex"]))
    zeros = "0" * draw(st.integers(0, 3))
    if radix == "dec":
        return str(value)
    if radix == "oct":
        return "0" + zeros + format(value, "o")
    digits = zeros + format(value, "x")
    digits = "".join(c.upper() if draw(st.booleans()) else c for c in digits)
    return draw(st.sampled_from(["0x", "0X"])) + digits


@st.composite
def inet_aton_spelling(draw: st.DrawFn, value: int) -> str:
    """1-4 parts, random radix per part, leading zeros, hex case, optional wrap, optional trailing dot."""
    count = draw(st.integers(1, 4))
    parts = _split_parts(value, count)
    if draw(st.booleans()):
        if count == 1:
            parts[0] += draw(st.integers(1, 5)) << 32
        else:
            index = draw(st.integers(0, count - 2))
            parts[index] += 256 * draw(st.integers(1, 3))
    text = ".".join(draw(number_spelling(p)) for p in parts)
    if draw(st.booleans()):
        text += "."
    return text


@st.composite
def ipv6_groups_spelling(draw: st.DrawFn, groups: list[int], dotted_tail: int | None) -> str:
    """Groups with random zero padding and case, one random run of zero groups compressed."""
    texts = []
    for group in groups:
        digits = format(group, "x").rjust(draw(st.integers(1, 4)), "0")
        texts.append("".join(c.upper() if draw(st.booleans()) else c for c in digits))
    zero_runs = [(i, j) for i in range(len(groups)) for j in range(i + 1, len(groups) + 1)
                 if all(g == 0 for g in groups[i:j])]
    tail = []
    if dotted_tail is not None:
        tail = [".".join(str((dotted_tail >> s) & 0xFF) for s in (24, 16, 8, 0))]
    compress = draw(st.booleans())
    if zero_runs and compress:
        i, j = draw(st.sampled_from(zero_runs))
        if j == len(groups) and tail:
            return ":".join(texts[:i]) + "::" + tail[0]
        head = ":".join(texts[:i])
        after = ":".join(texts[j:] + tail)
        return head + "::" + after
    return ":".join(texts + tail)


@st.composite
def ipv6_wrapped_ipv4(draw: st.DrawFn, value: int) -> str:
    """IPv4-mapped or -compatible IPv6, dotted or hex words, random compression, brackets and zone."""
    prefix = [0, 0, 0, 0, 0, 0xFFFF] if draw(st.booleans()) or value <= 1 else [0] * 6
    if draw(st.booleans()):
        text = draw(ipv6_groups_spelling(prefix, value))
    else:
        text = draw(ipv6_groups_spelling([*prefix, value >> 16, value & 0xFFFF], None))
    return _decorate_ipv6(draw, text)


def _decorate_ipv6(draw: st.DrawFn, text: str) -> str:
    zone = draw(st.sampled_from(["", "%eth0", "%25eth0", "%en0"]))
    if draw(st.booleans()):
        return f"[{text}{zone}]"
    return text + zone


@st.composite
def ipv4_spelling(draw: st.DrawFn, value: int) -> str:
    wrapped = draw(st.integers(0, 3)) == 0
    text = draw(ipv6_wrapped_ipv4(value)) if wrapped else draw(inet_aton_spelling(value))
    spelled = draw(unicode_and_percent(text))
    assume(len(spelled) <= MAX_HOST_CHARS)
    return spelled


@st.composite
def ipv6_spelling(draw: st.DrawFn, value: int) -> str:
    groups = [(value >> (112 - 16 * i)) & 0xFFFF for i in range(8)]
    text = _decorate_ipv6(draw, draw(ipv6_groups_spelling(groups, None)))
    spelled = draw(unicode_and_percent(text))
    assume(len(spelled) <= MAX_HOST_CHARS)
    return spelled


def _v4(text: str) -> int:
    return int(ipaddress.IPv4Address(text))


@settings(max_examples=600, deadline=None)
@given(data=st.data(), address=st.sampled_from(METADATA_V4))
def test_random_spellings_of_metadata_ipv4_are_hits(data: st.DataObject, address: str) -> None:
    spelled = data.draw(ipv4_spelling(_v4(address)))
    hit = metadata_host(spelled)
    assert hit is not None, spelled
    assert hit.canonical == address
    host = canonical_host(spelled)
    assert host is not None and host.value == address


@settings(max_examples=300, deadline=None)
@given(data=st.data(), address=st.sampled_from(METADATA_V6))
def test_random_spellings_of_metadata_ipv6_are_hits(data: st.DataObject, address: str) -> None:
    spelled = data.draw(ipv6_spelling(int(ipaddress.IPv6Address(address))))
    hit = metadata_host(spelled)
    assert hit is not None, spelled
    assert hit.canonical == address


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_random_spellings_of_loopback_hit_only_on_the_arc_port(data: st.DataObject) -> None:
    spelled = data.draw(ipv4_spelling(_v4("127.0.0.1")))
    assert metadata_host(spelled) is None
    hit = metadata_host(spelled, endpoints.ARC_PORT)
    assert hit is not None and hit.provider == "azure-arc"


def _ordinary_ipv4() -> st.SearchStrategy[int]:
    special = {_v4(ip) for ip in ALL_SPECIAL if ":" not in ip}
    return st.one_of(
        st.integers(0, 2**32 - 1),
        st.integers(0xA9FE0000, 0xA9FEFFFF),  # 169.254/16: close to the metadata addresses
        st.sampled_from([_v4(ip) + d for ip in METADATA_V4 for d in (-1, 1, 256, -256, 1 << 16)]),
    ).filter(lambda v: 0 <= v < 2**32 and v not in special)


@settings(max_examples=600, deadline=None)
@given(data=st.data(), value=_ordinary_ipv4())
def test_random_spellings_of_ordinary_ipv4_are_not_hits(data: st.DataObject, value: int) -> None:
    spelled = data.draw(ipv4_spelling(value))
    host = canonical_host(spelled)
    assert host is not None, spelled
    expected = str(ipaddress.IPv4Address(value))
    if host.kind == "ipv6":  # ::0.0.0.0 and ::0.0.0.1 are the IPv6 unspecified / loopback addresses
        assert value <= 1
    else:
        assert host.value == expected
    assert metadata_host(spelled) is None
    assert metadata_host(spelled, 80) is None


def _ordinary_ipv6() -> st.SearchStrategy[int]:
    groups = st.lists(st.one_of(st.just(0), st.integers(0, 0xFFFF)), min_size=8, max_size=8)
    by_groups = groups.map(lambda gs: sum(g << (112 - 16 * i) for i, g in enumerate(gs)))
    near = st.sampled_from([int(ipaddress.IPv6Address(ip)) + d for ip in METADATA_V6 for d in (-1, 1, 0x100)])
    special = {int(ipaddress.IPv6Address(ip)) for ip in ALL_SPECIAL if ":" in ip}
    return st.one_of(st.integers(0, 2**128 - 1), by_groups, near).filter(
        lambda v: v >> 32 != 0 and v >> 32 != 0xFFFF and v not in special)


@settings(max_examples=400, deadline=None)
@given(data=st.data(), value=_ordinary_ipv6())
def test_random_spellings_of_ordinary_ipv6_are_not_hits(data: st.DataObject, value: int) -> None:
    spelled = data.draw(ipv6_spelling(value))
    host = canonical_host(spelled)
    assert host is not None, spelled
    assert host.kind == "ipv6"
    assert host.value == ipaddress.IPv6Address(value).compressed
    assert metadata_host(spelled) is None


_LABEL = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=20)


@settings(max_examples=400, deadline=None)
@given(data=st.data(), labels=st.lists(_LABEL, min_size=1, max_size=4),
       tld=st.sampled_from(["com", "net", "internal", "io", "goog", "me", "us", "ms"]))
def test_random_names_are_not_hits(data: st.DataObject, labels: list[str], tld: str) -> None:
    name = ".".join([*labels, tld])
    assume(name not in endpoints.metadata_names())
    assume(not any(name == s or name.endswith("." + s) for s in SUFFIXES))
    assume(name != "localhost" and not name.endswith(".localhost"))
    spelled = "".join(c.upper() if data.draw(st.booleans()) else c for c in name)
    if data.draw(st.booleans()):
        spelled += "."
    spelled = data.draw(unicode_and_percent(spelled))
    host = canonical_host(spelled)
    assert host is not None, spelled
    assert host.kind == "name" and host.value == name
    assert metadata_host(spelled) is None


@settings(max_examples=300, deadline=None)
@given(data=st.data(), address=st.sampled_from(METADATA_V4), suffix=st.sampled_from(SUFFIXES))
def test_random_wildcard_names_embedding_metadata_ips_are_hits(data: st.DataObject, address: str,
                                                               suffix: str) -> None:
    words = address.split(".")
    style = data.draw(st.sampled_from(["dotted", "dashed", "hex"]))
    embedded = {"dotted": ".".join(words), "dashed": "-".join(words),
                "hex": format(_v4(address), "08x")}[style]
    label = data.draw(st.sampled_from(["", "app.", "app-", "x-y."]))
    if style == "dotted" and label.endswith("-"):
        label = "app."
    name = f"{label}{embedded}.{suffix}"
    hit = metadata_host(name)
    assert hit is not None, name
    assert hit.canonical == address
    assert hit.via == ("rebinding-dns" if suffix in endpoints.REBINDING_SUFFIXES else "wildcard-dns")


@pytest.mark.parametrize("suffix", SUFFIXES)
@pytest.mark.parametrize("neighbour", [ip for ip in NEIGHBOUR_IPS if ":" not in ip])
def test_wildcard_names_embedding_neighbours_are_not_hits(suffix: str, neighbour: str) -> None:
    assert metadata_host(f"{neighbour}.{suffix}") is None
    assert metadata_host(f"{neighbour.replace('.', '-')}.{suffix}") is None
    assert metadata_host(f"{_v4(neighbour):08x}.{suffix}") is None
