"""train_agent.py when things go wrong: SIGTERM, resumes, budgets the warm start would swallow, a failed clone,
an unreachable W&B server."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import train_agent
from agents.checkpoint import read_checkpoint

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parent.parent
ENV = "VMIMO-Small-v0"  # K = 4, Nr = 2, G = 2, 50-slot episodes
PPO_HP = ["n_steps=16", "batch_size=32", "n_epochs=1"]


@pytest.fixture(autouse=True)
def _wandb_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb_root"))
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)


def base_args(tmp_path: Path, algo: str = "ppo", n: int = 256, eval_freq: int = 128) -> list[str]:
    return ["--algo", algo, "--env", ENV, "-n", str(n), "--n-envs", "4", "--seed", "1", "--eval-freq", str(eval_freq),
            "--eval-episodes", "2", "--save-freq", "128", "--baselines", "random", "--log-folder",
            str(tmp_path / "runs"), "--wandb-mode", "disabled", "--no-progress", "-v", "0"]


def test_sigterm_saves_a_checkpoint_and_the_run_resumes(tmp_path: Path) -> None:
    env = {**os.environ, "WANDB_MODE": "disabled", "PYTHONUNBUFFERED": "1"}
    argv = [sys.executable, str(ROOT / "train_agent.py"), *base_args(tmp_path, n=10_000_000, eval_freq=0),
            "--save-freq", "0", "--hyperparams", *PPO_HP]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT)
    lines = []
    deadline = time.monotonic() + 240
    assert proc.stdout is not None
    for line in proc.stdout:  # wait until learning has started
        lines.append(line)
        if line.startswith("Training PPO") or time.monotonic() > deadline:
            break
    time.sleep(2.0)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=240)
    text = "".join(lines) + out
    assert proc.returncode == 128 + signal.SIGTERM, text
    assert "Terminated (SIGTERM): saving a checkpoint" in text
    run_dir = next((tmp_path / "runs" / "ppo").iterdir())
    ckpts = sorted((run_dir / "checkpoints").glob("ckpt_*.zip"))
    assert ckpts and (run_dir / "final_model.zip").is_file()
    steps = read_checkpoint(ckpts[-1]).num_timesteps
    assert steps > 0
    resumed = train_agent.main([*base_args(tmp_path, n=steps + 128, eval_freq=0), "--resume", str(run_dir),
                                "--hyperparams", *PPO_HP])
    assert resumed["num_timesteps"] >= steps + 128 and resumed["trained_steps"] > 0


def _eval_rows(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "eval" / "evaluations.csv", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_resume_keeps_the_evaluation_history_and_best_step_and_records_each_resume(tmp_path: Path) -> None:
    first = train_agent.main([*base_args(tmp_path), "--hyperparams", *PPO_HP])
    run_dir = Path(first["run_dir"])
    before = [int(float(r["timesteps"])) for r in _eval_rows(run_dir)]
    # the final model is evaluated again at 256: the in-training evaluation at 256 preceded that rollout's update
    assert before == [128, 256, 256] and first["best_step"] in before
    # a resume refused by its checks (the scenario changes the spaces) leaves no record behind
    with pytest.raises(Exception, match="cannot be loaded"):
        train_agent.main([*base_args(tmp_path), "--resume", str(run_dir), "--env-kwargs", "num_devices:3"])
    assert not list(run_dir.glob("config_resume*.yml"))
    # budget already reached: nothing new to evaluate, the best model's record is the first segment's
    same = train_agent.main([*base_args(tmp_path, n=first["num_timesteps"]), "--resume", str(run_dir)])
    assert same["best_step"] == first["best_step"] and same["best_mean_reward"] == first["best_mean_reward"]
    longer = train_agent.main([*base_args(tmp_path, n=512), "--resume", str(run_dir)])
    after = [int(float(r["timesteps"])) for r in _eval_rows(run_dir)]
    assert after[:len(before)] == before and after[-1] == longer["num_timesteps"] and len(after) > len(before)
    assert longer["best_step"] is not None and longer["best_step"] in after
    assert sorted(p.name for p in run_dir.glob("config_resume*.yml")) == ["config_resume_1.yml",
                                                                         "config_resume_2.yml"]


def test_the_warm_start_is_fitted_to_the_budget_and_few_updates_are_warned(tmp_path: Path) -> None:
    pretrain = "pretrain={heuristic: fractional_power, steps: 20, epochs: 1}"
    with pytest.warns(UserWarning, match="warm start shortened from 20 to 16 slots"):
        summary = train_agent.main([*base_args(tmp_path, eval_freq=0), "--hyperparams", *PPO_HP, pretrain])
    assert summary["pretrain"]["samples"] == 64  # a quarter of the 256-step budget
    assert summary["trained_steps"] >= 256 - 64
    with pytest.warns(UserWarning, match="too small for the warm start"):
        tiny = train_agent.main([*base_args(tmp_path, n=8, eval_freq=0), "--hyperparams", *PPO_HP, pretrain])
    assert tiny["pretrain"] == {} and tiny["trained_steps"] > 0
    with pytest.warns(UserWarning, match=r"only about 0 RL gradient steps.*learning_starts 256"):
        train_agent.main([*base_args(tmp_path, algo="sac", eval_freq=0), "--hyperparams", "learning_starts=256",
                          "batch_size=32", "buffer_size=2000", "policy_kwargs={net_arch: [32, 32]}"])
    with pytest.warns(UserWarning, match="only about 4 RL rollouts"):
        train_agent.main([*base_args(tmp_path, eval_freq=0), "--hyperparams", *PPO_HP])


def test_a_clone_much_worse_than_its_teacher_is_dropped_and_reported(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    real = train_agent.behaviour_clone

    def idle_clone(model, venv, cfg, action_view, seed=0, verbose=0):
        stats = real(model, venv, cfg, action_view, seed=seed, verbose=verbose)
        # what a failed clone can look like: every device idle (group 0), whatever the state
        net = model.policy.action_net
        K, G = 4, 2
        with torch.no_grad():
            net.weight.zero_()
            net.bias.zero_()
            net.bias[[k * (G + 1) for k in range(K)]] = 100.0
        return stats

    monkeypatch.setattr(train_agent, "behaviour_clone", idle_clone)
    pretrain = "pretrain={heuristic: fractional_power, steps: 16, epochs: 1}"
    summary = train_agent.main([*base_args(tmp_path, eval_freq=128), "--baselines", "fractional_power",
                                "--hyperparams", *PPO_HP, pretrain])
    pre = summary["pretrain"]
    assert pre["kept"] == 0.0 and pre["clone_on_air"] == 0.0 and pre["teacher_on_air"] > 0
    assert pre["clone_return"] < pre["teacher_return"] and pre["return_ratio"] < 0.5
    assert summary["best_step"] != 64  # the dropped clone is no best-model candidate
    run_dir = Path(summary["run_dir"])
    assert 64 not in [int(float(r["timesteps"])) for r in _eval_rows(run_dir)]
    with open(run_dir / "progress.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    for key in ("pretrain/clone_on_air", "pretrain/return_ratio", "pretrain/kept"):
        assert key in rows[0] and any(r[key] for r in rows)
    # the model trained is a fresh one, not the idle clone
    from agents.policies import algo_class

    model = algo_class("ppo").load(run_dir / "final_model.zip")
    assert not np.allclose(model.policy.action_net.weight.detach().numpy(), 0.0)


def test_an_unreachable_wandb_server_delays_the_start_only_by_the_init_timeout(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_API_KEY", "f" * 40)  # well-formed, so W&B tries the server until the timeout
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # nothing listens there
    args = [a if a != "disabled" else "online" for a in base_args(tmp_path, n=64, eval_freq=0)]
    t0 = time.perf_counter()
    with pytest.warns(RuntimeWarning, match="falling back to offline"):
        summary = train_agent.main([*args, "--wandb-init-timeout", "2", "--hyperparams", *PPO_HP])
    assert summary["wandb_mode"] == "offline" and summary["num_timesteps"] >= 64
    assert time.perf_counter() - t0 < 45
    with pytest.raises(ValueError, match="wandb-init-timeout"):
        train_agent.main([*args, "--wandb-init-timeout", "0"])


def test_track_without_an_api_key_logs_offline_instead_of_prompting(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NETRC", str(tmp_path / "no_netrc"))
    args = [a for a in base_args(tmp_path, n=64, eval_freq=0) if a not in ("--wandb-mode", "disabled")]
    with pytest.warns(RuntimeWarning, match="needs an API key"):
        summary = train_agent.main([*args, "--track", "--hyperparams", *PPO_HP])
    assert summary["wandb_mode"] == "offline"
