"""Named scenarios and the one place that turns keyword arguments into a ``ScenarioConfig``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vmimo_env.config import ScenarioConfig

SCENARIOS: dict[str, dict[str, Any]] = {
    # DESIGN.md defaults: K = 8, Nr = 4, G = 3, 200 slots of 10 ms
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
    """Resolve a scenario name, a config (object, dict or YAML path) and keyword overrides, in that order."""
    if scenario is None:
        scenario = "default"
    if scenario not in SCENARIOS:
        raise ValueError(f"scenario must be one of {sorted(SCENARIOS)}, got {scenario!r}")
    base: dict[str, Any] = dict(SCENARIOS[scenario])
    if isinstance(config, ScenarioConfig):
        base = config.to_dict()
    elif isinstance(config, dict):
        base.update(config)
    elif isinstance(config, (str, Path)):
        base.update(ScenarioConfig.from_yaml(config).to_dict())
    elif config is not None:
        raise ValueError(f"config must be a ScenarioConfig, dict or YAML path, got {type(config).__name__}")
    return ScenarioConfig.from_dict(base, **overrides)
