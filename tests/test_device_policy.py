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


def _policy(context: str = "mean", device_modality: list[int] | None = None,
            **env_kwargs) -> tuple[PPO, VMIMOSB3VecEnv]:
    venv = VMIMOSB3VecEnv(4, seed=0, **env_kwargs)
    kwargs = {**device_policy_kwargs(venv), "device_context": context}
    if device_modality is not None:
        kwargs["device_modality"] = device_modality
    model = PPO(DevicePolicy, venv, n_steps=16, batch_size=32, n_epochs=1, seed=0, policy_kwargs=kwargs)
    return model, venv


@pytest.mark.parametrize("full_csi", [False, True])
def test_device_rows_read_each_devices_own_entries(full_csi: bool) -> None:
    model, venv = _policy(obs_full_csi=full_csi)
    core = venv.venv.core
    lay = core.obs_layout()
    K, M, Nr = core.K, core.M, core.Nr
    obs = th.arange(core.obs_dim, dtype=th.float32)[None] + 1000.0  # entry value = its index + 1000
    rows = model.policy.mlp_extractor.actor.device_rows(obs)[0].numpy() - 1000.0
    pairs = [(a, b) for a in range(K) for b in range(a + 1, K)]
    for k in range(K):
        for j, name in enumerate(("gain_db", "snr_db", "queue", "hol_age", "p_joint")):
            assert rows[k, j] == lay[name][0] + k
        m0 = lay["modality"][0] + k * M
        assert list(rows[k, 5:5 + M]) == list(range(m0, m0 + M))
        c = 5 + M
        if full_csi:  # Re of h_k over antennas, then Im (the kernel writes all Re first, then all Im)
            re0 = lay["csi"][0] + k * Nr
            assert list(rows[k, c:c + Nr]) == list(range(re0, re0 + Nr))
            assert list(rows[k, c + Nr:c + 2 * Nr]) == list(range(re0 + K * Nr, re0 + K * Nr + Nr))
            c += 2 * Nr
        assert rows[k, c] == lay["time"][0]
        corr = rows[k, c + 1:c + 1 + K]
        for j in range(K):
            if j == k:
                assert corr[j] == -1000.0  # the zero slot (before the +1000 offset was removed)
            else:
                assert corr[j] == lay["correlation"][0] + pairs.index((min(j, k), max(j, k)))
        assert np.all(rows[k, -K:] == np.eye(K)[k] - 1000.0)


@pytest.mark.parametrize("context", ["mean", "modality"])
def test_shared_actor_is_equivariant_to_a_relabelling_of_devices(context: str) -> None:
    """Permute the devices in the observation and the device one-hots alike: every device's logits follow its
    row, the band logits (pooled) do not change. Fails if a block is gathered for the wrong device. With the
    modality context the permutation keeps each device's modality (devices 0/5, 1/6, 2/7 share one at K = 8):
    the pool runs over a device's modality peers, so those are what a relabelling may exchange."""
    model, venv = _policy(context, obs_full_csi=True)
    core = venv.venv.core
    lay, K, G = core.obs_layout(), core.K, core.G
    perm = np.array([3, 0, 1, 7, 2, 6, 4, 5]) if context == "mean" else np.array([5, 6, 7, 3, 4, 0, 1, 2])
    assert np.array_equal(core.device_modality[perm], core.device_modality) or context == "mean"
    obs = venv.reset()
    new = obs.copy()
    for name in ("gain_db", "snr_db", "queue", "hol_age", "p_joint"):
        a, b = lay[name]
        new[:, a:b] = obs[:, a:b][:, perm]
    for name in ("modality", "csi"):
        a, b = lay[name]
        # csi is [Re of all devices | Im of all devices], modality one device after the other
        blk = obs[:, a:b].reshape(len(obs), 2 if name == "csi" else 1, K, -1)
        new[:, a:b] = blk[:, :, perm].reshape(len(obs), -1)
    a, b = lay["correlation"]
    iu, ju = np.triu_indices(K, 1)
    full = np.zeros((len(obs), K, K), dtype=obs.dtype)
    full[:, iu, ju] = obs[:, a:b]
    full[:, ju, iu] = obs[:, a:b]
    new[:, a:b] = full[:, perm][:, :, perm][:, iu, ju]
    actor = model.policy.mlp_extractor.actor
    net = model.policy.action_net
    with th.no_grad():
        base = net(actor(th.as_tensor(obs)))
        # the identity features move with the devices: the one-hots, and the correlation columns (a device's
        # correlations are listed by the other device's index, so the first layer's weights for them move too)
        actor.eye = actor.eye[th.as_tensor(perm)]
        c0 = actor.feat_index.shape[1]
        w = actor.phi[0].weight
        w[:, c0:c0 + K] = w[:, c0:c0 + K][:, th.as_tensor(perm)].clone()
        moved = net(actor(th.as_tensor(new)))
    nvec = venv.action_space.nvec
    starts = np.concatenate([[0], np.cumsum(nvec)])
    for part in range(3):
        for k in range(K):
            i, j = part * K + k, part * K + perm[k]
            th.testing.assert_close(moved[:, starts[i]:starts[i + 1]], base[:, starts[j]:starts[j + 1]])
    th.testing.assert_close(moved[:, starts[3 * K]:], base[:, starts[3 * K]:], rtol=1e-5, atol=1e-6)
    assert G == nvec.size - 3 * K


