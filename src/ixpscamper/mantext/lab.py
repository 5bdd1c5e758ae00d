"""Prose of ixp-lab(8)."""

SUMMARY = "a small Internet exchange in Linux network namespaces, for tests and demos"

DESCRIPTION = """
`ixp-lab` builds, removes and demonstrates a miniature exchange made of
network namespaces joined by veth pairs: a collector with the vantage
point, a switch (a bridge: the exchange LAN), two member routers, a transit
behind each, and a destination.
It is the network the golden test fixtures were recorded in, with the same
addresses and routes, so a command run in it gives the fixtures' paths.
It needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN) and iproute2.

    coll   192.0.2.10/24  2001:db8:1::10/64  default via rA   (the VP)
    sw     bridge br0: the exchange LAN 192.0.2.0/24, 2001:db8:1::/64
    rA     192.0.2.1   2001:db8:1::1 ; up 198.18.1.1/30 2001:db8:a::1/64 -> t1
    rB     192.0.2.2   2001:db8:1::2 ; up 198.18.2.1/30 2001:db8:b::1/64 -> t2
    t1     198.18.1.2  2001:db8:a::2 ; 198.51.100.1/24 2001:db8:d::1/64 (dst LAN)
    t2     198.18.2.2  2001:db8:b::2 ; 198.18.3.1/30 2001:db8:e::1/64 -> dst
    dst    198.51.100.66 2001:db8:d::66 (to t1), 198.18.3.2 2001:db8:e::2 (to t2)

`trace 198.51.100.66` from `coll` goes 192.0.2.1, 198.18.1.2, dst;
`trace -r 192.0.2.2 198.51.100.66` goes 192.0.2.2, 198.18.2.2, dst, and the
replies still return through rA.
192.0.2.99 and 198.51.100.99 do not exist (ARP fails); 198.18.9.9 has no
route at t1.
ICMP rate limits, reverse-path filtering and IPv6 duplicate address
detection are off.

With `--bgp` (BIRD 2 needed: `apt-get install bird2`) the collector (AS
65000) also has eBGP sessions over the LAN with rA (AS 65001) and rB (AS
65002), IPv4 and IPv6, and dumps its RIB as MRT TABLE_DUMP_V2 every 5
seconds.
rA announces 198.51.100.0/24 with the true path 65001 65011 65020; rB
announces it as 65002 65002 65020 although its data path goes through AS
65012: the mismatch `ixp-peers`(1) finds.
The members' forwarding is not changed by BGP.

Namespaces are named ~prefix~-~role~ (`ixplab-coll` ... for `ixp-lab up`);
the labs the test suite builds are named `ixp`~pid~-~role~, so labs of
different processes coexist, and `clean` removes those whose process is
gone.
"""

COMMAND_NOTES = {
    "up": """
Prints the namespaces and, with `--bgp`, where the RIB dumps are.
Run a program in the collector with `ip netns exec ixplab-coll PROGRAM`.
""",
    "demo": """
Builds a lab, starts `ixp-remoted` and `ixp-vp` in it, sends `trace -r`
through each member with `ixp-attach`, prints the two paths side by side,
pings through `ixp-attach | ixp-warts2text`, runs `ixp-peers` on the lab's
BGP, and tears the lab down.
""",
}

EXIT_STATUS = """
0 :: done.
1 :: not root, a lab could not be built or found, a tool is missing, or the
  demo failed; one line says which.
2 :: a usage error.
"""

FILES = """
/run/~prefix~-bgp/ :: with `--bgp`: BIRD's configurations, control sockets,
  pid files and the MRT dumps; removed by `down`.
"""

EXAMPLES = """
    ixp-lab up --bgp
    ip netns exec ixplab-coll ixp-scamper -I 'trace -r 192.0.2.2 198.51.100.66'
    ixp-lab down
    ixp-lab demo
"""

SEE_ALSO = ["ip-netns(8)", "ixp-scamper(1)", "ixp-peers(1)", "ixp-vp(8)", "ixp-remoted(8)",
            "bird(8)"]
