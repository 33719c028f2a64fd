"""EEGStream, MarkerStream and find_stream against real LSL outlets on this machine."""

from __future__ import annotations

import socket
import threading
import time

import numpy as np
import pylsl
import pytest

from bci.acquisition import EEGStream, MarkerStream, SearchStopped, find_stream
from bci.acquisition._metadata import make_eeg_info
from bci.errors import StreamError

LABELS = ["Oz", "O1", "O2", "POz"]


def _outlet(name, source_id=None, labels=LABELS, sfreq=256.0, unit="microvolts",
            fmt=pylsl.cf_float32, n_ch=None):
    """A real outlet; labels=None gives no channel metadata at all."""
    if labels is None:
        info = pylsl.StreamInfo(name, "EEG", n_ch or 4, sfreq, fmt, source_id or name)
    else:
        info = make_eeg_info(name, source_id or name, labels, sfreq, unit=unit)
    return pylsl.StreamOutlet(info)


def _wait(pred, timeout=20.0):
    """Wait for ``pred`` (generous: the suite may run on a loaded machine)."""
    t0 = time.monotonic()
    while not pred():
        if time.monotonic() - t0 > timeout:
            return False
        time.sleep(0.005)
    return True


class _Pusher:
    """Push n samples with consecutive timestamps (optionally skipping some)."""

    def __init__(self, outlet, n_ch=4, sfreq=256.0):
        self.outlet, self.n_ch, self.sfreq = outlet, n_ch, sfreq
        self.t0 = pylsl.local_clock()
        self.k = 0
        self.rng = np.random.default_rng(0)

    def push(self, n, skip=0, values=None):
        self.k += skip
        x = self.rng.standard_normal((n, self.n_ch)).astype(np.float32) * 10 \
            if values is None else np.asarray(values, np.float32)
        ts = self.t0 + (self.k + np.arange(n)) / self.sfreq
        self.outlet.push_chunk(x, ts.tolist())
        self.k += n
        return x


# ---------------------------------------------------------------------- find_stream
def test_find_by_name_type_and_source_id(unique_name):
    out = _outlet(unique_name, source_id=f"{unique_name}-sid")
    info = find_stream(name=unique_name, timeout=10)
    assert info.source_id() == f"{unique_name}-sid"
    info = find_stream(source_id=f"{unique_name}-sid", stype="EEG", timeout=10)
    assert info.name() == unique_name
    info = find_stream(source_id=f"{unique_name}-sid", hostname=socket.gethostname(),
                       stype=None, timeout=10)
    assert info.name() == unique_name
    del out


def test_absent_stream_lists_what_was_seen(unique_name):
    out = _outlet(unique_name)
    with pytest.raises(StreamError, match="No LSL stream matching name='nope'.*Check that the "
                                          "headset") as err:
        find_stream(name="nope", timeout=0.3)
    del out
    assert err.value.details[0] == "Streams seen:"
    assert any(line.startswith(f"  - '{unique_name}'") for line in err.value.details[1:])
    assert unique_name in str(err.value)  # the listing is part of the text too


def test_pinned_host_rejects_the_same_source_elsewhere(unique_name):
    out = _outlet(unique_name)
    with pytest.raises(StreamError, match="host='another-machine'"):
        find_stream(source_id=unique_name, hostname="another-machine", timeout=0.3)
    del out


def test_setting_the_stop_event_ends_the_search(unique_name):
    """A program that is stopping (a signal) does not wait out the search's timeout."""
    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()
    with pytest.raises(SearchStopped, match=f"Stopped looking for the LSL stream name="
                                            f"'{unique_name}'"):
        find_stream(name=unique_name, timeout=300, stop_event=stop)
    with pytest.raises(SearchStopped):  # set before: not even one look
        EEGStream(name=unique_name).connect(timeout=300, stop_event=stop)
    out = _outlet(unique_name)  # an event that is never set changes nothing
    assert find_stream(name=unique_name, timeout=10, stop_event=threading.Event()).name() \
        == unique_name
    del out


def test_find_stream_argument_types():
    with pytest.raises(TypeError, match="'name' must be an instance of str or None"):
        find_stream(name=3)


# ---------------------------------------------------------------------- metadata
def test_channel_selection_by_label_and_units(unique_name):
    out = _outlet(unique_name)
    p = _Pusher(out)
    with EEGStream(unique_name, channels=["O2", "Oz"]) as s:
        assert s.ch_names == ("O2", "Oz") and s.sfreq == 256.0
        assert s.units == ("microvolts", "microvolts")
        assert s.latest_window(10) is None  # nothing yet
        x = p.push(64)
        assert _wait(lambda: s.n_samples_received >= 64)
        w = s.latest_window(64)
        np.testing.assert_allclose(w.data, x[:, [2, 0]].T * 1e-6, rtol=1e-6)  # µV -> V
        assert w.ch_names == ("O2", "Oz") and w.health.ok
        np.testing.assert_allclose(np.diff(w.timestamps), 1 / 256, atol=1e-6)
    with EEGStream(unique_name, unit="native") as s:
        x = p.push(32)
        assert _wait(lambda: s.n_samples_received >= 32)
        np.testing.assert_allclose(s.latest_window(32).data, x.T, rtol=1e-6)
    del out