def test_logits_follow_the_multidiscrete_order() -> None:
    model, venv = _policy()
    pol = model.policy
    K, G = venv.venv.core.K, venv.venv.core.G
    obs = th.as_tensor(venv.reset(), dtype=th.float32)
    with th.no_grad():
        latent = pol.mlp_extractor.forward_actor(obs)
        logits = pol.action_net(latent)
        assert latent.shape == (len(obs), K * pol.action_net.hidden)
        z = latent.view(len(obs), K, -1)
        per_dev = pol.action_net.device_head(z)
        band = pol.action_net.band_head(z.mean(dim=1))
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


def test_modality_context_pools_each_devices_modality_peers() -> None:
    """On every unit, device k's pool is the largest encoding among the devices of k's modality: raising one
    device's encoding moves exactly its peers' pools."""
    model, _ = _policy("modality", [3, 1, 1, 0, 4, 3, 2, 2])
    actor = model.policy.mlp_extractor.actor
    e = th.zeros(1, 8, actor.hidden)
    e[0, 5, 0] = 2.0  # device 5 senses modality 3, as device 0 does
    pooled = actor.modality_max(e)[0, :, 0]
    assert pooled.tolist() == [2.0, 0, 0, 0, 0, 2.0, 0, 0]
    e = -th.arange(8.0).view(1, 8, 1).expand(1, 8, actor.hidden)
    assert actor.modality_max(e)[0, :, 3].tolist() == [0.0, -1, -1, -3, -4, 0, -6, -6]


def test_modality_context_round_trips_through_save_and_load(tmp_path: Path) -> None:
    model, venv = _policy("modality")
    model.learn(64)
    model.save(tmp_path / "m.zip")
    loaded = PPO.load(tmp_path / "m.zip")
    assert loaded.policy.mlp_extractor.actor.context == "modality"
    obs = venv.reset()
    np.testing.assert_array_equal(model.predict(obs, deterministic=True)[0],
                                  loaded.predict(obs, deterministic=True)[0])


def test_bad_setups_raise_clearly() -> None:
    venv = VMIMOSB3VecEnv(2, seed=0)
    kw = device_policy_kwargs(venv)
    with pytest.raises(ValueError, match="device_context must be one of"):
        PPO(DevicePolicy, venv, n_steps=8, batch_size=16, policy_kwargs={**kw, "device_context": "rank"})
    with pytest.raises(ValueError, match="needs device_modality"):
        PPO(DevicePolicy, venv, n_steps=8, batch_size=16,
            policy_kwargs={**kw, "device_context": "modality", "device_modality": [0, 1]})
    with pytest.raises(ValueError, match="obs_layout"):
        PPO(DevicePolicy, venv, n_steps=8, batch_size=16)
    box = VMIMOSB3VecEnv(2, action_view="box", seed=0)
    with pytest.raises(ValueError, match="multidiscrete"):
        PPO(DevicePolicy, box, n_steps=8, batch_size=16, policy_kwargs=device_policy_kwargs(box))
    with pytest.raises(ValueError, match="VMIMO environment"):
        device_policy_kwargs(gym.make("CartPole-v1"))


