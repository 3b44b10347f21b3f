"""Hyperparameter files (RL Zoo layout) and command-line parsing."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch.nn as nn

from agents.common.envs import ALGOS
from agents.common.hyperparams import (
    load_hyperparams,
    normalize_kwargs,
    parse_assignments,
    parse_value,
    prepare_algo_kwargs,
)


@pytest.mark.parametrize("algo", ALGOS)
def test_every_algorithm_has_vmimo_entries(algo: str) -> None:
    for env_id in ("VMIMO-v0", "VMIMO-Small-v0"):
        hp, key = load_hyperparams(algo, env_id)
        assert key == env_id
        assert hp["n_timesteps"] > 0 and hp["n_envs"] >= 1
        _, kwargs = prepare_algo_kwargs(hp, n_actions=27)
        assert "n_timesteps" not in kwargs and "policy" not in kwargs and "normalize" not in kwargs


def test_fallback_to_default_entry_and_missing_file(tmp_path: Path) -> None:
    _, key = load_hyperparams("ppo", "VMIMO-Large-v0")
    assert key == "default"
    with pytest.raises(FileNotFoundError):
        load_hyperparams("ppo", "VMIMO-v0", tmp_path / "missing.yml")


def test_values_schedules_policy_kwargs_and_noise() -> None:
    assert parse_value("5e-4") == 5e-4 and parse_value("1e6") == 1_000_000 and parse_value("[64, 64]") == [64, 64]
    assert parse_assignments(["a=1", "b=x:y"], "=") == {"a": 1, "b": "x:y"}
    assert parse_assignments(["num_devices:16"], ":") == {"num_devices": 16}
    with pytest.raises(ValueError, match="key=value"):
        parse_assignments(["oops"], "=")
    _, kw = prepare_algo_kwargs({"learning_rate": "lin_1e-3",
                                 "policy_kwargs": "dict(net_arch=[32], activation_fn=nn.Tanh)"})
    assert kw["learning_rate"](0.5) == pytest.approx(5e-4)
    assert kw["policy_kwargs"] == {"net_arch": [32], "activation_fn": nn.Tanh}
    _, kw = prepare_algo_kwargs({"policy_kwargs": {"activation_fn": "relu"}, "noise_type": "normal", "noise_std": 0.3},
                                n_actions=4)
    assert kw["policy_kwargs"]["activation_fn"] is nn.ReLU
    assert kw["action_noise"]().shape == (4,)
    assert normalize_kwargs(True) == {} and normalize_kwargs(False) is None
    assert normalize_kwargs({"norm_reward": False}) == {"norm_reward": False}
