"""Episode rules behind ``ScenarioConfig`` fields: ``close_rule`` and ``score_at_truncation`` (v1), v0 by default.

Each test checks the direction and size of the change: scenes close earlier and held modalities are never
re-sent under ``close_rule="modalities"``; with ``score_at_truncation`` every arrived scene is scored exactly once,
and only the last slot changes.
"""

from __future__ import annotations

import numpy as np
import pytest
from slot_replay import replay

from agents.policies import heuristic_names, make_policy
from vmimo_env.config import ScenarioConfig
from vmimo_env.env import VMIMOEnv
from vmimo_env.vector import VMIMOVectorEnv

SMALL = {"scenario": "small"}  # K = 4 devices, one per modality: twins come from num_devices below


def _actions(cfg: ScenarioConfig, steps: int, seed: int, batch: int | None = None) -> list[dict[str, np.ndarray]]:
    """A fixed sequence of random native actions (the same for every rule under comparison)."""
    rng = np.random.default_rng(seed)
    K, G = cfg.num_devices, cfg.num_groups
    shape = (K,) if batch is None else (batch, K)
    return [{"group": rng.integers(0, G + 1, shape), "power": rng.integers(0, len(cfg.power_levels_db), shape),
             "compression": rng.integers(0, len(cfg.compression_levels), shape),
             "bandwidth": rng.uniform(0.2, 1.0, (*shape[:-1], G)).astype(np.float32)} for _ in range(steps)]


def _one_per_modality_action(cfg: ScenarioConfig) -> dict[str, np.ndarray]:
    """Devices 0..4 (one per modality) send at full power with room to keep up; their twins 5..7 stay idle."""
    K, G = cfg.num_devices, cfg.num_groups
    group = np.array([1 + (k % G) if k < 5 else 0 for k in range(K)])
    return {"group": group, "power": np.full(K, len(cfg.power_levels_db) - 1),
            "compression": np.full(K, 1), "bandwidth": np.ones(G, dtype=np.float32)}


def _run(env: VMIMOEnv, actions: list[dict[str, np.ndarray]], seed: int) -> dict[str, np.ndarray]:
    """Per-step totals of one episode (``closed``, ``correct``, ``arrived``, ``dropped``, pending scenes after
    the step, accuracy term) and the number of latents sent of scene-modalities the BS already held."""
    env.reset(seed=seed)
    core = env.core
    S = env.cfg.max_pending
    out: dict[str, list] = {"closed": [], "correct": [], "arrived": [], "dropped": [], "pending": [], "acc": []}
    resent = 0
    for a in actions:
        head, tail, nxt, rx = int(core.head[0]), int(core.tail[0]), core.next_seq[0].copy(), core.rx_len[0].copy()
        _, _, _, trunc, info = env.step(a)
        for k, n in enumerate(info["sent"]):
            m = core.device_modality[k]
            start = max(int(nxt[k]), head)
            # scenes queued before this slot's arrivals (later rows are new arrivals, never held)
            resent += sum(1 for seq in range(start, start + int(n)) if seq < tail and rx[seq % S, m] > 0)
        for key in ("closed", "correct", "arrived", "dropped"):
            out[key].append(info[key])
        out["pending"].append(int(core.tail[0] - core.head[0]))
        out["acc"].append(info["accuracy_term"])
        if trunc:
            break
    res = {k: np.asarray(v) for k, v in out.items()}
    res["resent"] = np.asarray(resent)
    return res


def test_defaults_are_v0_and_bad_values_name_the_field() -> None:
    cfg = ScenarioConfig()
    assert (cfg.close_rule, cfg.score_at_truncation, cfg.obs_coverage) == ("devices", False, False)
    with pytest.raises(ValueError, match=r"close_rule must be one of \['devices', 'modalities'\].*did you mean"):
        ScenarioConfig(close_rule="modality")
    for name in ("score_at_truncation", "obs_coverage"):
        with pytest.raises(ValueError, match=f"{name} must be a bool"):
            ScenarioConfig(**{name: 1})