def test_kwargs_come_from_the_spec_for_every_kind_of_vmimo_env() -> None:
    """Wrapped single env, vector env, SB3 VecEnv (also under VecNormalize) and a bare config give one layout."""
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    from vmimo_env import obs_spec
    from vmimo_env.config import ScenarioConfig
    from vmimo_env.vector import VMIMOVectorEnv

    cfg = ScenarioConfig(num_devices=5, num_antennas=3, num_groups=2, obs_full_csi=True)
    expected = {"obs_layout": {k: list(v) for k, v in obs_spec.resolve(cfg).slices.items()}, "num_devices": 5,
                "num_groups": 2, "device_modality": [0, 1, 2, 3, 4]}
    kw = cfg.to_dict()
    envs = [gym.make("VMIMO-MultiDiscrete-v0", **kw), VMIMOVectorEnv(2, action_view="multidiscrete", **kw),
            VMIMOSB3VecEnv(2, seed=0, **kw), VecNormalize(VMIMOSB3VecEnv(2, seed=0, **kw)),
            DummyVecEnv([lambda: gym.make("VMIMO-MultiDiscrete-v0", **kw)]), cfg]
    for env in envs:
        assert device_policy_kwargs(env) == expected, type(env).__name__
    with pytest.raises(ValueError, match="VMIMO environment"):
        device_policy_kwargs(DummyVecEnv([lambda: gym.make("CartPole-v1")]))
    with pytest.raises(ValueError, match="obs_mode='box'"):
        device_policy_kwargs(VMIMOSB3VecEnv(2, seed=0, **{**kw, "obs_mode": "dict"}))


@pytest.mark.parametrize(("full_csi", "context", "modality"), [
    (False, "mean", None), (True, "mean", None),
    (False, "modality", None),  # the scenario's cycled modalities: the padded-view pool
    (True, "modality", [3, 1, 1, 0, 4, 3, 2, 2]),  # any other assignment: the gathered pool
])
def test_fast_forward_equals_the_reference_steps(full_csi: bool, context: str, modality: list[int] | None) -> None:
    """The split-weight forward is the docstring's rows → φ → context → ψ, values and gradients (with trained,
    non-trivial weights: every parameter moved by a few updates)."""
    model, venv = _policy(context, modality, obs_full_csi=full_csi)
    if context == "modality":
        assert model.policy.mlp_extractor.actor.cyclic is (modality is None)
    model.learn(64)
    actor = model.policy.mlp_extractor.actor
    obs = th.as_tensor(np.concatenate([venv.reset(), 3.0 * np.random.default_rng(0).standard_normal(
        (4, venv.observation_space.shape[0])).astype(np.float32)]))
    fast, ref = actor(obs), actor.reference_forward(obs)
    assert fast.shape == ref.shape == (8, actor.K * actor.hidden)
    th.testing.assert_close(fast, ref, rtol=1e-5, atol=1e-6)
    w = th.randn_like(ref)
    g_fast = th.autograd.grad((fast * w).sum(), list(actor.parameters()))
    g_ref = th.autograd.grad((ref * w).sum(), list(actor.parameters()))
    for a, b in zip(g_fast, g_ref, strict=True):
        # float32 sums taken in another order: agreement relative to the gradient's own scale
        th.testing.assert_close(a, b, rtol=1e-4, atol=1e-5 * float(b.abs().max()))


def test_networks_use_the_vectorised_tanh_and_saved_models_keep_nn_tanh(tmp_path: Path) -> None:
    from torch import nn

    from agents.common.activations import Tanh

    model, _ = _policy()
    acts = [m for m in model.policy.modules() if isinstance(m, nn.Tanh)]
    assert acts and all(type(m) is Tanh for m in acts)
    assert model.policy.activation_fn is nn.Tanh
    model.save(tmp_path / "m.zip")
    assert PPO.load(tmp_path / "m.zip").policy.activation_fn is nn.Tanh
