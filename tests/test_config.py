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


# ---------------------------------------------------------------------- numpy values, YAML floats, short errors
def test_numpy_scalars_and_arrays_are_accepted_as_python_values() -> None:
    import numpy as np

    cfg = ScenarioConfig(num_devices=np.int64(8), cell_radius_m=np.float32(200.0), shadowing=np.True_,
                         power_levels_db=np.array([-20, -10, 0]), compression_levels=np.array([8, 16]),
                         modalities=np.array(["visual", "radar"]))
    assert type(cfg.num_devices) is int and type(cfg.cell_radius_m) is float and cfg.shadowing is True
    assert cfg.power_levels_db == (-20.0, -10.0, 0.0) and all(type(v) is float for v in cfg.power_levels_db)
    assert all(type(v) is int for v in cfg.compression_levels) and cfg.modalities == ("visual", "radar")
    assert cfg == ScenarioConfig(power_levels_db=(-20.0, -10.0, 0.0), compression_levels=(8, 16),
                                 modalities=("visual", "radar"), cell_radius_m=200.0)
    assert hash(cfg) == hash(ScenarioConfig(**cfg.to_dict()))
    yaml.safe_dump(cfg.to_dict())  # plain Python values only
    with pytest.raises(ValueError, match="num_devices must be an integer"):
        ScenarioConfig(num_devices=np.bool_(True))
    with pytest.raises(ValueError, match="num_devices must be an integer"):
        ScenarioConfig(num_devices=np.float64(8.0))
    with pytest.raises(ValueError, match="power_levels_db must be a 1-D"):
        ScenarioConfig(power_levels_db=np.zeros((2, 2)))
    with pytest.raises(ValueError, match="power_levels_db must be a list or tuple"):
        ScenarioConfig(power_levels_db=0.0)


