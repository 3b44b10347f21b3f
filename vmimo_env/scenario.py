"""Named scenarios and the one place that turns keyword arguments into a ``ScenarioConfig``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vmimo_env.config import ScenarioConfig

# The VMIMO-v1 default tier; every value and its source is in docs/MODEL.md ("VMIMO-v1"), the study that
# calibrated it in docs/headroom.md (python -m benchmarks.headroom).
V1: dict[str, Any] = {
    # one NR resource block of numerology 1 per slot (12 subcarriers of 30 kHz, 0.5 ms): 168 resource elements,
    # W T = 180 uses, at 3.5 GHz (band n78, 30 kHz SCS)
    "slot_s": 5e-4,
    "total_bandwidth_hz": 360e3,
    # urban coverage for massive connections: 1732 m inter-site distance, a 1 km cell radius
    "cell_radius_m": 1000.0,
    "sinr_cap_db": 21.9,  # the 64QAM EVM limit of a UE transmitter (8 %)
    "power_levels_db": (-24.0, -18.0, -12.0, -6.0, 0.0),
    "speed_mps": 0.83,  # 3 km/h pedestrian
    # more latent demand than one group on the whole band carries (K > Nr and the encode cap)
    "arrival_rate": 2.5,
    # the price of energy: the energy term is a real share of the return (docs/headroom.md)
    "energy_weight": 1.0,
    "energy_ref_j": 4e-4,
    # episode rules: a scene closes once every modality arrived, held modalities are not re-sent, every arrived
    # scene is scored (pending ones at truncation), and the observation shows what the BS still lacks
    "close_rule": "modalities",
    "score_at_truncation": True,
    "obs_coverage": True,
    # channel: no fading correlation past J0's first zero, a log-normal Rician K per device (TR 38.901 UMi LOS)
    "doppler_rule": "j0_first_zero",
    "k_factor_model": "lognormal",
}

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
    # ---- VMIMO-v1: the recalibrated world (docs/MODEL.md "VMIMO-v1"; figures in docs/headroom.md). One NR
    # resource block per slot (12 subcarriers of 30 kHz, a 0.5 ms slot: 168 resource elements ~ W T = 180 uses), a
    # cell whose max-power SINR spans the frozen model's sensitive range, an EVM-capped receiver, more latent
    # demand than one group on the whole band carries, and an energy price that makes power a trade-off.
    "v1": dict(V1),
    # K >> Nr: 24 devices on 4 antennas need several groups every slot
    "dense_v1": {**V1, "num_devices": 24, "num_groups": 4, "arrival_rate": 1.5},
    # low-power class: 14 dBm (NB-IoT power class 6)
    "iot_v1": {**V1, "max_power_dbm": 14.0},
    # vehicular speed: 120 km/h, f_d T = 0.19 per 0.5 ms slot
    "mobility_v1": {**V1, "speed_mps": 33.3, "mobility": True},
    # device encoders other than the BS head's (the shipped variant), aligned at the BS
    "hetero_v1": {**V1, "heterogeneous_devices": "variant"},
    # NAS-VMIMO's virtual antenna array
    "cooperative_v1": {**V1, "cooperative": True},
    # generalisation tiers: test-only, a policy trained on v1 is scored on them unchanged
    "gen_k_v1": {**V1, "num_devices": 12},
    "gen_speed_v1": {**V1, "speed_mps": 8.3, "mobility": True},
    "gen_nlos_v1": {**V1, "fading": "rayleigh"},
}


# Benchmark tiers: tier name -> scenario name, shared by the calibration study (python -m benchmarks.headroom) and
# the benchmark (python -m agents.benchmark). Every tier's scenario has a registered env id
# (vmimo_env.scenario_env_id).
TIERS: dict[str, str] = {"default": "v1", "dense": "dense_v1", "iot": "iot_v1", "mobility": "mobility_v1",
                         "hetero": "hetero_v1", "cooperative": "cooperative_v1", "gen_k": "gen_k_v1",
                         "gen_speed": "gen_speed_v1", "gen_nlos": "gen_nlos_v1"}


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


def scenario_of(cfg: ScenarioConfig, ignore: tuple[str, ...] = ("horizon",)) -> str | None:
    """The named scenario (a key of :data:`SCENARIOS`) whose configuration ``cfg`` is, or ``None``.

    Fields in ``ignore`` (default the episode length, which evaluations shorten) may differ: a config of the
    ``v1`` world with 20-slot episodes is still ``v1``. Anything else changed makes it a custom scenario."""
    import dataclasses

    for name in SCENARIOS:
        ref = make_config(name)
        if dataclasses.replace(cfg, **{f: getattr(ref, f) for f in ignore}) == ref:
            return name
    return None
