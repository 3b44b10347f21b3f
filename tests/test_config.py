"""ScenarioConfig: validation names the field, unknown keys are rejected, dict/YAML round trips."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from vmimo_env.config import ScenarioConfig

INVALID = [
    ("num_devices", 0), ("num_devices", 2.5), ("num_devices", True), ("num_antennas", 0), ("num_groups", 0),
    ("cell_radius_m", 5.0), ("min_distance_m", 300.0), ("min_distance_m", 0.5), ("carrier_hz", 1e6),
    ("total_bandwidth_hz", 0.0), ("noise_figure_db", -1.0), ("fading", "nakagami"), ("rician_k_db", 50.0),
    ("speed_mps", -1.0), ("spatial_correlation", 1.0), ("shadowing", 1), ("max_power_dbm", 60.0),
    ("power_levels_db", (0.0, -10.0)), ("power_levels_db", ()), ("power_levels_db", (-10.0, 5.0)),
    ("pa_efficiency", 0.0), ("pa_efficiency", 1.5), ("circuit_power_w", -0.1), ("modalities", ("visual", "lidar")),
    ("encode_capacity", 0), ("slot_s", 0.0), ("horizon", 0), ("arrival_rate", 0.0), ("deadline_slots", 0),
    ("compression_levels", (4, 7)), ("compression_levels", (8, 4)), ("receiver", "mrc"), ("cooperative", "yes"),
    ("energy_ref_j", 0.0), ("reward_mode", "oracle"), ("obs_mode", "image"), ("speed_mps", float("nan")),
    ("resource_phi_compute", 1.0), ("resource_phi_memory", -0.1), ("resource_sigma_compute", 0.0),
    ("resource_sigma_memory", -1.0), ("resource_rho", 1.0), ("resource_threshold_compute", 20.0),
    ("resource_threshold_memory", "low"),
]


def test_defaults_are_valid_and_follow_design() -> None:
    cfg = ScenarioConfig()
    assert (cfg.num_devices, cfg.num_antennas, cfg.num_groups) == (8, 4, 3)
    assert cfg.carrier_hz == 3.5e9 and cfg.max_power_w == pytest.approx(0.19953, rel=1e-4)
    assert (cfg.resource_phi_compute, cfg.resource_phi_memory, cfg.resource_rho) == (0.85, 0.90, 0.3)
    assert (cfg.resource_sigma_compute, cfg.resource_sigma_memory) == (0.15, 0.10)
    assert len(cfg.device_modalities) == 8 and set(cfg.device_modalities) == set(cfg.modalities)


@pytest.mark.parametrize(("name", "value"), INVALID)
def test_invalid_value_raises_naming_the_field(name: str, value: object) -> None:
    with pytest.raises(ValueError, match=name.split("[")[0]):
        ScenarioConfig(**{name: value})
    with pytest.raises(ValueError, match=name):
        ScenarioConfig().replace(**{name: value})


def test_from_dict_rejects_unknown_keys() -> None:
    with pytest.raises(ValueError, match="num_device"):
        ScenarioConfig.from_dict({"num_device": 8})
    with pytest.raises(ValueError, match="unknown"):
        ScenarioConfig().replace(antennas=4)
    cfg = ScenarioConfig.from_dict({"num_devices": 16}, num_antennas=8)
    assert (cfg.num_devices, cfg.num_antennas) == (16, 8)


def test_lists_are_normalised_to_tuples() -> None:
    cfg = ScenarioConfig.from_dict({"power_levels_db": [-20, -10, 0], "compression_levels": [8, 16]})
    assert cfg.power_levels_db == (-20, -10, 0) and cfg.compression_levels == (8, 16)
    assert cfg == ScenarioConfig(power_levels_db=(-20, -10, 0), compression_levels=(8, 16))


def test_yaml_round_trip(tmp_path: Path) -> None:
    cfg = ScenarioConfig(num_devices=12, fading="rician", spatial_correlation=0.5, receiver="mmse_sic",
                         resource_rho=0.1, power_levels_db=(-30.0, -15.0, 0.0))
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(cfg.to_dict()), encoding="utf-8")
    back = ScenarioConfig.from_yaml(path)
    assert back == cfg
    assert ScenarioConfig.from_yaml(path, num_groups=2).num_groups == 2
    bad = tmp_path / "bad.yaml"
    bad.write_text("- 1\n- 2\n", encoding="utf-8")
    with pytest.raises(ValueError, match="mapping"):
        ScenarioConfig.from_yaml(bad)
    typo = tmp_path / "typo.yaml"
    typo.write_text("num_antenas: 4\n", encoding="utf-8")
    with pytest.raises(ValueError, match="num_antenas"):
        ScenarioConfig.from_yaml(typo)
