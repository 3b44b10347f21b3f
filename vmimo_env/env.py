"""``VMIMOEnv``: the virtual-MIMO semantic-communication scheduler as a Gymnasium environment."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from vmimo_env.bs_view import BSView, check_info_flag
from vmimo_env.config import MODALITIES, ScenarioConfig
from vmimo_env.core import StepResult, VMIMOCore
from vmimo_env.frontend import FrontEnd, all_valid_mask, check_action_view, observation_space
from vmimo_env.spaces import ActionLayout


class VMIMOEnv(gym.Env):
    """
    ## Description

    An edge base station (BS) with ``Nr`` antennas serves ``K`` single-antenna devices that each sense one modality
    (visual, radar, infrared, audio, environmental) of the same scenes.
    Scenes arrive every 10 ms slot (Poisson, or bursty with `arrival_process="mmpp"`);
    each device encodes its modality of a scene into a nested 64-value latent with a frozen, NAS-found on-device
    encoder and queues it. Every slot the virtual-MIMO controller (the agent) puts devices into groups that
    share a band and are received jointly by a linear MMSE receiver (a virtual MIMO array), and picks each
    device's transmit power and latent prefix length and each group's bandwidth share. Latents arrive noisy at
    the post-receiver SINR and truncated to the chosen prefix. When a scene's deadline comes (or every device has
    delivered it; with ``close_rule="modalities"`` every sensed modality), the BS classifies it from whatever
    arrived with a frozen, knowledge-distilled fusion head. The reward is task accuracy minus an energy cost.
    Physics: 3GPP TR 38.901 UMi street canyon path loss and shadowing, Rician/Rayleigh block fading with
    Gauss–Markov time correlation, the NAS-VMIMO seed's AR(1) compute/memory availability capping how many
    latents a device can encode per slot. See ``vmimo_env.core`` for the slot in order.

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

    ``Box(low, high, (10 K + K(K-1)/2 + 1,), float32)`` (``obs_mode="box"``, default; ``+ 2 K Nr`` with
    ``obs_full_csi``, ``+ 2 K`` with ``obs_coverage``), blocks in order (``VMIMOEnv.obs_layout`` gives the slices;
    ``obs_mode="dict"`` returns the same blocks as a ``Dict``, with ``obs_coverage`` plus the ``5 S`` per-scene
    ``scene_held`` bitmap). The coverage blocks are computed by the same compiled helper as the BS view's
    ``queue_unheld`` and ``scene_slack`` (``kernels.unheld_queued``):

    | Block | Size | Entry (per device unless noted) | Unit → scaling |
    | --- | --- | --- | --- |
    | `gain_db` | K | large-scale gain (path loss + shadowing) | dB → (dB + 100) / 20, clipped to ±5 |
    | `snr_db` | K | SNR at max power over a 1/G band, current fading | dB → dB / 20, clipped to [-5, 10] |
    | `queue` | K | scenes waiting at the device | count → / (arrival_rate · deadline) |
    | `hol_age` | K | age of the oldest waiting scene | slots → / deadline |
    | `queue_unheld` | K | `obs_coverage`: queued scenes whose modality the BS lacks | count → / (λ · deadline) |
    | `unheld_urgency` | K | `obs_coverage`: D + 1 − least slack among those (0: none) | slots → / deadline |
    | `p_joint` | K | compute × memory availability (seed AR(1)) | probability → as is |
    | `modality` | 5 K | one-hot modality of each device | 0/1 → as is |
    | `correlation` | K(K-1)/2 | pairwise ∣h_iᴴh_j∣ / (‖h_i‖‖h_j‖), i < j | [0, 1] → as is |
    | `csi` | 2 K Nr | only with `obs_full_csi`: Re/Im of h / √gain | unit-power fading → clipped to ±8 |
    | `time` | 1 | slot index in the episode (per episode) | slot → / horizon |
    | `burst_belief` | 1 | bursty `arrival_process` only: BS's P(busy phase) from the counts | probability → as is |
    | `scene_held` | 5 S | dict `obs_coverage` only: BS holds modality m of scene j | 0/1 → as is |

    Every entry above comes from ``vmimo_env.obs_spec.OBS_SPEC`` (layout, bounds, scaling and the compiled
    kernel's constants); ``tests/test_obs_spec.py`` checks this table against it.

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

    No termination. Truncation after ``horizon`` slots (200 = 2 s of simulated time). By default (v0) scenes
    still pending at truncation are never scored; with ``score_at_truncation=True`` the last slot classifies every
    pending scene from what arrived (in ``closed``, ``correct``, ``expired_empty``, ``closed_full`` and the reward of
    that step), so an episode's ``Σ closed = Σ arrived + Σ dropped``. ``close_rule="modalities"`` closes a scene as
    soon as every sensed modality arrived (not every device) and stops devices re-sending modalities the BS already
    holds (``docs/MODEL.md``, Closing rules).

    ## Arguments

    ``gym.make("VMIMO-v0", **kwargs)`` takes every ``ScenarioConfig`` field as a keyword (validated, a bad value
    raises ``ValueError`` naming it), plus ``scenario`` (a name from ``vmimo_env.scenario.SCENARIOS``),
    ``config`` (a ``ScenarioConfig``, dict or YAML path), ``action_view`` (``dict``/``multidiscrete``/``box``),
    ``render_mode`` (``rgb_array``/``ansi``/``human``), ``checkpoint`` (another frozen student), ``pool_size`` and
    ``info_bs_view`` (bool, default False: add ``info["bs_view"]``, see Info).
    Scenario, config and keywords merge in that order, later ones winning field by field
    (``vmimo_env.scenario.make_config``): ``gym.make("VMIMO-Small-v0", config="x.yaml")`` is the small scenario
    with the file's fields on top.

    ## Info

    ``step`` returns the keys of ``vmimo_env.core.INFO_FIELDS`` (``StepResult.to_info``), shared with
    ``VMIMOVectorEnv``, whose values carry a leading N axis (a scalar here is an (N,) array there); ``reset``
    returns ``queue``, ``p_joint`` and ``action_mask``. ``tests/test_frontend.py`` checks this table against the
    schema. With ``info_bs_view=True`` both also carry ``bs_view``: what the BS knows at the start of the next slot
    (``BSView.to_dict()`` of ``vmimo_env.bs_view``); ``env.bs_view()`` returns the same on demand.

    | Key | Shape (single env) | Unit | Meaning |
    | --- | --- | --- | --- |
    | `accuracy_term` | scalar | 1 | reward's accuracy term: correct / arrival_rate (`soft`: Σ p(true class)) |
    | `energy_term` | scalar | 1 | reward's energy term λ_E · E / E_ref |
    | `energy_j` | scalar | J | device energy this slot, the sum of the four parts below |
    | `energy_tx_j` | scalar | J | transmit energy p / η · airtime |
    | `energy_circuit_j` | scalar | J | circuit energy P_c · airtime |
    | `energy_encode_j` | scalar | J | on-device encoder compute energy |
    | `energy_d2d_j` | scalar | J | D2D exchange energy (cooperative mode, else 0) |
    | `arrived` | scalar | scenes | scenes that arrived and were queued this slot |
    | `dropped` | scalar | scenes | arrivals that found the pending table full (counted wrong) |
    | `closed` | scalar | scenes | scenes classified this slot, incl. empty, dropped (and truncation) ones |
    | `correct` | scalar | scenes | closed scenes the fusion head classified correctly (hard count) |
    | `expired_empty` | scalar | scenes | closed with nothing received, incl. dropped ones (counted wrong) |
    | `closed_full` | scalar | scenes | closed scenes holding every modality some device senses (any prefix) |
    | `sent` | (K,) | latents | latents each device delivered this slot |
    | `sinr_db` | (K,) | dB | post-receiver SINR of each transmitting device; 0 for a silent one |
    | `group` | (K,) | index | effective group of each device; 0 where it did not transmit |
    | `prefix` | (K,) | reals | latent prefix length chosen for each device |
    | `power_w` | (K,) | W | transmit power of each device; 0 where it did not transmit |
    | `queue` | (K,) | scenes | scenes waiting at each device after the slot |
    | `p_joint` | (K,) | probability | compute × memory availability for the next slot |
    | `action` | dict | native | the decoded native action (`group`, `power`, `compression`, `bandwidth`) |
    | `action_mask` | (Σ nvec,) | bool | valid entries of the multidiscrete view (all True) |
    """

    metadata = {"render_modes": ["rgb_array", "ansi", "human"], "render_fps": 10}  # human: ansi to stdout

    def __init__(self, scenario: str | None = None, config: ScenarioConfig | str | dict | None = None,
                 action_view: str = "dict", render_mode: str | None = None, checkpoint: str | None = None,
                 pool_size: int = 4096, info_bs_view: bool = False, **overrides: Any) -> None:
        super().__init__()
        self._info_bs_view = check_info_flag(info_bs_view)
        check_action_view(action_view)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}")
        self.frontend = fe = FrontEnd(1, scenario, config, action_view, checkpoint, pool_size, overrides,
                                      batched=False)
        self.cfg, self.core, self.layout, self.action_view = fe.cfg, fe.core, fe.layout, fe.action_view
        self.render_mode = render_mode
        self.action_space = fe.single_action_space
        self.observation_space = fe.single_observation_space
        self._ids = np.array([0])
        self._needs_reset = True
        self._last: StepResult | None = None
        self._last_action: dict[str, np.ndarray] | None = None

    # ------------------------------------------------------------------ gym API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.frontend.reset(self._ids, seed, self.np_random)
        self._needs_reset = False
        self._last = None
        if self.render_mode == "human":
            self.render()
        info = self.frontend.reset_info()
        if self._info_bs_view:
            info["bs_view"] = self.bs_view().to_dict()
        return self.frontend.observation(), info

    def step(self, action: Any):
        if self._needs_reset:
            raise gym.error.ResetNeeded("Cannot call step() before reset() (or after the episode ended)")
        fe = self.frontend
        native = fe.decode(action)
        res = fe.step(native)
        self._last, self._last_action = res, native
        truncated = fe.truncated_single()
        if truncated:
            self._needs_reset = True
        if self.render_mode == "human":
            self.render()
        info = fe.info(res, native)
        if self._info_bs_view:
            info["bs_view"] = self.bs_view().to_dict()
        return fe.observation(), res.reward_of(0), False, truncated, info

    def decode_action(self, action: Any) -> dict[str, np.ndarray]:
        """Any view's action to validated native arrays (group, power, compression, bandwidth)."""
        return self.frontend.decode(action)

    def action_masks(self) -> np.ndarray:
        """Valid entries of the multidiscrete view (all valid; see ``frontend.all_valid_mask``)."""
        return self.frontend.action_masks()

    # ------------------------------------------------------------------ helpers
    def obs_layout(self) -> dict[str, slice]:
        """Name -> slice of each block of the flat observation (``vmimo_env.obs_spec``)."""
        return self.frontend.obs_slices()

    def _obs(self) -> np.ndarray | dict[str, np.ndarray]:
        return self.frontend.observation()

    def render(self):
        from vmimo_env.render import render

        return render(self.core, 0, self._last, self.render_mode)

    def bs_view(self) -> BSView:
        """What the BS knows at the start of the next slot (``vmimo_env.bs_view.BSView``, N = 1, read-only)."""
        return self.core.bs_view()


def make_observation_space(core: VMIMOCore) -> spaces.Space[Any]:
    """Finite per-block bounds (see ``VMIMOCore.obs_bounds``); ``Dict`` of the same blocks in dict mode."""
    return observation_space(core.obs_spec, core.cfg.obs_mode)


def action_masks(layout: ActionLayout, queue: np.ndarray) -> np.ndarray:
    """Flat MultiDiscrete masks (N, sum(nvec)) for ``queue`` (N, K): every entry is valid
    (``frontend.all_valid_mask`` says why)."""
    return all_valid_mask(layout, queue.shape[0])


__all__ = ["MODALITIES", "VMIMOEnv", "action_masks", "make_observation_space"]
