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


MENUS = {"SITTING": {"17.0Hz": "stand"}, "STANDING": {"13.0Hz": "walk", "17.0Hz": "sit"},
         "WALKING": {"13.0Hz": "stop", "17.0Hz": "stop"}}


def _record() -> SessionRecord:
    rec = SessionRecord(menus=MENUS, t0=100.0, t_end=130.0)
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
        (110.5, "17.0Hz", "stand", "executed", ""),  # after the cue change: a false activation
        (117.0, "13.0Hz", "walk", "executed", ""),
        (122.0, "13.0Hz", None, "refused", "13.0Hz means nothing while sitting"),  # rest
        (126.0, "13.0Hz", "stop", "executed", ""),  # wrong target for the 17 Hz cue
        (127.0, "17.0Hz", "sit", "refused", "sit refused while walking: stop first"),
    ]
    for t, label, cmd, result, reason in ev:
        rec.add_event(t + 0.05, "command", {"label": label, "command": cmd, "result": result,
                                            "reason": reason, "rtt_s": 0.01,
                                            "t_decision": t})
    rec.add_event(123.0, "safety_stop", {"reason": "EEG stream stalled"})
    for i, t in enumerate(np.arange(117.0, 121.0, 0.5)):
        rec.add_pose(float(t), 0.25 * i, 0.0, 0.0, "WALKING")
    return rec


def test_summary_scores_selections_against_cues_with_the_one_scorer(tmp_path):
    s = summarize(_record())
    assert s["n_executed"] == 3
    assert [c["command"] for c in s["commands_executed"]] == ["stand", "walk", "stop"]
    assert s["refused"] == {"13.0Hz means nothing while sitting": 1,
                            "sit refused while walking: stop first": 1}
    assert s["n_awaiting_confirmation"] == 1
    assert s["safety_stops"] == {"EEG stream stalled": 1}
    # selections during rest count whatever became of them (one executed, one refused)
    assert s["false_activations"] == 2 and s["wrong_commands"] == 1
    rows = [r for r in s["cues"] if r["label"] != "rest"]
    assert [r["decision"] for r in rows] == ["hit", "hit", "wrong"]
    assert [r["executed"] for r in rows] == [False, True, False]
    assert rows[0]["result"] == "awaiting_confirmation" and rows[0]["time_s"] == 2.0
    assert rows[2]["selections"] == ["13.0Hz", "17.0Hz"]
    assert rows[2]["reason"] == "sit refused while walking: stop first"
    assert s["cues"][-1]["end"] - s["cues"][-1]["onset"] == 5.0  # one cue spacing
    assert s["rest_s"] == pytest.approx(15.0)
    assert s["false_activations_per_min_rest"] == pytest.approx(8.0)
    assert s["scores"]["executed_rate"] == pytest.approx(1 / 3)
    assert s["latency"]["processing_median_s"] == pytest.approx(0.004)
    assert s["latency"]["cue_to_command_median_s"] == pytest.approx(2.0)
    text = format_summary(s)
    assert "Commands executed (3): stand, walk, stop" in text
    assert ("2/3 target cues got the right selection first (1 executed), 1 with a wrong one, "
            "2 false activation(s)") in text
    p = write_summary(s, tmp_path / "summary.json")
    assert json.loads(p.read_text())["n_executed"] == 3


def test_a_source_played_faster_is_scored_in_seconds_of_signal():
    """At speed x4 the cues and selections are 1/4 s of real time apart per second of
    signal: the scoring against the cues (times from the cue, rest, false activations per
    minute of rest) is in seconds of signal, the session's duration in real seconds."""
    real = summarize(_record())
    fast = summarize(_record(), speed=4.0)
    assert [r["decision"] for r in fast["cues"]] == [r["decision"] for r in real["cues"]]
    assert fast["rest_s"] == pytest.approx(4 * real["rest_s"])
    assert fast["false_activations"] == real["false_activations"] == 2
    assert fast["false_activations_per_min_rest"] == pytest.approx(
        real["false_activations_per_min_rest"] / 4)
    assert fast["latency"]["cue_to_command_median_s"] == pytest.approx(
        4 * real["latency"]["cue_to_command_median_s"])
    assert fast["duration_s"] == real["duration_s"] and fast["speed"] == 4.0
    assert "speed" not in real
    assert "60 s of rest (seconds of signal, played x4)" in format_summary(fast)


