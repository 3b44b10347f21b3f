"""Every heuristic decides from the BS view only: it runs unchanged through every front end that exposes it, and
no agent code carries a second copy of an environment rule."""

from __future__ import annotations

import functools
import re
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

import vmimo_env  # noqa: F401  (registers the ids)
from agents.policies import heuristic_names, make_policy
from vmimo_env.bs_view import BSView

torch.set_num_threads(1)
ENV_ID = "VMIMO-Small-v0"
STEPS = 6
SEED = 21
ROOT = Path(__file__).resolve().parents[1]


class HideCore(gym.Wrapper):
    """A wrapper that hides the simulator: ``unwrapped`` is the wrapper itself, which has no ``core``."""

    @property
    def unwrapped(self) -> gym.Env:
        return self

    def __getattribute__(self, name: str):
        if name == "core":
            raise AttributeError("core is hidden")
        return super().__getattribute__(name)


def single_returns(name: str, env: gym.Env, use_info: bool, steps: int = STEPS, **kw) -> np.ndarray:
    obs, info = env.reset(seed=SEED)
    policy = make_policy(name, env, **kw)
    policy.reset(SEED)
    out = []
    for _ in range(steps):
        obs, r, _, _, info = env.step(policy.act(obs, info if use_info else {k: v for k, v in info.items()
                                                                                 if k != "bs_view"}))
        out.append(r)
    return np.array(out)


def batched_returns(name: str, venv, step, reset) -> np.ndarray:
    obs, info = reset()
    policy = make_policy(name, venv)
    policy.reset(SEED)
    out = []
    for _ in range(STEPS):
        obs, r, info = step(policy.act(obs, info))
        out.append(r)
    return np.array(out)


@pytest.fixture(scope="module")
def subproc():
    from stable_baselines3.common.vec_env import SubprocVecEnv

    venv = SubprocVecEnv([functools.partial(gym.make, ENV_ID, info_bs_view=True)] * 2, start_method="fork")
    yield venv
    venv.close()


@pytest.mark.parametrize("name", [*heuristic_names(), "oracle"])
def test_heuristic_runs_unchanged_through_single_env_front_ends(name: str) -> None:
    kw = {"rounds": 1, "lookahead": 1} if name == "oracle" else {}
    steps = 3 if name == "oracle" else STEPS
    ref = single_returns(name, gym.make(ENV_ID), use_info=False, steps=steps, **kw)
    via_info = single_returns(name, gym.make(ENV_ID, info_bs_view=True), use_info=True, steps=steps, **kw)
    hidden_env = HideCore(gym.make(ENV_ID))
    assert getattr(hidden_env.unwrapped, "core", None) is None  # a walker looking for the core finds nothing
    hidden = single_returns(name, hidden_env, use_info=False, steps=steps, **kw)
    np.testing.assert_array_equal(via_info, ref)
    np.testing.assert_array_equal(hidden, ref)


@pytest.mark.parametrize("name", heuristic_names())
def test_heuristic_runs_unchanged_through_vector_front_ends(name: str, subproc) -> None:
    """The same returns on the native vector env (view fetched or read from infos), a Gymnasium SyncVectorEnv and
    behind SB3's SubprocVecEnv (views pickled across processes), and per environment as on a single env (not for
    ``random``, whose draws are batched)."""
    def native(info_bs_view: bool):
        venv = gym.make_vec(ENV_ID, num_envs=2, vectorization_mode="vector_entry_point", info_bs_view=info_bs_view)

        def step(a):
            obs, r, _, _, info = venv.step(a)
            return obs, r, info

        return venv, step, lambda: (venv.reset(seed=SEED)[0], {})

    ref = batched_returns(name, *native(False))
    np.testing.assert_array_equal(batched_returns(name, *native(True)), ref)
    sync = gym.make_vec(ENV_ID, num_envs=2, vectorization_mode="sync", info_bs_view=True)  # views via call()

    def sync_step(a):
        obs, r, _, _, info = sync.step(a)
        return obs, r, info

    np.testing.assert_array_equal(batched_returns(name, sync, sync_step, lambda: (sync.reset(seed=SEED)[0], {})), ref)

    def sb3_step(a):
        obs, r, _, infos = subproc.step([{k: v[i] for k, v in a.items()} for i in range(2)])
        return obs, r, list(infos)

    def sb3_reset():
        subproc.seed(SEED)
        return subproc.reset(), {}

    np.testing.assert_array_equal(batched_returns(name, subproc, sb3_step, sb3_reset), ref)
    if name != "random":
        for i in range(2):
            env = gym.make(ENV_ID)
            obs, info = env.reset(seed=SEED + i)
            policy = make_policy(name, env)
            policy.reset(SEED)
            single = []
            for _ in range(STEPS):
                obs, r, _, _, info = env.step(policy.act(obs, info))
                single.append(r)
            np.testing.assert_array_equal(single, ref[:, i])


