"""Behaviour-cloning warm start: it makes the policy imitate the heuristic, counts its steps in the budget, and
rejects bad settings clearly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch as th
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import VecNormalize

import train_agent
from agents.checkpoint import read_checkpoint
from agents.common.distributions import FastMultiDiscretePolicy
from agents.common.pretrain import PretrainConfig, behaviour_clone, collect_demonstrations
from vmimo_env.sb3 import VMIMOSB3VecEnv

th.set_num_threads(1)


def _agreement(model: PPO, demo: dict[str, np.ndarray]) -> float:
    with th.no_grad():
        mode = model.policy.get_distribution(th.as_tensor(demo["obs"])).mode().numpy()
    return float((mode == demo["actions"]).mean())


def test_cloning_makes_the_policy_imitate_the_heuristic() -> None:
    venv = VecNormalize(VMIMOSB3VecEnv(8, seed=0, scenario="small"), gamma=0.9)
    model = PPO(FastMultiDiscretePolicy, venv, n_steps=8, batch_size=32, seed=0, gamma=0.9)
    before = _agreement(model, collect_demonstrations(venv, "fractional_power", 20, "multidiscrete", gamma=0.9))
    stats = behaviour_clone(model, venv, PretrainConfig("fractional_power", steps=150, epochs=15, batch_size=128),
                            "multidiscrete")
    venv.training = False  # held-out states (later slots), normalised exactly as the policy saw in cloning
    after = _agreement(model, collect_demonstrations(venv, "fractional_power", 40, "multidiscrete", gamma=0.9))
    assert stats["pretrain/samples"] == 150 * 8
    assert after > before + 0.35 and after > 0.65, (before, after)  # measured 0.24 -> 0.78
    assert stats["pretrain/mode_agreement"] > 0.75


def test_demonstration_returns_are_discounted_rewards_to_go() -> None:
    venv = VMIMOSB3VecEnv(2, seed=1, scenario="small")
    demo = collect_demonstrations(venv, "round_robin", 12, "multidiscrete", gamma=0.5)
    r = demo["rewards"]  # (T, N), unnormalised here (no VecNormalize)
    ret = demo["returns"].reshape(12, 2)
    np.testing.assert_allclose(ret[-1], r[-1], rtol=1e-6)
    np.testing.assert_allclose(ret[:-1], r[:-1] + 0.5 * ret[1:], rtol=1e-5)
    assert venv.action_space.contains(demo["actions"][0].astype(np.int64))


@pytest.mark.parametrize("value, match", [({"steps": 10}, "heuristic"), ({"heuristic": "round_robin", "foo": 1},
                                                                          "unknown"),
                                          ({"heuristic": "round_robin", "epochs": 0}, "epochs"), (3, "heuristic")])
def test_bad_pretrain_settings_raise(value: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        PretrainConfig.from_hyperparams(value)
    assert PretrainConfig.from_hyperparams(None) is None
    assert PretrainConfig.from_hyperparams("sus") == PretrainConfig("sus")


def test_tuned_teacher_is_the_heuristic_with_its_tuned_parameters() -> None:
    from agents.registry import tuned_params

    assert PretrainConfig.from_hyperparams({"heuristic": "coverage", "tuned": True}).tuned
    assert not PretrainConfig.from_hyperparams("coverage").tuned
    with pytest.raises(ValueError, match="tuned must be true or false"):
        PretrainConfig.from_hyperparams({"heuristic": "coverage", "tuned": "yes"})
    params = tuned_params("coverage", "v1")
    assert params, "the shipped v1 file tunes the coverage scheduler"
    # on the soft-reward training env of the v1 recipe the teacher is built with the file's parameters, and its
    # demonstrations differ from the registered defaults'
    from agents.policies import make_policy

    venv = VMIMOSB3VecEnv(4, seed=3, scenario="v1", reward_mode="soft")
    teacher = make_policy("coverage", venv, tuned=True)
    assert all(getattr(teacher, k) == pytest.approx(v) for k, v in params.items()), params
    tuned = collect_demonstrations(venv, "coverage", 30, "multidiscrete", gamma=0.9, tuned=True)
    default = collect_demonstrations(VMIMOSB3VecEnv(4, seed=3, scenario="v1", reward_mode="soft"), "coverage", 30,
                                     "multidiscrete", gamma=0.9)
    again = collect_demonstrations(VMIMOSB3VecEnv(4, seed=3, scenario="v1", reward_mode="soft"), "coverage", 30,
                                   "multidiscrete", gamma=0.9, tuned=True)
    np.testing.assert_array_equal(tuned["actions"], again["actions"])
    assert not np.array_equal(tuned["actions"], default["actions"])


def test_pretrain_settings_are_typed_as_yaml_gives_them() -> None:
    # YAML reads 1e-3 as a string and 4e2 as a float: both are accepted for what they mean
    cfg = PretrainConfig.from_hyperparams({"heuristic": "FractionalPower", "learning_rate": "1e-3", "steps": 4e2})
    assert cfg == PretrainConfig("fractional_power", steps=400, learning_rate=1e-3)
    assert isinstance(cfg.steps, int)
    for bad, match in (({"heuristic": "oracle"}, "heuristic"), ({"heuristic": "nope"}, "heuristic"),
                       ({"heuristic": "sus", "steps": 2.5}, "integer"), ({"heuristic": "sus", "epochs": "x"}, "number"),
                       ({"heuristic": "sus", "learning_rate": 0}, "learning_rate")):
        with pytest.raises(ValueError, match=match):
            PretrainConfig.from_hyperparams(bad)


def test_train_agent_warm_start_counts_its_steps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_SILENT", "true")
    argv = ["--algo", "ppo", "--env", "VMIMO-Small-v0", "-n", "320", "--n-envs", "4", "--seed", "1",
            "--eval-freq", "0", "--log-folder", str(tmp_path / "runs"), "--wandb-mode", "disabled", "--no-progress",
            "-v", "0", "--hyperparams", "n_steps=16", "batch_size=32", "n_epochs=1",
            "pretrain={heuristic: fractional_power, steps: 20, epochs: 2}"]
    summary = train_agent.main(argv)  # 20 slots x 4 envs: a quarter of the budget, the most a warm start may take
    assert summary["pretrain"]["samples"] == 80
    assert summary["num_timesteps"] >= 320 and summary["trained_steps"] <= 320 - 80 + 64
    # the clone, judged against its teacher on the validation seeds, is evaluated and is a best-model candidate
    clone = train_agent.main(["--algo", "ppo", "--env", "VMIMO-Small-v0", "-n", "320", "--n-envs", "4",
                              "--eval-freq", "1000", "--eval-episodes", "2", "--baselines", "random",
                              "--log-folder", str(tmp_path / "runs"), "--wandb-mode", "disabled", "--no-progress",
                              "-v", "0", "--hyperparams", "n_steps=16", "batch_size=32",
                              "pretrain={heuristic: fractional_power, steps: 20}"])
    assert clone["pretrain"]["kept"] == 1.0 and clone["pretrain"]["teacher_on_air"] > 0
    assert np.isfinite(clone["pretrain"]["clone_return"]) and np.isfinite(clone["pretrain"]["return_ratio"])
    import csv

    with open(Path(clone["run_dir"]) / "eval" / "evaluations.csv", encoding="utf-8") as fh:
        steps = [int(float(r["timesteps"])) for r in csv.DictReader(fh)]
    assert steps == [80, clone["num_timesteps"]] and clone["best_step"] in steps
    with pytest.raises(SystemExit, match="behaviour cloning"):
        train_agent.main(["--algo", "sac", *argv[2:-4], "pretrain=fractional_power"])


def test_shipped_vmimo_v0_ppo_defaults_run_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The default recipe of ``python train_agent.py --algo ppo`` (per-device policy, warm start, soft training
    reward), on a tiny budget: every piece is wired, the model saved is a DevicePolicy, evaluation is hard."""
    import yaml

    from agents.checkpoint import load_model, read_checkpoint
    from agents.common.device_policy import DevicePolicy
    from agents.policies import algo_class

    monkeypatch.setenv("WANDB_SILENT", "true")
    summary = train_agent.main(["--algo", "ppo", "-n", "3200", "--n-envs", "2", "--eval-freq", "0",
                                "--log-folder", str(tmp_path / "runs"), "--wandb-mode", "disabled", "--no-progress",
                                "-v", "0", "--hyperparams", "batch_size=32"])
    assert summary["pretrain"]["samples"] == 400 * 2  # a quarter of the budget: the warm start is not shortened
    assert summary["num_timesteps"] >= 3200
    run_dir = Path(summary["run_dir"])
    config = yaml.safe_load((run_dir / "config.yml").read_text())
    assert config["hyperparams"]["train_env_kwargs"] == {"reward_mode": "soft"}
    assert config["env_kwargs"] == {}  # what evaluation and the checkpoint's users see: the env as given
    ckpt = read_checkpoint(run_dir / "final_model.zip")
    assert ckpt.meta["env_kwargs"] == {}
    model = load_model(ckpt, algo_class("ppo"))
    assert isinstance(model.policy, DevicePolicy)


