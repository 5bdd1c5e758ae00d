"""The session must not depend on its adapter's ``write`` never failing.

A blocking-socket adapter's ``sendall`` raises on a reset connection.  The
frame whose ACK could not be written has been received: it must reach the
application exactly once, and the link must fail over to a resume that
loses nothing (issue: the stub VP lost whole frames under cuts).
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.task import Clock

from ixpscamper.remote.session import ControllerCore, VPSession

from test_remote_session import CtrlApp, VPApp


class Link:
    """Controller <-> VP bytes, hand-pumped; the VP's writes can be made to
    raise (like ``socket.sendall`` on a reset connection)."""

    def __init__(self, core, vp):
        self.core, self.vp = core, vp
        self.to_vp: list[bytes] = []
        self.to_ctrl: list[bytes] = []
        self.fail_vp_write_after: int | None = None
        self.vp_closed: list[str] = []
        self.up = False
        self.connect()

    def connect(self):
        self.to_vp, self.to_ctrl = [], []
        self.up = True
        gen = object()
        self.gen = gen
        self.conn = self.core.connection("127.0.0.1:40000", self._ctrl_write, lambda r: self._cut(gen))
        self.vp.connection_made(self._vp_write, self._vp_close)
        self.pump()

    def _ctrl_write(self, b):
        if self.up:
            self.to_vp.append(b)

    def _vp_write(self, b):
        if self.fail_vp_write_after is not None:
            if self.fail_vp_write_after == 0:
                self.fail_vp_write_after = None
                self._cut(self.gen)
                raise ConnectionResetError(104, "Connection reset by peer")
            self.fail_vp_write_after -= 1
        if not self.up:
            raise BrokenPipeError(32, "Broken pipe")
        self.to_ctrl.append(b)

    def _vp_close(self, reason):
        self.vp_closed.append(reason)
        self._cut(self.gen)

    def _cut(self, gen):
        if gen is not self.gen or not self.up:
            return
        self.up = False
        self.to_vp, self.to_ctrl = [], []
        self.conn.connection_lost()

    def pump(self):
        while self.up and (self.to_vp or self.to_ctrl):
            if self.to_ctrl:
                self.conn.data_received(self.to_ctrl.pop(0))
            if self.up and self.to_vp:
                self.vp.data_received(self.to_vp.pop(0))


def _setup():
    clock = Clock()
    capp, vapp = CtrlApp(), VPApp()
    core = ControllerCore(clock, capp)
    vp = VPSession(clock, vapp, name=b"stub", magic=b"S" * 8)
    link = Link(core, vp)
    sess = core.sessions[b"S" * 8]
    ch = sess.open_channel()
    link.pump()
    return clock, core, sess, ch, vp, vapp, link


def test_frame_whose_ack_write_fails_is_delivered_once():
    clock, core, sess, ch, vp, vapp, link = _setup()
    sess.channel_write(ch, b"line 1\n")
    link.fail_vp_write_after = 0          # the ACK for "line 1" hits a reset
    link.pump()                           # must not raise out of data_received
    assert not vp.established             # the session noticed the broken link
    link.connect()                        # resume (MASTER_RES / MASTER_OK)
    assert vp.established and sess.conn is not None
    sess.channel_write(ch, b"line 2\n")
    link.pump()
    assert bytes(vapp.data[ch]) == b"line 1\nline 2\n"


def test_failing_send_keeps_the_frame_for_the_resume():
    clock, core, sess, ch, vp, vapp, link = _setup()
    link.fail_vp_write_after = 0
    vp.send_data(ch, b"result A\n")       # write raises: the frame stays queued
    assert not vp.established
    link.connect()
    vp.send_data(ch, b"result B\n")
    link.pump()
    assert bytes(core.events.data[ch]) == b"result A\nresult B\n"


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 6)), min_size=1, max_size=25))
def test_exactly_once_when_writes_fail_anywhere(script):
    """Lines both ways; before each step the VP's k-th next write may raise."""
    clock, core, sess, ch, vp, vapp, link = _setup()
    want_vp, want_ctrl = bytearray(), bytearray()
    for i, (fail, k) in enumerate(script):
        if fail:
            link.fail_vp_write_after = k
        down = f"down {i}\n".encode()
        up = f"up {i}\n".encode()
        sess.channel_write(ch, down)
        want_vp += down
        link.pump()
        vp.send_data(ch, up)
        want_ctrl += up
        link.pump()
        if not link.up:
            link.fail_vp_write_after = None
            link.connect()
    link.fail_vp_write_after = None
    if not link.up:
        link.connect()
    link.pump()
    assert bytes(vapp.data[ch]) == bytes(want_vp)
    assert bytes(core.events.data.get(ch, b"")) == bytes(want_ctrl)


def test_keepalive_write_failure_leaves_no_timer_running():
    """A KEEPALIVE that cannot be written drops the link, and the dead link's
    timer must not be re-armed (it would later fail a newer transport)."""
    clock, core, sess, ch, vp, vapp, link = _setup()
    link.fail_vp_write_after = 0
    clock.advance(30)                      # keepalive due: its write raises
    assert not vp.established
    assert not [c for c in clock.getDelayedCalls() if c.func == vp._tick]
    link.connect()
    assert vp.established
    assert len([c for c in clock.getDelayedCalls() if c.func == vp._tick]) == 1
