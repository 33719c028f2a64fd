"""The generative model behind synthetic EEG, producing samples chunk by chunk.

Every component draws from its own random generator, one row per sample, and every filter
carries its state, so the output does not depend on how it is cut into chunks: generating
10 s at once or in 1/16 s chunks gives the same samples (the LSL source and
:func:`~bci.sources.synthetic.synthesize_raw` share this model).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import signal

from bci.labels import label_to_freq
from bci.sources.schedule import Schedule

# Paul Kellet's "economy" pink-noise filter (-3 dB/octave over ~9 octaves).
_PINK_B = np.array([0.049922035, -0.095993537, 0.050612699, -0.004408786])
_PINK_A = np.array([1.0, -2.494956002, 2.017265875, -0.522189400])

# Rough anterior -> posterior gain by 10-20 prefix (longest prefix wins).
_BLINK_GAIN = {"FP": 1.0, "AF": 0.7, "F": 0.5, "FC": 0.35, "FT": 0.3, "C": 0.25, "T": 0.2,
               "CP": 0.18, "TP": 0.15, "P": 0.12, "PO": 0.09, "O": 0.05, "I": 0.04}
_SSVEP_GAIN = {"O": 0.85, "I": 0.6, "PO": 0.55, "P": 0.3, "CP": 0.12, "TP": 0.1}
_SSVEP_EXACT = {"OZ": 1.0, "O1": 0.85, "O2": 0.85, "POZ": 0.65, "PO3": 0.5, "PO4": 0.5,
                "PO7": 0.4, "PO8": 0.4}


def _prefix_gain(name: str, table: dict[str, float], default: float) -> float:
    letters = "".join(c for c in name.upper() if c.isalpha())
    letters = letters[:-1] if letters.endswith("Z") else letters
    for n in range(len(letters), 0, -1):
        if letters[:n] in table:
            return table[letters[:n]]
    return default


def spatial_weights(ch_names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Return (ssvep_gain, blink_gain) per channel from the 10-20 names."""
    ssvep = np.array([
        _SSVEP_EXACT.get(c.upper(), _prefix_gain(c, _SSVEP_GAIN, 0.05)) for c in ch_names
    ])
    blink = np.array([_prefix_gain(c, _BLINK_GAIN, 0.1) for c in ch_names])
    return ssvep, blink


def _filter_rms(b: np.ndarray, a: np.ndarray, n: int = 20000) -> float:
    imp = np.zeros(n)
    imp[0] = 1.0
    return float(np.sqrt(np.sum(signal.lfilter(b, a, imp) ** 2)))


