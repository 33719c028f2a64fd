"""A scripted schedule of what the simulated user attends: ``[(label, duration_s), ...]``."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from bci.labels import REST_LABEL, freq_label, label_to_freq


def _canonical(label: object) -> str:
    """Return the canonical label (``"13.0Hz"`` or ``"rest"``), or raise ValueError."""
    freq = label_to_freq(label)  # raises ValueError with a clear message
    return REST_LABEL if freq is None else freq_label(freq)


@dataclass(frozen=True)
class Schedule:
    """Segments of attention, each a canonical label and a duration in seconds.

    Parameters
    ----------
    segments : sequence of (label, duration_s)
        Labels are frequencies (``13``, ``"13"``, ``"13.0Hz"``) or ``"rest"``; they are stored
        in canonical form (``"13.0Hz"``, ``"rest"``, see :mod:`bci.labels`).

    Examples
    --------
    >>> Schedule.parse("rest:4,13:5,17:5").labels
    ('rest', '13.0Hz', '17.0Hz')
    """

    segments: tuple[tuple[str, float], ...]

    def __init__(self, segments: Iterable[Sequence[object]]) -> None:
        out = []
        for i, seg in enumerate(segments):
            if isinstance(seg, (str, bytes)) or len(seg) != 2:
                raise ValueError(
                    f"Schedule segment {i} must be a (label, duration_s) pair, got {seg!r}."
                )
            label, duration = seg
            dur = float(duration)
            if not np.isfinite(dur) or dur <= 0:
                raise ValueError(
                    f"Schedule segment {i} ({label!r}) must last a positive number of "
                    f"seconds, got {duration!r}."
                )
            out.append((_canonical(label), dur))
        if not out:
            raise ValueError("A schedule needs at least one (label, duration_s) segment.")
        object.__setattr__(self, "segments", tuple(out))

    # ---------------------------------------------------------------- constructors
    @classmethod
    def parse(cls, text: str) -> Schedule:
        """Parse ``"rest:4,13:5,17:5"`` (label:seconds pairs, comma separated)."""
        if not isinstance(text, str):
            raise TypeError(f"'text' must be an instance of str, got {type(text).__name__} instead.")
        segs = []
        for part in (p.strip() for p in text.split(",")):
            if not part:
                continue
            label, sep, dur = part.rpartition(":")
            if not sep or not label.strip():
                raise ValueError(
                    f"Cannot read schedule segment {part!r}: write label:seconds, e.g. "
                    f"'rest:4,13:5,17:5'."
                )
            try:
                seconds = float(dur)
            except ValueError:
                raise ValueError(
                    f"Cannot read the duration of schedule segment {part!r}: write "
                    f"label:seconds, e.g. '13:5'."
                ) from None
            segs.append((label.strip(), seconds))
        return cls(segs)

    @classmethod
    def from_config(cls, value: str | Iterable[object]) -> Schedule:
        """Build a schedule from a string or a TOML-like list.

        Accepts ``"rest:4,13:5"``, ``[["rest", 4], [13, 5]]`` and
        ``[{label = "rest", duration = 4}, {label = 13, duration = 5}]``.
        """
        if isinstance(value, Schedule):
            return value
        if isinstance(value, str):
            return cls.parse(value)
        segs = []
        for item in value:
            if isinstance(item, Mapping):
                unknown = set(item) - {"label", "duration", "duration_s"}
                if unknown or "label" not in item or not ({"duration", "duration_s"} & set(item)):
                    raise ValueError(
                        f"Schedule entries must be {{label = ..., duration = seconds}}, "
                        f"got {dict(item)!r}."
                    )
                segs.append((item["label"], item.get("duration", item.get("duration_s"))))
            else:
                segs.append(item)
        return cls(segs)

    @classmethod
    def interleaved(
        cls,
        freqs: Sequence[float] = (13.0, 17.0, 21.0),
        *,
        n_repeats: int = 2,
        trial_s: float = 5.0,
        rest_s: float = 4.0,
        lead_rest_s: float = 3.0,
        seed: int | None = 0,
    ) -> Schedule:
        """Targets in shuffled order, each followed by a rest period (no rest-first confound).

        Parameters
        ----------
        freqs : sequence of float
            Stimulus frequencies in Hz.
        n_repeats : int
            Trials per frequency.
        trial_s, rest_s, lead_rest_s : float
            Durations of a target trial, of the rest after it and of the leading rest.
        seed : int | None
            Seed of the shuffle (None keeps the given order).
        """
        order = [f for _ in range(int(n_repeats)) for f in freqs]
        if seed is not None:
            np.random.default_rng(seed).shuffle(order)
        segs: list[tuple[object, float]] = []
        if lead_rest_s > 0:
            segs.append((REST_LABEL, lead_rest_s))
        for f in order:
            segs.append((f, trial_s))
            if rest_s > 0:
                segs.append((REST_LABEL, rest_s))
        return cls(segs)

    # ---------------------------------------------------------------- views
    @property
    def labels(self) -> tuple[str, ...]:
        """Labels of the segments, in order."""
        return tuple(label for label, _ in self.segments)

    @property
    def durations(self) -> np.ndarray:
        """Durations of the segments in seconds."""
        return np.array([d for _, d in self.segments], dtype=float)

    @property
    def onsets(self) -> np.ndarray:
        """Start of each segment in seconds from the schedule start."""
        return np.concatenate([[0.0], np.cumsum(self.durations)[:-1]])

    @property
    def duration(self) -> float:
        """Total duration in seconds."""
        return float(self.durations.sum())

    @property
    def freqs(self) -> tuple[float, ...]:
        """The distinct target frequencies, sorted."""
        found = {label_to_freq(label) for label in self.labels}
        return tuple(sorted(f for f in found if f is not None))

    def onset_samples(self, sfreq: float) -> np.ndarray:
        """First sample of each segment at ``sfreq`` (rounded)."""
        return np.round(self.onsets * float(sfreq)).astype(np.int64)

    def n_samples(self, sfreq: float) -> int:
        """Number of samples of the whole schedule at ``sfreq``."""
        return int(round(self.duration * float(sfreq)))

    def to_string(self) -> str:
        """The ``"rest:4,13:5"`` form (frequencies without the Hz suffix)."""
        parts = []
        for label, dur in self.segments:
            freq = label_to_freq(label)
            name = REST_LABEL if freq is None else f"{freq:g}"
            parts.append(f"{name}:{dur:g}")
        return ",".join(parts)

    def __iter__(self) -> Iterator[tuple[str, float]]:
        return iter(self.segments)

    def __len__(self) -> int:
        return len(self.segments)
