"""Heuristic schedulers and the oracle: valid actions on every scenario, batched and single, and sane ordering."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

import vmimo_env  # noqa: F401  (registers the ids)
from agents.evaluate import evaluate_policies
from agents.policies import Policy, heuristic_names, make_policy, policy_names
from vmimo_env.vector import VMIMOVectorEnv

torch.set_num_threads(1)
ENV_IDS = ["VMIMO-v0", "VMIMO-Small-v0"]


def test_registry_lists_every_heuristic_and_the_oracle() -> None:
    names = policy_names()
    for expected in ("random", "round_robin", "greedy", "sus", "proportional_fair", "max_weight",
                     "fractional_power", "nas_vmimo", "oracle"):
        assert expected in names
    assert "oracle" not in heuristic_names()
    with pytest.raises(ValueError, match="unknown policy"):
        make_policy("no_such_policy", gym.make("VMIMO-Small-v0"))


@pytest.mark.parametrize("env_id", ENV_IDS)
@pytest.mark.parametrize("name", [*heuristic_names(), "oracle"])
def test_single_env_actions_are_valid(env_id: str, name: str) -> None:
    env = gym.make(env_id)
    policy = make_policy(name, env, **({"rounds": 1} if name == "oracle" else {}))
    assert isinstance(policy, Policy)
    obs, info = env.reset(seed=3)
    policy.reset(3)
    for _ in range(3):
        action = policy.act(obs, info)
        assert env.action_space.contains(action), (name, action)
        obs, reward, _, _, info = env.step(action)
        assert np.isfinite(reward)


@pytest.mark.parametrize("env_id", ENV_IDS)
@pytest.mark.parametrize("name", heuristic_names())
def test_batched_actions_are_valid_per_env(env_id: str, name: str) -> None:
    venv = VMIMOVectorEnv(num_envs=3, **gym.spec(env_id).kwargs)
    policy = make_policy(name, venv)
    obs, info = venv.reset(seed=0)
    policy.reset(0)
    single = venv.single_action_space
    for _ in range(3):
        action = policy.act(obs, info)
        assert action["group"].shape == (3, venv.cfg.num_devices)
        assert action["bandwidth"].shape == (3, venv.cfg.num_groups)
        for i in range(3):
            assert single.contains({k: v[i] for k, v in action.items()}), (name, i)
        obs, _, _, _, info = venv.step(action)


def test_heuristic_batched_equals_single_env() -> None:
    """A stateless heuristic acts on environment i of a batch exactly as on a single env with that seed."""
    venv = VMIMOVectorEnv(num_envs=2, scenario="small")
    batched = make_policy("max_weight", venv)
    obs, info = venv.reset(seed=10)
    env = gym.make("VMIMO-Small-v0")
    single = make_policy("max_weight", env)
    env.reset(seed=11)
    for _ in range(5):
        a = batched.act(obs, info)
        b = single.act(None, {})
        for k in a:
            np.testing.assert_allclose(a[k][1], b[k])
        obs, _, _, _, info = venv.step(a)
        env.step(b)


def test_oracle_beats_random_and_is_not_worse_than_its_base_on_small_scenario() -> None:
    kwargs = {"horizon": 30}
    res = evaluate_policies(["random", "max_weight", "oracle"], "VMIMO-Small-v0", kwargs, n_episodes=3)
    rnd, base, orc = (res[n].episodes["return"] for n in ("random", "max_weight", "oracle"))
    assert orc.mean() > rnd.mean()
    assert orc.mean() >= base.mean() - 1e-9


def test_common_random_numbers_across_policies() -> None:
    """Every policy sees the same arrivals on the same seeds (the future does not depend on the action)."""
    res = evaluate_policies(["random", "round_robin", "max_weight"], "VMIMO-Small-v0", {"horizon": 20}, n_episodes=4)
    arrived = [r.episodes["arrived"] + r.episodes["dropped"] for r in res.values()]
    for a in arrived[1:]:
        np.testing.assert_array_equal(a, arrived[0])
    again = evaluate_policies(["max_weight"], "VMIMO-Small-v0", {"horizon": 20}, n_episodes=4)
    np.testing.assert_array_equal(again["max_weight"].episodes["return"], res["max_weight"].episodes["return"])


def test_accuracy_table_is_read_from_the_frozen_model_metadata() -> None:
    """max-weight and the NAS-VMIMO controller use the accuracy table the model build measured."""
    from agents.heuristics.accuracy import accuracy_table_for, from_metadata

    env = gym.make("VMIMO-Small-v0")
    core = env.unwrapped.core
    table = accuracy_table_for(env.unwrapped.bs_view())
    assert table.source in ("metadata", "calibrated")
    if core.model.accuracy_table:
        assert table.source == "metadata"
    # the layout written by semantic_models.build: accuracy[subset][prefix][snr]
    names = list(core.model.modalities)

    class Fake:
        modalities = names
        num_classes = 10
        accuracy_table = {"snr_db": [0.0, 10.0], "prefix_lengths": [4, 64],
                          "subsets": ["+".join(names[m] for m in s) for s in _all_subsets(len(names))],
                          "accuracy": [[[0.1 + 0.01 * len(s), 0.2 + 0.01 * len(s)], [0.3, 0.5 + 0.1 * len(s)]]
                                       for s in _all_subsets(len(names))]}

    fake = from_metadata(Fake(), np.array([4, 64]))
    assert fake is not None and fake.source == "metadata"
    full = tuple(range(len(names)))
    assert float(fake.lookup(full, np.array(10.0), np.array(64))) == pytest.approx(0.5 + 0.1 * len(names))
    assert float(fake.lookup((0,), np.array(5.0), np.array(4))) == pytest.approx(0.16)  # halfway in SNR
    np.testing.assert_allclose(fake.single(np.array([0, 1]), np.array([10.0, 0.0]), np.array([64, 4])),
                               [0.6, 0.11])


def _all_subsets(M: int) -> list[tuple[int, ...]]:
    import itertools

    return [s for r in range(1, M + 1) for s in itertools.combinations(range(M), r)]