def test_wrong_channel_names_error(unique_name):
    out = _outlet(unique_name)
    s = EEGStream(unique_name, channels=["Oz", "Cz", "oz"])
    with pytest.raises(StreamError, match=r"Channel\(s\) \['Cz', 'oz'\] are not in .* which "
                                          r"has \['Oz', 'O1', 'O2', 'POz'\]"):
        s.connect(timeout=10)
    assert not s.connected
    del out


def test_duplicated_labels_error(unique_name):
    out = _outlet(unique_name, labels=["Oz", "O1", "O1", "POz"])
    with pytest.raises(StreamError, match=r"labels several channels \['O1'\]"):
        EEGStream(unique_name).connect(timeout=10)
    with EEGStream(unique_name, channels=["Oz", "POz"]) as s:  # unambiguous selection is fine
        assert s.ch_names == ("Oz", "POz")
    del out


def test_missing_labels_fall_back_to_positions(unique_name):
    out = _outlet(unique_name, labels=None)
    with pytest.warns(RuntimeWarning, match="declares no channel labels"), \
            pytest.warns(RuntimeWarning, match=r"found \['none'\].*assuming microvolts"), \
            EEGStream(unique_name) as s:
        assert s.ch_names == ("ch1", "ch2", "ch3", "ch4")
    with pytest.warns(RuntimeWarning, match=r"assuming they are \['A', 'B', 'C', 'D'\]"), \
            EEGStream(unique_name, channels=["A", "B", "C", "D"], unit="native") as s:
        assert s.ch_names == ("A", "B", "C", "D")
    with pytest.raises(StreamError, match="2 were requested for its 4 channels"):
        EEGStream(unique_name, channels=["A", "B"]).connect(timeout=10)
    del out


def test_irregular_rate_and_string_streams_refused(unique_name):
    out = _outlet(unique_name, labels=None, sfreq=pylsl.IRREGULAR_RATE)
    with pytest.raises(StreamError, match="irregular sampling rate"):
        EEGStream(unique_name).connect(timeout=10)
    del out
    out2 = pylsl.StreamOutlet(pylsl.StreamInfo(unique_name + "s", "EEG", 1, 10.0,
                                               pylsl.cf_string, unique_name + "s"))
    with pytest.raises(StreamError, match="does not carry numbers"):
        EEGStream(unique_name + "s").connect(timeout=10)
    del out2
    out3 = _outlet(unique_name + "n")
    with pytest.raises(StreamError, match="not a marker stream"):
        MarkerStream(unique_name + "n", stype="EEG").connect(timeout=10)
    del out3


def test_unknown_unit_warns_and_assumes_microvolts(unique_name):
    out = _outlet(unique_name, unit="bananas")
    p = _Pusher(out)
    with pytest.warns(RuntimeWarning, match=r"found \['bananas'\].*assuming microvolts"), \
            EEGStream(unique_name) as s:
        assert s.units[0] == "bananas"
        x = p.push(16)
        assert _wait(lambda: s.n_samples_received >= 16)
        np.testing.assert_allclose(s.latest_window(16).data, x.T * 1e-6, rtol=1e-6)
    out_mv = _outlet(unique_name + "mv", unit="millivolts")
    p = _Pusher(out_mv)
    with EEGStream(unique_name + "mv") as s:
        x = p.push(16)
        assert _wait(lambda: s.n_samples_received >= 16)
        np.testing.assert_allclose(s.latest_window(16).data, x.T * 1e-3, rtol=1e-6)
    del out, out_mv


def test_argument_checks_and_state_guards():
    with pytest.raises(ValueError, match="lists a channel twice"):
        EEGStream("x", channels=["Oz", "Oz"])
    with pytest.raises(ValueError, match="'stall_timeout' must be in"):
        EEGStream("x", stall_timeout=0)
    with pytest.raises(ValueError, match="Allowed values are 'V', 'native'"):
        EEGStream("x", unit="uV")
    with pytest.raises(RuntimeError, match="call connect\\(\\) before latest_window"):
        EEGStream("x").latest_window(10)
    with pytest.raises(RuntimeError, match="call connect\\(\\) before pull"):
        MarkerStream("x").pull()


# ---------------------------------------------------------------------- health live
def test_gaps_nan_flat_clipped_reported_live(unique_name):
    out = _outlet(unique_name)
    p = _Pusher(out)
    with EEGStream(unique_name, buffer_s=5.0) as s:
        p.push(200)
        p.push(100, skip=50)  # 50 samples dropped by the sender
        assert _wait(lambda: s.n_samples_received >= 300)
        h = s.latest_window(300).health
        assert h.lost_samples == 50 and not h.stalled
        x = p.rng.standard_normal((256, 4)) * 10
        x[:, 1] = np.nan
        x[:, 2] = 5.0
        x[100:140, 3] = x[:, 3].max() + 50  # stuck at the rail
        p.push(256, values=x)
        assert _wait(lambda: s.n_samples_received >= 556)
        h = s.latest_window(256).health
        assert h.nan_channels == ("O1",)
        assert h.flat_channels == ("O2",)
        assert h.clipped_channels == ("POz",)
        assert not h.ok
    del out


