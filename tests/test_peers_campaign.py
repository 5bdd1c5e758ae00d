"""ixp-peers campaign on a task.Clock with a fake client: per-peer cap,
concurrency, the pps budget, resume from the journal (no pair traced twice),
a torn journal line, a refused trace, the VP going away."""

from __future__ import annotations

import json

import pytest
from twisted.internet import defer, task

from ixpscamper.bgp.rib import RIB
from ixpscamper.client.channel import ChannelGone, CommandRefused
from ixpscamper.commands import CommandError, parse_command
from ixpscamper.peers.campaign import Campaign, CampaignStopped, Journal, build_trace_command
from ixpscamper.peers.compare import Mapper
from ixpscamper.peers.plan import Exclusions, make_plan, parse_lans

from tests.peers_helpers import ip, make_trace, net, write_mrt

LANS = parse_lans(["192.0.2.0/24"])
DSTS = [ip(f"198.51.100.{i}") for i in range(1, 7)]


@pytest.fixture
def rib(tmp_path):
    peers = [("192.0.2.1", 65001), ("192.0.2.2", 65002), ("192.0.2.3", 65003)]
    routes = [(i, "198.51.100.0/24", [asn, 65020], f"192.0.2.{i + 1}") for i, asn in enumerate((65001, 65002, 65003))]
    routes.append((0, "198.18.0.0/16", [65001, 65011], "192.0.2.1"))
    return RIB.load(write_mrt(tmp_path / "rib.mrt", peers, routes))


class FakeClient:
    """``command`` answers each trace after ``delay`` clock seconds."""

    def __init__(self, clock, delay=1.0, probec=6):
        self.clock = clock
        self.delay = delay
        self.probec = probec
        self.sent: list[str] = []
        self.calls = {}
        self.refuse: set[str] = set()

    def command(self, vp, text):
        self.sent.append(text)
        opts = parse_command(text)
        def cancel(_d):
            call = self.calls.pop(text, None)
            if call is not None:
                call.cancel()
        d = defer.Deferred(cancel)
        if str(opts.dst) in self.refuse:
            self.calls[text] = self.clock.callLater(0, lambda: (self.calls.pop(text), d.errback(
                CommandRefused(text, "no"))))
            return d
        hops = [str(opts.rtr), "198.18.0.1", str(opts.dst)]

        def fire():
            self.calls.pop(text)
            d.callback(make_trace(str(opts.dst), hops, rtr=str(opts.rtr), probec=self.probec))
        self.calls[text] = self.clock.callLater(self.delay, fire)
        return d

    def vanish(self):
        for text, call in list(self.calls.items()):
            call.cancel()
        self.calls.clear()


def setup(rib, tmp_path, clock=None, **kw):
    clock = clock or task.Clock()
    client = FakeClient(clock, **{k: kw.pop(k) for k in ("delay", "probec") if k in kw})
    plan = make_plan(rib, DSTS, LANS, kw.pop("exclusions", Exclusions()))
    warn = kw.pop("warn", lambda m: None)
    journal = Journal(str(tmp_path / "state"), warn=warn)
    camp = Campaign(clock, client, "vp", plan.to_probe, journal, Mapper(rib, LANS), warn=warn, **kw)
    return clock, client, plan, journal, camp


def drive(clock, d, step=0.1, limit=1000):
    for _ in range(limit):
        if d.called:
            return
        clock.advance(step)
    raise AssertionError("campaign did not finish")


def test_per_peer_cap_and_concurrency(rib, tmp_path):
    clock, client, plan, journal, camp = setup(rib, tmp_path, per_peer=1, concurrency=8)
    d = camp.run()
    assert len(camp.in_flight) == 3          # one per peer, though 8 would be allowed
    assert len({c.split()[-2] for c in client.sent}) == 3
    drive(clock, d)
    assert len(journal.rows) == 18 and len(client.sent) == 18
    (tmp_path / "x").mkdir()
    clock, client, plan, journal, camp = setup(rib, tmp_path / "x", per_peer=4, concurrency=2)
    camp.run()
    assert len(camp.in_flight) == 2


def test_pps_budget_spaces_trace_starts(rib, tmp_path):
    # 10 probes/s, each trace costs 10: about one trace a second whatever the concurrency
    clock, client, plan, journal, camp = setup(rib, tmp_path, pps=10, probec=10, delay=0.1, concurrency=8,
                                               per_peer=8)
    d = camp.run()
    starts = []
    seen = 0
    while not d.called:
        clock.advance(0.05)
        if len(client.sent) > seen:
            starts += [clock.seconds()] * (len(client.sent) - seen)
            seen = len(client.sent)
    assert len(starts) == 18
    span = starts[-1] - starts[0]
    assert 15 <= span <= 19, span


