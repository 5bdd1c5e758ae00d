"""A tiny DNS responder for the host fixtures and lab tests (run inside a lab namespace).

``python3 tests/dns_responder.py ADDR [ADDR ...]`` answers on port 53 (UDP,
and TCP with the two-byte length prefix) of each address, from a fixed zone
``lab.example.`` and the reverse names of the lab's destination addresses:

- ``www.lab.example.``: A 198.51.100.66 and 198.51.100.67, AAAA 2001:db8:d::66
- ``lab.example.``: NS ns1/ns2, MX 10 mail / 20 mail2, SOA, TXT (two strings)
- ``66.100.51.198.in-addr.arpa.`` and the ip6.arpa name of 2001:db8:d::66: PTR
- ``www.lab.example.``: HTTPS (SVCB form) 1 . alpn=h2 port=443
- ``version.bind.`` in class CH: TXT "lab-dns 0.1.0"
- a query with an OPT record gets one back (with an NSID if it asked)
- ``silent.lab.example.``: never answered (the query times out)
- anything else under ``lab.example.``: NXDOMAIN with the SOA in authority;
  outside it: REFUSED

Answers are built by hand (no dependency), with name compression pointing
at the question.  It is a test helper only: it never forwards or recurses.
"""

from __future__ import annotations

import ipaddress
import select
import socket
import struct
import sys

ZONE = "lab.example."
TTL = 300
_T = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "PTR": 12, "MX": 15, "TXT": 16, "AAAA": 28}


def _name(n: str) -> bytes:
    out = b""
    for lab in n.rstrip(".").split("."):
        if lab:
            out += bytes([len(lab)]) + lab.encode()
    return out + b"\x00"


def _rev6(a: str) -> str:
    return ipaddress.ip_address(a).reverse_pointer + "."


#: name -> [(type, rdata builder)]
RECORDS: dict[str, list[tuple[int, bytes]]] = {
    "www.lab.example.": [(_T["A"], socket.inet_aton("198.51.100.66")),
                         (_T["A"], socket.inet_aton("198.51.100.67")),
                         (_T["AAAA"], socket.inet_pton(socket.AF_INET6, "2001:db8:d::66"))],
    "alias.lab.example.": [(_T["CNAME"], _name("www.lab.example."))],
    ZONE: [(_T["NS"], _name("ns1.lab.example.")), (_T["NS"], _name("ns2.lab.example.")),
           (_T["MX"], struct.pack(">H", 10) + _name("mail.lab.example.")),
           (_T["MX"], struct.pack(">H", 20) + _name("mail2.lab.example.")),
           (_T["TXT"], b"\x0bv=spf1 -all" + b"\x0fhello lab world")],
    "66.100.51.198.in-addr.arpa.": [(_T["PTR"], _name("dst.lab.example."))],
    _rev6("2001:db8:d::66"): [(_T["PTR"], _name("dst6.lab.example."))],
}
# HTTPS (SVCB form): priority 1, target ".", alpn=h2 (key 1), port=443 (key 3)
RECORDS["www.lab.example."].append(
    (65, struct.pack(">H", 1) + b"\x00" + struct.pack(">HH", 1, 3) + b"\x02h2"
     + struct.pack(">HHH", 3, 2, 443)))
#: class CH names (the server's identity, as BIND answers version.bind)
CHAOS = {"version.bind.": b"\x0dlab-dns 0.1.0"}
NSID = b"lab-ns1"
SOA = (_name("ns1.lab.example.") + _name("hostmaster.lab.example.")
       + struct.pack(">IIIII", 2026120101, 3600, 600, 86400, 60))
RECORDS[ZONE].append((_T["SOA"], SOA))
SILENT = {"silent.lab.example."}


def _parse_question(q: bytes):
    """(id, flags, qname, qtype, qclass, end of question) of a query."""
    qid, flags, qd = struct.unpack_from(">HHH", q, 0)
    pos = 12
    labels = []
    while q[pos]:
        n = q[pos]
        labels.append(q[pos + 1:pos + 1 + n].decode("ascii", "replace").lower())
        pos += 1 + n
    pos += 1
    qtype, qclass = struct.unpack_from(">HH", q, pos)
    return qid, flags, ".".join(labels) + ".", qtype, qclass, pos + 4