def test_train_env_kwargs_survive_resume_and_may_not_change_the_spaces(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_SILENT", "true")
    seen: list[dict] = []
    real = train_agent.make_train_env

    def spy(env_id, n_envs, vec_env, seed, env_kwargs, *args, **kwargs):
        seen.append(dict(env_kwargs))
        return real(env_id, n_envs, vec_env, seed, env_kwargs, *args, **kwargs)

    monkeypatch.setattr(train_agent, "make_train_env", spy)
    base = ["--algo", "ppo", "--env", "VMIMO-Small-v0", "--n-envs", "4", "--eval-freq", "0", "--log-folder",
            str(tmp_path / "runs"), "--wandb-mode", "disabled", "--no-progress", "-v", "0", "--hyperparams",
            "n_steps=16", "batch_size=32", "n_epochs=1"]
    first = train_agent.main([*base[:-4], "-n", "64", *base[-4:], "train_env_kwargs={reward_mode: soft}",
                              "pretrain={heuristic: round_robin, steps: 4, epochs: 1}"])
    assert seen[-1] == {"reward_mode": "soft"}
    assert read_checkpoint(Path(first["final_model"])).meta["train_env_kwargs"] == {"reward_mode": "soft"}
    with pytest.warns(UserWarning, match="train_env_kwargs"):
        resumed = train_agent.main([*base[:-4], "-n", "128", "--resume", first["run_dir"], *base[-4:]])
    assert seen[-1] == {"reward_mode": "soft"}  # the resumed run trains on what it started with
    assert resumed["pretrain"] == {}  # and does not clone again
    assert resumed["num_timesteps"] >= 128
    with pytest.raises(SystemExit, match="space"):
        train_agent.main([*base[:-4], "-n", "64", *base[-4:], "train_env_kwargs={obs_full_csi: true}"])
