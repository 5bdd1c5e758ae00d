"""Sans-IO tests of the reliability state machine (ixpscamper.remote.session),
both roles wired back to back over an in-memory wire, time from task.Clock."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.task import Clock

from ixpscamper.remote.frames import (
    Ack, ChannelFin, ChannelNew, FrameDecoder, Keepalive, MasterNew, MasterRes, decode_control,
    encode_frame,
)
from ixpscamper.remote.session import ControllerCore, VPSession, seq_diff


class VPApp:
    def __init__(self):
        self.events = []
        self.data: dict[int, bytearray] = {}

    def established(self, master_id, resumed):
        self.events.append(("established", master_id, resumed))

    def rejected(self):
        self.events.append(("rejected",))

    def channel_opened(self, ch):
        self.events.append(("opened", ch))
        self.data[ch] = bytearray()

    def channel_data(self, ch, data):
        self.data[ch] += data

    def channel_closed(self, ch):
        self.events.append(("closed", ch))


class CtrlApp:
    def __init__(self):
        self.events = []
        self.data: dict[int, bytearray] = {}

    def vp_new(self, s):
        self.events.append(("new", s.label))

    def vp_resumed(self, s):
        self.events.append(("resumed", s.label))

    def vp_detached(self, s, reason):
        self.events.append(("detached", reason))

    def vp_gone(self, s, reason):
        self.events.append(("gone", reason))

    def channel_data(self, s, ch, data):
        self.data.setdefault(ch, bytearray()).extend(data)

    def channel_fin(self, s, ch):
        self.events.append(("fin", ch))

    def channel_drained(self, s, ch):
        self.events.append(("drained", ch))


class Wire:
    """A TCP connection between a VPSession and a ControllerCore, delivered
    only when pumped; cut() loses whatever is still in flight."""

    def __init__(self, core, vp, peer="127.0.0.1:40000"):
        self.vp = vp
        self.open = True
        self.frozen = False
        self.to_ctrl: list[bytes] = []
        self.to_vp: list[bytes] = []
        self.closes: list[tuple[str, str]] = []
        vp._test_wire = self
        self.conn = core.connection(peer, self._ctrl_write, self._ctrl_close)
        vp.connection_made(self._vp_write, self._vp_close)

    def _ctrl_write(self, b):
        assert self.open
        self.to_vp.append(b)

    def _vp_write(self, b):
        assert self.open
        self.to_ctrl.append(b)

    def _ctrl_close(self, reason):
        self.closes.append(("ctrl", reason))
        if not self.frozen:
            # like loseConnection: what was written before the close arrives
            pending, self.to_vp = self.to_vp, []
            for b in pending:
                if self.open and getattr(self.vp, "_test_wire", None) is self:
                    self.vp.data_received(b)
        self.cut()

    def _vp_close(self, reason):
        self.closes.append(("vp", reason))
        self.cut()

    def cut(self):
        if not self.open:
            return
        self.open = False
        self.to_ctrl.clear()
        self.to_vp.clear()
        self.conn.connection_lost()
        if getattr(self.vp, "_test_wire", None) is self:
            self.vp.connection_lost()

    def pump(self):
        while self.open and not self.frozen and (self.to_ctrl or self.to_vp):
            if self.to_ctrl:
                self.conn.data_received(self.to_ctrl.pop(0))
            elif self.to_vp:
                self.vp.data_received(self.to_vp.pop(0))


def setup(zombie=900.0, name=b"mon1", **core_kw):
    clock = Clock()
    capp, vapp = CtrlApp(), VPApp()
    core = ControllerCore(clock, capp, zombie_time=zombie, **core_kw)
    vp = VPSession(clock, vapp, name=name, magic=b"M" * 8)
    w = Wire(core, vp)
    w.pump()
    return clock, core, capp, vp, vapp, w


def advance(clock, wire, seconds, step=1.0):
    t = 0.0
    while t < seconds:
        clock.advance(step)
        wire.pump()
        t += step


def test_new_session_and_channel_traffic():
    clock, core, capp, vp, vapp, w = setup()
    assert vapp.events == [("established", b"127.0.0.1:40000", False)]
    assert capp.events == [("new", "mon1-127.0.0.1:40000")]
    sess = core.sessions[b"M" * 8]
    ch = sess.open_channel()
    w.pump()
    assert ch == 1 and vapp.events[-1] == ("opened", 1)
    vp.send_data(1, b"MORE\n" + b"x" * 20000)  # more than one VP chunk
    sess.channel_write(1, b"ping -c 1 127.0.0.1\n")
    w.pump()
    assert bytes(capp.data[1]) == b"MORE\n" + b"x" * 20000
    assert bytes(vapp.data[1]) == b"ping -c 1 127.0.0.1\n"
    assert not sess.unacked and not vp.unacked
    assert vp.snd_nxt == sess.rcv_nxt == 3 and sess.snd_nxt == vp.rcv_nxt == 2
    sess.channel_close(1)
    w.pump()
    assert ("closed", 1) in vapp.events
    vp.send_data(1, b"late results\n")  # the VP keeps sending after our FIN
    vp.send_fin(1)
    w.pump()
    assert capp.data[1].endswith(b"late results\n") and capp.events[-1] == ("fin", 1)
    assert sess.channels == {} and vp.channels == set()


def test_wire_bytes_match_scamper():
    clock = Clock()
    core = ControllerCore(clock, CtrlApp())
    out = []
    conn = core.connection("127.0.0.1:46708", out.append, lambda r: None)
    conn.data_received(bytes.fromhex("00000000000000000012000821aea60a30ee83040774657374767000"))
    assert out == [bytes.fromhex("00000000000000000012" "0110" "3132372e302e302e313a343637303800")]
    sess = conn.session
    sess.open_channel()
    assert out[-1] == bytes.fromhex("00000000000000000005" "0200000001")
    conn.data_received(bytes.fromhex("00000000000000000005" "0500000000"))  # VP acks seq 0
    conn.data_received(bytes.fromhex("00000000000000010005" "4d4f52450a"))  # MORE
    assert out[-1] == bytes.fromhex("00000001000000000005" "0500000000")  # our ACK, hdr seq = snd_nxt 1


def test_keepalives_flow_and_idle_link_survives():
    clock, core, capp, vp, vapp, w = setup()
    sent = []
    orig = w._vp_write

    def spy(b):
        sent.append(b)
        orig(b)
    vp._write = spy
    advance(clock, w, 300)
    assert w.open and vp.established
    kas = [decode_control(f.payload) for b in sent for f in FrameDecoder().feed(b)]
    assert kas and all(k == Keepalive() for k in kas)
    assert 9 <= len(kas) <= 10  # one per 30 s


def test_dead_peer_detected_after_60s_and_zombie():
    clock, core, capp, vp, vapp, w = setup()
    w.frozen = True
    clock.advance(59)
    assert w.open
    clock.advance(1.5)
    assert not w.open
    reasons = [r for _, r in w.closes if r] + [e[1] for e in capp.events if e[0] == "detached"]
    assert any("nothing received for 60" in r for r in reasons)
    assert capp.events[-1][0] == "detached"
    assert vp.has_session and not vp.established


def test_slowloris_closed_after_30s():
    clock = Clock()
    capp = CtrlApp()
    core = ControllerCore(clock, capp)
    closed = []
    conn = core.connection("10.0.0.1:1", lambda b: None, closed.append)
    conn.data_received(b"\x00\x00")
    clock.advance(29.9)
    assert not closed
    clock.advance(0.2)
    assert closed == ["no MASTER_NEW/MASTER_RES within 30 s"]
    assert capp.events == []


def test_resume_replays_exactly_once_in_order():
    clock, core, capp, vp, vapp, w = setup()
    sess = core.sessions[b"M" * 8]
    ch = sess.open_channel()
    w.pump()
    vp.send_data(ch, b"a1")
    sess.channel_write(ch, b"c1")
    w.pump()
    # in flight, lost by the cut
    vp.send_data(ch, b"a2")
    sess.channel_write(ch, b"c2")
    w.cut()
    assert capp.events[-1][0] == "detached"
    # queued while disconnected
    vp.send_data(ch, b"a3")
    sess.channel_write(ch, b"c3")
    ch2 = sess.open_channel()  # a user who connects during the outage
    clock.advance(100)
    w2 = Wire(core, vp, peer="127.0.0.1:40001")
    w2.pump()
    assert vapp.events[-2:] == [("established", b"127.0.0.1:40000", True), ("opened", ch2)]
    assert capp.events[-1] == ("resumed", "mon1-127.0.0.1:40000")
    assert bytes(capp.data[ch]) == b"a1a2a3"
    assert bytes(vapp.data[ch]) == b"c1c2c3"
    assert not sess.unacked and not vp.unacked


def test_resume_after_ack_lost():
    """The controller got the data but its ACK was lost: the resume must not
    deliver the data twice."""
    clock, core, capp, vp, vapp, w = setup()
    sess = core.sessions[b"M" * 8]
    ch = sess.open_channel()
    w.pump()
    vp.send_data(ch, b"once")
    w.conn.data_received(w.to_ctrl.pop(0))  # delivered; the ACK sits in to_vp
    w.cut()
    assert len(vp.unacked) == 1
    w2 = Wire(core, vp, peer="127.0.0.1:40001")
    w2.pump()
    assert bytes(capp.data[ch]) == b"once" and not vp.unacked


def test_resume_after_zombie_time_is_rejected_then_new_session():
    clock, core, capp, vp, vapp, w = setup(zombie=900)
    sess = core.sessions[b"M" * 8]
    sess.open_channel()
    w.pump()
    w.cut()
    clock.advance(899)
    assert core.sessions
    clock.advance(2)
    assert not core.sessions and capp.events[-1][0] == "gone"
    old_magic = vp.magic
    w2 = Wire(core, vp, peer="127.0.0.1:40002")
    w2.pump()
    assert ("rejected",) in vapp.events and not w2.open
    assert any("MASTER_RES refused: unknown magic" in (r or "") for _, r in w2.closes)
    assert not vp.has_session and vp.snd_nxt == 0 and not vp.channels and vp.magic != old_magic
    w3 = Wire(core, vp, peer="127.0.0.1:40003")
    w3.pump()
    assert vapp.events[-1] == ("established", b"127.0.0.1:40003", False)
    assert core.sessions[vp.magic].label == "mon1-127.0.0.1:40003"


def test_zombie_zero_frees_at_once():
    clock, core, capp, vp, vapp, w = setup(zombie=0)
    w.cut()
    assert not core.sessions and capp.events[-1][0] == "gone"


@pytest.mark.parametrize("start", [2**32 - 3, 2**31 - 2, 2**32 - 1])
def test_sequence_wraparound_with_resume(start):
    clock, core, capp, vp, vapp, w = setup()
    sess = core.sessions[b"M" * 8]
    for a, b in ((vp, sess), (sess, vp)):
        a.snd_nxt = b.rcv_nxt = start
    ch = sess.open_channel()
    w.pump()
    for i in range(3):
        vp.send_data(ch, b"v%d," % i)
        sess.channel_write(ch, b"c%d," % i)
    w.pump()
    vp.send_data(ch, b"lost-in-flight,")
    w.cut()
    vp.send_data(ch, b"queued")
    w2 = Wire(core, vp, peer="127.0.0.1:40009")
    w2.pump()
    assert bytes(capp.data[ch]) == b"v0,v1,v2,lost-in-flight,queued"
    assert bytes(vapp.data[ch]) == b"c0,c1,c2,"
    assert vp.snd_nxt == sess.rcv_nxt == (start + 5) % 2**32
    assert vp.snd_nxt < 10 or start == 2**31 - 2


def test_seq_diff():
    assert seq_diff(0, 2**32 - 1) == 1
    assert seq_diff(2**32 - 1, 0) == -1
    assert seq_diff(5, 5) == 0


def test_master_new_with_held_magic_replaces_state():
    clock, core, capp, vp, vapp, w = setup()
    old = core.sessions[b"M" * 8]
    old.open_channel()
    w.pump()
    vp2 = VPSession(clock, VPApp(), name=b"mon1", magic=b"M" * 8)
    w2 = Wire(core, vp2, peer="127.0.0.1:40100")
    w2.pump()
    assert old.gone and not w.open
    assert ("gone", "replaced by a MASTER_NEW with the same magic") in capp.events
    assert core.sessions[b"M" * 8].label == "mon1-127.0.0.1:40100" and vp2.established


def _raw_session(core):
    out, closed = [], []
    conn = core.connection("127.0.0.1:7", out.append, closed.append)
    conn.data_received(encode_frame(0, 0, MasterNew(b"Z" * 8, b"x").encode()))
    return conn, out, closed


@pytest.mark.parametrize("frame,why", [
    (encode_frame(5, 1, b"x"), "frame seq 5, expected 0"),
    (encode_frame(0, 0, Ack(0).encode()), "nothing outstanding"),
    (encode_frame(0, 0, ChannelNew(3).encode()), "CHANNEL_NEW from a VP"),
    (encode_frame(0, 0, b"\x63"), "unknown control message type 99"),
    (encode_frame(0, 0, MasterRes(b"Z" * 8, 0, 0, 0).encode()), "unexpected MasterRes"),
    (struct.pack(">IIH", 0, 0, 0), "zero-length"),
])
def test_protocol_errors_close_only_that_connection(frame, why):
    clock = Clock()
    capp = CtrlApp()
    core = ControllerCore(clock, capp)
    other, oout, oclosed = _raw_session(core)  # noqa: F841  (a bystander)
    other_magic = next(iter(core.sessions))
    core.sessions[other_magic].magic = b"other"
    core.sessions[b"other"] = core.sessions.pop(other_magic)
    conn, out, closed = _raw_session(core)
    conn.data_received(frame)
    # an established VP: the reason comes as the vp_detached event
    assert closed == [None] and capp.events[-1] == ("detached", "protocol error: " + capp.events[-1][1][16:])
    assert why in capp.events[-1][1]
    assert not oclosed and not other.closed


def test_ack_must_name_oldest():
    clock = Clock()
    capp = CtrlApp()
    core = ControllerCore(clock, capp)
    conn, out, closed = _raw_session(core)
    conn.session.open_channel()
    conn.session.open_channel()
    conn.data_received(encode_frame(0, 0, Ack(1).encode()))
    assert closed == [None] and "does not name the oldest unacked seq 0" in capp.events[-1][1]


def test_unknown_channel_data_is_acked_and_discarded():
    clock = Clock()
    capp = CtrlApp()
    core = ControllerCore(clock, capp)
    conn, out, closed = _raw_session(core)
    conn.data_received(encode_frame(0, 77, b"junk"))
    assert not closed and capp.data == {}
    assert out[-1] == encode_frame(0, 0, Ack(0).encode())


@pytest.mark.parametrize("res,ok", [
    ((0, 0, 0), True),          # nothing in flight
    ((1, 0, 0), False),         # VP expects a seq we never sent
    ((0, 0, 5), True),          # VP sent 5 we never got: our rcv_nxt 0 within [0, 5]
    ((0, 1, 5), False),         # VP dropped seq 0 which we never got
])
def test_resume_checks(res, ok):
    clock = Clock()
    capp = CtrlApp()
    core = ControllerCore(clock, capp)
    conn, out, closed = _raw_session(core)
    conn.connection_lost()
    out2, closed2 = [], []
    c2 = core.connection("127.0.0.1:8", out2.append, closed2.append)
    c2.data_received(encode_frame(0, 0, MasterRes(b"Z" * 8, *res).encode()))
    reply = decode_control(FrameDecoder().feed(out2[0])[0].payload)
    assert type(reply).__name__ == ("MasterOk" if ok else "MasterRej")
    assert bool(closed2) != ok


# ---- property: any interleaving of traffic, cuts and time -------------------

ops = st.lists(st.one_of(
    st.tuples(st.just("vp"), st.binary(min_size=1, max_size=50)),
    st.tuples(st.just("ctrl"), st.binary(min_size=1, max_size=50)),
    st.tuples(st.just("pump"), st.integers(0, 5)),
    st.tuples(st.just("cut"), st.none()),
    st.tuples(st.just("reconnect"), st.none()),
    st.tuples(st.just("wait"), st.integers(1, 120)),
), max_size=40)


@given(ops, st.sampled_from([0, 2**32 - 4]))
@settings(max_examples=150, deadline=None)
def test_exactly_once_in_order_under_faults(script, start):
    clock, core, capp, vp, vapp, w = setup(zombie=10_000)
    sess = core.sessions[b"M" * 8]
    for a, b in ((vp, sess), (sess, vp)):
        a.snd_nxt = b.rcv_nxt = start
    ch = sess.open_channel()
    w.pump()
    sent_vp, sent_c = bytearray(), bytearray()
    port = 40000
    for op, arg in script:
        if op == "vp":
            vp.send_data(ch, arg)
            sent_vp += arg
        elif op == "ctrl":
            sess.channel_write(ch, arg)
            sent_c += arg
        elif op == "pump":
            for _ in range(arg):  # partial delivery
                if w.open and w.to_ctrl:
                    w.conn.data_received(w.to_ctrl.pop(0))
                if w.open and w.to_vp:
                    vp.data_received(w.to_vp.pop(0))
        elif op == "cut":
            w.cut()
        elif op == "reconnect":
            w.cut()
            port += 1
            w = Wire(core, vp, peer=f"127.0.0.1:{port}")
        elif op == "wait":
            clock.advance(arg)
    w.cut()
    w = Wire(core, vp, peer="127.0.0.1:50000")
    w.pump()
    assert vp.established, w.closes
    assert bytes(capp.data.get(ch, b"")) == bytes(sent_vp)
    assert bytes(vapp.data.get(ch, b"")) == bytes(sent_c)
    assert not vp.unacked and not sess.unacked


# ---- back-pressure: per-channel accounting of unacked bytes ---------------------

def _drained(capp):
    return [e for e in capp.events if e[0] == "drained"]


def test_unacked_bytes_are_counted_per_channel_and_writes_report_pressure():
    clock, core, capp, vp, vapp, w = setup(channel_high=10_000, vp_high=100_000)
    sess = core.sessions[b"M" * 8]
    a, b = sess.open_channel(), sess.open_channel()
    w.pump()
    w.frozen = True  # the VP reads nothing: no ACKs come back
    assert sess.channel_write(a, b"x" * 6000) is True
    assert sess.channel_write(b, b"y" * 5000) is True
    assert sess.unacked_bytes == {a: 6000, b: 5000} and sess.unacked_total == 11_000
    assert sess.channel_write(a, b"x" * 6000) is False  # 12000 >= 10000
    assert not sess.channel_writable(a) and sess.channel_writable(b)
    assert sess.channel_write(a, b"x" * 10) is False    # still accepted while blocked
    assert sess.unacked_bytes[a] == 12_010
    assert _drained(capp) == []
    w.frozen = False
    w.pump()
    assert sess.unacked_bytes == {} and sess.unacked_total == 0 and not sess.unacked
    assert _drained(capp) == [("drained", a)]  # once, and only for the blocked channel
    assert sess.channel_writable(a)
    assert bytes(vapp.data[a]) == b"x" * 12_010 and bytes(vapp.data[b]) == b"y" * 5000


def test_drained_only_below_the_low_water_mark():
    clock, core, capp, vp, vapp, w = setup(channel_high=16_384, channel_low=4096, vp_high=1 << 20)
    sess = core.sessions[b"M" * 8]
    ch = sess.open_channel()
    w.pump()
    w.frozen = True
    assert sess.channel_write(ch, b"z" * 20_480) is False  # 5 frames of 4096
    w.frozen = False
    seen = []
    while w.to_ctrl or w.to_vp:  # one step at a time: watch the count fall
        if w.to_vp:
            vp.data_received(w.to_vp.pop(0))
        else:
            w.conn.data_received(w.to_ctrl.pop(0))
            seen.append((sess.unacked_bytes.get(ch, 0), len(_drained(capp))))
    # no event while more than 4096 bytes are unacked; exactly one at 4096
    assert [n for n, d in seen if d] [0] == 4096
    assert all(d == 0 for n, d in seen if n > 4096)
    assert _drained(capp) == [("drained", ch)]


def test_vp_total_bound_blocks_every_writer_of_that_vp():
    clock, core, capp, vp, vapp, w = setup(channel_high=1 << 20, vp_high=20_000)
    sess = core.sessions[b"M" * 8]
    chans = [sess.open_channel() for _ in range(3)]
    w.pump()
    w.frozen = True
    assert sess.channel_write(chans[0], b"a" * 8192) is True
    assert sess.channel_write(chans[1], b"b" * 8192) is True
    assert sess.channel_write(chans[2], b"c" * 8192) is False  # 24576 >= 20000 in total
    assert sess.channel_write(chans[0], b"a") is False        # the others now learn it too
    w.frozen = False
    w.pump()
    assert sorted(e[1] for e in _drained(capp)) == sorted([chans[0], chans[2]])
    assert sess.unacked_total == 0


def test_zombie_holds_pressure_and_resume_drains_it():
    clock, core, capp, vp, vapp, w = setup(channel_high=8192, vp_high=1 << 20)
    sess = core.sessions[b"M" * 8]
    ch, quiet = sess.open_channel(), sess.open_channel()
    w.pump()
    w.cut()  # the VP is away: a zombie
    assert sess.channel_write(ch, b"q" * 4096) is True
    assert sess.channel_write(ch, b"q" * 4096) is False
    assert sess.unacked_bytes == {ch: 8192}
    sess.channel_close(quiet)  # a closed channel is never reported drained
    clock.advance(10)
    w2 = Wire(core, vp, peer="127.0.0.1:40001")
    w2.pump()
    assert capp.events[-2:] == [("resumed", "mon1-127.0.0.1:40000"), ("drained", ch)]
    assert bytes(vapp.data[ch]) == b"q" * 8192  # exactly once
    assert sess.unacked_total == 0 and sess.unacked_bytes == {}


def test_closed_or_freed_channels_get_no_drained_and_counts_reset():
    clock, core, capp, vp, vapp, w = setup(channel_high=4096, vp_high=1 << 20)
    sess = core.sessions[b"M" * 8]
    ch = sess.open_channel()
    w.pump()
    w.frozen = True
    assert sess.channel_write(ch, b"r" * 4096) is False
    sess.channel_close(ch)
    w.frozen = False
    w.pump()
    assert _drained(capp) == [] and sess.unacked_total == 0
    ch2 = sess.open_channel()
    w.pump()
    w.frozen = True
    assert sess.channel_write(ch2, b"r" * 4096) is False
    sess.terminate("test")
    assert sess.unacked_total == 0 and sess.unacked_bytes == {} and sess.channel_writable(ch2)


def test_owner_without_channel_drained_still_works():
    class Old(CtrlApp):
        channel_drained = None  # an events object from before back-pressure
    clock = Clock()
    core = ControllerCore(clock, Old(), channel_high=4096)
    vp = VPSession(clock, VPApp(), name=b"o", magic=b"O" * 8)
    w = Wire(core, vp)
    w.pump()
    sess = core.sessions[b"O" * 8]
    ch = sess.open_channel()
    w.pump()
    w.frozen = True
    assert sess.channel_write(ch, b"o" * 5000) is False
    w.frozen = False
    w.pump()
    assert sess.channel_writable(ch) and sess.unacked_total == 0


def test_vp_role_counts_unacked_bytes_too():
    clock, core, capp, vp, vapp, w = setup()
    sess = core.sessions[b"M" * 8]
    ch = sess.open_channel()
    w.pump()
    w.frozen = True
    vp.send_data(ch, b"v" * 20_000)
    assert vp.unacked_bytes == {ch: 20_000} and vp.unacked_total == 20_000
    w.frozen = False
    w.pump()
    assert vp.unacked_total == 0 and vp.unacked_bytes == {}


@pytest.mark.parametrize("kw", [dict(channel_high=10, channel_low=10), dict(vp_high=5, vp_low=9)])
def test_bad_bounds_refused(kw):
    with pytest.raises(ValueError):
        ControllerCore(Clock(), CtrlApp(), **kw)


def test_master_new_with_held_magic_must_be_authorised_for_the_old_name():
    clock = Clock()
    capp = CtrlApp()
    core = ControllerCore(clock, capp)
    allowed = {"a": {b"A"}, "b": {b"B"}, "a2": {b"A"}}

    def conn(who):
        out, closed = [], []
        c = core.connection(f"10.0.0.{len(who)}:{hash(who) & 0xfff}", out.append, closed.append,
                            authorize=lambda name: None if name in allowed[who] else f"{who} may not be {name!r}")
        return c, out, closed
    a, _, a_closed = conn("a")
    a.data_received(encode_frame(0, 0, MasterNew(b"S" * 8, b"A").encode()))
    held = core.sessions[b"S" * 8]
    b, b_out, b_closed = conn("b")
    b.data_received(encode_frame(0, 0, MasterNew(b"S" * 8, b"B").encode()))
    assert core.sessions[b"S" * 8] is held and not held.gone and held.conn is a
    assert b_out == [] and len(b_closed) == 1 and b_closed[0].startswith("MASTER_NEW refused: ")
    assert "b may not be b'A'" in b_closed[0] and a_closed == []
    a2, a2_out, _ = conn("a2")  # a connection that could resume A may replace it
    a2.data_received(encode_frame(0, 0, MasterNew(b"S" * 8, b"A").encode()))
    assert held.gone and core.sessions[b"S" * 8] is not held


def test_admit_hook_refuses_master_new_before_any_state():
    clock = Clock()
    capp = CtrlApp()
    core = ControllerCore(clock, capp)
    asked, closed = [], []
    c = core.connection("10.0.0.1:1", lambda b: None, closed.append,
                        admit=lambda name, replaces: asked.append((name, replaces)) or "full")
    c.data_received(encode_frame(0, 0, MasterNew(b"N" * 8, b"n").encode()))
    assert asked == [(b"n", False)] and closed == ["registration refused: full"]
    assert core.sessions == {} and capp.events == []
    ok = core.connection("10.0.0.1:2", lambda b: None, closed.append,
                         admit=lambda name, replaces: asked.append((name, replaces)))
    ok.data_received(encode_frame(0, 0, MasterNew(b"N" * 8, b"n").encode()))
    again = core.connection("10.0.0.1:3", lambda b: None, closed.append,
                            admit=lambda name, replaces: asked.append((name, replaces)))
    again.data_received(encode_frame(0, 0, MasterNew(b"N" * 8, b"n").encode()))
    assert asked[1:] == [(b"n", False), (b"n", True)]


class _Recorder:
    """Events of delivery and of writes, in the order they happen."""

    def __init__(self):
        self.log = []


def test_acks_of_one_read_go_out_in_one_write_after_their_deliveries():
    # One transport write per received frame cost the controller as much as
    # the relaying; the ACKs of the frames of one read are written together,
    # in order, and only after every one of those frames was delivered.
    clock = Clock()
    rec = _Recorder()

    class App(CtrlApp):
        def channel_data(self, s, ch, data):
            rec.log.append(("delivered", bytes(data)))

    core = ControllerCore(clock, App())
    out, closed = [], []

    def write(b):
        rec.log.append(("write", b))
        out.append(b)

    conn = core.connection("127.0.0.1:7", write, closed.append)
    conn.data_received(encode_frame(0, 0, MasterNew(b"Z" * 8, b"x").encode()))
    sess = conn.session
    sess.channels[1] = False  # channel 1 open (as after open_channel + its ACK)
    rec.log.clear()
    frames = b"".join(encode_frame(i, 1, b"r%d" % i) for i in range(5))
    conn.data_received(frames)
    # the read's run of frames for channel 1 is delivered as one piece
    assert rec.log == [("delivered", b"r0r1r2r3r4")] + [
        ("write", b"".join(encode_frame(sess.snd_nxt, 0, Ack(i).encode()) for i in range(5)))]
    assert not closed


def test_a_read_is_delivered_a_run_per_channel_in_order_and_split_by_control():
    """A VP sends each reply line as a frame of its own; the controller hands
    a read's consecutive frames for one channel on as one piece (one relay
    to the user, not one per line), keeps the order across channels, never
    merges across a control frame, and still ACKs every frame after its
    delivery."""
    clock = Clock()
    rec = _Recorder()

    class App(CtrlApp):
        def channel_data(self, s, ch, data):
            rec.log.append(("delivered", ch, bytes(data)))

        def channel_fin(self, s, ch):
            rec.log.append(("fin", ch))

    core = ControllerCore(clock, App())
    conn = core.connection("127.0.0.1:7", lambda b: rec.log.append(("write", len(b))), [].append)
    conn.data_received(encode_frame(0, 0, MasterNew(b"Y" * 8, b"x").encode()))
    sess = conn.session
    sess.channels[1] = sess.channels[2] = False
    rec.log.clear()
    wire = (encode_frame(0, 1, b"OK id-1\n") + encode_frame(1, 1, b"MORE\n")
            + encode_frame(2, 2, b"MORE\n") + encode_frame(3, 1, b"DATA 3\n")
            + encode_frame(4, 1, b"abc") + encode_frame(5, 0, ChannelFin(2).encode())
            + encode_frame(6, 1, b"tail"))
    conn.data_received(wire)
    assert [e for e in rec.log if e[0] != "write"] == [
        ("delivered", 1, b"OK id-1\nMORE\n"), ("delivered", 2, b"MORE\n"),
        ("delivered", 1, b"DATA 3\nabc"), ("fin", 2), ("delivered", 1, b"tail")]
    assert sess.rcv_nxt == 7
    assert [e for e in rec.log if e[0] == "write"] == [("write", 7 * 15)]   # seven ACKs, one write


def test_a_bad_frame_mid_run_still_delivers_and_acks_those_before_it():
    clock = Clock()
    got, out, closed = [], [], []

    class App(CtrlApp):
        def channel_data(self, s, ch, data):
            got.append(bytes(data))

    app = App()
    core = ControllerCore(clock, app)
    conn = core.connection("127.0.0.1:7", out.append, closed.append)
    conn.data_received(encode_frame(0, 0, MasterNew(b"X" * 8, b"x").encode()))
    sess = conn.session
    sess.channels[1] = False
    out.clear()
    base = sess.snd_nxt
    conn.data_received(encode_frame(0, 1, b"a") + encode_frame(1, 1, b"b") + encode_frame(5, 1, b"z"))
    assert got == [b"ab"]
    assert b"".join(out) == b"".join(encode_frame(base, 0, Ack(i).encode()) for i in range(2))
    assert closed == [None]   # a live session's reason goes to vp_detached
    assert ("detached", "protocol error: frame seq 5, expected 2") in app.events


def test_held_acks_precede_any_later_frame_on_the_wire():
    # a reliable frame sent while a read is being handled (here: a command
    # written from inside a delivery) goes out after the ACKs already due,
    # in the same write; the rest of the read's ACKs follow in one more
    clock = Clock()

    class App(CtrlApp):
        def channel_data(self, s, ch, data):
            if data == b"r1":
                s.channel_write(1, b"cmd\n")

    core = ControllerCore(clock, App())
    out = []
    conn = core.connection("127.0.0.1:7", out.append, lambda r: None)
    conn.data_received(encode_frame(0, 0, MasterNew(b"Z" * 8, b"x").encode()))
    conn.session.channels[1] = conn.session.channels[2] = False
    out.clear()
    # three runs (a read's frames for one channel are delivered together)
    conn.data_received(encode_frame(0, 1, b"r0") + encode_frame(1, 2, b"r1") + encode_frame(2, 1, b"r2"))
    wire = b"".join(out)
    dec = FrameDecoder()
    got = [(f.channel, decode_control(f.payload) if f.channel == 0 else f.payload) for f in dec.feed(wire)]
    assert got == [(0, Ack(0)), (1, b"cmd\n"), (0, Ack(1)), (0, Ack(2))]
    assert len(out) == 2