def test_modalities_rule_closes_scenes_once_each_modality_arrived() -> None:
    """One device per modality sends, the twins never do: under "devices" no scene can complete (the twins never
    send it), so every scene waits for its deadline; under "modalities" the same deliveries complete it at once.
    The classifications are the same (same latents, same noise), only earlier."""
    base = {"score_at_truncation": True, "horizon": 60, "encode_capacity": 16}  # the senders keep up
    envs = {rule: VMIMOEnv(close_rule=rule, **base) for rule in ("devices", "modalities")}
    actions = [_one_per_modality_action(envs["devices"].cfg)] * 60
    res = {rule: _run(env, actions, seed=11) for rule, env in envs.items()}
    dev, mod = res["devices"], res["modalities"]
    D = envs["devices"].cfg.deadline_slots
    # devices rule: a scene arriving in slot a stays pending through a + D - 1; on average λ (D - 1) pending
    assert dev["pending"].mean() > 0.6 * 1.5 * (D - 1)
    assert mod["pending"].mean() < 0.25 * dev["pending"].mean()
    # earlier, never later: by every slot at least as many scenes have closed
    assert np.all(np.cumsum(mod["closed"]) >= np.cumsum(dev["closed"]))
    assert np.cumsum(mod["closed"])[D - 1] > np.cumsum(dev["closed"])[D - 1]
    # the same scenes, the same latents: the same correct total once every scene has been scored
    assert dev["closed"].sum() == mod["closed"].sum() == dev["arrived"].sum() + dev["dropped"].sum()
    assert dev["correct"].sum() == mod["correct"].sum()
    assert dev["resent"] == mod["resent"] == 0  # no twin sends in this schedule


def test_modalities_rule_never_resends_a_held_scene_modality() -> None:
    """Random schedules with both twins of visual, radar and infrared: under "devices" the twins re-send what the
    BS holds; under "modalities" no device ever sends a latent of a scene-modality held before the slot, so the
    same actions put fewer latents on air."""
    cfg = ScenarioConfig()
    actions = _actions(cfg, cfg.horizon, seed=2)
    dev = _run(VMIMOEnv(close_rule="devices"), actions, seed=4)
    mod = _run(VMIMOEnv(close_rule="modalities"), actions, seed=4)
    assert dev["resent"] > 50
    assert mod["resent"] == 0


def test_modalities_rule_keeps_queues_consistent_with_the_bs_view() -> None:
    """Under "modalities" every queued latent is unheld (the queue skips held ones) and twins share their start."""
    env = VMIMOEnv(close_rule="modalities")
    env.reset(seed=0)
    for a in _actions(env.cfg, 40, seed=5):
        env.step(a)
        view = env.bs_view()
        np.testing.assert_array_equal(view.queue_unheld, view.queue)
        nxt = np.maximum(env.core.next_seq[0], env.core.head[0])
        for m in np.unique(env.core.device_modality):
            assert len(set(nxt[env.core.device_modality == m].tolist())) == 1


@pytest.mark.parametrize("reward_mode", ["model", "soft"])
def test_score_at_truncation_scores_every_arrived_scene_once_single_env(reward_mode: str) -> None:
    """Same seed and actions: identical up to the last slot, which then closes exactly the scenes v0 leaves
    pending; the episode's closed count equals its arrivals (dropped ones included)."""
    kw = {**SMALL, "reward_mode": reward_mode}
    cfg = VMIMOEnv(**kw).cfg
    actions = _actions(cfg, cfg.horizon, seed=9)
    off = _run(VMIMOEnv(**kw), actions, seed=1)
    on = _run(VMIMOEnv(score_at_truncation=True, **kw), actions, seed=1)
    H = cfg.horizon
    assert len(off["closed"]) == len(on["closed"]) == H
    for key in ("closed", "correct", "arrived", "dropped", "acc"):
        np.testing.assert_array_equal(off[key][:-1], on[key][:-1])
    left = off["pending"][-1]
    assert left > 0  # v0 leaves scenes unscored ...
    assert off["closed"].sum() + left == off["arrived"].sum() + off["dropped"].sum()
    assert on["pending"][-1] == 0  # ... the flag scores them, in the last slot
    assert on["closed"][-1] == off["closed"][-1] + left
    assert on["closed"].sum() == on["arrived"].sum() + on["dropped"].sum()
    assert on["correct"][-1] >= off["correct"][-1] and on["acc"][-1] >= off["acc"][-1]


