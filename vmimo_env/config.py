"""Typed, validated scenario configuration for VMIMO.

Every scenario parameter lives in :class:`ScenarioConfig`. It is a frozen dataclass: build one with keywords,
from a dict (:meth:`ScenarioConfig.from_dict`) or from YAML (:meth:`ScenarioConfig.from_yaml`), and derive
variants with :meth:`ScenarioConfig.replace`. Every field is checked on construction; an invalid value raises
``ValueError`` naming the field and the allowed range, so a typo in a sweep fails at once instead of producing
a silently different experiment. Unknown keywords raise :class:`UnknownParameterError` (a ``TypeError`` and a
``ValueError``, worded like Python's own "got an unexpected keyword argument", with a "did you mean").
numpy scalars and arrays are accepted and stored as the Python values they hold (so configs hash, compare and
serialise); ``from_yaml`` reads ``20e3`` as a float (YAML 1.2), where plain YAML 1.1 would give a string. Error
messages cut long values short. The environment-constructor arguments are checked here too: ``check_pool_size``
and ``check_num_envs_memory`` (an estimate of a batched core's memory against a fraction of physical memory).

Defaults and their sources: ``docs/MODEL.md`` ("Parameters"; one BS with 4 antennas, 8 single-antenna devices,
3 virtual-MIMO groups, 10 ms slots, 200-slot episodes, 3GPP UMi street canyon at 3.5 GHz).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

MODALITIES: tuple[str, ...] = ("visual", "radar", "infrared", "audio", "environmental")
RECEIVERS: tuple[str, ...] = ("mmse", "zf", "mmse_sic")
FADING: tuple[str, ...] = ("rayleigh", "rician", "umi")
REWARD_MODES: tuple[str, ...] = ("model", "soft")
OBS_MODES: tuple[str, ...] = ("box", "dict")
HETEROGENEOUS_DEVICES: tuple[str, ...] = ("none", "variant")
ALIGNERS: tuple[str, ...] = ("lmmse", "none")
DOPPLER_RULES: tuple[str, ...] = ("j0_clipped", "j0_first_zero")
K_FACTOR_MODELS: tuple[str, ...] = ("fixed", "lognormal")
CLOSE_RULES: tuple[str, ...] = ("devices", "modalities")
ARRIVAL_PROCESSES: tuple[str, ...] = ("poisson", "mmpp")
# scenes per slot; a bursty slot admits up to 16 arrivals (traffic.max_arrivals): P(Poisson(8) > 16) = 4e-3
MAX_BUSY_RATE = 8.0


def short_repr(value: Any, limit: int = 200) -> str:
    """``repr(value)`` cut to about ``limit`` characters, for error messages (an array must not print whole).

    Arrays are summarised by numpy first (shape and dtype kept in the text), so a million-entry array costs no
    more to report than a short one.
    """
    try:
        import numpy as np

        if isinstance(value, np.ndarray):
            with np.printoptions(threshold=20, edgeitems=3, precision=6):
                text = f"array({np.array2string(value, separator=', ')}, shape={value.shape}, dtype={value.dtype})"
        else:
            text = repr(value)
    except Exception:  # a broken __repr__ must not hide the error being reported
        text = f"<{type(value).__name__} object>"
    if len(text) > limit:
        text = f"{text[:limit - 40]} ... ({len(text)} characters, {type(value).__name__})"
    return text


# YAML 1.1 (PyYAML) resolves a float only with a dot and a signed exponent: ``20e3`` and ``1e-3`` stay strings
_NUMBER_STRING = re.compile(r"^[-+]?(\d[\d_]*\.?\d*|\.\d+)([eE][-+]?\d+)?$")
_YAML_FLOAT = re.compile(r"^[-+]?(\d[\d_]*\.?[\d_]*|\.\d+)[eE][-+]?\d+$")


def _is_real(value: Any) -> bool:
    """A real number: Python int/float or a numpy integer/floating scalar; never a bool (``True`` is no count)."""
    import numpy as np

    return (not isinstance(value, (bool, np.bool_))) and isinstance(value, (int, float, np.integer, np.floating))


def _number_hint(value: Any) -> str:
    """Extra text for a string that looks like a number (the usual cause: a YAML 1.1 exponent)."""
    if isinstance(value, str) and _NUMBER_STRING.match(value.strip()):
        text = value.strip()
        if _YAML_FLOAT.match(text):
            mant, _, exp = text.lower().partition("e")
            sign = "" if exp.startswith(("-", "+")) else "+"
            mant = mant if "." in mant else mant + ".0"
            return (f"; got the string {value!r}: YAML 1.1 (PyYAML) reads {text} as a string, write "
                    f"{mant}e{sign}{exp} or {float(text):g} (ScenarioConfig.from_yaml reads both forms)")
        return f"; got the string {value!r}, not a number (remove the quotes)"
    return ""


def _check_range(name: str, value: float, lo: float | None, hi: float | None, *, lo_open: bool = False,
                 hi_open: bool = False) -> None:
    if not _is_real(value) or not math.isfinite(value):
        hint = _number_hint(value)
        raise ValueError(f"{name} must be a finite number{hint or f', got {short_repr(value)}'}")
    bad_lo = lo is not None and (value <= lo if lo_open else value < lo)
    bad_hi = hi is not None and (value >= hi if hi_open else value > hi)
    if bad_lo or bad_hi:
        left = "(" if lo_open else "["
        right = ")" if hi_open else "]"
        lo_s = "-inf" if lo is None else f"{lo:g}"
        hi_s = "inf" if hi is None else f"{hi:g}"
        raise ValueError(f"{name} must be in {left}{lo_s}, {hi_s}{right}, got {short_repr(value)}")


def _check_int(name: str, value: Any, lo: int, hi: int) -> None:
    import numpy as np

    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        hint = _number_hint(value)
        raise ValueError(f"{name} must be an integer in [{lo}, {hi}]{hint or f', got {short_repr(value)}'}")
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be an integer in [{lo}, {hi}], got {short_repr(_to_python(value))}")


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if not isinstance(value, str) or value not in choices:
        close = difflib.get_close_matches(value, choices, n=1) if isinstance(value, str) else []
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"{name} must be one of {list(choices)}, got {short_repr(value)}{hint}")


def _to_python(value: Any) -> Any:
    """numpy scalars to the Python ``int``/``float``/``bool`` they hold (hashable, YAML-safe); others unchanged."""
    import numpy as np

    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _to_tuple(name: str, value: Any, element: type) -> Any:
    """A list, tuple or 1-D ndarray as a tuple of Python values (floats for ``element=float``).

    Anything else is returned unchanged for :meth:`ScenarioConfig.validate` to reject with the field's name.
    """
    import numpy as np

    if isinstance(value, np.ndarray):
        if value.ndim != 1:
            raise ValueError(f"{name} must be a 1-D sequence, got an array of shape {value.shape}")
        value = value.tolist()
    if not isinstance(value, (list, tuple)):
        return value
    out = []
    for v in value:
        v = _to_python(v)
        if element is float and _is_real(v):
            v = float(v)
        out.append(v)
    return tuple(out)


class UnknownParameterError(TypeError, ValueError):
    """An unknown keyword for a scenario or an environment constructor.

    Both a ``TypeError`` (what Python raises for an unexpected keyword argument, which wrappers such as torchrl's
    ``GymEnv`` catch to retry without an optional keyword like ``frameskip``) and a ``ValueError`` (what this
    package raises for every other bad parameter).
    """


# environment-constructor keywords that are not scenario fields (for "did you mean" suggestions only)
ENV_KEYWORDS: tuple[str, ...] = ("scenario", "config", "action_view", "render_mode", "checkpoint", "pool_size",
                                 "num_envs")
# sequence fields and the type of their elements
_TUPLE_FIELDS: dict[str, type] = {"power_levels_db": float, "modalities": str, "compression_levels": int,
                                  "heterogeneous_modalities": str}


def unknown_parameter_error(unknown: list[str], valid: tuple[str, ...], owner: str = "VMIMO") -> UnknownParameterError:
    """The error for unknown keywords, worded as Python's own (``... got an unexpected keyword argument 'x'``)."""
    first, rest = unknown[0], unknown[1:]
    msg = f"{owner} got an unexpected keyword argument {first!r}: unknown scenario parameter"
    close = [c for c in difflib.get_close_matches(first, valid, n=4, cutoff=0.6) if c != first][:3]
    if first in valid:  # a constructor keyword where only scenario fields go (e.g. num_envs for a single env)
        msg += f" ({first!r} is a keyword of another constructor here, e.g. the vector env's)"
    elif close:
        msg += f" (did you mean {' or '.join(repr(c) for c in close)}?)"
    if rest:
        msg += f"; also unknown: {', '.join(repr(k) for k in rest)}"
    return UnknownParameterError(f"{msg}. Valid scenario parameters: {list(ScenarioConfig.field_names())}")


