"""A checkpoint zip never runs code: crafted pickles (a ``vecnormalize.pkl`` member, a cloudpickled ``:serialized:``
entry of SB3's ``data``, a pickled replay buffer beside the checkpoint) are refused by the Python API, by
``python -m agents.evaluate`` and by ``train_agent.py --resume``, and their payload never runs; every checkpoint
the project writes still loads and evaluates exactly like the in-memory model; ``--trust-checkpoint`` loads a
plain SB3 zip; stale ``.tmp`` files of killed writers are cleaned when a run starts."""

from __future__ import annotations

import base64
import json
import os
import pickle
import socket
import subprocess
import sys
import time
import warnings
import zipfile
from pathlib import Path
from typing import Any

import cloudpickle
import numpy as np
import pytest
import torch

import agents.checkpoint as ck
import train_agent
from agents.checkpoint import CheckpointError

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parent.parent
ENV = "VMIMO-Small-v0"
ENV_SUB = {**os.environ, "WANDB_MODE": "disabled", "WANDB_SILENT": "true"}


class Payload:
    """Unpickling this runs ``touch MARKER``: what a malicious checkpoint would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return os.system, (f"touch {self.marker}",)


def tiny_model(algo: str = "ppo", **kwargs: Any) -> Any:
    import gymnasium as gym
    from stable_baselines3.common.vec_env import DummyVecEnv

    import vmimo_env  # noqa: F401
    from agents.common.envs import action_view_for, vmimo_kwargs
    from agents.policies import algo_class

    view = action_view_for(algo)
    venv = DummyVecEnv([lambda: gym.make(ENV, **vmimo_kwargs(ENV, {}, view))])
    policy = "MlpLstmPolicy" if algo == "recurrent_ppo" else "MlpPolicy"
    extra = {"n_steps": 16} if algo in ("ppo", "a2c", "maskable_ppo", "recurrent_ppo") else {"learning_starts": 8}
    if algo in ("ppo", "maskable_ppo", "recurrent_ppo"):
        extra["batch_size"] = 16
    model = algo_class(algo)(policy, venv, device="cpu", **{"seed": 0, **extra, **kwargs})
    model.learn(32)
    return model


def meta_for(algo: str) -> dict[str, Any]:
    from agents.common.envs import action_view_for

    return {"algo": algo, "env_id": ENV, "env_kwargs": {}, "action_view": action_view_for(algo)}


@pytest.fixture(scope="module")
def good_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkpoint of the current format, with VecNormalize statistics."""
    from stable_baselines3.common.vec_env import VecNormalize

    model = tiny_model("ppo")
    vn = VecNormalize(model.get_env(), gamma=0.9)
    vn.obs_rms.update(np.random.default_rng(0).normal(size=(5, *vn.observation_space.shape)))
    path = tmp_path_factory.mktemp("good") / "good.zip"
    return ck.save_checkpoint(path, model, meta_for("ppo"), vn)


def rewrite_zip(src: Path, dst: Path, replace: dict[str, bytes], drop: tuple[str, ...] = ()) -> Path:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for name in zin.namelist():
            if name not in replace and name not in drop:
                zout.writestr(name, zin.read(name))
        for name, data in replace.items():
            zout.writestr(name, data)
    return dst


def legacy_pickle_zip(good: Path, dst: Path, marker: Path) -> Path:
    """What today's main writes (format 1 + ``vecnormalize.pkl``), with a payload as the pickle."""
    with zipfile.ZipFile(good) as zf:
        meta = json.loads(zf.read(ck.META_NAME))
    meta["format"] = "vmimo-checkpoint/1"
    return rewrite_zip(good, dst, {ck.META_NAME: json.dumps(meta).encode(),
                                   ck.LEGACY_VECNORM: pickle.dumps(Payload(marker))},
                       drop=(ck.VECNORM_JSON, ck.VECNORM_NPZ))


def serialized_entry_zip(good: Path, dst: Path, marker: Path, key: str = "evil_entry") -> Path:
    """A zip whose SB3 ``data`` carries a cloudpickled payload in a ``:serialized:`` entry."""
    with zipfile.ZipFile(good) as zf:
        data = json.loads(zf.read("data"))
    data[key] = {":type:": "<class 'object'>",
                 ck.SERIALIZED: base64.b64encode(cloudpickle.dumps(Payload(marker))).decode()}
    return rewrite_zip(good, dst, {"data": json.dumps(data).encode()})


CRAFTED = {"pickled_vecnormalize": legacy_pickle_zip, "serialized_entry": serialized_entry_zip}


