"""Framing, CRC and the streaming parser (property tests on hostile input)."""

from __future__ import annotations

import binascii

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devices.protocol import (
    MAX_FRAME,
    Frame,
    FrameParser,
    Telemetry,
    crc16,
    encode_frame,
)

VERBS = st.sampled_from(["HELLO", "STAND", "SIT", "WALK", "TURN", "STOP", "ESTOP", "HB", "ACK"])
ARG = st.one_of(
    st.sampled_from(["L", "R", "1", "30", "EXOSIM", "NONE", "WALKING", "-0.250", "99.5", "a_b+c"]),
    st.integers(0, 10**15).map(str),
)
FRAMES = st.builds(
    lambda seq, verb, args: Frame(seq, verb, tuple(args)),
    st.integers(0, 65535), VERBS, st.lists(ARG, max_size=4),
)
PROPS = settings(max_examples=2000, deadline=None,
                 suppress_health_check=[HealthCheck.too_slow])


def test_crc_check_value():
    # The CRC-16/CCITT-FALSE catalogue check value and the docs/protocol.md worked example.
    assert crc16(b"123456789") == 0x29B1
    assert crc16(b"") == 0xFFFF
    assert encode_frame(7, "WALK", 3) == b"$7,WALK,3*" + f"{crc16(b'7,WALK,3'):04X}".encode() + b"\n"
    assert encode_frame(7, "WALK", 3) == b"$7,WALK,3*06C2\n"
    # independent reference: binascii.crc_hqx is the same polynomial, non-reflected
    for data in (b"123456789", b"7,WALK,3", bytes(range(256))):
        assert crc16(data) == binascii.crc_hqx(data, 0xFFFF)


def test_round_trip_and_crlf():
    p = FrameParser()
    wire = encode_frame(1, "TURN", "L", 30) + encode_frame(2, "STOP").replace(b"\n", b"\r\n")
    assert p.feed(wire) == [Frame(1, "TURN", ("L", "30")), Frame(2, "STOP", ())]
    assert p.frames == 2 and not p.drops


def test_partial_frames_across_reads():
    p = FrameParser()
    wire = encode_frame(42, "WALK", 5)
    got = []
    for i in range(len(wire)):
        got += p.feed(wire[i:i + 1])
    assert got == [Frame(42, "WALK", ("5",))]


@pytest.mark.parametrize(
    "wire, reason",
    [
        (b"hello noise\n", "noise"),
        (b"$1,WALK,3*0000\n", "bad_crc"),
        (b"$1,walk,3*1234\n", "malformed"),
        (b"$1,WALK,3" + b"$" + encode_frame(2, "STOP")[1:], "truncated"),
        (b"$" + b"9" * (MAX_FRAME + 10) + b"\n", "overlong"),
    ],
)
def test_drops_are_counted_by_reason(wire, reason):
    p = FrameParser()
    frames = p.feed(wire)
    assert p.drops[reason] >= 1
    assert all(f.verb == "STOP" for f in frames)


def test_seq_above_16_bits_is_dropped():
    body = b"70000,STOP"
    p = FrameParser()
    assert p.feed(b"$" + body + b"*" + f"{crc16(body):04X}".encode() + b"\n") == []
    assert p.drops["bad_seq"] == 1


def test_overlong_line_resynchronises_on_next_line():
    p = FrameParser()
    wire = b"$" + b"A" * 500 + b"\n" + encode_frame(3, "HB")
    assert p.feed(wire) == [Frame(3, "HB", ())]
    assert p.drops["overlong"] == 1
    assert len(p._buf) == 0


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: encode_frame(70000, "HB"), r"'seq' must be an int in \[0, 65535\]"),
        (lambda: encode_frame(1, "walk"), "'verb' must be 1-8 upper-case letters"),
        (lambda: encode_frame(1, "WALK", "3,4"), r"must be 1-16 characters"),
    ],
)
def test_encode_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_telemetry_round_trip():
    tel = Telemetry("WALKING", "MOVING", 3, 1.5, -0.25, 90.0, 99.5, "NONE")
    frame = FrameParser().feed(encode_frame(9, "TEL", *tel.to_args()))[0]
    back = Telemetry.from_frame(frame, 12.0)
    assert back.state == "WALKING" and back.moving and back.steps == 3
    assert back.y == -0.25 and back.received == 12.0
    assert Telemetry.from_frame(Frame(1, "TEL", ("NOPE",) * 8)) is None
    assert Telemetry.from_frame(Frame(1, "ACK", ("1",))) is None


