"""W&B dashboard extras read back from an offline run: model artifacts, code, histograms, media; the workspace
built without a server; the sweep config against train_agent.py's flags."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

import train_agent
from agents import wandb_extras
from agents.wandb_extras import DIST_KEYS, WandbMediaCallback, allocation_samples, info_samples
from agents.wandb_logging import WandbRun

try:  # the offline reader's home in tests/ (older trees keep it in agents.wandb_logging)
    from wandb_offline import _records, logged_keys, read_offline_run
except ImportError:
    from agents.wandb_logging import _records, logged_keys, read_offline_run

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parent.parent
ENV = "VMIMO-Small-v0"


@pytest.fixture(autouse=True)
def _wandb_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb_root"))
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_MODE", raising=False)


def _artifacts(path: str) -> list:
    from wandb.proto import wandb_internal_pb2 as pb

    out = []
    for payload in _records(path):
        rec = pb.Record()
        rec.ParseFromString(payload)
        if rec.WhichOneof("record_type") == "artifact":
            out.append(rec.artifact)
    return out


def test_offline_run_has_model_artifacts_code_histograms_and_media(tmp_path: Path) -> None:
    summary = train_agent.main(
        ["--algo", "ppo", "--env", ENV, "-n", "256", "--n-envs", "4", "--seed", "3", "--eval-freq", "128",
         "--eval-episodes", "2", "--save-freq", "0", "--baselines", "random", "--log-folder", str(tmp_path / "runs"),
         "--wandb-mode", "offline", "--no-progress", "-v", "0", "--hyperparams", "n_steps=32", "batch_size=64",
         "n_epochs=1"])
    run = read_offline_run(tmp_path / "wandb_root", wait_s=30)
    assert run["complete"]
    arts = _artifacts(run["path"])
    models = [a for a in arts if a.type == "model"]
    assert {alias for a in models for alias in a.aliases} >= {"best", "final"}
    for a in models:
        meta = json.loads(a.metadata)
        assert meta["env_id"] == ENV and meta["algo"] == "ppo" and meta["seed"] == 3
        assert meta["steps"] == summary["num_timesteps"]
        assert [c.path for c in a.manifest.contents] in (["best_model.zip"], ["final_model.zip"])
    code = [a for a in arts if a.type == "code"]
    assert code and {"train_agent.py", "agents/wandb_extras.py", "vmimo_env/env.py"} <= {
        c.path for c in code[0].manifest.contents}

    keys = logged_keys(run)
    for key in ("power_dbm", "prefix", "group_size"):  # from the training actions, every log
        assert f"dist/{key}/_type" in keys or f"dist/{key}" in keys, sorted(keys)
    last = {}
    for row in run["history"]:
        last.update(row)
    for key in DIST_KEYS:  # from the rendered episode, at the end
        hist = last.get(f"eval_episode/dist/{key}/_type", (last.get(f"eval_episode/dist/{key}") or {}).get("_type"))
        assert hist == "histogram", key
    media = last.get("eval_episode/video/_type") or last.get("eval_episode/frames/_type")
    assert media in ("video-file", "images/separated"), sorted(k for k in keys if k.startswith("eval_episode"))
    files = {p.relative_to(Path(run["path"]).parent / "files").as_posix()
             for p in (Path(run["path"]).parent / "files").rglob("*") if p.is_file()}
    assert any(f.startswith("media/videos/eval_episode/") or f.startswith("media/images/eval_episode/")
               for f in files), sorted(files)


def test_samples_from_actions_and_infos() -> None:
    native = {"group": np.array([[0, 1, 1, 2], [2, 2, 2, 0]]), "power": np.array([[0, 4, 1, 2], [0, 0, 0, 0]]),
              "compression": np.array([[0, 1, 2, 3], [3, 3, 3, 3]])}
    s = allocation_samples(native, np.array([-40.0, -30.0, -20.0, -10.0, 0.0]), np.array([4, 8, 16, 32]), 0.2)
    np.testing.assert_allclose(s["power_dbm"], 23.0103 + np.array([0.0, -30.0, -20.0, -40.0, -40.0, -40.0]),
                               atol=1e-3)
    np.testing.assert_array_equal(s["prefix"], [8, 16, 32, 32, 32, 32])
    np.testing.assert_array_equal(np.sort(s["group_size"]), [1, 2, 3])
    i = info_samples({"sinr_db": np.array([3.0, 0.0, -2.0]), "sent": np.array([1, 0, 2]), "queue": np.array([1, 0, 4])})
    np.testing.assert_array_equal(i["sinr_db"], [3.0, -2.0])
    np.testing.assert_array_equal(i["queue"], [1, 0, 4])


def test_frames_fall_back_to_images_without_moviepy(monkeypatch: pytest.MonkeyPatch) -> None:
    import wandb
    from stable_baselines3 import PPO

    from vmimo_env.sb3 import VMIMOSB3VecEnv

    model = PPO("MlpPolicy", VMIMOSB3VecEnv(2, scenario="small", seed=0), n_steps=8, batch_size=16, device="cpu")

    class _On:  # an active run stand-in: _episode_media only builds the payload
        active = True

        @staticmethod
        def _safe(fn):
            return fn()

    cb = WandbMediaCallback(_On(), "VMIMO-MultiDiscrete-v0", {"scenario": "small", "horizon": 6}, 0, frames=3)
    cb.model = model
    cb._env = cb._make_env()
    cb._cfg = cb._env.unwrapped.cfg
    real = wandb_extras.importlib.util.find_spec
    monkeypatch.setattr(wandb_extras.importlib.util, "find_spec",
                        lambda name, *a: None if name == "moviepy" else real(name, *a))
    out = cb._episode_media()
    assert "eval_episode/video" not in out
    assert out["eval_episode/frames"] and all(isinstance(f, wandb.Image) for f in out["eval_episode/frames"])
    assert set(out) >= {f"eval_episode/dist/{k}" for k in DIST_KEYS}


def test_workspace_builds_without_a_server(tmp_path: Path) -> None:
    pytest.importorskip("wandb_workspaces")
    from agents.wandb_workspace import HIST_KEYS, main

    spec = main(["--dry-run", "--entity", "someone", "--project", "vmimo", "--out", str(tmp_path / "ws.json")])
    assert json.loads((tmp_path / "ws.json").read_text()) == spec
    assert spec["entity"] == "someone" and spec["project"] == "vmimo"
    sections = spec["spec"]["section"]["panelBankConfig"]["sections"]
    names = [s["name"] for s in sections]
    assert names[:4] == ["Reward parts", "Δ vs best baseline", "Accuracy–energy", "Per-tier table"]
    text = json.dumps(spec)
    for key in ("episode/accuracy", "episode/energy_per_scene_mj", "eval/diff_vs_best_heuristic", "eval/accuracy",
                "eval/energy_per_scene_mj", "eval/table", *HIST_KEYS):
        assert key in text, key
    scatter = [p for p in sections[2]["panels"] if p["viewType"] == "Scatter Plot"]
    assert scatter and "eval/energy_per_scene_mj" in json.dumps(scatter[0]) and "eval/accuracy" in json.dumps(scatter)
    assert spec["spec"]["section"]["runSets"][0]["grouping"][0]["name"].startswith("env_id")


def test_sweep_config_matches_train_agent_flags() -> None:
    from stable_baselines3 import PPO

    from agents.common.hyperparams import parse_assignments

    sweep = yaml.safe_load((ROOT / "agents/sweeps/ppo_sweep.yaml").read_text())
    assert (ROOT / sweep["program"]).is_file()
    assert sweep["metric"]["goal"] == "maximize" and sweep["metric"]["name"].startswith("eval/")
    ppo_args = set(inspect.signature(PPO.__init__).parameters)
    values = {}
    for name, spec in sweep["parameters"].items():
        assert name in ppo_args, name
        values[name] = spec["values"][0] if "values" in spec else spec["min"]
    # the command exactly as `wandb agent` assembles it (wandb_agent.Agent._command_run)
    from wandb.sdk.launch.sweeps.utils import create_sweep_command_args

    sweep_vars = create_sweep_command_args({"args": {k: {"value": v} for k, v in values.items()}})
    sweep_vars.update(interpreter=["python"], program=[sweep["program"]], env=["/usr/bin/env"])
    command = []
    for tok in map(str, sweep["command"]):
        command += (sweep_vars.get(tok[2:-1]) or []) if tok.startswith("${") and tok.endswith("}") else [tok]
    assert command[:3] == ["/usr/bin/env", "python", "train_agent.py"]
    cmd = command[3:]
    args = train_agent.parse_args(cmd)  # every flag exists (argparse exits on an unknown one)
    assert args.algo == "ppo"
    assert parse_assignments(args.hyperparams, "=") == values


def test_callback_is_inert_for_other_envs_and_when_wandb_is_off() -> None:
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env

    class _Run:
        active = True

        def __init__(self):
            self.logged = []

        @staticmethod
        def _safe(fn):
            try:
                return fn()
            except Exception:
                return None

        def log(self, data, step):
            self.logged.append((step, data))

    for run, env_id in ((_Run(), "CartPole-v1"), (WandbRun("p", "disabled", {}), ENV)):
        model = PPO("MlpPolicy", make_vec_env("CartPole-v1", 2), n_steps=16, batch_size=32, device="cpu")
        cb = WandbMediaCallback(run, env_id, {}, 16, save_code=False)
        model.learn(64, callback=cb)
        assert cb._decode is None and cb.logged_steps == [] and getattr(run, "logged", []) == []