# ------------------------------------------------------------------------------------------------ Python API
@pytest.mark.parametrize("kind", list(CRAFTED))
def test_crafted_zips_are_refused_by_the_python_api(good_zip: Path, tmp_path: Path, kind: str) -> None:
    marker = tmp_path / "pwned"
    bad = CRAFTED[kind](good_zip, tmp_path / f"{kind}.zip", marker)
    from agents.common.envs import make_eval_vector_env
    from agents.policies import algo_class, load_sb3_policy, make_policy

    env = make_eval_vector_env(ENV, {}, 1)
    calls = [lambda: ck.load_model(ck.read_checkpoint(bad), algo_class("ppo")), lambda: ck.load_trained(bad),
             lambda: load_sb3_policy(bad, env), lambda: make_policy(str(bad), env)]
    for call in calls:
        with pytest.raises(CheckpointError) as err:
            call()
        msg = str(err.value)
        assert str(bad) in msg and "--trust-checkpoint" in msg and "\n" not in msg
        if kind == "serialized_entry":
            assert "'evil_entry'" in msg
    assert not marker.exists()


def test_a_payload_in_an_entry_the_project_rebuilds_is_never_unpickled(good_zip: Path, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    want = type(ck.load_trained(good_zip).model.policy)
    for key in ("policy_class", "observation_space", "lr_schedule", "clip_range"):
        bad = serialized_entry_zip(good_zip, tmp_path / f"{key}.zip", marker, key=key)
        loaded = ck.load_trained(bad)  # replaced by the rebuilt object, so the blob is ignored
        assert type(loaded.model.policy) is want
    assert not marker.exists()


def test_metadata_cannot_name_an_arbitrary_class(good_zip: Path, tmp_path: Path) -> None:
    with zipfile.ZipFile(good_zip) as zf:
        meta = json.loads(zf.read(ck.META_NAME))
    meta["sb3_objects"]["policy_class"] = {"kind": "class", "name": "os.system"}
    bad = rewrite_zip(good_zip, tmp_path / "cls.zip", {ck.META_NAME: json.dumps(meta).encode()})
    with pytest.raises(CheckpointError, match=r"'policy_class'.*os\.system"):
        ck.load_trained(bad)


def test_trust_loads_an_old_checkpoint_with_a_warning_and_convert_needs_it(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """An old-format checkpoint (pickled VecNormalize) made by the user: refused, then loaded with trust and
    converted once into a checkpoint that loads without trust and acts the same."""
    from stable_baselines3.common.vec_env import VecNormalize

    model = tiny_model("ppo")
    vn = VecNormalize(model.get_env(), gamma=0.9)
    vn.obs_rms.update(np.random.default_rng(1).normal(size=(5, *vn.observation_space.shape)))
    good = ck.save_checkpoint(tmp_path / "new.zip", model, meta_for("ppo"), vn)
    with zipfile.ZipFile(good) as zf:
        meta = json.loads(zf.read(ck.META_NAME))
    meta["format"] = "vmimo-checkpoint/1"
    del meta["sb3_objects"]
    old = rewrite_zip(good, tmp_path / "old.zip", {ck.META_NAME: json.dumps(meta).encode(),
                                                   ck.LEGACY_VECNORM: pickle.dumps(vn)},
                      drop=(ck.VECNORM_JSON, ck.VECNORM_NPZ))
    with pytest.raises(CheckpointError, match=r"agents\.checkpoint convert"):
        ck.read_checkpoint(old)
    with pytest.warns(UserWarning, match="--trust-checkpoint"):
        trusted = ck.load_trained(old, trust=True)
    with ck.trusting_checkpoints(), pytest.warns(UserWarning):
        assert ck.read_checkpoint(old).trusted
    monkeypatch.setenv("WANDB_MODE", "disabled")
    resume = ["--algo", "ppo", "--env", ENV, "-n", "96", "--n-envs", "2", "--eval-freq", "0", "--save-freq", "0",
              "--baselines", "", "--log-folder", str(tmp_path / "runs"), "--wandb-mode", "disabled", "--no-progress",
              "-v", "0", "--hyperparams", "n_steps=16", "batch_size=16", "--resume", str(old)]
    with pytest.raises(CheckpointError, match="--trust-checkpoint"):
        train_agent.main(resume)
    with pytest.warns(UserWarning, match="--trust-checkpoint"):
        assert train_agent.main([*resume, "--trust-checkpoint"])["num_timesteps"] >= 96
    with pytest.raises(CheckpointError):
        ck.convert(old, tmp_path / "conv.zip")
    assert ck.main(["convert", str(old), str(tmp_path / "conv.zip")]) == 2
    assert ck.main(["convert", str(old), str(tmp_path / "conv.zip"), "--trust-checkpoint"]) == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        conv = ck.load_trained(tmp_path / "conv.zip")
    obs = np.random.default_rng(2).normal(size=(8, *vn.observation_space.shape)).astype(np.float32)
    for a, b in ((trusted, conv),):
        np.testing.assert_array_equal(a.vecnormalize.normalize_obs(obs), b.vecnormalize.normalize_obs(obs))
        np.testing.assert_array_equal(a.model.predict(obs, deterministic=True)[0],
                                      b.model.predict(obs, deterministic=True)[0])


@pytest.mark.parametrize("algo", ["ppo", "a2c", "sac", "td3", "ddpg", "maskable_ppo", "recurrent_ppo"])
def test_every_algorithm_round_trips_without_unpickling(tmp_path: Path, algo: str) -> None:
    """No pickled entry is left undescribed (A2C's RMSprop policy_kwargs, TD3's action noise, schedules, ...)."""
    from stable_baselines3.common.vec_env import VecNormalize

    from agents.common.hyperparams import linear_schedule, prepare_algo_kwargs

    pytest.importorskip("sb3_contrib") if algo in ("maskable_ppo", "recurrent_ppo") else None
    kwargs: dict[str, Any] = {}
    if algo in ("td3", "ddpg"):
        kwargs = prepare_algo_kwargs({"noise_type": "normal", "noise_std": 0.3}, 14)[1]
    if algo == "ppo":
        kwargs = {"learning_rate": linear_schedule(1e-3), "clip_range": linear_schedule(0.3)}
    model = tiny_model(algo, **kwargs)
    vn = VecNormalize(model.get_env(), norm_reward=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # also: no "cannot be stored as plain data" warning at save time
        path = ck.save_checkpoint(tmp_path / "m.zip", model, meta_for(algo), vn)
        loaded = ck.load_trained(path)
    assert set(ck.find_pickled_entries(path)) <= set(json.loads(zipfile.ZipFile(path).read(ck.META_NAME))
                                                     ["sb3_objects"])
    obs = np.random.default_rng(0).normal(size=(4, *model.observation_space.shape)).astype(np.float32)
    np.testing.assert_array_equal(loaded.model.predict(obs, deterministic=True)[0],
                                  model.predict(obs, deterministic=True)[0])
    assert type(loaded.model.policy) is type(model.policy)
    if algo == "ppo":
        for p in (1.0, 0.5, 0.0):
            assert loaded.model.lr_schedule(p) == model.lr_schedule(p)
            assert loaded.model.clip_range(p) == model.clip_range(p)
    if algo in ("td3", "ddpg"):
        np.testing.assert_array_equal(loaded.model.action_noise._sigma, model.action_noise._sigma)
    if algo == "a2c":
        assert loaded.model.policy.optimizer_class is model.policy.optimizer_class


def test_vecnormalize_statistics_round_trip_as_plain_arrays(good_zip: Path) -> None:
    with zipfile.ZipFile(good_zip) as zf:
        names = set(zf.namelist())
        settings = json.loads(zf.read(ck.VECNORM_JSON))
    assert ck.LEGACY_VECNORM not in names and ck.VECNORM_NPZ in names
    assert settings["gamma"] == 0.9 and settings["norm_obs"] and settings["training"]
    vn = ck.read_checkpoint(good_zip).vecnormalize
    assert vn.venv is None and vn.obs_rms.count > 5 and vn.obs_rms.var.dtype == np.float64
    assert not np.allclose(vn.obs_rms.mean, 0.0)


def test_replay_buffer_round_trips_as_npz(tmp_path: Path) -> None:
    model = tiny_model("sac", buffer_size=100)
    path = ck.save_replay_buffer(model, tmp_path / "rb.npz")
    np.load(path, allow_pickle=False).close()
    other = tiny_model("sac", buffer_size=100, seed=5)
    ck.load_replay_buffer(other, path)
    for key in ("observations", "next_observations", "actions", "rewards", "dones", "timeouts"):
        np.testing.assert_array_equal(getattr(other.replay_buffer, key), getattr(model.replay_buffer, key))
    assert (other.replay_buffer.pos, other.replay_buffer.full) == (model.replay_buffer.pos, model.replay_buffer.full)
    small = tiny_model("sac", buffer_size=50)
    with pytest.raises(CheckpointError, match=r"rb\.npz"):
        ck.load_replay_buffer(small, path)


# ------------------------------------------------------------------------------------------------ command lines
def run_eval(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "agents.evaluate", *args, "--env", ENV, "-n", "2", "--no-plots",
                           "--batch-size", "2"], capture_output=True, text=True, timeout=300, env=ENV_SUB, cwd=ROOT)


def run_resume(path: Path, log: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "train_agent.py"), "--algo", "ppo", "--env", ENV,
                           "--resume", str(path), "-n", "64", "--n-envs", "2", "--eval-freq", "0", "--save-freq", "0",
                           "--baselines", "", "--log-folder", str(log), "--wandb-mode", "disabled", "--no-progress",
                           "-v", "0", *extra], capture_output=True, text=True, timeout=300, env=ENV_SUB, cwd=ROOT)


