"""The per-device shared actor: it reads the right observation entries, its logits land in the multidiscrete
order, it trains and round-trips through save/load, and bad set-ups fail clearly."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3 import PPO

import vmimo_env  # noqa: F401  (registers the ids)
from agents.common.device_policy import DevicePolicy, device_policy_kwargs
from vmimo_env.sb3 import VMIMOSB3VecEnv

th.set_num_threads(1)


def _policy(env_id: str = "VMIMO-v0", **env_kwargs) -> tuple[PPO, VMIMOSB3VecEnv]:
    venv = VMIMOSB3VecEnv(4, seed=0, **env_kwargs) if env_id == "VMIMO-v0" else None
    assert venv is not None
    model = PPO(DevicePolicy, venv, n_steps=16, batch_size=32, n_epochs=1, seed=0,
                policy_kwargs=device_policy_kwargs(venv))
    return model, venv


def test_device_rows_read_each_devices_own_entries() -> None:
    model, venv = _policy()
    core = venv.venv.core
    lay = core.obs_layout()
    K = core.K
    obs = th.arange(core.obs_dim, dtype=th.float32)[None] + 1000.0  # entry value = its index + 1000
    rows = model.policy.mlp_extractor.actor.device_rows(obs)[0].numpy() - 1000.0
    for k in range(K):
        for j, name in enumerate(("gain_db", "snr_db", "queue", "hol_age", "p_joint")):
            assert rows[k, j] == lay[name][0] + k
        m0 = lay["modality"][0] + k * core.M
        assert list(rows[k, 5:5 + core.M]) == list(range(m0, m0 + core.M))
        assert rows[k, 5 + core.M] == lay["time"][0]
        corr = rows[k, 6 + core.M:6 + core.M + K]
        pairs = [(a, b) for a in range(K) for b in range(a + 1, K)]
        for j in range(K):
            if j == k:
                assert corr[j] == -1000.0  # the zero slot (before the +1000 offset was removed)
            else:
                assert corr[j] == lay["correlation"][0] + pairs.index((min(j, k), max(j, k)))
        assert np.all(rows[k, -K:] == np.eye(K)[k] - 1000.0)


def test_logits_follow_the_multidiscrete_order() -> None:
    model, venv = _policy()
    pol = model.policy
    K, G = venv.venv.core.K, venv.venv.core.G
    obs = th.as_tensor(venv.reset(), dtype=th.float32)
    with th.no_grad():
        latent = pol.mlp_extractor.forward_actor(obs)
        logits = pol.action_net(latent)
        z = latent[:, :K * pol.action_net.hidden].view(len(obs), K, -1)
        per_dev = pol.action_net.device_head(z)
        band = pol.action_net.band_head(latent[:, K * pol.action_net.hidden:])
    nvec = venv.action_space.nvec
    assert logits.shape == (len(obs), int(nvec.sum()))
    starts = np.concatenate([[0], np.cumsum(nvec)])
    n_g, n_p, n_c = int(nvec[0]), int(nvec[K]), int(nvec[2 * K])
    for k in range(K):
        th.testing.assert_close(logits[:, starts[k]:starts[k + 1]], per_dev[:, k, :n_g])
        th.testing.assert_close(logits[:, starts[K + k]:starts[K + k + 1]], per_dev[:, k, n_g:n_g + n_p])
        th.testing.assert_close(logits[:, starts[2 * K + k]:starts[2 * K + k + 1]], per_dev[:, k, n_g + n_p:])
    th.testing.assert_close(logits[:, starts[3 * K]:], band)
    assert per_dev.shape[-1] == n_g + n_p + n_c and band.shape[-1] == G * int(nvec[-1])


def test_trains_and_round_trips_through_save_and_load(tmp_path: Path) -> None:
    model, venv = _policy()
    before = [p.detach().clone() for p in model.policy.parameters()]
    model.learn(128)
    assert any(not th.equal(a, b) for a, b in zip(before, model.policy.parameters(), strict=True))
    model.save(tmp_path / "m.zip")
    loaded = PPO.load(tmp_path / "m.zip")
    assert isinstance(loaded.policy, DevicePolicy)
    obs = venv.reset()
    a1, _ = model.predict(obs, deterministic=True)
    a2, _ = loaded.predict(obs, deterministic=True)
    np.testing.assert_array_equal(a1, a2)
    assert venv.action_space.contains(a1[0])


def test_bad_setups_raise_clearly() -> None:
    venv = VMIMOSB3VecEnv(2, seed=0)
    with pytest.raises(ValueError, match="obs_layout"):
        PPO(DevicePolicy, venv, n_steps=8, batch_size=16)
    box = VMIMOSB3VecEnv(2, action_view="box", seed=0)
    with pytest.raises(ValueError, match="multidiscrete"):
        PPO(DevicePolicy, box, n_steps=8, batch_size=16, policy_kwargs=device_policy_kwargs(box))
    with pytest.raises(ValueError, match="VMIMO environment"):
        device_policy_kwargs(gym.make("CartPole-v1"))
