"""Session summary, plots and live view on a hand-made session record."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from bci.acquisition.window import SignalHealth
from bci.app.live_view import LiveView, ViewState, render_lines, render_plain
from bci.app.record import SessionRecord
from bci.app.session_plots import path_figure, plot_path, plot_scores, scores_figure
from bci.app.summary import format_summary, summarize, write_summary
from bci.online.decision import Decision

CLASSES = ("13.0Hz", "17.0Hz", "rest")


def _record() -> SessionRecord:
    rec = SessionRecord(mapping={"13.0Hz": "walk", "17.0Hz": "stand"}, t0=100.0, t_end=130.0)
    for t, lab in [(100, "rest"), (105, "17.0Hz"), (110, "rest"), (115, "13.0Hz"),
                   (120, "rest"), (125, "17.0Hz")]:
        rec.add_cue(t, lab)
    rng = np.random.default_rng(0)
    for t in np.arange(100.0, 130.0, 0.1):
        rec.add_decision(Decision(timestamp=float(t), window_end=float(t), classes=CLASSES,
                                  scores=tuple(rng.normal(size=3)), outcome=None,
                                  reason="rest", latency_s=0.004))
    ev = [
        (107.0, "17.0Hz", "stand", "awaiting_confirmation", ""),
        (110.5, "17.0Hz", "stand", "executed", ""),  # late, within the grace after the cue
        (117.0, "13.0Hz", "walk", "executed", ""),
        (122.0, "13.0Hz", "walk", "executed", ""),  # during rest: false activation
        (126.0, "13.0Hz", "walk", "refused", "walk refused while walking: stop first"),
        (127.0, "13.0Hz", "walk", "executed", ""),  # wrong target for the 17 Hz cue
    ]
    for t, label, cmd, result, reason in ev:
        rec.add_event(t, "command", {"label": label, "command": cmd, "result": result,
                                     "reason": reason, "rtt_s": 0.01})
    rec.add_event(123.0, "safety_stop", {"reason": "EEG stream stalled"})
    for i, t in enumerate(np.arange(117.0, 121.0, 0.5)):
        rec.add_pose(float(t), 0.25 * i, 0.0, 0.0, "WALKING")
    return rec


def test_summary_scores_commands_against_cues(tmp_path):
    s = summarize(_record(), grace_s=1.0)
    assert s["n_executed"] == 4
    assert [c["command"] for c in s["commands_executed"]] == ["stand", "walk", "walk", "walk"]
    assert s["refused"] == {"walk refused while walking: stop first": 1}
    assert s["n_awaiting_confirmation"] == 1
    assert s["safety_stops"] == {"EEG stream stalled": 1}
    assert s["false_activations"] == 1 and s["wrong_commands"] == 1
    rows = [r for r in s["cues"] if r["label"] != "rest"]
    assert [r["hit"] for r in rows] == [True, True, False]
    assert rows[0]["time_to_command_s"] == pytest.approx(2.0)
    assert s["rest_s"] == pytest.approx(15.0)
    assert s["false_activations_per_min_rest"] == pytest.approx(4.0)
    assert s["latency"]["processing_median_s"] == pytest.approx(0.004)
    text = format_summary(s)
    assert "Commands executed (4): stand, walk, walk, walk" in text
    assert "2/3 target cues got their command, 1 wrong command(s), 1 false activation(s)" in text
    p = write_summary(s, tmp_path / "summary.json")
    assert json.loads(p.read_text())["n_executed"] == 4


def test_summary_without_cues_or_commands():
    s = summarize(SessionRecord(), grace_s=1.0)
    assert s["cues"] is None and s["false_activations"] is None and s["n_executed"] == 0
    assert "Commands executed (0): none" in format_summary(s)


def test_plots_are_written(tmp_path):
    rec = _record()
    for f, name in ((plot_scores, "scores.png"), (plot_path, "path.png")):
        p = f(rec, tmp_path / name)
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 20_000
    empty = plot_path(SessionRecord(), tmp_path / "empty.png")
    assert empty.stat().st_size > 0


def _texts(fig) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in ax.texts]


def test_path_plot_says_no_motion_instead_of_a_path():
    rec = SessionRecord(t0=100.0, t_end=130.0)
    rec.add_pose(100.00, 0.0, 0.0, 0.0, "SITTING")
    rec.add_pose(100.04, 0.0, 0.0, 0.0, "STANDING")
    fig = path_figure(rec)
    assert len(fig.axes) == 1  # no colour bar over an instant
    assert "Exoskeleton path: no motion (posture SITTING -> STANDING)" == \
        fig.axes[0].get_title()
    assert any(t.startswith("no motion: the exoskeleton stayed at x = +0.00 m, y = +0.00 m")
               for t in _texts(fig))
    moving = path_figure(_record())
    assert len(moving.axes) == 2 and "no motion" not in moving.axes[0].get_title()
    assert moving.axes[1].get_ylabel() == "time since session start (s)"


def test_scores_plot_shows_probabilities_reasons_and_readable_cue_labels():
    fig = scores_figure(_record())
    ax = fig.axes[0]
    assert ax.get_ylabel() == "decoder score (unitless; higher = more likely)"
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any(t.startswith("command refused:\n  walk: walk refused while walking") for t in
               legend)
    assert not any("refused" in t for t in _texts(fig))  # no text over the curves
    # log-probabilities (a decoder with a calibrated rest class) are drawn as probabilities
    rec = SessionRecord(t0=0.0, t_end=240.0)
    p = np.array([0.7, 0.2, 0.1])
    for t in np.arange(0.0, 240.0, 0.5):
        rec.add_decision(Decision(timestamp=float(t), window_end=float(t), classes=CLASSES,
                                  scores=tuple(np.log(p)), outcome=None, reason="rest"))
    for k, t in enumerate(np.arange(0.0, 240.0, 2.0)):  # a cue every 2 s for 4 minutes
        rec.add_cue(float(t), ("13.0Hz", "17.0Hz", "rest")[k % 3])
    fig = scores_figure(rec)
    ax = fig.axes[0]
    assert ax.get_ylabel().startswith("probability")
    assert np.allclose(ax.lines[0].get_ydata(), 0.7)  # exp of the log-probability
    renderer = fig.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in ax.texts]
    assert 0 < len(boxes) < 120  # some cue labels left out rather than overlapping
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert not a.overlaps(b)


def test_live_view_in_place_and_plain():
    state = ViewState(classes=list(CLASSES), scores=[0.6, 0.2, 0.1],
                      mapping={"13.0Hz": "walk", "17.0Hz": "stand"}, decision="13.0Hz -> walk",
                      posture="WALKING", pose=(1.0, 0.5, 90.0), last_ack="ACK WALK",
                      ch_names=["Oz", "O1"], bad_channels={"O1": "flat"}, latency_ms=3.2,
                      rule="a target must win 4 windows in a row", margin=0.4)
    lines = render_lines(state)
    assert any("13.0Hz" in ln and "walk" in ln and "0.600" in ln for ln in lines)
    assert any("Oz:ok O1:flat" in ln for ln in lines)
    assert any("WALKING" in ln and "heading=+90 deg" in ln and "ACK WALK" in ln for ln in lines)
    out = io.StringIO()
    view = LiveView(out, tty=True)
    view.draw(state)
    view.draw(state)
    text = out.getvalue()
    assert f"\x1b[{len(lines)}F" in text  # the second frame overwrites the first
    out = io.StringIO()
    view = LiveView(out, tty=False, plain_period_s=60)
    view.draw(state)
    view.draw(state)  # not due yet
    assert out.getvalue().count("\n") == 1 and "\x1b" not in out.getvalue()
    assert "decision='13.0Hz -> walk'" in out.getvalue()


def test_health_problems_reach_the_view():
    view = ViewState(classes=list(CLASSES))
    d = Decision(timestamp=1.0, window_end=1.0, classes=CLASSES, scores=(0.1, 0.2, 0.3),
                 outcome=None, reason="unhealthy",
                 health=SignalHealth(flat_channels=("O1",), nan_channels=("Oz",)),
                 latency_s=0.002)
    view.show_decision(d)
    assert view.bad_channels == {"O1": "flat", "Oz": "NaN"}
    assert view.stream_status == "bad signal"
    assert view.decision == "no control: unhealthy"


def test_live_view_shows_log_probabilities_as_probabilities():
    import math

    state = ViewState(classes=["13.0Hz", "rest"], scores=[math.log(0.2), math.log(0.8)])
    lines = render_lines(state)
    assert lines[1] == "probabilities"
    assert any(ln.strip().startswith("rest") and ln.endswith("0.800") for ln in lines)
    assert " top=rest:p=0.80 " in render_plain(state)


def test_live_view_marks_the_score_each_target_needs():
    state = ViewState(classes=["13.0Hz", "17.0Hz"], scores=[0.6, 0.3], min_margin=0.1)
    bars = [ln for ln in render_lines(state) if "Hz" in ln and "[" in ln]
    # 13 Hz needs 0.3 + 0.1 = 0.4, inside its filled bar; 17 Hz needs 0.7, past its end
    assert bars[0].index("|") < bars[0].rindex("#")
    assert bars[1].index("|") > bars[1].rindex("#")


def test_cues_canonicalised_and_other_markers_left_out():
    rec = SessionRecord(mapping={"13.0Hz": "walk"}, t0=0.0, t_end=20.0)
    for t, lab in [(0, "BAD_acq_skip"), (1, "Rest"), (5, "Stimulus/13 Hz"), (9, "start"),
                   (12, "rest")]:
        rec.add_cue(t, lab)
    assert rec.cues == [(1.0, "rest"), (5.0, "13.0Hz"), (12.0, "rest")]
    assert [c["label"] for c in summarize(rec)["cues"]] == ["rest", "13.0Hz", "rest"]


def test_kalunga_demo_verdict_says_passed_or_failed_with_the_figures(tmp_path, capsys):
    from bci.app.closed_loop import SessionResult
    from bci.cli.demo import _kalunga_verdict

    summ = summarize(_record(), grace_s=1.0)
    ran = SessionResult(exit_code=0, folder=tmp_path, summary=summ, stopped_by="end of source")
    assert _kalunga_verdict(ran) == 0
    out = capsys.readouterr().out
    assert out.startswith("Kalunga demo passed: the recording was replayed to its end; 2/3 "
                          "target cues got their command, 1 wrong command(s), 1 false "
                          "activation(s) in 15 s of rest.")
    cut = SessionResult(exit_code=0, folder=tmp_path, summary=summ, stopped_by="duration")
    assert _kalunga_verdict(cut) == 1
    assert "Kalunga demo FAILED: the replay stopped before the end of the recording " \
           "(duration)" in capsys.readouterr().err
    idle = summarize(SessionRecord(cues=[(0.0, "13.0Hz"), (5.0, "rest")], t0=0.0, t_end=10.0))
    none = SessionResult(exit_code=0, folder=tmp_path, summary=idle, stopped_by="end of source")
    assert _kalunga_verdict(none) == 1
    assert "FAILED: no target cue got its command; 0/1 target cues" in capsys.readouterr().err