@pytest.mark.parametrize("kind", list(CRAFTED))
def test_crafted_zips_are_refused_by_evaluate_and_resume(good_zip: Path, tmp_path: Path, kind: str) -> None:
    marker = tmp_path / "pwned"
    bad = CRAFTED[kind](good_zip, tmp_path / f"{kind}.zip", marker)
    ev = run_eval(str(bad), "--out", str(tmp_path / "eval"))
    assert ev.returncode != 0, ev.stdout
    line = ev.stderr.strip().splitlines()[-1]
    assert line.startswith("error: ") and str(bad) in line and "--trust-checkpoint" in line
    assert "Traceback" not in ev.stderr
    res = run_resume(bad, tmp_path / "runs")
    assert res.returncode == 2, res.stderr
    line = res.stderr.strip().splitlines()[-1]
    assert line.startswith("error: ") and str(bad) in line and "--trust-checkpoint" in line
    if kind == "serialized_entry":
        assert "'evil_entry'" in line
    assert not marker.exists()


def test_trust_checkpoint_evaluates_a_plain_sb3_zip(tmp_path: Path) -> None:
    model = tiny_model("ppo")
    plain = tmp_path / "plain.zip"
    model.save(plain)
    with pytest.raises(CheckpointError, match="plain SB3"):
        ck.load_trained(plain, "ppo")
    from agents.common.envs import make_eval_vector_env
    from agents.policies import make_policy

    with pytest.raises(CheckpointError, match="--trust-checkpoint"):  # what the command line goes through
        make_policy(f"ppo:{plain}", make_eval_vector_env(ENV, {}, 1))
    ok = run_eval(f"ppo:{plain}", "--trust-checkpoint", "--out", str(tmp_path / "e2"))
    assert ok.returncode == 0, ok.stderr
    assert "--trust-checkpoint" in ok.stderr  # the warning says what trusting means
    with pytest.warns(UserWarning, match="plain Stable-Baselines3"):
        loaded = ck.load_trained(plain, "ppo", trust=True)
    obs = np.zeros((1, *model.observation_space.shape), np.float32)
    np.testing.assert_array_equal(loaded.model.predict(obs, deterministic=True)[0],
                                  model.predict(obs, deterministic=True)[0])