def test_decoder_role_scores_the_decisions():
    rec = SessionRecord(t0=0.0, t_end=20.0)
    for t, lab in [(0, "rest"), (5, "13.0Hz"), (10, "17.0Hz")]:
        rec.add_cue(t, lab)
    rec.add_decision(Decision(timestamp=7.2, window_end=7.0, classes=CLASSES,
                              scores=(1.0, 0.0, 0.0), outcome="13.0Hz", reason="committed"))
    s = summarize(rec)
    assert [r["decision"] for r in s["cues"]] == ["rest", "hit", "none"]
    assert s["cues"][1]["time_s"] == 2.0  # from the window's last sample
    assert s["scores"]["executed_rate"] is None


def test_summary_without_cues_or_commands():
    s = summarize(SessionRecord())
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
    refused = [t for t in legend if t.startswith("command refused:\n")]
    assert refused and "sit: sit refused while walking: stop first (x1)" in refused[0]
    assert "13.0Hz: 13.0Hz means nothing while sitting (x1)" in refused[0]
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
                      menu={"13.0Hz": "stop", "17.0Hz": "stop"},
                      menu_line="walking: 13.0Hz stop, 17.0Hz stop", decision="13.0Hz selected",
                      posture="WALKING", pose=(1.0, 0.5, 90.0), last_ack="ACK WALK",
                      ch_names=["Oz", "O1"], bad_channels={"O1": "flat"}, latency_ms=3.2,
                      rule="evidence must add up to 2", threshold=2.0, evidence=1.0)
    lines = render_lines(state)
    assert any("13.0Hz" in ln and "stop" in ln and "0.600" in ln for ln in lines)
    assert "menu: walking: 13.0Hz stop, 17.0Hz stop" in lines
    ev = next(ln for ln in lines if ln.startswith("evidence"))
    assert "1.00" in ev and "threshold 2.00" in ev and ev.index("#") < ev.index("|")
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
    assert "decision='13.0Hz selected'" in out.getvalue()
    assert "menu='walking: 13.0Hz stop, 17.0Hz stop'" in out.getvalue()


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
    assert lines[1].startswith("probabilities")
    assert any(ln.strip().startswith("rest") and ln.endswith("0.800") for ln in lines)
    assert " top=rest:p=0.80 " in render_plain(state)


def test_cues_canonicalised_and_other_markers_left_out():
    rec = SessionRecord(t0=0.0, t_end=20.0)
    for t, lab in [(0, "BAD_acq_skip"), (1, "Rest"), (5, "Stimulus/13 Hz"), (9, "start"),
                   (12, "rest")]:
        rec.add_cue(t, lab)
    assert rec.cues == [(1.0, "rest"), (5.0, "13.0Hz"), (12.0, "rest")]
    assert [c["label"] for c in summarize(rec)["cues"]] == ["rest", "13.0Hz", "rest"]


def test_kalunga_demo_verdict_says_passed_or_failed_with_the_figures(tmp_path, capsys):
    from bci.app.closed_loop import SessionResult
    from bci.cli.demo import _kalunga_verdict

    summ = summarize(_record())
    ran = SessionResult(exit_code=0, folder=tmp_path, summary=summ, stopped_by="end of source")
    assert _kalunga_verdict(ran) == 0
    out = capsys.readouterr().out
    assert out.startswith("Kalunga demo passed: the recording was replayed to its end; 2/3 "
                          "target cues got the right selection first, 1 wrong selection(s), "
                          "2 false activation(s) in 15 s of rest.")
    cut = SessionResult(exit_code=0, folder=tmp_path, summary=summ, stopped_by="duration")
    assert _kalunga_verdict(cut) == 1
    assert "Kalunga demo FAILED: the replay stopped before the end of the recording " \
           "(duration)" in capsys.readouterr().err
    idle = summarize(SessionRecord(cues=[(0.0, "13.0Hz"), (5.0, "rest")], t0=0.0, t_end=10.0))
    none = SessionResult(exit_code=0, folder=tmp_path, summary=idle, stopped_by="end of source")
    assert _kalunga_verdict(none) == 1
    assert "FAILED: no target cue got its command; 0/1 target cues" in capsys.readouterr().err
