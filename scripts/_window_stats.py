"""Per-window sufficient statistics of the dev recordings, cached on disk (research scripts).

Every decoder studied for weak responders and the population decoder is a function of, per
sliding window and filter-bank sub-band: the channel covariance ``C = Xb Xb^T`` and the
projection ``P = Xb Q`` of the centred, band-passed window ``Xb`` on the orthonormal
sine/cosine reference basis ``Q`` of every target (``H`` harmonics, nested: its first ``2h``
columns span the ``h``-harmonic references). From them: canonical correlations for any number
of harmonics up to ``H``, RESS spatial filters and their power fractions, filter-bank
covariances (Riemannian features). Windows are cut as a virtual-clock replay of the online
loop cuts them (one every ``STEP`` s, each filtered on its own), so the cached statistics are
those the deployed decoders see.

The cache lives in ``cache/window-stats/`` (git-ignored); one ``.npz`` per session and window
length, built on first use.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from _bench_common import machine_info  # noqa: E402

from bci.datasets import cue_table, find_recordings, load_recording  # noqa: E402
from bci.decoders._filters import design_bands, filter_matrices  # noqa: E402
from bci.decoders._references import reference_bases  # noqa: E402

DATA = Path(os.environ.get("SSVEP_EXO_DATA", REPO.parent / "shared" / "data" / "kalunga2016"))
CACHE = REPO / "cache" / "window-stats"
FREQS = (13.0, 17.0, 21.0)
LABELS = ("13.0Hz", "17.0Hz", "21.0Hz", "rest")
STEP = 0.1
H_MAX = 5
#: Sub-bands: the three of ``ress-fbcca`` (up to its 3rd harmonic), then five reaching the
#: 5th harmonic of 21 Hz.
BANDS = np.array([[11, 64], [19, 64], [27, 64],
                  [11, 106], [19, 106], [27, 106], [35, 106], [43, 106]], float)
BASE_BANDS = (0, 1, 2)
WIDE_BANDS = (3, 4, 5, 6, 7)
#: Sessions the authors excluded or that duplicate another subject's.
EXCLUDED = {("subject07", "record-[2012.07.11-15.33.08]")}
_VERSION = 1


def machine() -> str:
    """One line describing the machine (for figures): processor, cores, Python."""
    m = machine_info()
    return f"{m['cpu']}, {m['cores']} cores, Python {m['python']}"


def stamp() -> str:
    """Date, time and machine."""
    return time.strftime("%Y-%m-%d %H:%M") + " on " + machine()


@dataclass
class SessionStats:
    """Cached statistics of one session for one window length.

    Attributes
    ----------
    subject, name : str
    window : float
        Window length (s).
    t : ndarray, shape (n_windows,)
        Time of each window's last sample (s from the recording's first sample).
    C : ndarray, shape (n_windows, n_bands, n_ch, n_ch)
    P : ndarray, shape (n_windows, n_bands, n_ch, n_freqs, 2 * H_MAX)
    onsets : ndarray
        Cue times (s).
    labels : ndarray of str
        Cue labels.
    end_s : float
        Length of the recording (s).
    """

    subject: str
    name: str
    window: float
    t: np.ndarray
    C: np.ndarray
    P: np.ndarray
    onsets: np.ndarray
    labels: np.ndarray
    end_s: float
    PN: np.ndarray | None = None  # neighbour projections (load_neighbours), when loaded

    @property
    def spacing(self) -> float:
        return float(np.median(np.diff(self.onsets)))

    def cue_index(self) -> np.ndarray:
        """Index of the cue each window ends in (-1 before the first cue)."""
        return np.searchsorted(self.onsets, self.t, side="right") - 1

    def trial_label(self) -> np.ndarray:
        """Label of the trial each window ends in ('' before the first cue or after the last
        trial's end)."""
        ci = self.cue_index()
        lab = np.where(ci >= 0, self.labels[np.clip(ci, 0, None)], "")
        end_last = self.onsets[-1] + self.spacing
        return np.where(self.t < end_last, lab, "")

    def train_mask(self, start: float = 1.0, end: float = 6.0, stride: float = 0.5,
                   shortest: float | None = None) -> np.ndarray:
        """Windows inside ``[cue + start, cue + end)`` (end clipped to the shortest trial),
        one every ``stride`` s: the training windows a ``window_s`` decoder cuts."""
        ci = self.cue_index()
        ok = ci >= 0
        on = self.onsets[np.clip(ci, 0, None)]
        end = min(end, shortest if shortest is not None else self.spacing)
        lo = on + start + self.window
        rel = self.t - lo
        k = np.round(rel / stride)
        on_grid = np.abs(rel - k * stride) < STEP / 2 + 1e-9
        return ok & (rel > -STEP / 2) & (self.t <= on + end + 1e-9) & on_grid

    def window_trial(self, mask) -> np.ndarray:
        """Cue index per window (for grouping training windows by trial)."""
        return self.cue_index()[mask]


def sessions(data: Path = DATA) -> dict[str, list[Path]]:
    """Dev sessions per subject (duplicates and none else dropped)."""
    found = find_recordings(data)
    out = {}
    for subj, paths in found.items():
        keep = [p for p in paths if (subj, p.name.replace("_raw.fif", "")) not in EXCLUDED]
        out[subj] = keep
    return out


def _window_ends(n_times: int, sfreq: float, window: float, step: float) -> np.ndarray:
    """End samples (exclusive) of the windows a virtual-clock replay decodes."""
    duration = n_times / sfreq
    k = np.arange(int(np.ceil((duration - window) / step)) + 1)
    t = window + k * step
    t = t[t < duration]
    return np.minimum(np.floor(t * sfreq + 1e-9).astype(int) + 1, n_times)


def _compute(path: Path, window: float, chunk: int = 128) -> dict:
    raw = load_recording(path)
    sfreq = float(raw.info["sfreq"])
    data = raw.get_data()
    onsets, labels = cue_table(raw)
    onsets = np.asarray(onsets, float)
    n = int(round(window * sfreq))
    ends = _window_ends(data.shape[1], sfreq, window, STEP)
    ends = ends[ends >= n]
    t = (ends - 1) / sfreq
    spacing = float(np.median(np.diff(onsets)))
    keep = (t >= onsets[0] - 5.0) & (t <= onsets[-1] + spacing + 0.5)
    ends, t = ends[keep], t[keep]
    mats = filter_matrices(design_bands(BANDS, sfreq), n)  # (b, n, n)
    Q = reference_bases(np.array(FREQS), sfreq, n, H_MAX)  # (f, n, 2H)
    Qc = Q.transpose(1, 0, 2).reshape(n, -1)  # (n, f*2H)
    view = np.lib.stride_tricks.sliding_window_view(data, n, axis=1)
    nb, nc = len(BANDS), data.shape[0]
    C = np.empty((len(ends), nb, nc, nc), np.float32)
    P = np.empty((len(ends), nb, nc, len(FREQS), 2 * H_MAX), np.float32)
    for lo in range(0, len(ends), chunk):
        sel = ends[lo:lo + chunk]
        W = np.ascontiguousarray(view[:, sel - n].transpose(1, 0, 2)) * 1e6  # microvolts
        Xb = np.matmul(W[None], mats[:, None])  # (b, w, c, n)
        Xb -= Xb.mean(axis=-1, keepdims=True)
        C[lo:lo + chunk] = np.einsum("bwcn,bwdn->wbcd", Xb, Xb)
        P[lo:lo + chunk] = (Xb @ Qc).transpose(1, 0, 2, 3).reshape(
            len(sel), nb, nc, len(FREQS), 2 * H_MAX)
    return {"t": t, "C": C, "P": P, "onsets": onsets, "labels": np.asarray(labels).astype(str),
            "end_s": data.shape[1] / sfreq, "version": _VERSION}


#: Offset (Hz) of the neighbour references of every harmonic (for SNR-type features).
NEIGHBOUR_HZ = 1.0
NEIGHBOUR_H = 3


def _neighbour_bases(sfreq: float, n: int) -> np.ndarray:
    """Orthonormal sin/cos bases at ``h f - d`` and ``h f + d`` for every target ``f`` and
    harmonic ``h``: ``(n, n_freqs * 2 * NEIGHBOUR_H * 2)`` ordered (freq, side, harmonic,
    sin/cos)."""
    t = np.arange(n) / sfreq
    cols = []
    for f in FREQS:
        for side in (-1, 1):
            for h in range(1, NEIGHBOUR_H + 1):
                fr = h * f + side * NEIGHBOUR_HZ
                for fn in (np.sin, np.cos):
                    c = fn(2 * np.pi * fr * t)
                    cols.append(c - c.mean())
    Y = np.array(cols).T
    out = np.empty_like(Y)
    for k in range(0, Y.shape[1], 2 * NEIGHBOUR_H):  # orthonormalise per (freq, side) block
        q, _ = np.linalg.qr(Y[:, k:k + 2 * NEIGHBOUR_H])
        out[:, k:k + 2 * NEIGHBOUR_H] = q
    return out


def load_neighbours(subject: str, path: Path, window: float) -> np.ndarray:
    """Projections of the base sub-bands' windows on the neighbour references,
    ``(n_windows, 3, n_ch, n_freqs, 2, 2 * NEIGHBOUR_H)`` (cached like :func:`load`)."""
    name = path.name.replace("_raw.fif", "")
    f = CACHE / f"{subject}_{name}_w{window:g}_nb.npy"
    if f.exists():
        return np.load(f, allow_pickle=False)
    st = load(subject, path, window, verbose=False)
    raw = load_recording(path)
    sfreq = float(raw.info["sfreq"])
    data = raw.get_data()
    n = int(round(window * sfreq))
    ends = np.round(st.t * sfreq).astype(int) + 1
    bands = BANDS[list(BASE_BANDS)]
    mats = filter_matrices(design_bands(bands, sfreq), n)
    Qn = _neighbour_bases(sfreq, n)
    view = np.lib.stride_tricks.sliding_window_view(data, n, axis=1)
    out = np.empty((len(ends), len(bands), data.shape[0], len(FREQS), 2, 2 * NEIGHBOUR_H),
                   np.float32)
    for lo in range(0, len(ends), 128):
        sel = ends[lo:lo + 128]
        W = np.ascontiguousarray(view[:, sel - n].transpose(1, 0, 2)) * 1e6
        Xb = np.matmul(W[None], mats[:, None])
        Xb -= Xb.mean(axis=-1, keepdims=True)
        out[lo:lo + 128] = (Xb @ Qn).transpose(1, 0, 2, 3).reshape(
            len(sel), len(bands), data.shape[0], len(FREQS), 2, 2 * NEIGHBOUR_H)
    np.save(f, out)
    return out


def load(subject: str, path: Path, window: float, *, verbose: bool = True) -> SessionStats:
    """The statistics of one session and window length (computed and cached on first use)."""
    name = path.name.replace("_raw.fif", "")
    f = CACHE / f"{subject}_{name}_w{window:g}.npz"
    d = None
    if f.exists():
        with np.load(f, allow_pickle=False) as z:
            if int(z["version"]) == _VERSION:
                d = {k: z[k] for k in z.files}
    if d is None:
        t0 = time.perf_counter()
        d = _compute(path, window)
        CACHE.mkdir(parents=True, exist_ok=True)
        np.savez(f, **d)
        if verbose:
            print(f"  cached {f.name} ({len(d['t'])} windows, "
                  f"{time.perf_counter() - t0:.0f} s)", flush=True)
    return SessionStats(subject, name, float(window), d["t"], d["C"], d["P"], d["onsets"],
                        d["labels"], float(d["end_s"]))


def load_all(window: float, data: Path = DATA, *, neighbours: bool = False
             ) -> dict[str, list[SessionStats]]:
    """Every dev session's statistics for one window length, per subject (with the
    neighbour projections when ``neighbours``)."""
    out = {s: [load(s, p, window) for p in paths] for s, paths in sessions(data).items()}
    if neighbours:
        for s, paths in sessions(data).items():
            for st, p in zip(out[s], paths):
                st.PN = load_neighbours(s, p, window)
    return out


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description="Build the per-window statistics cache.")
    ap.add_argument("--windows", default="1,2")
    ap.add_argument("--neighbours", action="store_true")
    a = ap.parse_args()
    for w in [float(x) for x in a.windows.split(",")]:
        print(f"window {w:g} s", flush=True)
        if a.neighbours:
            for s, paths in sessions().items():
                for p in paths:
                    load_neighbours(s, p, w)
                print(f"  {s}", flush=True)
        else:
            load_all(w)