def answer(q: bytes):
    """The response to query ``q`` (bytes), or None to stay silent."""
    try:
        qid, flags, qname, qtype, qclass, qend = _parse_question(q)
    except (struct.error, IndexError):
        return None
    if qname in SILENT:
        return None
    question = q[12:qend]
    opt = _opt_answer(q, qend)
    rd = flags & 0x0100
    rrs = RECORDS.get(qname)
    an: list[bytes] = []
    ns: list[bytes] = []
    rcode = 0
    if qclass == 3:
        txt = CHAOS.get(qname)
        if txt is not None and qtype in (_T["TXT"], 255):
            an.append(b"\xc0\x0c" + struct.pack(">HHIH", _T["TXT"], 3, 0, len(txt)) + txt)
        elif txt is None:
            rcode = 5
    elif rrs is None:
        if qname.endswith(ZONE) or qname.endswith(".arpa."):
            rcode = 3  # NXDOMAIN
            ns.append(_name(ZONE) + struct.pack(">HHIH", _T["SOA"], 1, TTL, len(SOA)) + SOA)
        else:
            rcode = 5  # REFUSED
    else:
        for t, rdata in rrs:
            if t == qtype or (t == _T["CNAME"] and qtype != _T["CNAME"]):
                # 0xc00c: the name in the question
                an.append(b"\xc0\x0c" + struct.pack(">HHIH", t, qclass, TTL, len(rdata)) + rdata)
    hflags = 0x8000 | 0x0400 | rd | rcode  # QR, AA
    ar = [opt] if opt is not None else []
    hdr = struct.pack(">HHHHHH", qid, hflags, 1, len(an), len(ns), len(ar))
    return hdr + question + b"".join(an) + b"".join(ns) + b"".join(ar)


def _opt_answer(q: bytes, pos: int):
    """An OPT record for the reply if the query has one (with NSID if it asked)."""
    try:
        if struct.unpack_from(">H", q, 10)[0] < 1 or q[pos] != 0:
            return None
        rtype, _size, _ttl, rdlen = struct.unpack_from(">HHIH", q, pos + 1)
        if rtype != 41:
            return None
        rdata = q[pos + 11:pos + 11 + rdlen]
    except (struct.error, IndexError):
        return None
    body = b""
    i = 0
    while i + 4 <= len(rdata):
        code, ln = struct.unpack_from(">HH", rdata, i)
        if code == 3:
            body += struct.pack(">HH", 3, len(NSID)) + NSID
        i += 4 + ln
    return b"\x00" + struct.pack(">HHIH", 41, 1232, 0, len(body)) + body


def serve(addrs: list[str], port: int = 53) -> None:
    socks = []
    for a in addrs:
        fam = socket.AF_INET6 if ":" in a else socket.AF_INET
        u = socket.socket(fam, socket.SOCK_DGRAM)
        u.bind((a, port))
        t = socket.socket(fam, socket.SOCK_STREAM)
        t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        t.bind((a, port))
        t.listen(8)
        socks += [("u", u), ("t", t)]
    kinds = {s: k for k, s in socks}
    while True:
        r, _, _ = select.select(list(kinds), [], [])
        for s in r:
            if kinds[s] == "u":
                q, peer = s.recvfrom(65535)
                resp = answer(q)
                if resp is not None:
                    s.sendto(resp, peer)
                continue
            c, _ = s.accept()
            c.settimeout(5)
            try:
                data = b""
                while len(data) < 2 or len(data) < 2 + struct.unpack(">H", data[:2])[0]:
                    chunk = c.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                resp = answer(data[2:]) if len(data) > 2 else None
                if resp is not None:
                    c.sendall(struct.pack(">H", len(resp)) + resp)
            except OSError:
                pass
            finally:
                c.close()


if __name__ == "__main__":
    serve(sys.argv[1:] or ["198.51.100.66", "2001:db8:d::66"])
