"""``VMIMOEnv``: the virtual-MIMO semantic-communication scheduler as a Gymnasium environment."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from vmimo_env.bs_view import BSView, check_info_flag
from vmimo_env.config import MODALITIES, ScenarioConfig
from vmimo_env.core import StepResult, VMIMOCore
from vmimo_env.scenario import make_config
from vmimo_env.scenes import build_pool, load_model
from vmimo_env.spaces import ACTION_VIEWS, ActionLayout


class VMIMOEnv(gym.Env):
    """
    ## Description

    An edge base station (BS) with ``Nr`` antennas serves ``K`` single-antenna devices that each sense one modality
    (visual, radar, infrared, audio, environmental) of the same scenes. Scenes arrive every 10 ms slot (Poisson);
    each device encodes its modality of a scene into a nested 64-value latent with a frozen, NAS-found on-device
    encoder and queues it. Every slot the virtual-MIMO controller (the agent) puts devices into groups that
    share a band and are received jointly by a linear MMSE receiver (a virtual MIMO array), and picks each
    device's transmit power and latent prefix length and each group's bandwidth share. Latents arrive noisy at
    the post-receiver SINR and truncated to the chosen prefix. When a scene's deadline comes (or every device has
    delivered it), the BS classifies it from whatever arrived with a frozen, knowledge-distilled fusion head. The
    reward is task accuracy minus an energy cost. Physics: 3GPP TR 38.901 UMi street canyon path loss and
    shadowing, Rician/Rayleigh block fading with Gauss–Markov time correlation, the NAS-VMIMO seed's AR(1)
    compute/memory availability capping how many latents a device can encode per slot. See ``vmimo_env.core``
    for the slot in order and ``DESIGN.md`` for the reference model.

    ## Action Space

    ``action_view="dict"`` (default): ``Dict`` with

    | Key           | Space                        | Meaning                                                          |
    |---------------|------------------------------|------------------------------------------------------------------|
    | `group`       | `MultiDiscrete([G+1] * K)`   | device k's virtual-MIMO group; 0 = idle                          |
    | `power`       | `MultiDiscrete([L_p] * K)`   | index into `power_levels_db` (dB below 23 dBm: -40 … 0)          |
    | `compression` | `MultiDiscrete([L_c] * K)`   | index into `compression_levels` (latent prefix 4 … 64 reals)     |
    | `bandwidth`   | `Box(0, 1, (G,), float32)`   | raw band share of each group; scaled to sum to 1 if above 1      |

    ``action_view="multidiscrete"`` (PPO/A2C, MaskablePPO) and ``"box"`` (SAC/TD3/DDPG) flatten the same four
    parts in the order ``[group | power | compression | bandwidth]`` with the invertible mappings documented in
    ``vmimo_env.spaces``. Out-of-range discrete values, NaN/inf, wrong shapes and non-numeric dtypes raise
    ``ValueError`` naming the field; Box values outside [-1, 1] and bandwidth outside [0, 1] are clipped.

    ## Observation Space

    ``Box(low, high, (10 K + K(K-1)/2 + 1,), float32)`` (``obs_mode="box"``, default), blocks in order
    (``VMIMOEnv.obs_layout`` gives the slices; ``obs_mode="dict"`` returns the same blocks as a ``Dict``):

    | Block | Size | Entry (per device unless noted) | Unit → scaling |
    | --- | --- | --- | --- |
    | `gain_db` | K | large-scale gain (path loss + shadowing) | dB → (dB + 100) / 20, clipped to ±5 |
    | `snr_db` | K | SNR at max power over a 1/G band, current fading | dB → dB / 20, clipped to [-5, 10] |
    | `queue` | K | scenes waiting at the device | count → / (arrival_rate · deadline) |
    | `hol_age` | K | age of the oldest waiting scene | slots → / deadline |
    | `p_joint` | K | compute × memory availability (seed AR(1)) | probability, as is |
    | `modality` | 5 K | one-hot modality of each device | 0/1 |
    | `correlation` | K(K-1)/2 | pairwise ∣h_iᴴh_j∣ / (‖h_i‖‖h_j‖), i < j | [0, 1], as is |
    | `csi` | 2 K Nr | only with `obs_full_csi`: Re/Im of h / √gain | unit-power fading, clipped to ±8 |
    | `time` | 1 | slot index in the episode (per episode) | / horizon |

    ## Rewards

    ``r_t = correct_t / arrival_rate − λ_E · E_t / E_ref`` where ``correct_t`` is the number of scenes the frozen
    fusion head classified correctly this slot (from the latents actually received: noise, truncation, missing
    modalities), ``E_t`` the devices' energy in joules (transmit ``p/η · airtime`` + circuit ``P_c · airtime`` +
    encoder compute + D2D in cooperative mode), ``λ_E = energy_weight`` (0.5) and ``E_ref = energy_ref_j``
    (0.01 J). The accuracy term averages 1 for a perfect scheduler. Scenes dropped or expired with nothing
    received count as wrong. With ``heterogeneous_devices="variant"`` the devices run other encoders than the head's
    and the BS aligns what it receives first (``aligner``; ``vmimo_env.heterogeneous``), so the accuracy term also
    reflects alignment quality.

    ## Starting State

    Devices are dropped uniformly by area in the annulus [20 m, 250 m]; LOS state, path loss and shadowing are
    drawn per 3GPP UMi; small-scale fading starts from its stationary law; the resource process from its
    stationary law; queues are empty.

    ## Episode End

    No termination. Truncation after ``horizon`` slots (200 = 2 s of simulated time).

    ## Arguments

    ``gym.make("VMIMO-v0", **kwargs)`` takes every ``ScenarioConfig`` field as a keyword (validated, a bad value
    raises ``ValueError`` naming it), plus ``scenario`` (a name from ``vmimo_env.scenario.SCENARIOS``),
    ``config`` (a ``ScenarioConfig``, dict or YAML path), ``action_view`` (``dict``/``multidiscrete``/``box``),
    ``render_mode`` (``rgb_array``/``ansi``), ``checkpoint`` (another frozen student), ``pool_size`` and
    ``info_bs_view`` (bool, default False: add ``info["bs_view"]``, see Info).

    ## Info

    ``accuracy_term``, ``energy_term``, ``energy_j`` (total), ``energy_tx_j``, ``energy_circuit_j``,
    ``energy_encode_j``, ``energy_d2d_j``, ``arrived``, ``closed``, ``correct``, ``expired_empty``, ``dropped``,
    ``sinr_db`` (K,), ``sent`` (K,), ``queue`` (K,), ``p_joint`` (K,), ``action`` (the decoded native action) and
    ``action_mask`` (for MaskablePPO with the multidiscrete view). With ``info_bs_view=True`` also ``bs_view``
    (in the reset info too): what the BS knows at the start of the next slot, ``BSView.to_dict()`` of
    ``vmimo_env.bs_view``; ``env.bs_view()`` returns the same on demand.
    """

    metadata = {"render_modes": ["rgb_array", "ansi"], "render_fps": 10}

    def __init__(self, scenario: str | None = None, config: ScenarioConfig | str | dict | None = None,
                 action_view: str = "dict", render_mode: str | None = None, checkpoint: str | None = None,
                 pool_size: int = 4096, info_bs_view: bool = False, **overrides: Any) -> None:
        super().__init__()
        self._info_bs_view = check_info_flag(info_bs_view)
        if action_view not in ACTION_VIEWS:
            raise ValueError(f"action_view must be one of {list(ACTION_VIEWS)}, got {action_view!r}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}")
        self.cfg = make_config(scenario, config, **overrides)
        self.action_view = action_view
        self.render_mode = render_mode
        model = load_model(checkpoint)
        self.core = VMIMOCore(self.cfg, 1, build_pool(pool_size, checkpoint=checkpoint), model)
        self.layout = ActionLayout.from_config(self.cfg)
        # every action is valid in every state (see ``action_masks``): copied per call, never recomputed
        self._mask = action_masks(self.layout, np.zeros((1, self.cfg.num_devices)))[0]
        self.action_space = self.layout.space(action_view)
        self.observation_space = make_observation_space(self.core)
        self._needs_reset = True
        self._ever_reset = False
        self._last: StepResult | None = None
        self._last_action: dict[str, np.ndarray] | None = None

    # ------------------------------------------------------------------ gym API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        if seed is None and not self._ever_reset:
            # an unseeded first reset takes its seed from np_random (OS entropy), as Gymnasium's envs do
            seed = int(self.np_random.integers(2**63))
        self._ever_reset = True
        self.core.reset(np.array([0]), None if seed is None else [seed])
        self._needs_reset = False
        self._last = None
        return self._obs(), self._info_reset()

    def step(self, action: Any):
        if self._needs_reset:
            raise gym.error.ResetNeeded("Cannot call step() before reset() (or after the episode ended)")
        native = self.decode_action(action)
        res = self.core.step(native["group"][None], native["power"][None], native["compression"][None],
                             native["bandwidth"][None])
        self._last, self._last_action = res, native
        truncated = bool(self.core.t[0] >= self.cfg.horizon)
        if truncated:
            self._needs_reset = True
        return self._obs(), float(res.reward[0]), False, truncated, self._info(res, native)

    def decode_action(self, action: Any) -> dict[str, np.ndarray]:
        """Any view's action to validated native arrays (group, power, compression, bandwidth)."""
        if self.action_view == "dict":
            return self.layout.validate_native(action)
        if self.action_view == "multidiscrete":
            return self.layout.from_multidiscrete(action)
        return self.layout.from_box(action)

    def action_masks(self) -> np.ndarray:
        """Valid entries of the multidiscrete view (all valid; see ``action_masks`` below)."""
        return self._mask.copy()

    # ------------------------------------------------------------------ helpers
    def obs_layout(self) -> dict[str, slice]:
        return {k: slice(a, b) for k, (a, b) in self.core.obs_layout().items()}

    def _obs(self) -> np.ndarray | dict[str, np.ndarray]:
        flat = self.core.observe()[0]
        if self.cfg.obs_mode == "dict":
            return {k: flat[s] for k, s in self.obs_layout().items()}
        return flat

    def _info_reset(self) -> dict[str, Any]:
        info = {"queue": self.core.queue_lengths()[0].copy(), "p_joint": self.core.p_joint[0].copy(),
                "action_mask": self.action_masks()}
        if self._info_bs_view:
            info["bs_view"] = self.bs_view().to_dict()
        return info

    def _info(self, res: StepResult, native: dict[str, np.ndarray]) -> dict[str, Any]:
        e = res.energy_j[0]
        info = {
            "accuracy_term": float(res.accuracy_term[0]),
            "energy_term": float(res.energy_term[0]),
            "energy_j": float(e.sum()),
            "energy_tx_j": float(e[0]),
            "energy_circuit_j": float(e[1]),
            "energy_encode_j": float(e[2]),
            "energy_d2d_j": float(e[3]),
            "arrived": int(res.arrived[0]),
            "dropped": int(res.dropped[0]),
            "closed": int(res.closed[0]),
            "correct": int(res.correct[0]),
            "expired_empty": int(res.expired_empty[0]),
            "sinr_db": 10.0 * np.log10(np.maximum(res.sinr[0], 1e-30)) * (res.group[0] > 0),
            "sent": res.sent[0].copy(),
            "queue": self.core.queue_lengths()[0],
            "p_joint": self.core.p_joint[0].copy(),
            "action": native,
            "action_mask": self.action_masks(),
        }
        if self._info_bs_view:
            info["bs_view"] = self.bs_view().to_dict()
        return info

    def render(self):
        from vmimo_env.render import render_ansi, render_rgb

        if self.render_mode == "ansi":
            return render_ansi(self.core, 0, self._last)
        if self.render_mode == "rgb_array":
            return render_rgb(self.core, 0, self._last)
        return None

    def bs_view(self) -> BSView:
        """What the BS knows at the start of the next slot (``vmimo_env.bs_view.BSView``, N = 1, read-only)."""
        return self.core.bs_view()


def make_observation_space(core: VMIMOCore) -> spaces.Space[Any]:
    """Finite per-block bounds (see ``VMIMOCore.obs_bounds``); ``Dict`` of the same blocks in dict mode."""
    low, high = core.obs_bounds()
    if core.cfg.obs_mode == "dict":
        return spaces.Dict({k: spaces.Box(low[a:b], high[a:b], dtype=np.float32)
                            for k, (a, b) in core.obs_layout().items()})
    return spaces.Box(low, high, dtype=np.float32)


def action_masks(layout: ActionLayout, queue: np.ndarray) -> np.ndarray:
    """Flat MultiDiscrete masks (N, sum(nvec)) for MaskablePPO: every entry is valid.

    No action is invalid in VMIMO: a device whose queue is empty now still holds this slot's arrivals when the
    action takes effect (scenes arrive at the start of the slot), so masking it idle would forbid useful sends.
    The masks exist so mask-aware algorithms run unchanged.
    """
    return np.ones((queue.shape[0], int(layout.nvec.sum())), dtype=bool)


__all__ = ["MODALITIES", "VMIMOEnv", "action_masks", "make_observation_space"]