class SyntheticSignal:
    """Stateful generator of multichannel synthetic SSVEP EEG, in volts.

    See :func:`bci.sources.synthetic.synthesize_raw` for the parameters.
    """

    def __init__(
        self,
        schedule: Schedule,
        *,
        sfreq: float,
        ch_names: Sequence[str],
        snr: float,
        phase_locked: bool,
        seed: int,
        loop: bool,
        background_uv: float,
        alpha_uv: float,
        mains_uv: float,
        mains_freq: float,
        blink_rate: float,
        blink_uv: float,
        latency_s: tuple[float, float],
        ramp_s: float,
        harmonics: Sequence[float],
    ) -> None:
        self.schedule = schedule
        self.sfreq = float(sfreq)
        self.ch_names = tuple(ch_names)
        self.loop = bool(loop)
        self.phase_locked = bool(phase_locked)
        self.harmonics = np.asarray(harmonics, dtype=float)
        self.latency_s = (float(latency_s[0]), float(latency_s[1]))
        self.ramp_s = float(ramp_s)
        self.n_cycle = schedule.n_samples(self.sfreq)
        self.seg_start = schedule.onset_samples(self.sfreq)
        self.seg_end = np.append(self.seg_start[1:], self.n_cycle)
        self.seg_freq = [label_to_freq(lab) for lab in schedule.labels]
        self.position = 0
        n_ch = len(self.ch_names)
        ss = np.random.SeedSequence(seed)
        (r_init, self._r_bg, self._r_alpha, self._r_blink, self._r_blink_amp,
         self._r_trial) = (np.random.default_rng(s) for s in ss.spawn(6))
        self.ssvep_w, self.blink_w = spatial_weights(self.ch_names)
        self.ch_phase = r_init.uniform(-0.3, 0.3, size=(n_ch, len(self.harmonics)))
        self.ch_phase[:, :] *= self.ssvep_w[:, None] < 1.0  # Oz is the phase reference
        self.locked_phase = r_init.uniform(0, 2 * np.pi, size=(64, len(self.harmonics)))
        self.mains_phase = r_init.uniform(0, 2 * np.pi, size=n_ch)
        self.mains_gain = mains_uv * r_init.uniform(0.6, 1.4, size=n_ch)
        self.mains_freq = float(mains_freq)
        self.alpha_freq = r_init.uniform(9.5, 10.5)
        self.alpha_w = np.clip(0.5 + 0.6 * self.ssvep_w, 0, 1.0) * alpha_uv
        self.env_freq = r_init.uniform((0.05, 0.13), (0.09, 0.23))
        self.env_phase = r_init.uniform(0, 2 * np.pi, size=2)
        # background: n_ch independent pink sources + one common source
        self.bg_scale = background_uv / _filter_rms(_PINK_B, _PINK_A)
        self.rho = 0.35
        self.floor_uv = 0.15 * background_uv  # amplifier noise
        self.amp_uv = float(snr) * background_uv
        nyq = self.sfreq / 2
        lo, hi = (self.alpha_freq - 1.2) / nyq, min((self.alpha_freq + 1.2) / nyq, 0.99)
        self._alpha_ba = signal.butter(2, [lo, hi], btype="bandpass")
        self._alpha_scale = 1.0 / _filter_rms(*self._alpha_ba)
        self.blink_len = int(round(0.35 * self.sfreq))
        tb = np.arange(self.blink_len) / self.blink_len
        self.blink_shape = np.sin(np.pi * tb) ** 2 * (1 - 0.3 * tb)
        self.blink_rate = float(blink_rate)
        self.blink_uv = float(blink_uv)
        self._blink_carry = np.zeros((n_ch, self.blink_len))
        # filter states, warmed up so the output starts stationary
        burn = r_init.standard_normal((int(10 * self.sfreq), n_ch + 1))
        zi0 = signal.lfilter_zi(_PINK_B, _PINK_A)[:, None] * np.zeros((1, n_ch + 1))
        _, self._zi_bg = signal.lfilter(_PINK_B, _PINK_A, burn, axis=0, zi=zi0)
        burn_a = r_init.standard_normal((int(4 * self.sfreq), 1))
        zi_a = np.zeros((max(len(self._alpha_ba[0]), len(self._alpha_ba[1])) - 1, 1))
        _, self._zi_alpha = signal.lfilter(*self._alpha_ba, burn_a, axis=0, zi=zi_a)
        self._trials: dict[int, tuple[float, float, np.ndarray]] = {}
        self._next_trial = 0

    # ------------------------------------------------------------------ schedule
    def segment_bounds(self, j: int) -> tuple[int, int, float | None]:
        """(start, end, freq) of global segment ``j`` (counting across loop cycles)."""
        cyc, s = divmod(j, len(self.seg_start))
        off = cyc * self.n_cycle
        return int(self.seg_start[s] + off), int(self.seg_end[s] + off), self.seg_freq[s]

    def segment_index(self, sample: int) -> int:
        """Global segment index containing ``sample``."""
        cyc, pos = divmod(int(sample), self.n_cycle)
        s = int(np.searchsorted(self.seg_start, pos, side="right") - 1)
        return cyc * len(self.seg_start) + s

    def _trial(self, j: int) -> tuple[float, float, np.ndarray]:
        """(latency_s, amplitude factor, phases per harmonic) of segment ``j``."""
        while self._next_trial <= j:
            lat = self._r_trial.uniform(*self.latency_s)
            amp = float(np.exp(self._r_trial.normal(0.0, 0.15)))
            ph = self._r_trial.uniform(0, 2 * np.pi, size=len(self.harmonics))
            self._trials[self._next_trial] = (lat, amp, ph)
            self._next_trial += 1
        for k in [k for k in self._trials if k < j - 4]:
            del self._trials[k]
        return self._trials[j]

    # ------------------------------------------------------------------ generation
    def generate(self, n: int) -> np.ndarray:
        """Return the next ``n`` samples (fewer at the end of a non-looping schedule).

        Returns
        -------
        data : ndarray, shape (n_channels, n_samples)
            Volts.
        """
        if not self.loop:
            n = min(int(n), self.n_cycle - self.position)
        n = max(int(n), 0)
        n_ch = len(self.ch_names)
        if n == 0:
            return np.zeros((n_ch, 0))
        n0 = self.position
        idx = np.arange(n0, n0 + n)
        t = idx / self.sfreq
        # 1/f background with a common component
        white = self._r_bg.standard_normal((n, 2 * n_ch + 1))
        pink, self._zi_bg = signal.lfilter(_PINK_B, _PINK_A, white[:, :n_ch + 1], axis=0,
                                           zi=self._zi_bg)
        bg = np.sqrt(1 - self.rho) * pink[:, :n_ch] + np.sqrt(self.rho) * pink[:, n_ch:]
        out = (bg * self.bg_scale + self.floor_uv * white[:, n_ch + 1:]).T
        # SSVEP and the attention envelope
        ssvep, attention = self._ssvep(idx, t)
        out += ssvep
        # alpha, waxing and waning, weaker while attending a flicker
        a_noise = self._r_alpha.standard_normal((n, 1))
        alpha, self._zi_alpha = signal.lfilter(*self._alpha_ba, a_noise, axis=0,
                                               zi=self._zi_alpha)
        env = 0.55 + 0.45 * np.sin(2 * np.pi * self.env_freq[0] * t + self.env_phase[0]) * \
            np.cos(2 * np.pi * self.env_freq[1] * t + self.env_phase[1])
        gain = env * (1.0 - 0.4 * attention) * self._alpha_scale * np.sqrt(2)
        out += self.alpha_w[:, None] * (alpha[:, 0] * gain)[None, :]
        # mains
        ph = 2 * np.pi * self.mains_freq * t[None, :] + self.mains_phase[:, None]
        out += self.mains_gain[:, None] * np.sin(ph)
        if 2 * self.mains_freq < self.sfreq / 2:
            out += 0.1 * self.mains_gain[:, None] * np.sin(2 * ph)
        out += self._blinks(n)
        self.position += n
        return out * 1e-6

    def _ssvep(self, idx: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n_ch = len(self.ch_names)
        out = np.zeros((n_ch, len(idx)))
        attention = np.zeros(len(idx))
        tail = int(np.ceil((self.latency_s[1] + self.ramp_s) * self.sfreq)) + 1
        j0 = self.segment_index(max(int(idx[0]) - tail, 0))
        j1 = self.segment_index(int(idx[-1]))
        for j in range(j0, j1 + 1):
            start, end, freq = self.segment_bounds(j)
            lat, amp, phases = self._trial(j)
            if freq is None:
                continue
            if self.phase_locked:
                lat = sum(self.latency_s) / 2
                phases = self.locked_phase[int(round(freq * 10)) % len(self.locked_phase)]
            ts = (idx - start) / self.sfreq - lat  # time since response onset
            te = (idx - end) / self.sfreq - lat  # time since response offset
            env = np.clip(ts / self.ramp_s, 0, 1) * np.clip(1 - te / self.ramp_s, 0, 1)
            if not env.any():
                continue
            attention = np.maximum(attention, env)
            for h, a_h in enumerate(self.harmonics):
                if h and (h + 1) * freq >= self.sfreq / 2:
                    break
                arg = 2 * np.pi * (h + 1) * freq * ts
                wave = np.sin(arg[None, :] + phases[h] + self.ch_phase[:, h:h + 1])
                out += (self.amp_uv * amp * a_h * self.ssvep_w)[:, None] * wave * env
        return out, attention

    def _blinks(self, n: int) -> np.ndarray:
        n_ch = len(self.ch_names)
        L = self.blink_len
        buf = np.zeros((n_ch, n + L))
        buf[:, :L] += self._blink_carry
        onsets = np.flatnonzero(self._r_blink.random(n) < self.blink_rate / self.sfreq)
        for k in onsets:
            a = self.blink_uv * self._r_blink_amp.uniform(0.6, 1.4)
            buf[:, k:k + L] += (a * self.blink_w)[:, None] * self.blink_shape[None, :]
        self._blink_carry = buf[:, n:n + L].copy()
        return buf[:, :n]
