"""One decision of the online loop: what was decoded from one window and what it means."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from bci.acquisition.window import SignalHealth


@dataclass(frozen=True)
class Decision:
    """The outcome of one step of the online loop.

    Attributes
    ----------
    timestamp : float
        LSL clock time when the decision was made.
    window_end : float
        LSL timestamp of the last sample of the decoded window.
    classes : tuple of str
        Class labels, in the order of ``scores`` (``"13.0Hz"``, ..., maybe ``"rest"``).
    scores : tuple of float
        Decoder scores per class (higher is more likely); empty when nothing was decoded.
    outcome : str | None
        The committed target label when the policy selects one on this step; None means
        "no control" (nothing to do).
    winner : str | None
        The class with the top score on this window (before the policy), if any.
    reason : str
        Why the policy did or did not commit (e.g. ``"committed"``, ``"margin"``,
        ``"refractory"``, ``"latched"``, ``"rest"``, ``"unhealthy"``, ``"decoder_error"``).
    health : SignalHealth
        Stream health over the window.
    latency_s : float
        Processing time of this step (window fetch to decision), seconds.
    evidence : float
        The policy's largest accumulated evidence for a target after this window (0 when
        cleared); a target is committed when it reaches the policy's threshold.
    """

    timestamp: float
    window_end: float
    classes: tuple[str, ...]
    scores: tuple[float, ...]
    outcome: str | None
    winner: str | None = None
    reason: str = ""
    health: SignalHealth = field(default_factory=SignalHealth)
    latency_s: float = 0.0
    evidence: float = 0.0

    def to_dict(self) -> dict:
        """Plain-JSON form (used for the session log and the LSL decisions stream)."""
        return {
            "timestamp": self.timestamp,
            "window_end": self.window_end,
            "classes": list(self.classes),
            "scores": [float(s) for s in self.scores],
            "outcome": self.outcome,
            "winner": self.winner,
            "reason": self.reason,
            "health": self.health.to_dict(),
            "latency_s": self.latency_s,
            "evidence": self.evidence,
        }

    def to_json(self) -> str:
        """One-line JSON."""
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_dict(cls, d: dict) -> Decision:
        """Inverse of :meth:`to_dict`."""
        h = dict(d.get("health") or {})
        h.pop("ok", None)
        health = SignalHealth(
            stalled=bool(h.get("stalled", False)),
            lost_samples=int(h.get("lost_samples", 0)),
            nan_channels=tuple(h.get("nan_channels", ())),
            flat_channels=tuple(h.get("flat_channels", ())),
            clipped_channels=tuple(h.get("clipped_channels", ())),
            seconds_since_last_sample=float(h.get("seconds_since_last_sample", 0.0)),
        )
        return cls(
            timestamp=float(d["timestamp"]),
            window_end=float(d["window_end"]),
            classes=tuple(d.get("classes", ())),
            scores=tuple(float(s) for s in d.get("scores", ())),
            outcome=d.get("outcome"),
            winner=d.get("winner"),
            reason=str(d.get("reason", "")),
            health=health,
            latency_s=float(d.get("latency_s", 0.0)),
            evidence=float(d.get("evidence", 0.0)),
        )