# ---------------------------------------------------------------- property tests
@PROPS
@given(st.binary(max_size=600))
def test_random_bytes_never_raise_or_yield_bad_frames(data):
    p = FrameParser()
    for f in p.feed(data):
        # anything accepted must re-encode to bytes present in the input
        assert f.encode().rstrip(b"\n") in data
    assert len(p._buf) < MAX_FRAME


@PROPS
@given(FRAMES, st.lists(st.integers(0, 10_000), min_size=1, max_size=3, unique=True))
def test_bit_flips_never_pass_the_crc(frame, flips):
    wire = bytearray(frame.encode())
    nbits = (len(wire) - 1) * 8  # the line end is not flipped
    for bit in {f % nbits for f in flips}:
        wire[bit // 8] ^= 1 << (bit % 8)
    out = FrameParser().feed(bytes(wire))
    # CRC-16 detects every error of up to 3 bits in frames this short
    assert out == [] or out == [frame]
    assert out == [] or bytes(wire) == frame.encode()


@PROPS
@given(st.binary(min_size=1, max_size=40), st.integers(MAX_FRAME - 20, 4 * MAX_FRAME))
def test_overlong_lines_are_bounded_and_dropped(filler, length):
    line = b"$1,HB," + (filler.replace(b"\n", b"x").replace(b"$", b"x") * length)[:length]
    p = FrameParser()
    nxt = Frame(5, "STOP")
    got = p.feed(line + b"\n" + nxt.encode())
    assert got[-1:] == [nxt]
    assert len(p._buf) == 0 and p.frames <= 2


@PROPS
@given(FRAMES, st.integers(0, 200))
def test_truncated_frame_is_dropped_and_next_one_kept(frame, cut):
    wire = frame.encode()
    cut = min(cut, len(wire) - 1)
    p = FrameParser()
    nxt = Frame(1, "STOP")
    assert p.feed(wire[:cut] + nxt.encode()) == [nxt]


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(FRAMES, st.binary(max_size=40)), max_size=12))
def test_mixed_stream_yields_exactly_the_clean_frames(items):
    wire = b""
    expected = []
    for it in items:
        if isinstance(it, Frame):
            # a frame survives when it starts after a line break and nothing follows it on-line
            wire += b"\n" + it.encode()
            expected.append(it)
        else:
            wire += b"\n" + it.replace(b"$", b"#").replace(b"\n", b" ") + b"\n"
    assert FrameParser().feed(wire) == expected


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(FRAMES, min_size=1, max_size=6), st.integers(1, 50))
def test_chunking_does_not_matter(frames, chunk):
    wire = b"".join(f.encode() for f in frames)
    p = FrameParser()
    got = []
    for i in range(0, len(wire), chunk):
        got += p.feed(wire[i:i + chunk])
    assert got == frames


def test_docs_test_vectors_are_valid_frames():
    """Every frame quoted in docs/protocol.md (the normative spec) passes this parser."""
    import re
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "protocol.md").read_text()
    quoted = re.findall(r"(\$[0-9]+,[A-Z]+[^*\s]*\*[0-9A-F]{4})", doc)
    assert len(quoted) >= 15
    p = FrameParser()
    for q in quoted:
        assert len(p.feed(q.encode() + b"\n")) == 1, q
    assert not p.drops
    assert "0x29B1" in doc and "$7,WALK,3*06C2" in doc


def test_sequence_numbers_with_a_leading_zero_are_malformed():
    p = FrameParser()
    body = b"007,STOP"
    assert p.feed(b"$" + body + b"*" + f"{crc16(body):04X}".encode() + b"\n") == []
    assert p.drops["malformed"] == 1
    assert p.feed(encode_frame(0, "STOP")) == [Frame(0, "STOP", ())]  # 0 itself is legal


def test_protocol_integers_and_nonces_are_strict():
    from devices.protocol import parse_int, valid_nonce

    assert [parse_int(s) for s in ("0", "7", "10", "03", "+3", "3.0", "", "-1")] == \
        [0, 7, 10, None, None, None, None, None]
    assert valid_nonce("5EED0001") and not valid_nonce("a-b") and not valid_nonce("x" * 17)


def test_telemetry_carries_since_ms():
    tel = Telemetry("STOPPED", "IDLE", 1, 0.5, 0.0, 0.0, 99.9, "WATCHDOG", 12)
    frame = FrameParser().feed(encode_frame(3, "TEL", *tel.to_args()))[0]
    assert len(frame.args) == 9 and frame.args[-1] == "12"
    assert Telemetry.from_frame(frame).since_ms == 12
    assert Telemetry.from_frame(Frame(3, "TEL", frame.args[:8])) is None  # version 1 TEL
    assert Telemetry.from_frame(Frame(3, "TEL", frame.args[:8] + ("x",))) is None
