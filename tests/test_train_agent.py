"""train_agent.py end to end: every algorithm trains a few hundred steps with an offline W&B run we read back;
resume continues the step counter; broken checkpoints fail loudly; W&B failures never stop training."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from wandb_offline import logged_keys, read_offline_run

import train_agent
from agents.checkpoint import CheckpointError, read_checkpoint, save_checkpoint
from agents.wandb_logging import WandbRun

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parent.parent
ENV = "VMIMO-Small-v0"  # K = 4, Nr = 2, G = 2, 50-slot episodes

# tiny budgets: enough to finish episodes (4 envs x 50 slots = 200 steps), evaluate twice and checkpoint
ALGO_HP = {
    "ppo": ["n_steps=32", "batch_size=64", "n_epochs=1"],
    "a2c": ["n_steps=8"],
    "maskable_ppo": ["n_steps=32", "batch_size=64", "n_epochs=1"],
    "recurrent_ppo": ["n_steps=32", "batch_size=64", "n_epochs=1", "policy_kwargs={lstm_hidden_size: 16}"],
    "sac": ["learning_starts=64", "batch_size=32", "buffer_size=2000", "policy_kwargs={net_arch: [32, 32]}"],
    "td3": ["learning_starts=64", "batch_size=32", "buffer_size=2000", "policy_kwargs={net_arch: [32, 32]}"],
    "ddpg": ["learning_starts=64", "batch_size=32", "buffer_size=2000", "policy_kwargs={net_arch: [32, 32]}"],
}


@pytest.fixture(autouse=True)
def _wandb_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb_root"))
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_MODE", raising=False)


def train(tmp_path: Path, algo: str, *extra: str, n: int = 256, wandb_mode: str = "offline") -> dict:
    argv = ["--algo", algo, "--env", ENV, "-n", str(n), "--n-envs", "4", "--seed", "1",
            "--eval-freq", "128", "--eval-episodes", "2", "--save-freq", "128", "--baselines", "random",
            "--log-folder", str(tmp_path / "runs"), "--wandb-mode", wandb_mode, "--no-progress", "-v", "0",
            "--hyperparams", *ALGO_HP[algo], *extra]
    return train_agent.main(argv)


@pytest.mark.parametrize("algo", list(ALGO_HP))
def test_each_algorithm_trains_and_logs_to_an_offline_wandb_run(tmp_path: Path, algo: str) -> None:
    summary = train(tmp_path, algo)
    assert summary["num_timesteps"] >= 256
    run_dir = Path(summary["run_dir"])
    assert (run_dir / "final_model.zip").is_file() and (run_dir / "best_model.zip").is_file()
    assert read_checkpoint(run_dir / "final_model.zip").meta["algo"] == algo
    assert summary["wandb_mode"] == "offline"
    run = read_offline_run(tmp_path / "wandb_root", wait_s=30)
    assert run["complete"]
    keys = logged_keys(run)
    # the SB3 logger bridge (time/*, train/* or rollout/*), our episode statistics, and the evaluation
    for key in ("time/fps", "rollout/ep_rew_mean", "episode/accuracy", "episode/energy_per_scene_mj",
                "episode/expired_frac", "episode/group_size", "eval/mean_reward", "eval/full_cover_frac",
                "eval/ref/random",
                "eval/diff_vs_best_heuristic", "global_step"):
        assert key in keys, (key, sorted(keys))
    assert any(k.startswith("train/") for k in keys)
    assert any(k.startswith("eval/table") for k in keys) and any(k.startswith("eval/figures/") for k in keys)
    assert run["config"]["algo"] == algo and run["config"]["env_id"] == ENV
    assert "versions" in run["config"] and "git_sha" in run["config"]
    rewards = [row["eval/mean_reward"] for row in run["history"] if "eval/mean_reward" in row]
    assert rewards and all(np.isfinite(rewards))


def test_resume_continues_step_counter_schedule_and_normalisation(tmp_path: Path) -> None:
    first = train(tmp_path, "ppo", n=256)
    run_dir = Path(first["run_dir"])
    ckpt = read_checkpoint(sorted((run_dir / "checkpoints").glob("ckpt_*.zip"))[-1])
    assert ckpt.num_timesteps == first["num_timesteps"]
    assert ckpt.vecnormalize is not None and ckpt.vecnormalize.obs_rms.count > 1
    second = train(tmp_path, "ppo", "--resume", str(run_dir), n=512)
    assert second["run_dir"] == first["run_dir"]
    assert second["num_timesteps"] >= 512
    assert second["trained_steps"] == second["num_timesteps"] - first["num_timesteps"]
    resumed = read_checkpoint(run_dir / "final_model.zip")
    # running statistics kept accumulating from the first segment's
    assert resumed.vecnormalize.obs_rms.count > ckpt.vecnormalize.obs_rms.count
    assert resumed.meta["num_timesteps"] == second["num_timesteps"]
    from stable_baselines3 import PPO

    model = PPO.load(run_dir / "final_model.zip")  # still a plain SB3 archive
    assert model.num_timesteps == second["num_timesteps"]
    assert (run_dir / f"progress_from_{first['num_timesteps']}.csv").is_file()


def test_off_policy_resume_restores_the_replay_buffer(tmp_path: Path) -> None:
    first = train(tmp_path, "sac", n=256)
    ckpts = Path(first["run_dir"]) / "checkpoints"
    assert list(ckpts.glob("replay_buffer_*.npz"))
    second = train(tmp_path, "sac", "--resume", first["run_dir"], n=320)
    assert second["num_timesteps"] >= 320


def test_corrupt_or_incompatible_checkpoints_raise_naming_the_file(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.zip"
    garbage.write_bytes(b"not a zip at all")
    with pytest.raises(CheckpointError, match=r"garbage\.zip"):
        train(tmp_path, "ppo", "--resume", str(garbage))
    good = Path(train(tmp_path, "ppo", n=128)["final_model"])
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=r"truncated\.zip"):
        train(tmp_path, "ppo", "--resume", str(truncated))
    flipped = tmp_path / "flipped.zip"
    data = bytearray(good.read_bytes())
    with zipfile.ZipFile(good) as zf:
        info = zf.getinfo("policy.pth")
    data[info.header_offset + 60] ^= 0xFF  # inside the compressed weights: the CRC check must catch it
    flipped.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"flipped\.zip"):
        train(tmp_path, "ppo", "--resume", str(flipped))
    with pytest.raises(CheckpointError, match="incompatible"):
        train(tmp_path, "a2c", "--resume", str(good))


def test_checkpoint_write_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from stable_baselines3 import PPO

    from agents.common.envs import make_train_env

    venv, _ = make_train_env(ENV, 2, "batched", 0, {}, "multidiscrete")
    model = PPO("MlpPolicy", venv, n_steps=8, batch_size=16)
    path = tmp_path / "ckpt.zip"
    save_checkpoint(path, model, {"algo": "ppo", "env_id": ENV, "action_view": "multidiscrete"})
    before = path.read_bytes()

    def boom(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt  # killed between writing the temp file and the rename

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, model, {"algo": "ppo", "env_id": ENV, "action_view": "multidiscrete", "x": 1})
    monkeypatch.undo()
    assert path.read_bytes() == before  # the previous checkpoint is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.zip"]  # and no temp file is left behind
    assert read_checkpoint(path).meta["algo"] == "ppo"


def test_wandb_failures_fall_back_and_never_raise(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def flaky_init(self: WandbRun, mode: str, *args: object) -> object:
        calls.append(mode)
        if mode == "online":
            raise ConnectionError("no network")
        return original(self, mode, *args)

    original = WandbRun._init
    monkeypatch.setattr(WandbRun, "_init", flaky_init)
    with pytest.warns(RuntimeWarning, match="falling back to offline"):
        run = WandbRun("vmimo-test", "online", {"a": 1}, directory=tmp_path)
    assert calls == ["online", "offline"] and run.mode == "offline"

    class Broken:
        def log(self, *args: object, **kwargs: object) -> None:
            raise OSError("disk full")

        def finish(self, *args: object, **kwargs: object) -> None:
            raise OSError("disk full")

    real = run.run
    run.run = Broken()
    with pytest.warns(RuntimeWarning, match="training continues"):
        run.log({"x": 1.0}, step=1)
    run.log({"x": 2.0}, step=2)  # silenced after the first warning
    run.finish()
    real.finish()


def test_script_reports_a_bad_checkpoint_in_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "WANDB_MODE": "disabled"}
    bad = subprocess.run([sys.executable, str(ROOT / "train_agent.py"), "--resume", str(tmp_path / "missing.zip")],
                         capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)
    assert bad.returncode == 2 and "missing.zip" in bad.stderr


def test_dummy_vec_env_reports_the_same_episode_statistics(tmp_path: Path) -> None:
    """Monitor + EpisodeStatsWrapper give gym.make environments the batched env's episode/* statistics."""
    import csv

    summary = train(tmp_path, "ppo", "--vec-env", "dummy", "--eval-freq", "0", wandb_mode="disabled", n=200)
    with open(Path(summary["run_dir"]) / "progress.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    cols = set(rows[0])
    for key in ("episode/accuracy", "episode/energy_per_scene_mj", "episode/group_size", "episode/prefix",
                "episode/power_dbm", "rollout/ep_rew_mean"):
        assert key in cols, (key, sorted(cols))
    values = [float(r["episode/accuracy"]) for r in rows if r["episode/accuracy"]]
    assert values and all(0.0 <= v <= 1.0 for v in values)


def _policy_tensors(path: Path) -> dict[str, torch.Tensor]:
    import io

    with zipfile.ZipFile(path) as z:
        return torch.load(io.BytesIO(z.read("policy.pth")), weights_only=True)


def test_shipped_recipe_repeats_bit_for_bit_at_the_default_thread_count(tmp_path: Path) -> None:
    """Two runs of the shipped VMIMO-v0 recipe (per-device actor, warm start, 512-sample minibatches that torch
    splits across its threads) with the same seed end on identical weights; main leaves torch's thread count as it
    found it, and the run's config records the count it used."""
    assert train_agent.TORCH_THREADS == train_agent.parse_args([]).torch_threads
    before = torch.get_num_threads()
    finals = []
    for name in ("a", "b"):
        summary = train_agent.main(
            ["--algo", "ppo", "-n", "4096", "--n-envs", "64", "--seed", "5", "--eval-freq", "0", "--save-freq", "0",
             "--baselines", "", "--log-folder", str(tmp_path / name), "--wandb-mode", "disabled", "--no-progress",
             "-v", "0"])
        assert torch.get_num_threads() == before
        run_dir = Path(summary["run_dir"])
        assert f"torch_threads: {train_agent.TORCH_THREADS}" in (run_dir / "config.yml").read_text(encoding="utf-8")
        finals.append(_policy_tensors(run_dir / "final_model.zip"))
    assert finals[0].keys() == finals[1].keys()
    for key in finals[0]:
        assert torch.equal(finals[0][key], finals[1][key]), key


@pytest.mark.parametrize("every", [0, 2])
def test_evaluation_figures_are_drawn_on_every_nth_evaluation_and_for_the_final_model(tmp_path: Path,
                                                                                      every: int) -> None:
    summary = train(tmp_path, "ppo", "--eval-figures", str(every), n=512)
    run = read_offline_run(tmp_path / "wandb_root", wait_s=30)
    # every evaluation logs its table; the figures ride in the same payload when they are drawn
    tables = [row for row in run["history"] if any(k.startswith("eval/table/") for k in row)]
    drawn = [i for i, row in enumerate(tables) if any(k.startswith("eval/figures/learning_curve") for k in row)]
    in_learn = len(tables) - 1  # the last one is the final model's evaluation, outside learn
    assert in_learn == sum("eval/mean_reward" in row for row in run["history"]) - 1 >= 3
    assert drawn == [i for i in range(in_learn) if every and (i + 1) % every == 0] + [in_learn]
    figures = Path(summary["run_dir"]) / "eval"
    assert {"learning_curve.png", "accuracy_energy.png", "allocation.png"} <= {p.name for p in figures.iterdir()}


def test_negative_eval_figures_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="--eval-figures"):
        train(tmp_path, "ppo", "--eval-figures", "-1")


def test_env_threads_reach_the_training_env_and_leave_the_model_unchanged(tmp_path: Path) -> None:
    from agents.common.envs import make_train_env

    venv, kind = make_train_env("VMIMO-v0", 4, "batched", 0, None, "multidiscrete", num_threads=2)
    assert kind == "batched" and venv.venv.core.num_threads == 2
    venv.close()
    params = []
    for threads in ("1", "2"):
        summary = train(tmp_path / threads, "ppo", "--env-threads", threads, "--eval-freq", "0")
        model = zipfile.ZipFile(Path(summary["run_dir"]) / "final_model.zip")
        params.append(model.read("policy.pth"))
    assert params[0] == params[1]  # the same trajectories, so the same updates


def test_env_threads_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="--env-threads"):
        train(tmp_path, "ppo", "--env-threads", "0")
