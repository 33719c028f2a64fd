"""The files of a session: its folder, ``summary.json``, the plots and the closing report.

Every session writes ``<output>/<YYYYmmdd-HHMMSS>-<role>/`` with ``recording.xdf`` (EEG, cues,
decisions), ``session.jsonl`` (decisions and every supervisor event), ``summary.json`` and the
plots (``scores.png`` when there were decisions; ``path.png`` when the session drove the
exoskeleton). A user error before anything ran leaves no folder behind.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from bci._logging import logger
from bci.app.record import SessionRecord
from bci.app.session_plots import plot_path, plot_scores
from bci.app.summary import format_summary, summarize, write_summary
from bci.errors import BCIError

#: File key -> how the report names it.
FILE_LABELS = {"recording": "recording", "log": "session log", "summary": "summary",
               "scores_plot": "scores plot (PNG)", "path_plot": "path plot (PNG)"}


def new_folder(output: str, role: str) -> Path:
    """Create and return a new session folder ``<output>/<stamp>-<role>[-i]``."""
    base = Path(output).expanduser()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for i in range(1000):
        folder = base / (f"{stamp}-{role}" + (f"-{i}" if i else ""))
        try:
            folder.mkdir(parents=True, exist_ok=False)
            return folder
        except FileExistsError:
            continue
        except OSError as exc:
            raise BCIError(
                f"Cannot create the session folder in '{base}' ({exc.strerror}): choose a "
                "writable folder with --output."
            ) from None
    raise RuntimeError("could not create a unique session folder")


def write_results(folder: Path, record: SessionRecord, *, extra: dict,
                  drove: bool, say, speed: float = 1.0) -> tuple[dict, dict[str, Path]]:
    """Write ``summary.json`` and the plots; return the summary and the files written.

    Parameters
    ----------
    folder : Path
    record : SessionRecord
    extra : dict
        Added to the summary (``stopped_by``, ``role``, ...).
    drove : bool
        The session drove the exoskeleton (then ``path.png`` is drawn).
    say : callable
        Prints a message (a file that could not be written).
    speed : float, default=1.0
        The source's speed factor (:func:`bci.app.summary.summarize`).
    """
    summary = summarize(record, speed=speed)
    summary.update(extra)
    files: dict[str, Path] = {}
    try:
        files["summary"] = write_summary(summary, folder / "summary.json")
    except OSError as exc:
        say(f"Could not write the summary: {exc}")
    try:
        if record.decisions:
            files["scores_plot"] = plot_scores(record, folder / "scores.png")
        if drove:
            files["path_plot"] = plot_path(record, folder / "path.png")
    except Exception as exc:  # noqa: BLE001 - plots are a convenience
        logger.exception("Plotting failed")
        say(f"Could not draw the plots: {exc}")
    return summary, files


def remove_if_empty(folder: Path | None, record: SessionRecord) -> None:
    """After a user error before anything ran, leave no half-empty session folder."""
    if folder is not None and not record.decisions and \
            {p.name for p in folder.iterdir()} <= {"session.jsonl"}:
        shutil.rmtree(folder, ignore_errors=True)


def report_text(stopped_by: str, summary: dict, files: dict[str, Path]) -> str:
    """Summary text and the paths of the files written."""
    lines = ["", f"Session ended ({stopped_by or 'end'})."]
    stalls = summary.get("stalls") or {}
    if stalls.get("count"):
        lines.append(f"The input stalled {stalls['count']} time(s), {stalls['total_s']:.1f} s in "
                     f"all (longest {stalls['longest_s']:.1f} s); the exoskeleton was stopped "
                     "each time.")
    lines += [format_summary(summary), "Files written:"]
    for key, label in FILE_LABELS.items():
        if key in files and Path(files[key]).exists():
            lines.append(f"  {label:<18} {files[key]}")
    return "\n".join(lines)
