"""Watch the session's input: say at once when it stalls, end the session when it stays away.

The input is the EEG stream (roles ``"all"`` and ``"decoder"``) or another machine's
decisions stream (role ``"bridge"``). The safety supervisor already stops the exoskeleton and
inhibits motion on a stall; :class:`SourceWatch` tells the user (a message line, the live
view, the session log), notes when the input is back, and after ``source.max_stall_s``
without data ends the session (exit status :data:`bci.app.exits.EXIT_SOURCE_LOST`), so that a
headset switched off does not leave a session running silently for hours.
"""

from __future__ import annotations

from collections.abc import Callable

from bci.app.context import SessionContext, lsl_clock
from bci.app.exits import SOURCE_LOST


class SourceWatch:
    """Reports stalls of one input and ends the session when one lasts too long.

    Parameters
    ----------
    ctx : SessionContext
    what : str
        The input in words (``"EEG stream"``, ``"decisions stream"``).
    silent_for : callable
        Returns the seconds without data while the input is stalled, else None.
    max_stall_s : float
        End the session after a stall this long (0: never).

    Attributes
    ----------
    stalls : list of float
        Duration (s) of every stall, the current one included.
    """

    def __init__(self, ctx: SessionContext, what: str, silent_for: Callable[[], float | None],
                 max_stall_s: float) -> None:
        self.ctx = ctx
        self.what = what
        self.silent_for = silent_for
        self.max_stall_s = float(max_stall_s)
        self.stalls: list[float] = []
        self._stalled = False

    def check(self) -> None:
        """Look once (called by the session's main loop several times a second)."""
        ctx = self.ctx
        silent = self.silent_for()
        if silent is None:
            if self._stalled:
                self._stalled = False
                ctx.view.alert = ""
                ctx.say(f"{self.what} back after {self.stalls[-1]:.1f} s without data; the "
                        "exoskeleton stays stopped until the next selection.")
                ctx.log_event("source_back", {"stream": self.what,
                                              "stalled_s": round(self.stalls[-1], 3)})
            return
        if not self._stalled:
            self._stalled = True
            self.stalls.append(silent)
            ending = (f"; the session ends if it is not back within {self.max_stall_s:g} s "
                      "(source.max_stall_s)" if self.max_stall_s > 0 else "")
            ctx.say(f"{self.what} stalled: no data for {silent:.1f} s. The exoskeleton is "
                    f"stopped{ending}.")
            ctx.log_event("source_stalled", {"stream": self.what, "silent_s": round(silent, 3)})
            ctx.record.add_event(lsl_clock(), "source_stalled", {"stream": self.what})
        self.stalls[-1] = silent
        limit = f" of {self.max_stall_s:g} s" if self.max_stall_s > 0 else ""
        ctx.view.alert = f"{self.what} STALLED: no data for {silent:.1f} s{limit}"
        if self.max_stall_s > 0 and silent >= self.max_stall_s:
            ctx.say(f"No data from the {self.what} for {silent:.0f} s (source.max_stall_s = "
                    f"{self.max_stall_s:g}): ending the session.")
            ctx.log_event("source_lost", {"stream": self.what, "silent_s": round(silent, 3)})
            ctx.request_stop(SOURCE_LOST)

    def summary(self) -> dict:
        """``{"count", "total_s", "longest_s"}`` of the stalls."""
        return {"count": len(self.stalls), "total_s": round(sum(self.stalls), 3),
                "longest_s": round(max(self.stalls, default=0.0), 3)}
