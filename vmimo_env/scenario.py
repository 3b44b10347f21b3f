"""Named scenarios and the one place that turns keyword arguments into a ``ScenarioConfig``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vmimo_env.config import ScenarioConfig

SCENARIOS: dict[str, dict[str, Any]] = {
    # the ScenarioConfig defaults: K = 8, Nr = 4, G = 3, 200 slots of 10 ms
    "default": {},
    # fast tests and quick experiments: few devices, short episodes
    "small": {"num_devices": 4, "num_antennas": 2, "num_groups": 2, "horizon": 50,
              "modalities": ("visual", "radar", "audio", "environmental")},
    # a crowded cell: 32 devices on a 16-antenna BS
    "large": {"num_devices": 32, "num_antennas": 16, "num_groups": 4, "total_bandwidth_hz": 60e3,
              "arrival_rate": 1.0},
    # vehicular speed: f_d = 350 Hz at 3.5 GHz, J0(2 pi f_d T) = -0.12 at 10 ms, clipped to 0: fresh fading every slot
    "high_mobility": {"speed_mps": 30.0},
    # the seed's virtual antenna array: D2D exchange and SVD precoding inside a group
    "cooperative": {"cooperative": True},
}


def make_config(scenario: str | None = None, config: ScenarioConfig | str | Path | dict | None = None,
                **overrides: Any) -> ScenarioConfig:
    """Resolve a scenario, a config and keyword overrides into one validated ``ScenarioConfig``.

    One merge rule, later layers winning field by field: the scenario's parameters (``SCENARIOS[scenario]``,
    ``"default"`` when None), then the config, then the keywords. Each form of ``config`` contributes:

    - a dict: its keys;
    - a YAML path: the keys the file sets;
    - a ``ScenarioConfig``: the fields where it differs from ``ScenarioConfig()`` (an object cannot tell a
      field set to its default value from one left alone, so such a field does not override the scenario; pass
      it as a keyword or in a dict to force it). Without a scenario, the result equals the object.

    Unknown keys, a bad value or an unknown scenario raise ``ValueError`` naming them.
    """
    if scenario is None:
        scenario = "default"
    if scenario not in SCENARIOS:
        raise ValueError(f"scenario must be one of {sorted(SCENARIOS)}, got {scenario!r}")
    merged: dict[str, Any] = dict(SCENARIOS[scenario])
    merged.update(config_layer(config))
    merged.update(overrides)
    return ScenarioConfig.from_dict(merged)


def config_layer(config: ScenarioConfig | str | Path | dict | None) -> dict[str, Any]:
    """The parameters ``config`` sets, for :func:`make_config`'s merge (see there for each form)."""
    if config is None:
        return {}
    if isinstance(config, ScenarioConfig):
        default = ScenarioConfig()
        return {name: getattr(config, name) for name in ScenarioConfig.field_names()
                if getattr(config, name) != getattr(default, name)}
    if isinstance(config, dict):
        return dict(config)
    if isinstance(config, (str, Path)):
        return _yaml_mapping(Path(config))
    raise ValueError(f"config must be a ScenarioConfig, dict or YAML path, got {type(config).__name__}")


def _yaml_mapping(path: Path) -> dict[str, Any]:
    """The mapping of scenario parameters in a YAML file. Its values are validated once merged, not alone: a
    cross-field rule such as ``min_distance_m < cell_radius_m`` may involve a field another layer sets."""
    import yaml

    with open(path, encoding="utf-8") as fh:
        data = yaml.safe_load(fh) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of scenario parameters, got {type(data).__name__}")
    unknown = sorted(set(data) - set(ScenarioConfig.field_names()))
    if unknown:
        valid = list(ScenarioConfig.field_names())
        raise ValueError(f"{path}: unknown scenario parameter(s) {unknown}; valid: {valid}")
    return data
