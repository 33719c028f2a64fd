"""Session configuration: defaults, TOML files, overrides and every error message."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bci.app.config import SCHEMA, SECTIONS, SessionConfig, load_config
from bci.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "session.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_defaults_cover_every_key():
    cfg = SessionConfig()
    d = cfg.to_dict()
    for sec, keys in SCHEMA.items():
        if sec != "menu":
            assert set(d[sec]) == set(keys)
    assert cfg.targets == ["13.0Hz", "17.0Hz", "21.0Hz"]
    assert set(cfg.menus.menu("SITTING").values()) == {"stand"}
    assert cfg.menus.menu("STANDING") == {"13.0Hz": "walk", "17.0Hz": "turn_left",
                                          "21.0Hz": "sit"}
    assert set(cfg.menus.menu("WALKING").values()) == {"stop"}
    assert cfg.session.role == "all"


@pytest.mark.parametrize("name", ["demo.toml", "example.toml"])
def test_shipped_configs_load(name):
    cfg = load_config(REPO / "configs" / name)
    assert cfg.explicit_menus
    assert all(set(m) <= set(cfg.targets) for m in cfg.menus.to_dict().values())


def test_file_values_and_menus(tmp_path):
    p = _write(tmp_path, """
[decoder]
freqs = [12, 15.5]
window_s = 1.5
[menu.sitting]
"12.0Hz" = "stand"
[menu.STANDING]
"15.5" = "sit"
12 = "walk"
[device]
port = "socket://localhost:7000"
""")
    cfg = load_config(p)
    assert cfg.decoder.window_s == 1.5
    assert cfg.menus.to_dict() == {"SITTING": {"12.0Hz": "stand"},
                                   "STANDING": {"15.5Hz": "sit", "12.0Hz": "walk"}}
    assert cfg.menus.command("WALKING", "12.0Hz") is None  # no menu: nothing offered
    assert cfg.device.port == "socket://localhost:7000"
    # overrides keep explicit menus; an explicit menu override replaces them
    assert cfg.with_overrides({"session.role": "all"}).menus == cfg.menus
    new = cfg.with_overrides({"menu": {"sitting": {"15.5Hz": "stand"}}})
    assert new.menus.to_dict() == {"SITTING": {"15.5Hz": "stand"}}


def test_overrides_win_and_are_validated(tmp_path):
    cfg = load_config(_write(tmp_path, "[session]\nrole = 'decoder'\n"))
    cfg2 = cfg.with_overrides({"session.role": "bridge", "source.kind": None})
    assert cfg2.session.role == "bridge" and cfg2.source.kind == "synthetic"
    assert cfg.session.role == "decoder"
    with pytest.raises(ConfigError, match=r"'session.role' must be one of .* got 'brige'\. "
                                          r"Did you mean 'bridge'\?"):
        cfg.with_overrides({"session.role": "brige"})


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("[polcy]\n", r"unknown section \[polcy\]\. Did you mean 'policy'\?"),
        ("[policy]\nthreshhold = 2\n", r"unknown key 'policy.threshhold'\. Did you mean "
                                      r"'threshold'\?"),
        ("[policy]\nthreshold = 0\n", r"'policy.threshold' must be > 0.0, got 0"),
        ("[policy]\nhorizon_s = 'long'\n", r"'policy.horizon_s' must be a number"),
        ("[decoder]\nwindow_s = 'long'\n", r"'decoder.window_s' must be a number"),
        ("[decoder]\nfreqs = []\n", r"'decoder.freqs' must be a non-empty list"),
        ("[decoder]\nfreqs = [13, 13.0]\n", r"must not repeat a frequency"),
        ("[session]\nlive_view = 1\n", r"'session.live_view' must be true or false"),
        ("[source]\nkind = 'lsll'\n", r"Did you mean 'lsl'\?"),
        ("[mapping]\n'13.0Hz' = 'walk'\n", r"\[mapping\] was replaced by posture-aware menus"),
        ("[menu.sitting]\n'13.0Hz' = 'wlk'\n", r"sitting: 13.0Hz -> 'wlk' is not a command"),
        ("[menu.sitting]\n'13.0Hz' = 'walk'\n",
         r"sitting: 13.0Hz -> walk is not legal while sitting \(legal: stand, stop\)"),
        ("[menu.walking]\n'17.0Hz' = 'turn_left'\n", r"turn_left is not legal while walking"),
        ("[menu.sitting]\nrest = 'stand'\n", r"'rest' is not one of the lights"),
        ("[menu.sitting]\n'19.0Hz' = 'stand'\n", r"'19.0Hz' is not one of the lights"),
        ("[menu.lying]\n'13.0Hz' = 'stand'\n", r"unknown posture 'lying'"),
        ("[menu]\nsitting = 3\n", r"\[menu\] must hold one table per posture"),
        ("[session\n", r"not valid TOML"),
        ("session = 3\n", r"\[session\] must be a table"),
    ],
)
def test_bad_config_errors_name_key_and_file(tmp_path, text, match):
    p = _write(tmp_path, text)
    with pytest.raises(ConfigError, match=match) as info:
        load_config(p)
    assert str(p) in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match=r"Configuration file '.*nope.toml' not found"):
        load_config(tmp_path / "nope.toml")


def test_demo_toml_matches_the_demo_settings():
    from bci.cli.demo import DEMO_CONFIG

    assert load_config(REPO / "configs" / "demo.toml").to_dict() == \
        SessionConfig(DEMO_CONFIG).to_dict()


def test_example_toml_lists_every_default():
    assert load_config(REPO / "configs" / "example.toml").to_dict() == SessionConfig().to_dict()


def test_configuration_doc_is_generated_from_the_schema():
    """docs/configuration.md's key tables are what scripts/config_doc.py writes now."""
    r = subprocess.run([sys.executable, str(REPO / "scripts" / "config_doc.py"), "--check"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    doc = (REPO / "docs" / "configuration.md").read_text(encoding="utf-8")
    for sec, keys in SCHEMA.items():
        assert f"`[{sec}]`" in doc
        for key in keys:
            assert f"| `{key}` |" in doc, f"{sec}.{key} is not documented"


def test_the_flags_in_the_schema_are_options_of_run():
    from bci.cli import build_parser

    run = build_parser()._subparsers._group_actions[0].choices["run"]
    options = {o for a in run._actions for o in a.option_strings}
    flags = [f for model in SECTIONS.values() for field in model.model_fields.values()
             for f in (field.json_schema_extra or {}).get("flag", "").split(" / ") if f]
    assert flags and set(flags) <= options, set(flags) - options
