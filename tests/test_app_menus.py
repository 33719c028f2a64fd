"""Command menus against the safety supervisor's transition table, and the menus the project
ships taking the real simulated exoskeleton through stand, walk, turn, stop and sit."""

from __future__ import annotations

from pathlib import Path

import pytest

from bci.app.config import SessionConfig, load_config
from bci.app.menus import INITIAL_POSTURE, CommandMenus, default_menus, legal
from bci.app.online_eval import execute
from bci.errors import ConfigError
from devices.commands import Command
from devices.safety import LEGAL
from devices.simulator import ControllerModel

REPO = Path(__file__).resolve().parents[1]
LIGHTS = ["13.0Hz", "17.0Hz", "21.0Hz"]


@pytest.mark.parametrize("posture", sorted(LEGAL))
@pytest.mark.parametrize("command", [c.value for c in Command])
def test_a_menu_is_accepted_exactly_when_the_supervisor_allows_the_command(posture, command):
    allowed = command == "stop" or Command(command) in LEGAL[posture]
    menus = {posture.lower(): {"13.0Hz": command}}
    if allowed:
        assert CommandMenus.build(menus, LIGHTS).command(posture, "13.0Hz") == command
    else:
        with pytest.raises(ConfigError, match=f"{command} is not legal while"):
            CommandMenus.build(menus, LIGHTS)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
def test_default_menus_are_legal_for_any_number_of_lights(n):
    lights = [f"{f:.1f}Hz" for f in (13, 17, 21, 25, 29)[:n]]
    menus = default_menus(lights)
    assert all(legal(p, c) for p, m in menus.items() for c in m.values())
    assert menus["SITTING"] == dict.fromkeys(lights, "stand")  # any light gets it up
    assert set(menus["WALKING"].values()) == {"stop"}  # any light stops it
    assert CommandMenus.build(None, lights).to_dict() == menus


def test_the_simulator_starts_in_the_posture_the_menus_assume():
    assert ControllerModel().state == INITIAL_POSTURE


def _plan(menus: CommandMenus) -> list[tuple[float, str]]:
    """Selections (time, light) for stand -> walk -> stop -> turn -> sit through the menus."""
    steps = [("SITTING", "stand", 1.0), ("STANDING", "walk", 3.0), ("WALKING", "stop", 4.0),
             ("STOPPED", "turn_left", 6.0), ("STANDING", "sit", 12.0)]
    out = []
    for posture, command, t in steps:
        lights = [k for k, v in menus.menu(posture).items() if v == command]
        assert lights, f"no light means {command} while {posture.lower()}"
        out.append((t, lights[0]))
    return out


@pytest.mark.parametrize("source", ["defaults", "configs/demo.toml", "configs/example.toml"])
def test_shipped_menus_move_the_simulated_exoskeleton(source):
    cfg = SessionConfig() if source == "defaults" else load_config(REPO / source)
    plan = _plan(cfg.menus)
    no_confirm = SessionConfig({"device": {"confirm_posture_changes": False}})
    events = execute(plan, cfg.menus, speed=1.0, config=no_confirm)  # real time: holds under load
    assert [(e["command"], e["result"]) for e in events] == [
        ("stand", "executed"), ("walk", "executed"), ("stop", "executed"),
        ("turn_left", "executed"), ("sit", "executed")], events
