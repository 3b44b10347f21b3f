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


# ---------------------------------------------------------------------------------------------- RL Zoo flag names
def test_hyperparams_accept_both_separators_and_names_are_checked() -> None:
    from stable_baselines3 import PPO

    from agents.common.hyperparams import check_hyperparam_names, parse_hyperparams

    assert parse_hyperparams(["learning_rate:1e-3", "n_steps=8", "policy_kwargs:dict(net_arch=[64])",
                              "policy_kwargs2={net_arch: [64]}"]) == {
        "learning_rate": 1e-3, "n_steps": 8, "policy_kwargs": "dict(net_arch=[64])",
        "policy_kwargs2": {"net_arch": [64]}}
    with pytest.raises(ValueError, match="key=value or key:value"):
        parse_hyperparams(["oops"])
    check_hyperparam_names({"n_steps": 8, "gae_lambda": 0.9, "pretrain": "sus", "normalize": True}, PPO, "x")
    with pytest.raises(ValueError, match="'learning_rat' in --hyperparams for PPO \\(did you mean 'learning_rate'"):
        check_hyperparam_names({"learning_rat": 1e-3}, PPO, "--hyperparams")


@pytest.mark.parametrize("algo", ALGOS)
def test_shipped_hyperparameter_files_use_valid_names(algo: str) -> None:
    from agents.common.hyperparams import check_hyperparam_names
    from agents.policies import algo_class

    for env_id in ("VMIMO-v0", "VMIMO-Small-v0", "VMIMO-Large-v0"):
        hp, key = load_hyperparams(algo, env_id)
        check_hyperparam_names(hp, algo_class(algo), key)


def test_zoo_flag_names_train_and_resume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    import yaml

    import train_agent
    from agents.checkpoint import read_checkpoint

    monkeypatch.setenv("WANDB_SILENT", "true")
    conf = tmp_path / "my_ppo.yml"
    shutil.copy(Path(train_agent.__file__).parent / "agents" / "hyperparams" / "ppo.yml", conf)
    common = ["--algo", "ppo", "--env", "VMIMO-Small-v0", "--n-envs", "4", "--eval-freq", "64", "--eval-episodes", "2",
              "--baselines", "random", "-f", str(tmp_path / "zoo"), "-conf", str(conf), "--wandb-mode", "disabled",
              "--wandb-project-name", "p", "--wandb-tags", "zoo", "--num-threads", "1", "--no-progress", "-v", "0",
              "--eval-env-kwargs", "energy_weight:2.0", "-params", "n_steps:16", "batch_size=32", "n_epochs:1"]
    first = train_agent.main([*common, "-n", "64"])
    run_dir = Path(first["run_dir"])
    assert run_dir.parent == tmp_path / "zoo" / "ppo"
    config = yaml.safe_load((run_dir / "config.yml").read_text())
    assert config["hyperparams_file"] == str(conf)
    assert config["hyperparams"]["n_steps"] == 16 and config["hyperparams"]["n_epochs"] == 1
    assert config["args"]["wandb_project"] == "p" and config["args"]["wandb_tags"] == ["zoo"]
    meta = read_checkpoint(run_dir / "final_model.zip").meta
    assert meta["eval_env_kwargs"] == {"energy_weight": 2.0} and meta["env_kwargs"] == {}
    second = train_agent.main([*common, "-n", "128", "-i", str(run_dir)])
    assert second["run_dir"] == first["run_dir"] and second["num_timesteps"] >= 128
    with pytest.raises(SystemExit, match="observation or action space"):
        train_agent.main([*common, "-n", "64", "--eval-env-kwargs", "num_devices:3"])


def test_bad_names_fail_before_any_work_with_a_suggestion(tmp_path: Path) -> None:
    import subprocess
    import sys

    import train_agent

    base = ["--algo", "ppo", "-n", "64", "-f", str(tmp_path / "runs"), "--wandb-mode", "disabled"]
    with pytest.raises(ValueError, match="unknown env id 'VMIMO-Smal-v0' \\(did you mean 'VMIMO-Small-v0'"):
        train_agent.main([*base, "--env", "VMIMO-Smal-v0"])
    with pytest.raises(ValueError, match="did you mean 'learning_rate'"):
        train_agent.main([*base, "--env", "VMIMO-Small-v0", "-params", "learnin_rate:1e-3"])
    with pytest.raises(ValueError, match="--gym-packages: cannot import 'no_such_pkg_xyz'"):
        train_agent.main([*base, "--gym-packages", "no_such_pkg_xyz"])
    assert not (tmp_path / "runs").exists()  # nothing was written
    root = Path(train_agent.__file__).resolve().parent
    bad = subprocess.run([sys.executable, str(root / "train_agent.py"), *base, "--env", "VMIMO-Small-v0",
                          "--hyperparams", "n_step=8"], capture_output=True, text=True, timeout=300, cwd=root)
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0, bad.stderr
    assert "did you mean 'n_steps'" in bad.stderr


def test_gym_packages_register_other_env_ids(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import train_agent

    (tmp_path / "my_envs_pkg.py").write_text(
        "import gymnasium as gym\n"
        "if 'MyCartPole-v9' not in gym.envs.registry:\n"
        "    gym.register('MyCartPole-v9', entry_point='gymnasium.envs.classic_control:CartPoleEnv',"
        " max_episode_steps=50)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    summary = train_agent.main(["--algo", "ppo", "--env", "MyCartPole-v9", "--gym-packages", "my_envs_pkg",
                                "--vec-env", "dummy", "-n", "64", "--n-envs", "2", "--eval-freq", "0",
                                "-f", str(tmp_path / "runs"), "--wandb-mode", "disabled", "--no-progress", "-v", "0",
                                "-params", "n_steps:32", "batch_size:32", "n_epochs:1"])
    assert summary["num_timesteps"] >= 64