@dataclass(frozen=True)
class ScenarioConfig:
    """All parameters of one VMIMO scenario (units in the field names or comments).

    Geometry and radio
        num_devices (K), num_antennas (Nr), num_groups (G), cell_radius_m, min_distance_m, bs_height_m,
        ut_height_m, carrier_hz, total_bandwidth_hz, noise_psd_dbm_hz, noise_figure_db.
    Fading
        fading: ``"umi"`` (3GPP LOS probability decides Rician/Rayleigh per device), ``"rayleigh"`` or
        ``"rician"`` (all devices); rician_k_db; speed_mps (device speed, sets Doppler and mobility);
        spatial_correlation (exponential r^|i-j| across BS antennas, 0 = i.i.d.); shadowing (on/off).
        doppler_rule: ``"j0_clipped"`` (v0: J0, negative values clipped to 0) or ``"j0_first_zero"`` (J0 up to its
        first zero, 0 beyond, so rho never grows with speed); k_factor_model: ``"fixed"`` (rician_k_db) or
        ``"lognormal"`` (per device and episode, K_dB ~ N(rician_k_mu_db, rician_k_sigma_db), TR 38.901 UMi LOS);
        mobility (devices move at speed_mps, path loss, correlated shadowing, spatially consistent LOS state and
        LOS direction follow every slot; decorrelation distances shadow_corr_los_m, shadow_corr_nlos_m,
        los_corr_m).
    Devices
        max_power_dbm, power_levels_db (transmit levels relative to the maximum, ascending, the last 0 dB),
        pa_efficiency, circuit_power_w, encode_energy_j_per_mflop, d2d_energy_j_per_symbol,
        modalities (one per device, cycled if shorter than K), encode_capacity (latents per slot at p_joint = 1).
    Device resources (seed NAS-VMIMO log-domain AR(1), see ``resources.py``)
        resource_phi_compute / resource_phi_memory (AR(1) coefficients φ_c, φ_m), resource_sigma_compute /
        resource_sigma_memory (innovation std σ_c, σ_m), resource_rho (correlation of the two innovations),
        resource_threshold_compute / resource_threshold_memory (availability thresholds a_c, a_m in log units).
    Traffic and time
        slot_s, horizon (slots per episode), arrival_rate (mean scenes per slot), deadline_slots,
        max_pending (scenes kept per env; arrivals beyond are dropped and counted expired);
        arrival_process: ``"poisson"`` (default: Poisson with rate arrival_rate every slot) or ``"mmpp"`` (bursty
        load: a two-phase Markov-modulated Poisson process of the same mean rate, quiet and busy, the busy rate
        burst_rate_ratio times the quiet one, busy for a share burst_fraction of the slots in runs of
        burst_mean_slots slots on average; the phase is hidden from the agent; ``vmimo_env/traffic.py``).
    Semantic transmission
        compression_levels (latent prefix lengths in reals), receiver (``mmse``/``zf``/``mmse_sic``),
        cooperative (virtual array with D2D exchange and SVD precoding).
    Heterogeneous devices (``docs/MODEL.md`` "Semantic model and reward", ``vmimo_env.heterogeneous``)
        heterogeneous_devices: ``"none"`` (every device runs the encoders the BS head was trained with) or
        ``"variant"`` (the devices of the modalities in heterogeneous_modalities run the shipped variant encoders,
        another NAS architecture and seed); heterogeneous_modalities (default all five); aligner: ``"lmmse"`` (the
        BS maps each received foreign latent into its own space with a fitted LMMSE map for its prefix and SINR)
        or ``"none"`` (the head gets the foreign latents raw: the unaligned baseline). Both ignored when
        heterogeneous_devices is ``"none"``.
    Reward
        energy_weight (λ_E), energy_ref_j (E_ref), reward_mode: ``"model"`` (default): the accuracy term counts
        the closing scenes the frozen head classifies correctly (argmax) from what arrived; ``"soft"``: it sums the
        probability the head gives the true class instead, the same model on the same received latents but without
        the Bernoulli noise of one argmax draw (a lower-variance training signal; ``correct`` in info stays the
        hard count).
    Observation
        obs_mode (``box`` or ``dict``), obs_full_csi (append Re/Im of h).
    Episode rules and coverage (v1; the defaults are v0's)
        close_rule: ``"devices"`` (a scene closes once every device sent it, or at its deadline) or
        ``"modalities"`` (once every sensed modality arrived at the BS, or at its deadline; a device never sends a
        scene whose modality the BS already holds); score_at_truncation (classify every pending scene from what
        arrived in the episode's last slot, so every arrived scene is scored exactly once); obs_coverage (add
        per-device ``queue_unheld`` and ``unheld_urgency`` blocks, and in dict mode the per-scene ``held``
        bitmap, to the observation).
    Receiver impairment
        sinr_cap_db: ``None`` (default, no cap) or an EVM-style ceiling (dB) on every post-receiver SINR,
        ``SINR_eff = 1 / (1/SINR + 10^(-cap/10))`` (transmitter EVM and receiver impairments that no transmit power
        overcomes; ``vmimo_env.rules.slot_sinr``).
    """

    # geometry and radio
    num_devices: int = 8
    num_antennas: int = 4
    num_groups: int = 3
    cell_radius_m: float = 250.0
    min_distance_m: float = 20.0
    bs_height_m: float = 10.0
    ut_height_m: float = 1.5
    carrier_hz: float = 3.5e9
    total_bandwidth_hz: float = 20e3
    noise_psd_dbm_hz: float = -174.0
    noise_figure_db: float = 7.0
    # fading
    fading: str = "umi"
    rician_k_db: float = 9.0
    speed_mps: float = 1.0
    spatial_correlation: float = 0.0
    shadowing: bool = True
    # fading and mobility of VMIMO-v1 (every default keeps v0's dynamics bit for bit; MODEL.md, "Small-scale
    # fading" and "Mobility"): Doppler rule past J0's first zero, per-link log-normal K-factor, per-slot motion of
    # the large-scale state with TR 38.901 decorrelation distances (Table 7.5-6 and section 7.6.3.3, UMi)
    doppler_rule: str = "j0_clipped"
    k_factor_model: str = "fixed"
    rician_k_mu_db: float = 9.0
    rician_k_sigma_db: float = 5.0
    mobility: bool = False
    shadow_corr_los_m: float = 10.0
    shadow_corr_nlos_m: float = 13.0
    los_corr_m: float = 50.0
    # devices
    max_power_dbm: float = 23.0
    power_levels_db: tuple[float, ...] = (-40.0, -30.0, -20.0, -10.0, 0.0)
    pa_efficiency: float = 0.35
    circuit_power_w: float = 0.1
    encode_energy_j_per_mflop: float = 1e-4
    d2d_energy_j_per_symbol: float = 1e-7
    modalities: tuple[str, ...] = MODALITIES
    encode_capacity: int = 4
    # device resource process (seed NAS-VMIMO); thresholds -2σ: p_joint median ≈ 0.86, IQR ≈ 0.47–0.98
    resource_phi_compute: float = 0.85
    resource_phi_memory: float = 0.90
    resource_sigma_compute: float = 0.15
    resource_sigma_memory: float = 0.10
    resource_rho: float = 0.3
    resource_threshold_compute: float = -0.30
    resource_threshold_memory: float = -0.20
    # traffic and time
    slot_s: float = 0.01
    horizon: int = 200
    arrival_rate: float = 1.5
    deadline_slots: int = 4
    max_pending: int = 32
    arrival_process: str = "poisson"
    burst_rate_ratio: float = 10.0
    burst_fraction: float = 0.3
    burst_mean_slots: float = 16.0
    # semantic transmission
    compression_levels: tuple[int, ...] = (4, 8, 16, 32, 64)
    receiver: str = "mmse"
    cooperative: bool = False
    # heterogeneous devices
    heterogeneous_devices: str = "none"
    heterogeneous_modalities: tuple[str, ...] = MODALITIES
    aligner: str = "lmmse"
    # reward
    energy_weight: float = 0.5
    energy_ref_j: float = 0.01
    reward_mode: str = "model"
    # observation
    obs_mode: str = "box"
    obs_full_csi: bool = False
    # episode rules and the coverage observation (v1; the defaults keep v0): when a scene closes, whether pending
    # scenes are scored at truncation, and whether the observation shows what the BS still lacks
    close_rule: str = "devices"
    score_at_truncation: bool = False
    obs_coverage: bool = False
    # receiver impairment (VMIMO-v1 calibration): EVM-style cap on the post-receiver SINR; None = no cap (v0)
    sinr_cap_db: float | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        # values may arrive as lists, ndarrays or numpy scalars (YAML, CLI, sweeps): normalise them to the Python
        # types first, so configs compare equal, hash and serialise whatever they were built from
        for f in fields(self):
            if f.name == "extra":
                continue
            value = getattr(self, f.name)
            if f.name in _TUPLE_FIELDS:
                value = _to_tuple(f.name, value, _TUPLE_FIELDS[f.name])
            else:
                value = _to_python(value)
            object.__setattr__(self, f.name, value)
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first invalid field and its allowed range."""
        _check_int("num_devices", self.num_devices, 1, 256)
        _check_int("num_antennas", self.num_antennas, 1, 128)
        _check_int("num_groups", self.num_groups, 1, 32)
        _check_range("cell_radius_m", self.cell_radius_m, 10.0, 5000.0)
        _check_range("min_distance_m", self.min_distance_m, 1.0, self.cell_radius_m, hi_open=True)
        _check_range("bs_height_m", self.bs_height_m, 1.0, 100.0)
        _check_range("ut_height_m", self.ut_height_m, 1.0, 22.5)
        _check_range("carrier_hz", self.carrier_hz, 0.5e9, 100e9)
        _check_range("total_bandwidth_hz", self.total_bandwidth_hz, 1e3, 1e9)
        _check_range("noise_psd_dbm_hz", self.noise_psd_dbm_hz, -200.0, -100.0)
        _check_range("noise_figure_db", self.noise_figure_db, 0.0, 20.0)
        _check_choice("fading", self.fading, FADING)
        _check_range("rician_k_db", self.rician_k_db, -20.0, 30.0)
        _check_range("speed_mps", self.speed_mps, 0.0, 100.0)
        _check_range("spatial_correlation", self.spatial_correlation, 0.0, 1.0, hi_open=True)
        if not isinstance(self.shadowing, bool):
            raise ValueError(f"shadowing must be a bool, got {short_repr(self.shadowing)}")
        _check_choice("doppler_rule", self.doppler_rule, DOPPLER_RULES)
        _check_choice("k_factor_model", self.k_factor_model, K_FACTOR_MODELS)
        _check_range("rician_k_mu_db", self.rician_k_mu_db, -20.0, 30.0)
        _check_range("rician_k_sigma_db", self.rician_k_sigma_db, 0.0, 20.0)
        if not isinstance(self.mobility, bool):
            raise ValueError(f"mobility must be a bool, got {short_repr(self.mobility)}")
        _check_range("shadow_corr_los_m", self.shadow_corr_los_m, 0.0, 1e4, lo_open=True)
        _check_range("shadow_corr_nlos_m", self.shadow_corr_nlos_m, 0.0, 1e4, lo_open=True)
        _check_range("los_corr_m", self.los_corr_m, 0.0, 1e4, lo_open=True)
        if self.mobility and self.speed_mps * self.slot_s > 0.25 * (self.cell_radius_m - self.min_distance_m):
            # the reflection at the annulus edges mirrors one step back inside: a step must be short next to the width
            raise ValueError(f"with mobility, speed_mps * slot_s (the step per slot, m) must be at most a quarter of "
                             f"the annulus width cell_radius_m - min_distance_m = "
                             f"{self.cell_radius_m - self.min_distance_m:g} m, got "
                             f"{self.speed_mps * self.slot_s:g} m")
        _check_range("max_power_dbm", self.max_power_dbm, -30.0, 40.0)
        for name in _TUPLE_FIELDS:
            if not isinstance(getattr(self, name), tuple):
                raise ValueError(f"{name} must be a list or tuple, got {short_repr(getattr(self, name))}")
        if len(self.power_levels_db) < 1:
            raise ValueError("power_levels_db must hold at least one level")
        for i, lvl in enumerate(self.power_levels_db):
            _check_range(f"power_levels_db[{i}]", lvl, -80.0, 0.0)
        if list(self.power_levels_db) != sorted(self.power_levels_db):
            raise ValueError(f"power_levels_db must be ascending, got {short_repr(list(self.power_levels_db))}")
        _check_range("pa_efficiency", self.pa_efficiency, 0.0, 1.0, lo_open=True)
        _check_range("circuit_power_w", self.circuit_power_w, 0.0, 10.0)
        _check_range("encode_energy_j_per_mflop", self.encode_energy_j_per_mflop, 0.0, 1.0)
        _check_range("d2d_energy_j_per_symbol", self.d2d_energy_j_per_symbol, 0.0, 1.0)
        if len(self.modalities) < 1:
            raise ValueError("modalities must name at least one modality")
        for i, m in enumerate(self.modalities):
            _check_choice(f"modalities[{i}]", m, MODALITIES)
        _check_int("encode_capacity", self.encode_capacity, 1, 1024)
        _check_range("resource_phi_compute", self.resource_phi_compute, 0.0, 1.0, hi_open=True)
        _check_range("resource_phi_memory", self.resource_phi_memory, 0.0, 1.0, hi_open=True)
        _check_range("resource_sigma_compute", self.resource_sigma_compute, 0.0, 10.0, lo_open=True)
        _check_range("resource_sigma_memory", self.resource_sigma_memory, 0.0, 10.0, lo_open=True)
        _check_range("resource_rho", self.resource_rho, -1.0, 1.0, lo_open=True, hi_open=True)
        _check_range("resource_threshold_compute", self.resource_threshold_compute, -10.0, 10.0)
        _check_range("resource_threshold_memory", self.resource_threshold_memory, -10.0, 10.0)
        _check_range("slot_s", self.slot_s, 1e-4, 1.0)
        _check_int("horizon", self.horizon, 1, 1_000_000)
        _check_range("arrival_rate", self.arrival_rate, 0.0, 16.0, lo_open=True)
        _check_int("deadline_slots", self.deadline_slots, 1, 1000)
        _check_int("max_pending", self.max_pending, 1, 4096)
        _check_choice("arrival_process", self.arrival_process, ARRIVAL_PROCESSES)
        _check_range("burst_rate_ratio", self.burst_rate_ratio, 1.0, 1000.0)
        _check_range("burst_fraction", self.burst_fraction, 0.0, 1.0, lo_open=True, hi_open=True)
        _check_range("burst_mean_slots", self.burst_mean_slots, 1.0, 1e6)
        if self.arrival_process == "mmpp":
            busy = self.phase_rates()[1]
            if busy > MAX_BUSY_RATE:
                raise ValueError(f"with arrival_process='mmpp' the busy rate (arrival_rate * burst_rate_ratio / "
                                 f"(1 - burst_fraction + burst_fraction * burst_rate_ratio) = {busy:.3g}) must be at "
                                 f"most {MAX_BUSY_RATE} scenes per slot (at most 16 arrivals are admitted per slot)")
            if self.phase_switch_probs()[0] > 1.0:
                raise ValueError(f"with arrival_process='mmpp', burst_mean_slots * (1 - burst_fraction) / "
                                 f"burst_fraction must be at least 1 slot (the mean quiet run), got "
                                 f"{self.burst_mean_slots * (1 - self.burst_fraction) / self.burst_fraction:.3g}")
        if len(self.compression_levels) < 1:
            raise ValueError("compression_levels must hold at least one prefix length")
        for i, c in enumerate(self.compression_levels):
            _check_int(f"compression_levels[{i}]", c, 2, 64)
            if c % 2:
                raise ValueError(f"compression_levels[{i}] must be even (two reals per complex use), got {c}")
        if list(self.compression_levels) != sorted(set(self.compression_levels)):
            raise ValueError("compression_levels must be strictly ascending, got "
                             f"{short_repr(list(self.compression_levels))}")
        _check_choice("receiver", self.receiver, RECEIVERS)
        if not isinstance(self.cooperative, bool):
            raise ValueError(f"cooperative must be a bool, got {short_repr(self.cooperative)}")
        _check_choice("heterogeneous_devices", self.heterogeneous_devices, HETEROGENEOUS_DEVICES)
        if not isinstance(self.heterogeneous_modalities, tuple) or len(self.heterogeneous_modalities) < 1:
            raise ValueError("heterogeneous_modalities must name at least one modality, got "
                             f"{short_repr(self.heterogeneous_modalities)}")
        for i, m in enumerate(self.heterogeneous_modalities):
            _check_choice(f"heterogeneous_modalities[{i}]", m, MODALITIES)
        if len(set(self.heterogeneous_modalities)) != len(self.heterogeneous_modalities):
            raise ValueError(f"heterogeneous_modalities must not repeat a modality, got "
                             f"{short_repr(list(self.heterogeneous_modalities))}")
        _check_choice("aligner", self.aligner, ALIGNERS)
        _check_range("energy_weight", self.energy_weight, 0.0, 1e3)
        _check_range("energy_ref_j", self.energy_ref_j, 0.0, 1e3, lo_open=True)
        _check_choice("reward_mode", self.reward_mode, REWARD_MODES)
        _check_choice("obs_mode", self.obs_mode, OBS_MODES)
        if not isinstance(self.obs_full_csi, bool):
            raise ValueError(f"obs_full_csi must be a bool, got {short_repr(self.obs_full_csi)}")
        _check_choice("close_rule", self.close_rule, CLOSE_RULES)
        for name in ("score_at_truncation", "obs_coverage"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be a bool, got {short_repr(getattr(self, name))}")
        # receiver impairment (VMIMO-v1 calibration)
        if self.sinr_cap_db is not None:
            _check_range("sinr_cap_db", self.sinr_cap_db, -20.0, 80.0)

    # ----------------------------------------------------------------- derived quantities
    @property
    def max_power_w(self) -> float:
        return 10.0 ** ((self.max_power_dbm - 30.0) / 10.0)

    @property
    def noise_psd_w_hz(self) -> float:
        """Receiver noise power spectral density including the noise figure (W/Hz)."""
        return 10.0 ** ((self.noise_psd_dbm_hz + self.noise_figure_db - 30.0) / 10.0)

    @property
    def device_modalities(self) -> tuple[str, ...]:
        """Modality of each of the K devices (``modalities`` cycled to length K)."""
        return tuple(self.modalities[k % len(self.modalities)] for k in range(self.num_devices))

    def phase_rates(self) -> tuple[float, float]:
        """(quiet, busy) arrival rates of the ``"mmpp"`` process, scenes per slot: the busy rate is
        ``burst_rate_ratio`` times the quiet one and their mix, weighted by ``burst_fraction``, is ``arrival_rate``
        (for ``"poisson"`` both are ``arrival_rate``)."""
        if self.arrival_process != "mmpp":
            return self.arrival_rate, self.arrival_rate
        f, r = self.burst_fraction, self.burst_rate_ratio
        quiet = self.arrival_rate / (1.0 - f + f * r)
        return quiet, r * quiet

    def phase_switch_probs(self) -> tuple[float, float]:
        """(quiet → busy, busy → quiet) probabilities per slot of the ``"mmpp"`` phase chain: busy runs last
        ``burst_mean_slots`` slots on average and the chain spends a share ``burst_fraction`` of slots busy."""
        leave_busy = 1.0 / self.burst_mean_slots
        return leave_busy * self.burst_fraction / (1.0 - self.burst_fraction), leave_busy

    # ----------------------------------------------------------------- construction helpers
    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls) if f.name != "extra")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None = None, **overrides: Any) -> ScenarioConfig:
        """Build from a mapping (and keyword overrides); unknown keys raise :class:`UnknownParameterError`."""
        merged = {**(data or {}), **overrides}
        unknown = [k for k in merged if k not in cls.field_names()]
        if unknown:
            raise unknown_parameter_error(unknown, (*cls.field_names(), *ENV_KEYWORDS))
        return cls(**merged)

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides: Any) -> ScenarioConfig:
        """Build from a YAML mapping. Exponent floats without a dot or sign (``20e3``, which YAML 1.1 and PyYAML
        read as strings) are read as floats, as YAML 1.2 does."""
        import yaml

        try:
            with open(path, encoding="utf-8") as fh:
                data = yaml.load(fh, Loader=_loader()) or {}  # a SafeLoader subclass: plain data only
        except yaml.YAMLError as err:
            raise ValueError(f"{path}: not valid YAML ({short_repr(str(err), 300)})") from None
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a mapping of scenario parameters, got {type(data).__name__}")
        return cls.from_dict(data, **overrides)

    def replace(self, **changes: Any) -> ScenarioConfig:
        unknown = [k for k in changes if k not in self.field_names()]
        if unknown:
            raise unknown_parameter_error(unknown, self.field_names(), owner="ScenarioConfig.replace()")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        out = {name: getattr(self, name) for name in self.field_names()}
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}


def _loader() -> type:
    """PyYAML's ``SafeLoader`` with the YAML 1.2 float rule (``20e3``, ``1e-3`` are floats, not strings)."""
    import yaml

    class _Loader(yaml.SafeLoader):
        pass

    _Loader.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                    |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
                    |[-+]?\.(?:inf|Inf|INF)
                    |\.(?:nan|NaN|NAN))$""", re.X),
        list("-+0123456789."),
    )
    return _Loader


# ---------------------------------------------------------------------- environment-constructor arguments
MAX_POOL_SIZE = 1 << 20


def check_pool_size(pool_size: Any) -> int:
    """Validate the ``pool_size`` environment keyword (scenes pre-encoded per process) and return it as ``int``.

    Raises ``ValueError`` for anything but an integer in [1, ``MAX_POOL_SIZE``] (numpy integers accepted): a pool
    of 0 scenes has nothing to draw arrivals from, and a float would be truncated silently.
    """
    _check_int("pool_size", pool_size, 1, MAX_POOL_SIZE)
    return int(pool_size)


def check_max_episode_steps(cfg: ScenarioConfig, max_episode_steps: Any) -> int | None:
    """Check the ``max_episode_steps`` Gymnasium passes to a vector entry point against the scenario's horizon.

    ``gym.make_vec`` passes the registered limit (the id's default horizon) or the user's. The environment
    truncates at ``cfg.horizon`` itself, so a limit at or beyond it changes nothing; a limit below it would cut
    episodes short where ``gym.make`` (a ``TimeLimit``) would too, but the batched core cannot, so it is refused
    with both ways out. Returns the limit as ``int`` (None if none).
    """
    if max_episode_steps is None:
        return None
    _check_int("max_episode_steps", max_episode_steps, 1, 1_000_000_000)
    if max_episode_steps < cfg.horizon:
        raise ValueError(f"max_episode_steps={int(max_episode_steps)} is below horizon={cfg.horizon}: the environment "
                         f"truncates at its horizon, so pass max_episode_steps={cfg.horizon} as well (a longer "
                         f"horizon than the id's registered one needs it) or horizon={int(max_episode_steps)}")
    return int(max_episode_steps)
