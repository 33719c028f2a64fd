"""Figures of the reference firmware (devices/firmware), measured on its AVR image in simavr.

Prints, with the date and the machine:

- flash and RAM use of the ATmega328P image (avr-size) and the deepest stack it used while
  the conformance kit and the light runs below exercised it, with the margin left;
- the stimulus lights, measured from the simavr pin trace: frequency error against the
  requested frequency, duty cycle, edge jitter (RMS and peak to peak against the ideal wave)
  and interrupt-latency spread, for 13, 17 and 21 Hz and frequencies across the allowed range;
- the host's LSL markers (``ssvep-exo stimulus --leds``: stim_on / stim_off) against the
  simulated pin edges they stand for;
- the conformance kit (``ssvep-exo conformance --on-stand``) against the host build and the
  AVR image.

Needs ``make firmware``. Takes about two minutes.

    python scripts/firmware_figures.py [--trials 20] [--run-s 10] [--skip-conformance]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pylsl

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bci.app.led_stimulus import LedStimulus  # noqa: E402
from calibration.stimulus import Target  # noqa: E402
from devices.exoskeleton import ExoskeletonDriver  # noqa: E402
from devices.firmware_process import BUILD_DIR, FirmwareProcess  # noqa: E402
from devices.led_trace import flicker_runs, measure_run, read_trace  # noqa: E402

FLASH, SRAM = 32768, 2048  # ATmega328P (the bootloader takes 512 B of flash on an Uno)
BATCHES = (("13", "17", "21"), ("1", "7.5", "33.333", "59.94", "100"),
           ("2.5", "12.345", "45", "77.7", "99.999"))


def machine() -> str:
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"{platform.node()} ({platform.machine()}, {os.cpu_count()} CPUs, "
            f"load {load}), {datetime.datetime.now():%Y-%m-%d %H:%M}")


def memory() -> tuple[int, int]:
    out = subprocess.run(["avr-size", "-A", str(BUILD_DIR / "exo-fw.elf")], check=True,
                         capture_output=True, text=True).stdout
    size = {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\.\w+)\s+(\d+)", out, re.M)}
    flash = size.get(".text", 0) + size.get(".data", 0)
    ram = size.get(".data", 0) + size.get(".bss", 0) + size.get(".noinit", 0)
    return flash, ram


def stack_used(lines: list[str]) -> int | None:
    for line in lines:
        m = re.search(r"stack used at most (\d+) bytes", line)
        if m:
            return int(m.group(1))
    return None


def light_runs(run_s: float, tmp: Path) -> tuple[list[tuple], int | None]:
    """Flicker each batch of frequencies for ``run_s``; measure every light's run."""
    rows = []
    stack = 0
    for k, batch in enumerate(BATCHES):
        trace = tmp / f"lights{k}.csv"
        fw = FirmwareProcess("avr", trace=trace).start()
        try:
            with ExoskeletonDriver(fw.url) as exo:
                for n, f in enumerate(batch, start=1):
                    exo.led_set(n, float(f))
                exo.led_on(range(1, len(batch) + 1), run_s)
                time.sleep(run_s + 0.3)
        finally:
            fw.stop()
        stack = max(stack, stack_used(fw.output) or 0)
        tr = read_trace(trace)
        for n, f in enumerate(batch, start=1):
            runs = flicker_runs(tr[f"led{n}"])
            m = measure_run(runs[0], float(f))
            rows.append((float(f), m))
    return rows, stack


def marker_bound(trials: int, tmp: Path) -> np.ndarray:
    """stim_on / stim_off LSL markers minus the wall time of the pin edges they mark (s)."""
    trace = tmp / "markers.csv"
    name = f"fwfig-{os.getpid()}"
    targets = [Target(13.0, 0.0, "a"), Target(17.0, 0.0, "b"), Target(21.0, 0.0, "c")]
    markers = []
    with FirmwareProcess("avr", trace=trace) as fw:
        with LedStimulus(targets, fw.url, marker_name=name, say=lambda s: None,
                         on_marker=lambda m, t: markers.append((m, t))) as stim:
            for _ in range(trials):
                stim.run_trial("13.0Hz", cue_s=0.1, stim_s=0.5, rest_s=0.15)
    print("  " + next((ln for ln in fw.output if "slipped" in ln), ""))
    led = read_trace(trace)["led1"]
    runs = flicker_runs(led, gap_s=0.2)
    on = [m for m in markers if m[0] == "stim_on"]
    off = [m for m in markers if m[0] == "stim_off"]
    if len(runs) != trials or len(on) != trials:
        raise RuntimeError(f"{len(runs)} runs in the trace, {len(on)} stim_on markers, "
                           f"{trials} trials")
    d_on = [t - r.wall_ns[0] * 1e-9 for (_, t), r in zip(on, runs)]
    # stim_off marks the end of the run: 0.5 s at 13 Hz is 6.5 cycles, so the run ends on a
    # falling edge, the last one of the run
    d_off = [t - r.wall_ns[-1] * 1e-9 for (_, t), r in zip(off, runs)]
    return np.array(d_on), np.array(d_off)


