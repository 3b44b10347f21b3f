"""A per-device actor for VMIMO's multidiscrete view: one small network shared by every device.

A flat MLP actor has to learn "transmit at a power that fits this device's path loss" once per device, from
that device's share of the data. Every device faces the same decision problem, up to its own state, so the
actor here encodes each device's row of the observation with **shared weights** (DeepSets, Zaheer et al. 2017;
the same idea as the graph-network schedulers of Shen et al., "Graph neural networks for scalable radio resource
management", 2021):

1. device row ``x_k`` = [gain, SNR, queue, head-of-line age, p_joint, modality one-hot, the device's column of the
   pairwise channel-correlation matrix, full CSI if observed, episode time, device one-hot];
2. ``e_k = φ(x_k)`` (shared MLP), context ``c = mean_k e_k``;
3. ``z_k = ψ([e_k, c])`` (shared), the device's action logits (group, power, compression) ``= W z_k``;
   with ``device_context="modality"``, ``z_k = ψ([e_k, c, m_k])`` where ``m_k = max_{j: mod_j = mod_k} e_j``
   (per unit) pools the devices that sense k's modality;
4. group band-share logits from ``mean_k z_k``.

Why the modality pool: the action law is factorised (each device samples its group alone), so a joint choice
such as the coverage scheduler's "the strongest device of each modality that holds what the BS lacks" must be
decided by each device for itself. With the mean context alone, "am I the best of my modality" is a comparison the
network has to build from an average, and its clone idles the devices it is unsure about; with ``m_k`` it is
``e_k − m_k = 0`` on a unit. The modality of each device is a constant of the scenario
(``ScenarioConfig.device_modalities``), so it comes with the layout (:func:`device_policy_kwargs`), not from the
normalised observation.

The device one-hot lets the shared network still treat devices differently where it pays (a fixed modality per
device, say), so nothing is lost against the flat actor; the sharing only changes what is easy to learn. The
critic is the usual MLP on the flat observation (``net_arch["vf"]``). The output is the flat logit vector of the
multidiscrete view, in its order ``[group (K) | power (K) | compression (K) | bandwidth (G)]``, fed to the same
vectorised MultiCategorical as :class:`~agents.common.distributions.FastMultiDiscretePolicy`: the law, PPO's loss
and the checkpoints work unchanged.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.vec_env import VecEnv
from torch import nn
from torch.nn import functional as F

from agents.common.activations import fast_activation
from agents.common.distributions import FastMultiDiscretePolicy, make_optimizer
from vmimo_env import obs_spec
from vmimo_env.config import MODALITIES, ScenarioConfig


def device_policy_kwargs(env: Any) -> dict[str, Any]:
    """The layout keywords :class:`DevicePolicy` needs, from a VMIMO environment's scenario: ``obs_layout``,
    ``num_devices``, ``num_groups`` and ``device_modality``.

    ``env`` is a ``ScenarioConfig``, or any VMIMO environment: a single env however wrapped (its ``unwrapped``
    holds ``cfg``), a Gymnasium vector env, or an SB3 ``VecEnv`` (``get_attr("cfg")``, which SB3's VecEnvs and
    ``VecNormalize`` forward). The layout is the observation spec's (``vmimo_env.obs_spec``) for that scenario,
    checked against the environment's observation space.
    """
    cfg = _scenario_config(env)
    spec = obs_spec.resolve(cfg)
    space = getattr(env, "single_observation_space", None)
    if space is None:
        space = getattr(env, "observation_space", None)
    if space is not None and (not isinstance(space, spaces.Box) or space.shape != (spec.dim,)):
        raise ValueError(f"DevicePolicy needs the flat VMIMO observation of {spec.dim} entries for this scenario "
                         f"(obs_mode='box'), got {space}")
    lay = {name: [a, b] for name, (a, b) in spec.slices.items()}
    modality = [MODALITIES.index(m) for m in cfg.device_modalities]
    return {"obs_layout": lay, "num_devices": int(cfg.num_devices), "num_groups": int(cfg.num_groups),
            "device_modality": modality}


def _scenario_config(env: Any) -> ScenarioConfig:
    """The ``ScenarioConfig`` of a VMIMO environment through the environments' own attribute access."""
    if isinstance(env, ScenarioConfig):
        return env
    cfg = None
    if isinstance(env, VecEnv):
        try:
            cfg = env.get_attr("cfg", indices=[0])[0]
        except AttributeError:
            cfg = None
    else:
        cfg = getattr(getattr(env, "unwrapped", env), "cfg", None)
    if not isinstance(cfg, ScenarioConfig):
        raise ValueError(f"DevicePolicy needs a VMIMO environment (one with a ScenarioConfig .cfg); got "
                         f"{type(env).__name__}")
    return cfg