@pytest.mark.parametrize("reward_mode", ["model", "soft"])
def test_score_at_truncation_accounting_on_the_vector_env(reward_mode: str) -> None:
    """Over one episode of each of 3 environments (same-step autoreset), Σ closed = Σ arrived + Σ dropped with the
    flag, and falls short by the scenes pending at truncation without it."""
    sums = {}
    for flag in (False, True):
        venv = VMIMOVectorEnv(num_envs=3, score_at_truncation=flag, reward_mode=reward_mode, max_pending=6, **SMALL)
        venv.reset(seed=21)
        H = venv.cfg.horizon
        tot = {k: np.zeros(3, dtype=np.int64) for k in ("closed", "arrived", "dropped")}
        acc = np.zeros(3)
        for t, a in enumerate(_actions(venv.cfg, H, seed=3, batch=3)):
            _, _, _, trunc, info = venv.step(a)
            for k in tot:
                tot[k] += info[k]
            acc += info["accuracy_term"]
            if t < H - 1:
                pending = venv.core.tail - venv.core.head
            assert trunc.all() == (t == H - 1)
        sums[flag] = (tot, acc)
        balance = tot["arrived"] + tot["dropped"] - tot["closed"]
        if flag:
            np.testing.assert_array_equal(balance, 0)
        else:
            assert np.all(balance > 0) and np.all(balance <= pending + 8)  # the last slot's arrivals stay too
    assert np.all(sums[True][1] >= sums[False][1])
    assert sums[True][0]["dropped"].sum() > 0  # the small table forces drops: they are counted once as well


@pytest.mark.parametrize("name", heuristic_names())
def test_heuristics_run_under_the_v1_rules(name: str) -> None:
    """Every heuristic keeps working under the new rules (its view's queues already skip held latents) and its
    episodes balance: Σ closed = Σ arrived + Σ dropped."""
    venv = VMIMOVectorEnv(num_envs=2, close_rule="modalities", score_at_truncation=True, obs_coverage=True,
                          num_devices=6, **SMALL)
    policy = make_policy(name, venv)
    obs, info = venv.reset(seed=5)
    policy.reset(5)
    closed = np.zeros(2, dtype=np.int64)
    arrived = np.zeros(2, dtype=np.int64)
    for _ in range(venv.cfg.horizon):
        obs, _, _, trunc, info = venv.step(policy.act(obs, info))
        closed += info["closed"]
        arrived += info["arrived"] + info["dropped"]
    assert trunc.all()
    np.testing.assert_array_equal(closed, arrived)


@pytest.mark.parametrize("scenario", ["v1", "default", "small"])
def test_closed_full_counts_closed_scenes_holding_every_present_modality(scenario: str) -> None:
    """``info["closed_full"]`` equals a count rebuilt from the BS view before each step and the step's info
    (``slot_replay``: what each device sent, which rows closed), over episodes through truncation. v1 closes by
    modality and scores at truncation, v0 ("default") by device; "small" senses 4 of the 5 modalities, so a scene
    is full without the fifth. The counts are far from 0 and from ``closed``, so neither bound passes by itself."""
    venv = VMIMOVectorEnv(num_envs=3, scenario=scenario, horizon=60)
    venv.reset(seed=31)
    cfg = venv.cfg
    K, G = cfg.num_devices, cfg.num_groups
    rng = np.random.default_rng(8)
    # random schedules, half of the slots with every device on at a short prefix (many full scenes)
    full = scored = closed = 0
    for t, a in enumerate(_actions(cfg, cfg.horizon, seed=6, batch=3)):
        if t % 2:
            a = {**a, "group": rng.integers(1, G + 1, (3, K)), "compression": np.zeros((3, K), np.int64)}
        view = venv.bs_view()
        _, _, _, _, info = venv.step(a)
        for i in range(3):
            rep = replay(view, info, i)
            assert info["closed_full"][i] == rep.full(slice(0, rep.num_closed)).sum()
        full += info["closed_full"].sum()
        scored += (info["closed"] - info["expired_empty"]).sum()
        closed += info["closed"].sum()
    assert 0.1 * closed < full < scored <= closed