# ------------------------------------------------------------------------------------------------ real training
TRAIN_HP = {"ppo": ["n_steps=64", "batch_size=128", "n_epochs=2"],
            "ppo_device": ["n_steps=64", "batch_size=128", "n_epochs=2", "policy=DevicePolicy",
                           "policy_kwargs={device_hidden: 16}"],
            "sac": ["learning_starts=200", "batch_size=64", "buffer_size=5000", "train_freq=4",
                    "policy_kwargs={net_arch: [32, 32]}"]}
SEEDS = [5_000_000 + i for i in range(3)]


def returns_of(policy_factory: Any) -> np.ndarray:
    from agents.evaluate import run_policy

    return run_policy(policy_factory, ENV, {}, SEEDS, batch_size=3).episodes["return"]


@pytest.mark.parametrize("variant", list(TRAIN_HP))
def test_checkpoints_written_by_train_agent_evaluate_like_the_model_in_memory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variant: str) -> None:
    from agents.policies import SB3Policy, load_sb3_policy

    algo = variant.split("_")[0]
    in_memory: dict[str, np.ndarray] = {}
    real_save = ck.save_checkpoint

    def save_and_evaluate(path: Path, model: Any, meta: dict[str, Any], vecnormalize: Any = None) -> Path:
        out = real_save(path, model, meta, vecnormalize)
        if Path(path).name == "final_model.zip":
            in_memory["return"] = returns_of(lambda env: SB3Policy(model, env, vecnormalize,
                                                                   action_view=meta["action_view"]))
        return out

    monkeypatch.setattr(ck, "save_checkpoint", save_and_evaluate)
    monkeypatch.setattr(train_agent, "save_checkpoint", save_and_evaluate)  # imported by name there
    monkeypatch.setenv("WANDB_MODE", "disabled")
    summary = train_agent.main(["--algo", algo, "--env", ENV, "-n", "2000", "--n-envs", "4", "--seed", "1",
                                "--eval-freq", "0", "--save-freq", "1000", "--baselines", "", "--log-folder",
                                str(tmp_path / "runs"), "--wandb-mode", "disabled", "--no-progress", "-v", "0",
                                "--hyperparams", *TRAIN_HP[variant]])
    final = Path(summary["final_model"])
    assert ck.find_pickled_entries(final)  # SB3 did pickle entries: the safe loader had work to do
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no trust warning: nothing is unpickled
        from_file = returns_of(lambda env: load_sb3_policy(final, env))
    np.testing.assert_array_equal(from_file, in_memory["return"])
    if variant == "ppo_device":
        assert type(ck.load_trained(final).model.policy).__name__ == "DevicePolicy"
    if algo == "sac":  # the replay buffer beside the checkpoints is plain arrays too
        assert list((final.parent / "checkpoints").glob("replay_buffer_*.npz"))
        assert not list((final.parent / "checkpoints").glob("replay_buffer_*.pkl"))