def test_yaml_exponent_without_dot_is_a_float(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("total_bandwidth_hz: 20e3\nencode_energy_j_per_mflop: 1e-4\npower_levels_db: [-2e1, 0]\n",
                    encoding="utf-8")
    cfg = ScenarioConfig.from_yaml(path)
    assert cfg.total_bandwidth_hz == 20000.0 and cfg.encode_energy_j_per_mflop == 1e-4
    assert cfg.power_levels_db == (-20.0, 0.0)
    path.write_text("num_devices: 8\nfading: umi\nreceiver: '1e3'\n", encoding="utf-8")  # quoted stays a string
    with pytest.raises(ValueError, match="receiver"):
        ScenarioConfig.from_yaml(path)


def test_number_string_error_explains_yaml_rule() -> None:
    with pytest.raises(ValueError, match=r"total_bandwidth_hz.*string '20e3'.*YAML 1\.1.*20\.0e\+3 or 20000"):
        ScenarioConfig(total_bandwidth_hz="20e3")
    with pytest.raises(ValueError, match=r"num_devices.*string '8'"):
        ScenarioConfig(num_devices="8")


def test_errors_on_large_arrays_are_short() -> None:
    import numpy as np

    for kwargs in ({"power_levels_db": np.linspace(0.0, -50.0, 100_000)}, {"num_devices": np.arange(100_000)},
                   {"modalities": ["visual"] * 50_000 + ["lidar"]}, {"cell_radius_m": list(range(100_000))}):
        with pytest.raises(ValueError) as err:
            ScenarioConfig(**kwargs)
        assert len(str(err.value)) < 500, str(err.value)[:200]
        assert next(iter(kwargs)) in str(err.value)


# ---------------------------------------------------------------------- unknown keywords
def test_unknown_keyword_is_type_and_value_error_with_suggestion() -> None:
    from vmimo_env.config import UnknownParameterError

    with pytest.raises(UnknownParameterError) as err:
        ScenarioConfig.from_dict(num_device=8)
    assert isinstance(err.value, TypeError) and isinstance(err.value, ValueError)
    assert "got an unexpected keyword argument 'num_device'" in str(err.value)
    assert "did you mean 'num_devices'" in str(err.value)
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'antenas'.*did you mean 'num_antennas'"):
        ScenarioConfig().replace(antenas=4)


def test_gym_make_unknown_keyword_reads_like_python() -> None:
    import gymnasium as gym

    import vmimo_env  # noqa: F401

    # torchrl's GymEnv passes frameskip and retries without it on exactly this TypeError text
    with pytest.raises(TypeError, match="unexpected keyword argument 'frameskip'"):
        gym.make("VMIMO-Small-v0", frameskip=4)
    with pytest.raises(ValueError, match="did you mean 'action_view'"):
        gym.make("VMIMO-Small-v0", action_veiw="box")


# ---------------------------------------------------------------------- environment-constructor arguments
@pytest.mark.parametrize("bad", [0, -5, 1.5, True, "64", None])
def test_pool_size_is_validated_before_anything_runs(bad: object) -> None:
    import gymnasium as gym

    import vmimo_env  # noqa: F401

    with pytest.raises(ValueError, match="pool_size must be an integer"):
        gym.make("VMIMO-Small-v0", pool_size=bad)
    with pytest.raises(ValueError, match="pool_size must be an integer"):
        gym.make_vec("VMIMO-Small-v0", num_envs=2, vectorization_mode="vector_entry_point", pool_size=bad)


def test_numpy_pool_size_is_accepted_and_runs() -> None:
    import gymnasium as gym
    import numpy as np

    from vmimo_env.config import check_pool_size

    assert check_pool_size(np.int64(64)) == 64 and type(check_pool_size(np.int32(3))) is int
    env = gym.make("VMIMO-Small-v0", pool_size=np.int64(1))  # a single scene is a valid (if dull) pool
    env.reset(seed=0)
    for _ in range(10):
        env.step(env.action_space.sample())


def test_num_envs_memory_is_refused_early_with_the_estimate() -> None:
    import time

    import gymnasium as gym

    import vmimo_env  # noqa: F401
    from vmimo_env.memory import check_num_envs_memory, estimate_core_memory_bytes

    cfg = ScenarioConfig()
    assert estimate_core_memory_bytes(cfg, 2000) == pytest.approx(2 * estimate_core_memory_bytes(cfg, 1000), 1e-6)
    est = estimate_core_memory_bytes(cfg, 1000)
    assert check_num_envs_memory(cfg, 1000, limit_bytes=est) == est
    with pytest.raises(ValueError, match=r"num_envs=1001 needs an estimated .* GiB.*num_envs <= 1000"):
        check_num_envs_memory(cfg, 1001, limit_bytes=est)
    t0 = time.perf_counter()
    with pytest.raises(ValueError, match=r"num_envs=1000000 needs an estimated [\d.]+ GiB"):
        gym.make_vec("VMIMO-v0", num_envs=10**6, vectorization_mode="vector_entry_point")
    assert time.perf_counter() - t0 < 10.0  # refused before allocating, not after minutes of swapping


@pytest.mark.parametrize(("scenario", "n1", "n2"), [("small", 100, 500), ("default", 100, 500),
                                                     ("cooperative", 100, 400), ("large", 50, 200)])
def test_memory_estimate_bounds_the_traced_allocation(scenario: str, n1: int, n2: int) -> None:
    # the marginal cost of one environment (traced numpy allocations, construction + reset + steps) must stay
    # under the estimate, and the estimate within a small factor of it (no refusal of batches that fit)
    import tracemalloc

    import numpy as np

    from vmimo_env.core import VMIMOCore
    from vmimo_env.memory import estimate_core_memory_bytes
    from vmimo_env.scenario import make_config
    from vmimo_env.scenes import build_pool, load_model

    cfg = make_config(scenario)
    pool, model = build_pool(), load_model()
    peaks = []
    for n in (n1, n2):
        tracemalloc.start()
        core = VMIMOCore(cfg, n, pool, model)
        core.reset(np.arange(n), list(range(n)))
        grp = np.tile(np.arange(cfg.num_devices) % (cfg.num_groups + 1), (n, 1))
        for _ in range(4):
            core.step(grp, np.zeros_like(grp) + len(cfg.power_levels_db) - 1, np.zeros_like(grp) + 2,
                      np.full((n, cfg.num_groups), 0.4, np.float32))
            core.observe()
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        del core
    measured = (peaks[1] - peaks[0]) / (n2 - n1)
    estimate = estimate_core_memory_bytes(cfg, 1)
    assert measured <= estimate <= 3.0 * measured, (measured, estimate)


def test_unknown_keyword_never_suggests_itself() -> None:
    """A constructor keyword passed where only scenario fields go is named as such, not 'did you mean' itself."""
    import gymnasium as gym

    with pytest.raises(TypeError, match="unexpected keyword argument 'num_envs'") as err:
        gym.make("VMIMO-v0", num_envs=3)
    assert "did you mean 'num_envs'" not in str(err.value)
    with pytest.raises(TypeError, match="did you mean 'num_devices'"):
        gym.make("VMIMO-v0", num_devics=3)