def test_stall_detected_and_stream_reacquired(unique_name):
    """The outlet vanishes and comes back with the same source id."""
    out = _outlet(unique_name)
    p = _Pusher(out)
    with EEGStream(unique_name, stall_timeout=0.5) as s:
        t_push = time.monotonic()  # no sample can arrive before it was sent
        p.push(300)
        assert _wait(lambda: s.n_samples_received >= 300)
        assert not s.latest_window(256).health.stalled
        # 1. the sender pauses: stalled once stall_timeout has passed since the last sample,
        #    never before (how much later depends on the machine's load)
        t0 = time.monotonic()
        assert _wait(lambda: s.latest_window(256).health.stalled)
        paused = time.monotonic() - t0
        assert time.monotonic() - t_push >= 0.5
        p.push(10)
        assert _wait(lambda: not s.latest_window(256).health.stalled)
        # 2. the outlet disappears: lost (the figure is printed; it is usually < 0.5 s)
        t0 = time.monotonic()
        del out, p
        assert _wait(lambda: s.blind and s.latest_window(256).health.stalled)
        vanished = time.monotonic() - t0
        assert s.lost and s.n_reconnections == 0
        # 3. it comes back: re-acquired, buffer starts afresh
        out = _outlet(unique_name)
        p = _Pusher(out)
        assert _wait(lambda: s.n_reconnections == 1)
        assert s.latest_window(256) is None  # no window spans the gap
        p.push(300)
        assert _wait(lambda: s.n_buffered >= 300)
        w = s.latest_window(256)
        assert w.health.ok and not s.lost and not s.blind
        print(f"stall after pause: {paused:.3f} s; loss after outlet vanished: {vanished:.3f} s")
    del out


def test_pinned_stream_ignores_impostor_on_reacquire(unique_name):
    host = socket.gethostname()
    out = _outlet(unique_name)
    with EEGStream(source_id=unique_name, hostname=host) as s:
        del out
        assert _wait(lambda: s.lost)
        impostor = _outlet(unique_name + "-other", source_id=unique_name + "-other")
        time.sleep(1.2)
        assert s.lost and s.n_reconnections == 0
        del impostor


def test_marker_stream_pull(unique_name):
    out = pylsl.StreamOutlet(pylsl.StreamInfo(unique_name, "Markers", 1, 0, pylsl.cf_string,
                                              unique_name))
    with MarkerStream(unique_name) as m:
        time.sleep(0.2)
        t = pylsl.local_clock()
        out.push_sample(["13.0Hz"], t)
        out.push_sample(["rest"], t + 1)
        assert _wait(lambda: m.n_received >= 2)
        got = m.pull()
        assert [lab for _, lab in got] == ["13.0Hz", "rest"]
        assert got[0][0] == pytest.approx(t, abs=1e-3)
        assert m.pull() == []
    del out


def test_worker_error_is_reported_and_marks_stalled(unique_name, monkeypatch):
    """A bug in the worker is logged, handed to threading.excepthook (which fails a test
    under pytest), and the stream reads as stalled; the worker goes on."""
    import logging

    from bci._logging import logger

    records, hooked = [], []
    handler = logging.Handler()
    handler.emit = records.append
    logger.addHandler(handler)
    monkeypatch.setattr(threading, "excepthook", hooked.append)
    out = _outlet(unique_name)
    p = _Pusher(out)
    try:
        with EEGStream(unique_name, reconnect=False) as s:
            p.push(64)
            assert _wait(lambda: s.n_samples_received >= 64)

            def broken(inlet):
                raise ZeroDivisionError("boom")

            s._pull = broken
            assert _wait(lambda: s.lost)
            assert s.latest_window(64).health.stalled
            assert s._thread.is_alive()
    finally:
        logger.removeHandler(handler)
    assert any("acquisition thread failed" in r.getMessage() for r in records)
    assert hooked and isinstance(hooked[0].exc_value, ZeroDivisionError)
    assert hooked[0].thread is not threading.current_thread()
    del out


def test_wrong_declared_rate_is_measured_and_logged(unique_name, monkeypatch):
    import logging

    from bci._logging import logger
    from bci.acquisition import stream as stream_mod

    monkeypatch.setattr(stream_mod, "RATE_CHECK_S", 0.5)
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger.addHandler(handler)
    out = _outlet(unique_name, sfreq=128.0)  # declares 128 Hz, sends 256 Hz
    p = _Pusher(out, sfreq=256.0)
    try:
        with EEGStream(unique_name) as s:
            for _ in range(20):
                p.push(16)
                time.sleep(1 / 16)
            assert _wait(lambda: s.n_samples_received >= 320)
            assert s.effective_sfreq() == pytest.approx(256.0, rel=1e-3)
            assert _wait(lambda: any("declares 128 Hz" in r.getMessage() for r in records))
    finally:
        logger.removeHandler(handler)
    del out