def test_resume_ignores_a_pickled_replay_buffer_and_cleans_stale_temporaries(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "disabled")
    args = ["--algo", "sac", "--env", ENV, "--n-envs", "2", "--eval-freq", "0", "--save-freq", "64",
            "--baselines", "", "--log-folder", str(tmp_path / "runs"), "--wandb-mode", "disabled", "--no-progress",
            "-v", "0", "--hyperparams", "learning_starts=32", "batch_size=16", "buffer_size=500",
            "policy_kwargs={net_arch: [16]}"]
    first = train_agent.main([*args, "-n", "128"])
    run_dir = Path(first["run_dir"])
    ckpts = run_dir / "checkpoints"
    marker = tmp_path / "pwned"
    for p in ckpts.glob("replay_buffer_*.npz"):
        p.unlink()
    (ckpts / "replay_buffer_000000000128.pkl").write_bytes(pickle.dumps(Payload(marker)))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = socket.gethostname()
    stale = [ckpts / f".ckpt_000000000064.zip.{host}.{dead.pid}.abc123.tmp", run_dir / ".best_model.zip.xyz.tmp"]
    live = [ckpts / f".ckpt_000000000192.zip.{host}.{os.getpid()}.def456.tmp"]
    keep = [run_dir / ".not_a_checkpoint", *live]
    for p in [*stale, *keep]:
        p.write_bytes(b"partial")
    old = time.time() - 2 * 3600
    os.utime(stale[1], (old, old))  # no pid in the name: stale by age
    second = train_agent.main([*args, "-n", "192", "--resume", str(run_dir)])
    assert second["num_timesteps"] >= 192
    assert not marker.exists()
    assert not any(p.exists() for p in stale)
    assert all(p.exists() for p in keep)


def test_clean_stale_temporaries_only_removes_dead_writers_files(tmp_path: Path) -> None:
    host = socket.gethostname()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    gone = tmp_path / f".a.zip.{host}.{dead.pid}.r.tmp"
    mine = tmp_path / f".a.zip.{host}.{os.getpid()}.r.tmp"
    other_host = tmp_path / f".a.zip.elsewhere.{dead.pid}.r.tmp"  # another host's writer may be alive
    for p in (gone, mine, other_host):
        p.write_bytes(b"x")
    assert ck.clean_stale_temporaries(tmp_path, tmp_path / "missing") == [gone]
    assert mine.exists() and other_host.exists()
    old = time.time() - 7200
    os.utime(other_host, (old, old))
    assert ck.clean_stale_temporaries(tmp_path) == [other_host]
    # a kill -9 between mkstemp and os.replace leaves exactly such a file; the writer's own name carries the pid
    real_replace = os.replace

    def killed(*_a: Any) -> None:
        raise SystemExit("killed")

    os.replace = killed  # type: ignore[assignment]
    try:
        with pytest.raises(SystemExit):
            ck.atomic_write_bytes(tmp_path / "b.zip", b"data")
    finally:
        os.replace = real_replace
    assert not list(tmp_path.glob(".b.zip.*.tmp"))  # cleaned by the writer itself when it can