DEVICE_CONTEXTS = ("mean", "modality")


class DeviceActor(nn.Module):
    """Shared per-device encoder + context: obs (B, D) -> latent (B, K·H), every device's z_k.

    ``context`` is ``"mean"`` or ``"modality"`` (the module docstring's step 3; the latter needs
    ``device_modality``, one modality index per device).

    ``phi`` and ``psi`` hold the shared layers. :meth:`forward` computes ``ψ([φ(x_k), mean_j φ(x_j)])`` without
    materialising the rows or the concatenation (the module docstring's steps 1–3 with the first layers'
    weights split by input block: the one-hot block is a per-device bias, the context half of ψ is applied once
    per sample rather than once per device); :meth:`reference_forward` is the same function written as those
    steps, kept for the tests.
    """

    def __init__(self, obs_layout: dict[str, list[int]], num_devices: int, hidden: int = 64,
                 activation: type[nn.Module] = nn.Tanh, context: str = "mean",
                 device_modality: list[int] | None = None) -> None:
        super().__init__()
        K = num_devices
        self.K, self.hidden = K, hidden
        if context not in DEVICE_CONTEXTS:
            raise ValueError(f"device_context must be one of {DEVICE_CONTEXTS}, got {context!r}")
        self.context = context
        if context == "modality":
            if device_modality is None or len(device_modality) != K:
                raise ValueError(f"device_context='modality' needs device_modality, one modality index per device "
                                 f"(K={K}), got {device_modality!r}")
            mods = np.asarray(device_modality, dtype=np.int64)
            uniq = np.unique(mods)
            # the scenario cycles its modalities over the devices (ScenarioConfig.device_modalities), so device k's
            # peers are k mod L, k mod L + L, ...: one padded view pools them; any other layout gathers them
            L = len(uniq)
            self.cyclic = bool(np.array_equal(mods, mods[np.arange(K) % L]))
            self.period, self.rows = L, -(-K // L)
            members = [np.flatnonzero(mods == m) for m in uniq]
            width = max(len(g) for g in members)
            index = np.stack([np.concatenate([g, np.full(width - len(g), g[0])]) for g in members])  # (M, width)
            self.register_buffer("modality_members", th.as_tensor(index, dtype=th.long), persistent=False)
            self.register_buffer("modality_of", th.as_tensor(np.searchsorted(uniq, mods), dtype=th.long),
                                 persistent=False)
        # which observation entries make device k's row comes from the observation spec (its blocks' axes)
        per_dev, pair = obs_spec.device_gather(obs_layout, K)  # (K, F0); (K, K), -1 on the diagonal
        self.register_buffer("feat_index", th.as_tensor(per_dev, dtype=th.long), persistent=False)
        self.register_buffer("corr_index", th.as_tensor(pair, dtype=th.long), persistent=False)
        # own features and correlations in one gather from [obs | 0]: index -1 reads the appended zero
        row_index = np.concatenate([per_dev, pair], axis=1)
        self.register_buffer("row_index", th.as_tensor(row_index, dtype=th.long), persistent=False)
        self.register_buffer("eye", th.eye(K), persistent=False)
        in_dim = per_dev.shape[1] + K + K
        act = fast_activation(activation)
        self.phi = nn.Sequential(nn.Linear(in_dim, hidden), act(), nn.Linear(hidden, hidden), act())
        n_ctx = 3 if context == "modality" else 2
        self.psi = nn.Sequential(nn.Linear(n_ctx * hidden, hidden), act())
        self.latent_dim = K * hidden

    def device_rows(self, obs: th.Tensor) -> th.Tensor:
        """(B, D) observations -> (B, K, F) device rows: own features, correlations with every device, one-hot."""
        B, K = obs.shape[0], self.K
        feats = obs[:, self.feat_index]  # (B, K, F0)
        padded = th.cat([obs, obs.new_zeros(B, 1)], dim=1)  # index -1 -> the zero column
        corr = padded[:, self.corr_index]  # (B, K, K)
        return th.cat([feats, corr, self.eye.expand(B, K, K)], dim=2)

    def reference_forward(self, obs: th.Tensor) -> th.Tensor:
        """The module docstring's steps as written: rows, φ, mean context, ψ of the concatenation."""
        e = self.phi(self.device_rows(obs))  # (B, K, H)
        ctx = e.mean(dim=1, keepdim=True).expand_as(e)
        parts = [e, ctx]
        if self.context == "modality":
            mods = self.modality_of.tolist()
            mod_max = th.stack([e[:, [j for j in range(self.K) if mods[j] == mods[k]]].max(dim=1).values
                                for k in range(self.K)], dim=1)
            parts.append(mod_max)
        return self.psi(th.cat(parts, dim=2)).flatten(1)

    def modality_max(self, e: th.Tensor) -> th.Tensor:
        """(B, K, H) encodings -> (B, K, H): on every unit, the largest encoding among the devices that sense
        device k's modality (k included)."""
        B, K, H = e.shape
        if self.cyclic:
            L, R = self.period, self.rows
            padded = th.cat([e, e.new_full((B, R * L - K, H), -1e9)], dim=1)
            return padded.view(B, R, L, H).max(dim=1).values.repeat(1, R, 1)[:, :K]
        return e[:, self.modality_members].max(dim=2).values.index_select(1, self.modality_of)

    def forward(self, obs: th.Tensor) -> th.Tensor:
        B, H = obs.shape[0], self.hidden
        first, act = self.phi[0], self.phi[1]
        n = self.row_index.shape[1]
        x = th.cat([obs, obs.new_zeros(B, 1)], dim=1)[:, self.row_index]  # (B, K, F0 + K)
        device_bias = F.linear(self.eye, first.weight[:, n:], first.bias)  # (K, H): the one-hot's columns
        e = self.phi[3](self.phi[2](act(F.linear(x, first.weight[:, :n]) + device_bias)))  # (B, K, H)
        mix = self.psi[0]
        ctx = F.linear(e.mean(dim=1), mix.weight[:, H:2 * H], mix.bias)  # (B, H)
        pre = F.linear(e, mix.weight[:, :H]) + ctx.unsqueeze(1)
        if self.context == "modality":
            pre = pre + F.linear(self.modality_max(e), mix.weight[:, 2 * H:])
        return self.psi[1](pre).flatten(1)


class DeviceActionNet(nn.Module):
    """Latent of :class:`DeviceActor` (every z_k) -> flat multidiscrete logits ``[group (K) | power (K) |
    compression (K) | bandwidth (G)]``, the same shared head for every device; the band head reads mean_k z_k."""

    def __init__(self, num_devices: int, hidden: int, nvec: np.ndarray, num_groups: int) -> None:
        super().__init__()
        K, G = num_devices, num_groups
        nvec = np.asarray(nvec)
        if nvec.size != 3 * K + G:
            raise ValueError(f"multidiscrete nvec of size {nvec.size} does not fit K={K}, G={G} (3K + G)")
        self.K, self.G, self.hidden = K, G, hidden
        self.sizes = [int(nvec[0]), int(nvec[K]), int(nvec[2 * K])]  # group, power, compression choices
        self.n_bw = int(nvec[3 * K])
        self.device_head = nn.Linear(hidden, sum(self.sizes))
        self.band_head = nn.Linear(hidden, G * self.n_bw)

    def forward(self, latent: th.Tensor) -> th.Tensor:
        B, K, H = latent.shape[0], self.K, self.hidden
        z = latent.view(B, K, H)
        parts = th.split(self.device_head(z), self.sizes, dim=2)  # each (B, K, n)
        return th.cat([p.reshape(B, -1) for p in parts] + [self.band_head(z.mean(dim=1))], dim=1)


class DeviceMlpExtractor(nn.Module):
    """SB3 ``mlp_extractor`` contract: ``forward_actor`` (per-device actor), ``forward_critic`` (flat MLP)."""

    def __init__(self, feature_dim: int, actor: DeviceActor, vf_arch: list[int],
                 activation: type[nn.Module]) -> None:
        super().__init__()
        self.actor = actor
        layers: list[nn.Module] = []
        last = feature_dim
        for width in vf_arch:
            layers += [nn.Linear(last, width), fast_activation(activation)()]
            last = width
        self.value_net = nn.Sequential(*layers)
        self.latent_dim_pi = actor.latent_dim
        self.latent_dim_vf = last

    def forward(self, features: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        return self.forward_actor(features), self.forward_critic(features)

    def forward_actor(self, features: th.Tensor) -> th.Tensor:
        return self.actor(features)

    def forward_critic(self, features: th.Tensor) -> th.Tensor:
        return self.value_net(features)


class DevicePolicy(FastMultiDiscretePolicy):
    """PPO/A2C policy with the per-device shared actor (module docstring) and an MLP critic.

    Extra ``policy_kwargs`` (``train_agent.py`` fills the first three from the environment with
    :func:`device_policy_kwargs`): ``obs_layout`` (name -> [start, stop] of the flat observation),
    ``num_devices``, ``num_groups``, ``device_modality`` (modality index of each device), ``device_hidden``
    (width of the shared networks, 64), ``device_context`` (``"mean"``, the default, or ``"modality"``: the
    module docstring's step 3). ``net_arch`` gives
    the critic (``[128, 128]`` or ``{"vf": [...]}``; SB3's default when unset, 64×64); ``activation_fn``
    applies to both.
    """

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Space, lr_schedule: Any,
                 obs_layout: dict[str, list[int]] | None = None, num_devices: int | None = None,
                 num_groups: int | None = None, device_hidden: int = 64, device_context: str = "mean",
                 device_modality: list[int] | None = None, **kwargs: Any) -> None:
        if obs_layout is None or num_devices is None or num_groups is None:
            raise ValueError("DevicePolicy needs obs_layout, num_devices and num_groups in policy_kwargs "
                             "(agents.common.device_policy.device_policy_kwargs(env) builds them)")
        if not isinstance(action_space, spaces.MultiDiscrete):
            raise ValueError(f"DevicePolicy needs VMIMO's multidiscrete action view, got {action_space}")
        if not isinstance(observation_space, spaces.Box) or observation_space.shape is None:
            raise ValueError(f"DevicePolicy needs VMIMO's flat Box observation (obs_mode='box'), "
                             f"got {observation_space}")
        self._device_cfg = {"obs_layout": {k: list(v) for k, v in obs_layout.items()},
                            "num_devices": int(num_devices), "num_groups": int(num_groups),
                            "device_hidden": int(device_hidden), "device_context": str(device_context),
                            "device_modality": None if device_modality is None else [int(m) for m in device_modality]}
        super().__init__(observation_space, action_space, lr_schedule, **kwargs)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(self._device_cfg)
        return data

    def _build_mlp_extractor(self) -> None:
        arch = self.net_arch
        vf = list(arch.get("vf", [128, 128])) if isinstance(arch, dict) else list(arch or [128, 128])
        actor = DeviceActor(self._device_cfg["obs_layout"], self._device_cfg["num_devices"],
                            self._device_cfg["device_hidden"], self.activation_fn,
                            self._device_cfg["device_context"], self._device_cfg["device_modality"])
        self.mlp_extractor = DeviceMlpExtractor(self.features_dim, actor, vf, self.activation_fn)

    def _build(self, lr_schedule: Any) -> None:
        super()._build(lr_schedule)
        # replace SB3's single Linear(latent, sum(nvec)) by the shared per-device head, initialised the way SB3
        # initialises action_net (orthogonal, gain 0.01: near-uniform initial policy)
        self.action_net = DeviceActionNet(self._device_cfg["num_devices"], self._device_cfg["device_hidden"],
                                          np.asarray(self.action_space.nvec), self._device_cfg["num_groups"])
        if self.ortho_init:
            for layer in (self.action_net.device_head, self.action_net.band_head):
                nn.init.orthogonal_(layer.weight, gain=0.01)
                nn.init.zeros_(layer.bias)
        self.optimizer = make_optimizer(self, lr_schedule(1))
