"""The strong baselines: the coverage scheduler, the power rules every scheduler takes, and the tuned parameters
(``agents.tune_baselines``, ``make_policy(..., tuned=True)``)."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import yaml

import vmimo_env  # noqa: F401  (registers the ids)
from agents import tune_baselines as T
from agents.common.envs import VALIDATION_SEED_BASE
from agents.heuristics.base import TARGET_SNR_DB
from agents.policies import heuristic_names, make_policy
from agents.registry import TUNED_DIR, env_scenario, policy_factory, tuned_file, tuned_params
from vmimo_env.bs_view import predict_sinr
from vmimo_env.scenario import make_config, scenario_of
from vmimo_env.vector import VMIMOVectorEnv

SCHEDULERS = ("round_robin", "greedy", "proportional_fair", "sus", "max_weight", "nas_vmimo")


def _rollout_valid(venv: VMIMOVectorEnv, policy, steps: int = 3) -> list[dict[str, np.ndarray]]:
    obs, info = venv.reset(seed=0)
    policy.reset(0)
    single = venv.single_action_space
    actions = []
    for _ in range(steps):
        view = venv.bs_view()
        action = policy.act(obs, info)
        for i in range(venv.num_envs):
            assert single.contains({k: v[i] for k, v in action.items()}), (policy.name, i, action)
        actions.append((view, action))
        obs, reward, _, _, info = venv.step(action)
        assert np.isfinite(reward).all()
    return actions


@pytest.mark.parametrize("env_id", ["VMIMO-v0", "VMIMO-v1"])
def test_coverage_is_registered_and_acts_validly_on_single_and_vector_envs(env_id: str) -> None:
    assert "coverage" in heuristic_names()
    env = gym.make(env_id)
    policy = make_policy("coverage", env)
    obs, info = env.reset(seed=1)
    policy.reset(1)
    for _ in range(3):
        action = policy.act(obs, info)
        assert env.action_space.contains(action)
        obs, _, _, _, info = env.step(action)
    venv = VMIMOVectorEnv(num_envs=3, **gym.spec(env_id).kwargs)
    _rollout_valid(venv, make_policy("coverage", venv))


@pytest.mark.parametrize("name", SCHEDULERS)
def test_every_power_rule_and_coverage_give_valid_actions_on_v1(name: str) -> None:
    venv = VMIMOVectorEnv(num_envs=2, scenario="v1")
    rules = policy_factory(name).power_rules
    assert {"fpc", "target"} <= set(rules)
    for rule in rules:
        for coverage in (False, True):
            for view, action in _rollout_valid(venv, make_policy(name, venv, power_rule=rule, coverage=coverage), 2):
                if coverage:  # only devices holding latents the BS still lacks are scheduled
                    assert (np.asarray(view.queue_unheld)[action["group"] > 0] > 0).all()
    with pytest.raises(ValueError, match="power_rule"):
        make_policy(name, venv, power_rule="no_such_rule")


def test_target_rule_lowers_power_for_strong_devices_and_reaches_its_target() -> None:
    venv = VMIMOVectorEnv(num_envs=4, scenario="v1")
    top = len(venv.cfg.power_levels_db) - 1
    lowered = 0
    for view, action in _rollout_valid(venv, make_policy("greedy", venv, power_rule="target"), 5):
        g, p, bw = action["group"], action["power"], action["bandwidth"]
        sched = g > 0
        full = 10 * np.log10(np.maximum(predict_sinr(view, g, np.full(g.shape, top), bw), 1e-30))
        # a device whose full-power SINR clears the target by more than the top level step needs less than full power
        strong = sched & (full > TARGET_SNR_DB + 7.0)
        assert (p[strong] < top).all()
        lowered += int(strong.sum())
        # where the rule did not fall back, the chosen level reaches the target with the group-mates at that level,
        # and the level below it does not (the lowest such level)
        for j in range(top):
            at = sched & (p == j)
            sinr_j = 10 * np.log10(np.maximum(predict_sinr(view, g, np.full(g.shape, j), bw), 1e-30))
            assert (sinr_j[at] >= TARGET_SNR_DB).all()
            if j > 0:
                below = 10 * np.log10(np.maximum(predict_sinr(view, g, np.full(g.shape, j - 1), bw), 1e-30))
                assert (below[at] < TARGET_SNR_DB).all()
    assert lowered > 0
    # the level rule (the default) keeps full power
    for _, action in _rollout_valid(venv, make_policy("greedy", venv), 2):
        assert (action["power"] == top).all()


def test_fractional_power_is_round_robin_with_the_shared_fpc_rule() -> None:
    venv = VMIMOVectorEnv(num_envs=3, scenario="v1")
    a = _rollout_valid(venv, make_policy("fractional_power", venv, p0_dbm=-100.0, alpha=0.9), 4)
    b = _rollout_valid(venv, make_policy("round_robin", venv, power_rule="fpc", p0_dbm=-100.0, fpc_alpha=0.9), 4)
    for (_, x), (_, y) in zip(a, b, strict=True):
        for k in x:
            np.testing.assert_array_equal(x[k], y[k])
    assert len({int(v) for _, x in a for v in np.ravel(x["power"])}) > 1  # path-loss dependent, not one level


def test_scenario_of_names_the_world_of_a_config() -> None:
    assert scenario_of(make_config("v1", horizon=20)) == "v1"
    assert scenario_of(make_config("dense_v1")) == "dense_v1"
    assert scenario_of(make_config("v1", num_devices=9)) is None
    assert env_scenario(gym.make("VMIMO-v1")) == "v1" and env_scenario(gym.make("VMIMO-v0")) == "default"
    # a recipe's training env (soft reward) still finds its world's tuned parameters; another world does not
    assert env_scenario(gym.make("VMIMO-v1", reward_mode="soft", horizon=30)) == "v1"
    assert env_scenario(gym.make("VMIMO-v1", num_devices=9)) is None
    from benchmarks.headroom import TIERS

    assert all(T.tier_scenario(t) == s for t, s in TIERS.items())


SHIPPED = sorted(p.stem for p in TUNED_DIR.glob("*.yml"))


def test_v1_has_a_shipped_file() -> None:
    assert "v1" in SHIPPED and tuned_file("v1").is_file()


@pytest.mark.parametrize("scenario", SHIPPED)
def test_shipped_file_matches_the_registered_parameters_and_is_applied(scenario: str) -> None:
    path = tuned_file(scenario)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert data["scenario"] == scenario == T.tier_scenario(data["tier"])
    assert data["seeds"]["base"] == VALIDATION_SEED_BASE
    assert data["command"].startswith("python -m agents.tune_baselines") and data["packages"]["numpy"]
    assert set(data["baselines"]) == set(T.BASELINES)
    venv = VMIMOVectorEnv(num_envs=2, scenario=scenario)
    for name, entry in data["baselines"].items():
        assert np.isfinite(entry["validation_return"]) and entry["ci"] >= 0
        params = tuned_params(name, scenario)
        assert params == (entry["params"] or {})
        # every stored parameter is a keyword the heuristic takes (a renamed one raises TypeError here)
        policy = make_policy(name, venv, tuned=True)
        # and it is applied: every parameter the policy keeps under its own name holds the tuned value (prefixes are
        # kept as level indices, threshold lists as tuples)
        for key, value in params.items():
            got = getattr(policy, key, None)
            if got is not None and not isinstance(value, list) and "prefix" not in key:
                assert got == value, (name, key, got, value)
        _rollout_valid(venv, policy, 2)
    # explicit keywords win over the tuned ones; a scenario without a file gets the defaults
    assert make_policy("greedy", venv, tuned=True, num_groups=2).num_groups == 2
    v0 = gym.make("VMIMO-v0")
    assert tuned_params("greedy", "default") == {} and make_policy("greedy", v0, tuned=True).power_rule == "level"


def test_tuning_command_runs_on_a_tiny_grid_and_writes_a_loadable_file(tmp_path: Path) -> None:
    out = tmp_path / "tiny.yml"
    T.main(["--tier", "default", "--seeds", "2", "--horizon", "20", "--quick", "--only", "greedy,coverage,sus",
            "--out", str(out)])
    data = yaml.safe_load(out.read_text(encoding="utf-8"))
    assert data["horizon"] == 20 and data["seeds"] == {"base": VALIDATION_SEED_BASE, "count": 2}
    assert set(data["baselines"]) == {"greedy", "coverage", "sus"}
    venv = VMIMOVectorEnv(num_envs=2, scenario="v1", horizon=20)
    for name, entry in data["baselines"].items():
        assert entry["validation_return"] >= entry["default_return"] - 1e-6  # never worse than where it started
        assert entry["evaluated"] >= 2
        _rollout_valid(venv, make_policy(name, venv, **entry["params"]), 1)