def test_resume_no_pair_traced_twice(rib, tmp_path):
    clock, client, plan, journal, camp = setup(rib, tmp_path, per_peer=1, concurrency=3)

    def on_row(row):
        if len(journal.rows) == 5:
            camp.stop()          # as Ctrl-C does: in-flight traces are halted, not recorded
    camp.on_row = on_row
    d = camp.run()
    drive(clock, d)
    first = set(journal.rows)
    assert len(first) == 5
    journal.close()
    sent_first = list(client.sent)
    # the same command again
    clock2, client2, plan2, journal2, camp2 = setup(rib, tmp_path, per_peer=1, concurrency=3)
    assert set(journal2.rows) == first and camp2.skipped == 5
    d2 = camp2.run()
    drive(clock2, d2)
    again = {(c.split()[-2], c.split()[-1]) for c in client2.sent}
    assert not again & {(k[0], k[2]) for k in first}
    assert len(client2.sent) == 13 and len(journal2.rows) == 18
    lines = (tmp_path / "state").read_text().splitlines()
    keys = [(json.loads(x)["peer_ip"], json.loads(x)["dst"]) for x in lines]
    assert len(keys) == len(set(keys)) == 18
    assert len(sent_first) >= 5


def test_torn_journal_line_is_dropped_and_retraced(rib, tmp_path):
    clock, client, plan, journal, camp = setup(rib, tmp_path)
    drive(clock, camp.run())
    journal.close()
    state = tmp_path / "state"
    data = state.read_bytes()
    state.write_bytes(data[:-40])            # a crash in the middle of the last line
    warnings = []
    clock, client, plan, journal, camp = setup(rib, tmp_path, warn=warnings.append)
    assert len(journal.rows) == 17 and camp.skipped == 17
    assert len(warnings) == 1 and "cut short" in warnings[0]
    drive(clock, camp.run())
    assert len(client.sent) == 1 and len(journal.rows) == 18
    assert all(json.loads(x) for x in state.read_text().splitlines())


def test_refused_trace_is_an_error_row_and_the_campaign_goes_on(rib, tmp_path):
    warnings = []
    clock, client, plan, journal, camp = setup(rib, tmp_path, warn=warnings.append)
    client.refuse.add("198.51.100.3")
    drive(clock, camp.run())
    errs = [r for r in journal.rows.values() if r["class"] == "error"]
    assert len(errs) == 3 and len(journal.rows) == 18
    assert len(warnings) == 3 and all("refused" in w for w in warnings)


def test_vp_gone_stops_cleanly_keeping_what_was_measured(rib, tmp_path):
    clock, client, plan, journal, camp = setup(rib, tmp_path, concurrency=2, per_peer=2)
    d = camp.run()
    clock.advance(1.0)
    clock.advance(1.0)
    done = len(journal.rows)
    assert done == 4
    # the VP goes away: what is in flight fails with ChannelGone
    pending = [t for t in list(camp.in_flight.values())]
    client.vanish()
    pending[0].errback(ChannelGone("VP vp: connection closed"))
    for p in pending[1:]:
        if not p.called:
            p.errback(ChannelGone("VP vp: connection closed"))
    failures = []
    d.addErrback(failures.append)
    assert failures and failures[0].check(CampaignStopped) and "went away" in str(failures[0].value)
    assert len(journal.rows) == done
    assert not camp.in_flight


def test_excluded_pairs_are_never_sent(rib, tmp_path):
    ex = Exclusions((net("198.51.100.4/30"),), frozenset({65003}))
    clock, client, plan, journal, camp = setup(rib, tmp_path, exclusions=ex)
    drive(clock, camp.run())
    assert client.sent and all("192.0.2.3" not in c for c in client.sent)
    assert all(not c.endswith((" 198.51.100.4", " 198.51.100.5", " 198.51.100.6")) for c in client.sent)
    assert len(client.sent) == 6  # 2 peers x 3 destinations


def test_trace_options_pass_through_and_are_checked():
    assert build_trace_command("-P icmp-paris -q 1", "192.0.2.1", "198.51.100.1") == \
        "trace -P icmp-paris -q 1 -r 192.0.2.1 198.51.100.1"
    with pytest.raises(CommandError):
        build_trace_command("-P nonsense", "192.0.2.1", "198.51.100.1")
    with pytest.raises(CommandError, match="-r"):
        build_trace_command("-r 192.0.2.9", "192.0.2.1", "198.51.100.1")


def test_a_bug_in_compare_stops_the_campaign_instead_of_losing_rows(rib, tmp_path):
    clock, client, plan, journal, camp = setup(rib, tmp_path, concurrency=1, per_peer=1)
    calls = {"n": 0}
    real = camp.mapper.map

    def flaky(addr):
        calls["n"] += 1
        if calls["n"] > 6:           # the third trace (3 hops each) hits the bug
            raise RuntimeError("boom")
        return real(addr)
    camp.mapper.map = flaky
    d = camp.run()
    failures = []
    d.addErrback(failures.append)
    for _ in range(100):
        clock.advance(0.5)
    assert failures and failures[0].check(CampaignStopped) and "internal error" in str(failures[0].value)
    assert len(journal.rows) == 2 and len(client.sent) == 3


def test_rows_carry_when_each_result_arrived(rib, tmp_path):
    # "received" (the campaign's clock when the result came back) is what the
    # campaign benchmark sets against each trace's start
    clock, client, plan, journal, camp = setup(rib, tmp_path, per_peer=1, concurrency=1, delay=2.0)
    clock.advance(100.0)
    d = camp.run()
    drive(clock, d, step=0.5)
    got = sorted(r["received"] for r in journal.rows.values())
    assert got == [100.0 + 2.0 * (i + 1) for i in range(18)]
