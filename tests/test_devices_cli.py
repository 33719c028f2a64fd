"""``ssvep-exo exo-sim`` and ``ssvep-exo devices`` as a user runs them (real processes)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest

from devices.exoskeleton import ExoskeletonDriver
from devices.ports import list_serial_ports

EXE = [sys.executable, "-m", "bci"]


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_sim(*args: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([*EXE, "exo-sim", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    m = re.match(r"exo-sim: serving on (\S+)", line)
    assert m, (line, proc.poll())
    return proc, m.group(1)


def wait_for(pred, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.01)
    return bool(pred())


@pytest.mark.slow
def test_exo_sim_tcp_serves_on_localhost_and_killing_it_is_reported():
    port = free_port()
    proc, url = start_sim("--tcp", str(port), "--speed", "4")
    try:
        assert url == f"socket://127.0.0.1:{port}"
        events = []
        exo = ExoskeletonDriver(url, reconnect_max_s=0.3)
        exo.add_listener(lambda e, d: events.append(e) if e.startswith("link") else None)
        with exo:
            exo.stand()
            exo.walk(10)
            assert exo.wait_telemetry(lambda t: t.state == "WALKING", 3.0)
            proc.send_signal(signal.SIGKILL)  # the controller dies
            proc.wait(5)
            assert wait_for(lambda: "link_lost" in events, 3.0)
            assert not exo.link_ok  # lost, or trying to reconnect
            proc, url2 = start_sim("--tcp", str(port))  # power back on
            assert url2 == url
            assert wait_for(lambda: exo.link_ok, 5.0)
            assert exo.status().state == "SITTING"  # fresh controller, nothing replayed
    finally:
        proc.kill()
        proc.wait(5)


@pytest.mark.slow
def test_exo_sim_pty_prints_its_path_and_stops_on_sigint(tmp_path):
    link = tmp_path / "exo"
    proc, url = start_sim("--pty", "--link", str(link))
    try:
        assert url == str(link) and os.path.islink(link)
        assert os.readlink(link).startswith("/dev/pts/")
        with ExoskeletonDriver(url) as exo:
            exo.stand()
            assert exo.status().state == "STANDING"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(5) == 130
        assert "interrupted" in proc.stderr.read()
        assert not os.path.lexists(link)
    finally:
        proc.kill()
        proc.wait(5)


def test_exo_sim_port_in_use_is_a_one_line_error():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    try:
        r = subprocess.run([*EXE, "exo-sim", "--tcp", str(s.getsockname()[1])],
                           capture_output=True, text=True, timeout=60)
    finally:
        s.close()
    assert r.returncode == 2
    assert re.fullmatch(r"ssvep-exo exo-sim: error: Cannot listen on 127\.0\.0\.1:\d+ .*"
                        r"choose another port with --tcp PORT\.\n", r.stderr), r.stderr


def test_devices_lists_ports_and_streams(unique_name):
    import pylsl

    info = pylsl.StreamInfo(unique_name, "EEG", 2, 100.0, "float32", unique_name)
    outlet = pylsl.StreamOutlet(info)
    try:
        r = subprocess.run([*EXE, "devices", "--lsl-timeout", "2"], capture_output=True,
                           text=True, timeout=60)
    finally:
        del outlet
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("Serial ports (")
    for p in list_serial_ports():
        assert p["device"] in r.stdout
    assert unique_name in r.stdout and "type=EEG" in r.stdout


@pytest.mark.slow
def test_exo_sim_writes_and_draws_the_trajectory(tmp_path):
    from devices.trajectory import read_trajectory

    csv_path, png = tmp_path / "path.csv", tmp_path / "path.png"
    proc, url = start_sim("--tcp", str(free_port()), "--speed", "8", "--trajectory",
                          str(csv_path), "--plot", str(png))
    try:
        with ExoskeletonDriver(url) as exo:
            exo.stand()
            exo.walk(2)
            assert exo.wait_telemetry(lambda t: t.steps == 2 and not t.moving, 5.0)
            exo.turn("L", 90)
            assert exo.wait_telemetry(lambda t: t.heading > 89 and not t.moving, 5.0)
            exo.walk(1)
            assert exo.wait_telemetry(lambda t: t.steps == 3 and not t.moving, 5.0)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(20) == 130
    finally:
        proc.kill()
        proc.wait(5)
    rows = read_trajectory(csv_path)
    states = [r[1] for r in rows]
    assert states[0] == "SITTING" and "WALKING" in states and "TURNING" in states
    assert states[-1] == "STOPPED" or states[-1] == "STANDING"
    x, y = rows[-1][2], rows[-1][3]
    assert x == pytest.approx(1.0, abs=1e-3) and y == pytest.approx(0.5, abs=1e-3)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_read_trajectory_errors(tmp_path):
    from devices.errors import DeviceError
    from devices.trajectory import read_trajectory

    with pytest.raises(DeviceError, match="Trajectory file .* not found"):
        read_trajectory(tmp_path / "nope.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n")
    with pytest.raises(DeviceError, match="is not a trajectory file"):
        read_trajectory(bad)
    bad.write_text("t,state,x,y,heading,steps,fault\n1,STANDING,zz,0,0,0,NONE\n")
    with pytest.raises(DeviceError, match="has a malformed row"):
        read_trajectory(bad)


@pytest.mark.slow
@pytest.mark.parametrize("transport", ["tcp", "pty"])
def test_host_killed_while_walking_controller_halts(transport, tmp_path):
    """SIGKILL of the host process (no close(), no STOP): the controller halts by itself, on
    TCP when the connection closes (the session ends), on a serial line by its watchdog."""
    from devices.simulator import ExoSimulator

    code = ("import sys, time\n"
            "from devices.exoskeleton import ExoskeletonDriver\n"
            "exo = ExoskeletonDriver(sys.argv[1]).open()\n"
            "exo.stand(); exo.walk(10)\n"
            "print('walking', flush=True)\n"
            "time.sleep(60)\n")
    kw = {"link": str(tmp_path / "exo")} if transport == "pty" else {}
    with ExoSimulator(transport=transport, speed=2.0, **kw) as sim:
        host = subprocess.Popen([sys.executable, "-c", code, sim.url], stdout=subprocess.PIPE,
                                text=True)
        try:
            assert host.stdout.readline().strip() == "walking"
            assert wait_for(lambda: sim.snapshot().state == "WALKING", 3.0)
            host.send_signal(signal.SIGKILL)
            host.wait(5)
            assert wait_for(lambda: sim.snapshot().state == "STOPPED", 3.0)
        finally:
            host.kill()
            host.wait(5)
        halt = sim.model.halts[0]
        assert halt.reason == ("SESSION_END" if transport == "tcp" else "WATCHDOG")
        assert halt.state_before == "WALKING"
        assert sim.snapshot().steps < 10  # it did not walk on
        assert sim.model.session is None


def test_devices_lsl_timeout_is_validated():
    for bad in ("-1", "0", "nan", "inf", "soon"):
        r = subprocess.run([*EXE, "devices", "--lsl-timeout", bad], capture_output=True,
                           text=True, timeout=60)
        assert r.returncode == 2, (bad, r.stderr)
        assert "argument --lsl-timeout: expected seconds" in r.stderr
        assert "Traceback" not in r.stderr


@pytest.mark.slow
def test_devices_long_lsl_wait_stops_on_ctrl_c():
    proc = subprocess.Popen([*EXE, "devices", "--lsl-timeout", "600"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        while "LSL streams (looking for 600 s)" not in proc.stdout.readline():
            assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(20) == 130
        assert "interrupted" in proc.stderr.read()
    finally:
        proc.kill()
        proc.wait(5)


def test_devices_help_names_the_port_option_run_uses():
    r = subprocess.run([*EXE, "devices", "--help"], capture_output=True, text=True, timeout=60)
    assert "for --port" in r.stdout and "--exo" not in r.stdout
    r = subprocess.run([*EXE, "run", "--help"], capture_output=True, text=True, timeout=60)
    assert "--port" in r.stdout