def test_front_ends_expose_the_same_view() -> None:
    from vmimo_env.sb3 import VMIMOSB3VecEnv

    sb3 = VMIMOSB3VecEnv(2, seed=SEED, scenario="small", info_bs_view=True)
    sb3.reset()
    _, _, _, infos = sb3.step(np.zeros((2, sb3.action_space.shape[0]), dtype=np.int64))
    full = sb3.bs_view()
    rows = sb3.env_method("bs_view")
    assert full.N == 2 and [r.N for r in rows] == [1, 1]
    for i in range(2):
        from_info = BSView.from_dict(infos[i]["bs_view"])
        for key in ("h", "queue", "scene_held", "scene_slack"):
            np.testing.assert_array_equal(getattr(rows[i], key)[0], getattr(full, key)[i])
            np.testing.assert_array_equal(getattr(from_info, key)[0], getattr(full, key)[i])
    env = gym.make(ENV_ID)
    _, info = env.reset(seed=1)
    assert "bs_view" not in info  # the default info stays cheap
    view = env.get_wrapper_attr("bs_view")()
    assert view.N == 1


# ====================================================================== one owner per rule
SCANNED = [*sorted((ROOT / "agents").rglob("*.py")), ROOT / "train_agent.py",
           *sorted((ROOT / "benchmarks").glob("*.py"))]
ENERGY_FIELDS = r"(pa_efficiency|circuit_power_w|encode_energy_j_per_mflop|noise_psd_w_hz|energy_ref_j|energy_weight|" \
                r"d2d_energy_j_per_symbol|encode_capacity)"
# a second copy of a slot rule: the encode cap, a receiver's matrix algebra, energy or noise arithmetic
FORBIDDEN = {
    "encode cap": re.compile(r"floor\(.*(p_joint|encode_capacity)"),
    "receiver algebra": re.compile(r"linalg\.(solve|inv|pinv|cholesky|lstsq)\b"),
    "receiver": re.compile(r"def \w*(mmse|sinr)\w*\("),
    "energy or noise arithmetic": re.compile(rf"[-+*/]\s*[\w.\]\)]*\b{ENERGY_FIELDS}\b|\b{ENERGY_FIELDS}\s*[-+*/]"),
}


def test_the_rule_patterns_catch_copies() -> None:
    bad = {"encode cap": "cap = np.floor(cfg.encode_capacity * view.p_joint + 0.5)",
           "receiver algebra": "x = np.linalg.solve(R_minus, hp[..., None])",
           "receiver": "def mmse_sinr(h, power_w, group, noise_w, G):",
           "energy or noise arithmetic": "e = (power_w / cfg.pa_efficiency + cfg.circuit_power_w) * t"}
    for kind, line in bad.items():
        assert FORBIDDEN[kind].search(line), kind
    good = ["energy.device_energy_j(p, t, n, f, pa_efficiency=cfg.pa_efficiency,",
            "noise = rules.band_noise_w(share, cfg)", "rm = np.floor(r * w).astype(int)"]
    for line in good:
        assert not any(p.search(line) for p in FORBIDDEN.values()), line


def test_no_second_copy_of_an_environment_rule_outside_vmimo_env() -> None:
    found = []
    for path in SCANNED:
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("#", 1)[0]
            for kind, pattern in FORBIDDEN.items():
                if pattern.search(code):
                    found.append(f"{path.relative_to(ROOT)}:{n}: {kind}: {line.strip()}")
    assert not found, "environment rules re-derived outside vmimo_env (use vmimo_env.rules):\n" + "\n".join(found)


def test_heuristics_read_no_simulator_internals() -> None:
    """No heuristic, the planner or the clairvoyant oracle touches the core's attributes or looks for it behind
    wrappers."""
    pattern = re.compile(r"\bcore\.(?!replicate\b|step\b|bs_view\b)\w+|resolve_core|__dict__|\._STATE|_alloc_buffers"
                         r"|\.unwrapped\.core")
    found = []
    for path in [*sorted((ROOT / "agents" / "heuristics").glob("*.py")), ROOT / "agents" / "oracle.py",
                 ROOT / "agents" / "planner.py"]:
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if pattern.search(line.split("#", 1)[0]):
                found.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert not found, "\n".join(found)


def test_oracle_refuses_a_front_end_without_the_simulator(subproc) -> None:
    """The oracle plans on the simulator itself; behind a process boundary it says so instead of guessing."""
    with pytest.raises(TypeError, match="in-process VMIMO env"):
        make_policy("oracle", subproc)