def conformance(board: str) -> tuple[list[str], int | None]:
    """Run the conformance kit against ``board``; return its table and the deepest stack."""
    with FirmwareProcess(board) as fw:
        out = subprocess.run([sys.executable, "-m", "bci", "conformance", fw.url, "--on-stand"],
                             capture_output=True, text=True, timeout=600)
    lines = out.stdout.splitlines()
    start = next((i for i, ln in enumerate(lines) if ln.startswith("check")), 0)
    return lines[start:] + [f"(exit status {out.returncode})"], stack_used(fw.output)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=20, help="marker trials (default 20)")
    ap.add_argument("--run-s", type=float, default=10.0, help="seconds per light run")
    ap.add_argument("--skip-conformance", action="store_true")
    args = ap.parse_args()
    if args.run_s < 4.0:
        ap.error("--run-s must be at least 4 (three cycles of the 1 Hz light)")
    print(f"firmware figures, {machine()}")
    stack_kit = 0
    if not args.skip_conformance:
        for board in ("host", "avr"):
            print(f"\n## ssvep-exo conformance <{board} build's pty> --on-stand")
            table, used = conformance(board)
            stack_kit = max(stack_kit, used or 0)
            for line in table:
                print("  " + line)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        print(f"\n## Lights ({args.run_s:g} s runs, simavr pin trace)")
        print("  requested Hz | measured Hz | error Hz  | duty   | jitter rms/pp us | "
              "irq spread us | period min..max ms")
        rows, stack = light_runs(args.run_s, tmp)
        for f, m in rows:
            print(f"  {f:12.3f} | {m.freq_hz:11.5f} | {m.freq_hz - f:+.6f} | {m.duty:.4f} | "
                  f"{m.jitter_rms_s * 1e6:6.1f} / {m.jitter_pp_s * 1e6:6.1f} | "
                  f"{m.tick_latency_pp_s * 1e6:13.3f} | {m.period_min_s * 1e3:.2f}.."
                  f"{m.period_max_s * 1e3:.2f}")
        err = max(abs(m.freq_hz - f) for f, m in rows)
        print(f"  largest frequency error {err:.6f} Hz over {len(rows)} lights; duty "
              f"{min(m.duty for _, m in rows):.4f}..{max(m.duty for _, m in rows):.4f}; "
              f"jitter peak to peak at most {max(m.jitter_pp_s for _, m in rows) * 1e6:.1f} us")
        print(f"\n## LSL markers of `stimulus --leds` vs the pin edges ({args.trials} trials)")
        d_on, d_off = marker_bound(args.trials, tmp)
        for name, d in (("stim_on  - first rising edge", d_on),
                        ("stim_off - last falling edge", d_off)):
            print(f"  {name}: min {d.min() * 1e3:+.2f} / median {np.median(d) * 1e3:+.2f} / "
                  f"max {d.max() * 1e3:+.2f} ms")
    flash, ram = memory()
    print("\n## Memory (ATmega328P)")
    print(f"  flash {flash} B of {FLASH} ({100 * flash / FLASH:.1f} %; {FLASH - 512 - flash} B "
          "left beside an Uno's 512 B bootloader)")
    stack = max(stack, stack_kit)
    seen = "the light runs" + ("" if args.skip_conformance else " and the conformance kit")
    print(f"  RAM: static {ram} B + deepest stack {stack} B (during {seen}) = {ram + stack} B "
          f"of {SRAM}: {SRAM - ram - stack} B left")
    return 0


if __name__ == "__main__":
    pylsl.local_clock()
    sys.exit(main())
