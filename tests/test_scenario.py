"""make_config's one merge rule: scenario, then config (dict, YAML path or ScenarioConfig), then keywords."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import pytest
import yaml

import vmimo_env  # noqa: F401  (registers the ids)
from vmimo_env.config import ScenarioConfig
from vmimo_env.scenario import SCENARIOS, make_config

SMALL = SCENARIOS["small"]


def _forms(tmp_path: Path, fields: dict) -> dict[str, object]:
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(fields), encoding="utf-8")
    return {"dict": dict(fields), "yaml": path, "yaml_str": str(path), "object": ScenarioConfig(**fields)}


@pytest.mark.parametrize("form", ["dict", "yaml", "yaml_str", "object"])
def test_config_layers_on_top_of_the_scenario(tmp_path: Path, form: str) -> None:
    config = _forms(tmp_path, {"num_antennas": 8, "arrival_rate": 2.0})[form]
    with_scenario = make_config("small", config)
    assert with_scenario.num_antennas == 8 and with_scenario.arrival_rate == 2.0  # the config's fields
    assert with_scenario.horizon == SMALL["horizon"] == 50  # the scenario's, kept
    assert (with_scenario.num_devices, with_scenario.num_groups) == (SMALL["num_devices"], SMALL["num_groups"])
    without = make_config(None, config)
    assert without == ScenarioConfig(num_antennas=8, arrival_rate=2.0)
    # keywords come last and win over both
    top = make_config("small", config, num_antennas=2, horizon=7)
    assert (top.num_antennas, top.horizon, top.arrival_rate, top.num_devices) == (2, 7, 2.0, 4)


@pytest.mark.parametrize("form", ["dict", "yaml", "object"])
def test_config_overrides_a_scenario_field(tmp_path: Path, form: str) -> None:
    config = _forms(tmp_path, {"horizon": 80})[form]
    assert make_config("small", config).horizon == 80
    assert make_config("small", config).num_devices == 4


def test_gym_make_keeps_the_registered_scenario_with_a_yaml_config(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("num_antennas: 3\n", encoding="utf-8")
    env = gym.make("VMIMO-Small-v0", config=str(path))
    cfg = env.unwrapped.cfg
    assert cfg.horizon == 50 and cfg.num_devices == 4 and cfg.num_antennas == 3
    cfg_obj = gym.make("VMIMO-Small-v0", config=ScenarioConfig(num_antennas=3)).unwrapped.cfg
    assert cfg_obj == cfg


def test_object_without_scenario_is_exact_and_default_valued_fields_do_not_override() -> None:
    obj = ScenarioConfig(num_devices=6, horizon=200)  # horizon at its default value
    assert make_config(None, obj) == obj
    assert make_config("small", obj).horizon == 50  # documented: an object cannot say it set a default
    assert make_config("small", obj, horizon=200).horizon == 200  # the way to force it


def test_bad_configs_raise_naming_the_problem(tmp_path: Path) -> None:
    typo = tmp_path / "typo.yaml"
    typo.write_text("num_antenas: 4\n", encoding="utf-8")
    with pytest.raises(ValueError, match="num_antenas"):
        make_config("small", typo)
    listing = tmp_path / "list.yaml"
    listing.write_text("- 1\n", encoding="utf-8")
    with pytest.raises(ValueError, match="mapping"):
        make_config(None, listing)
    with pytest.raises(ValueError, match="num_device"):
        make_config("small", {"num_device": 3})
    with pytest.raises(ValueError, match="config must be"):
        make_config(None, 42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="scenario must be"):
        make_config("tiny")
    # cross-field rules are checked on the merged result: the file alone would be valid
    tight = tmp_path / "tight.yaml"
    tight.write_text("cell_radius_m: 30.0\n", encoding="utf-8")
    with pytest.raises(ValueError, match="min_distance_m"):
        make_config(None, tight, min_distance_m=40.0)
