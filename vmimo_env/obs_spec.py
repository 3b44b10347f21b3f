"""The one definition of VMIMO's flat observation: every block's name, size, unit, scaling, bounds and order.

Everything about the observation layout is derived from :data:`OBS_SPEC` here:

- ``VMIMOCore.obs_layout`` / ``obs_bounds`` / ``obs_dim`` (and so the Gymnasium observation space),
- the offsets, scalings and clip constants the compiled ``kernels.observe`` writes with (it receives them as
  arrays, indexed by the block ids below, and holds no layout constant of its own),
- the observation table in the ``VMIMOEnv`` docstring (``tests/test_obs_spec.py`` renders
  :func:`markdown_table` and compares it with the docstring),
- the per-device gather of ``agents.common.device_policy.DevicePolicy`` (:func:`device_gather`).

An entry's value is ``(raw + offset) / scale``, clipped to ``[low, high]`` when ``clip`` is set (otherwise the
bounds hold by construction and are only declared for the observation space). ``axes`` says how a block's entries
are ordered with respect to the devices, which is what a per-device reader needs:

``"device"``        K entries, device k at position k;
``"device_major"``  K · n entries, device k's n entries contiguous at k · n;
``"re_im"``         2 · K · Nr entries: the real parts of every device (device-major, antennas inner), then the
                    imaginary parts in the same order;
``"pair"``          K (K - 1) / 2 entries, one per device pair (i, j), i < j, in ``numpy.triu_indices(K, 1)``
                    order;
``"global"``        one entry shared by all devices;
``"scene_major"``   S · M entries, one per pending-scene row j (oldest first) and modality m, at j · M + m (not a
                    per-device feature: ``device_gather`` skips it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from vmimo_env.config import MODALITIES, ScenarioConfig

# block ids: the compiled kernel indexes the per-block constant arrays with these (one id per thing it computes)
GAIN_DB, SNR_DB, QUEUE, HOL_AGE, P_JOINT, MODALITY, CORRELATION, CSI, TIME = range(9)
QUEUE_UNHELD, UNHELD_URGENCY, SCENE_HELD = range(9, 12)  # the coverage blocks (obs_coverage)
BURST_BELIEF = 12  # bursty arrivals only (arrival_process="mmpp")
NUM_BLOCKS = 13

AXES: tuple[str, ...] = ("device", "device_major", "re_im", "pair", "global", "scene_major")


@dataclass(frozen=True)
class ObsEntry:
    """One block of the flat observation.

    ``size(K, M, Nr, S)`` gives its length (K devices, M modalities, Nr BS antennas, S = ``max_pending``);
    ``scale``, ``low`` and ``high`` are functions of the scenario; ``condition`` (None: always) decides whether the
    block is present.
    """

    name: str
    block: int
    size: Callable[[int, int, int], int]
    size_doc: str
    meaning: str
    unit: str
    scaling_doc: str
    axes: str
    offset: float = 0.0
    scale: Callable[[ScenarioConfig], float] = lambda cfg: 1.0
    low: Callable[[ScenarioConfig], float] = lambda cfg: 0.0
    high: Callable[[ScenarioConfig], float] = lambda cfg: 1.0
    clip: bool = False
    condition: Callable[[ScenarioConfig], bool] | None = None

    def __post_init__(self) -> None:
        if self.axes not in AXES:
            raise ValueError(f"ObsEntry {self.name!r}: axes must be one of {list(AXES)}, got {self.axes!r}")

    def present(self, cfg: ScenarioConfig) -> bool:
        """Whether the block is part of this scenario's observation (always, unless ``condition`` says no)."""
        return self.condition is None or bool(self.condition(cfg))


OBS_SPEC: tuple[ObsEntry, ...] = (
    ObsEntry("gain_db", GAIN_DB, lambda K, M, Nr, S: K, "K", "large-scale gain (path loss + shadowing)", "dB",
             "(dB + 100) / 20, clipped to ±5", "device", offset=100.0, scale=lambda cfg: 20.0,
             low=lambda cfg: -5.0, high=lambda cfg: 5.0, clip=True),
    ObsEntry("snr_db", SNR_DB, lambda K, M, Nr, S: K, "K", "SNR at max power over a 1/G band, current fading", "dB",
             "dB / 20, clipped to [-5, 10]", "device", scale=lambda cfg: 20.0, low=lambda cfg: -5.0,
             high=lambda cfg: 10.0, clip=True),
    ObsEntry("queue", QUEUE, lambda K, M, Nr, S: K, "K", "scenes waiting at the device", "count",
             "/ (arrival_rate · deadline)", "device", scale=lambda cfg: cfg.arrival_rate * cfg.deadline_slots,
             high=lambda cfg: cfg.max_pending / (cfg.arrival_rate * cfg.deadline_slots)),
    ObsEntry("hol_age", HOL_AGE, lambda K, M, Nr, S: K, "K", "age of the oldest waiting scene", "slots",
             "/ deadline", "device", scale=lambda cfg: float(cfg.deadline_slots)),
    ObsEntry("queue_unheld", QUEUE_UNHELD, lambda K, M, Nr, S: K, "K",
             "`obs_coverage`: queued scenes whose modality the BS lacks", "count",
             "/ (λ · deadline)", "device", scale=lambda cfg: cfg.arrival_rate * cfg.deadline_slots,
             high=lambda cfg: cfg.max_pending / (cfg.arrival_rate * cfg.deadline_slots),
             condition=lambda cfg: cfg.obs_coverage),
    ObsEntry("unheld_urgency", UNHELD_URGENCY, lambda K, M, Nr, S: K, "K",
             "`obs_coverage`: D + 1 − least slack among those (0: none)", "slots",
             "/ deadline", "device", scale=lambda cfg: float(cfg.deadline_slots),
             condition=lambda cfg: cfg.obs_coverage),
    ObsEntry("p_joint", P_JOINT, lambda K, M, Nr, S: K, "K", "compute × memory availability (seed AR(1))",
             "probability", "as is", "device"),
    ObsEntry("modality", MODALITY, lambda K, M, Nr, S: K * M, "5 K", "one-hot modality of each device", "0/1",
             "as is", "device_major"),
    ObsEntry("correlation", CORRELATION, lambda K, M, Nr, S: K * (K - 1) // 2, "K(K-1)/2",
             "pairwise ∣h_iᴴh_j∣ / (‖h_i‖‖h_j‖), i < j", "[0, 1]", "as is", "pair"),
    ObsEntry("csi", CSI, lambda K, M, Nr, S: 2 * K * Nr, "2 K Nr", "only with `obs_full_csi`: Re/Im of h / √gain",
             "unit-power fading", "clipped to ±8", "re_im", low=lambda cfg: -8.0, high=lambda cfg: 8.0, clip=True,
             condition=lambda cfg: cfg.obs_full_csi),
    ObsEntry("time", TIME, lambda K, M, Nr, S: 1, "1", "slot index in the episode (per episode)", "slot",
             "/ horizon", "global", scale=lambda cfg: float(cfg.horizon)),
    ObsEntry("burst_belief", BURST_BELIEF, lambda K, M, Nr, S: 1, "1",
             "bursty `arrival_process` only: BS's P(busy phase) from the counts",
             "probability", "as is", "global", condition=lambda cfg: cfg.arrival_process == "mmpp"),
    ObsEntry("scene_held", SCENE_HELD, lambda K, M, Nr, S: S * M, "5 S",
             "dict `obs_coverage` only: BS holds modality m of scene j", "0/1", "as is", "scene_major",
             condition=lambda cfg: cfg.obs_coverage and cfg.obs_mode == "dict"),
)


@dataclass(frozen=True)
class ObsLayout:
    """The spec resolved for one scenario: block slices, bounds and the compiled kernel's constants.

    ``start``, ``offset``, ``scale``, ``clip_low``, ``clip_high`` are indexed by block id (``start`` is -1 for an
    absent block; unclipped blocks get infinite clip bounds).
    """

    slices: dict[str, tuple[int, int]]
    dim: int
    low: np.ndarray
    high: np.ndarray
    start: np.ndarray
    offset: np.ndarray
    scale: np.ndarray
    clip_low: np.ndarray
    clip_high: np.ndarray


def active_entries(cfg: ScenarioConfig) -> tuple[ObsEntry, ...]:
    """The entries present in this scenario's observation, in order."""
    return tuple(e for e in OBS_SPEC if e.present(cfg))


def resolve(cfg: ScenarioConfig, num_modalities: int = len(MODALITIES)) -> ObsLayout:
    """Lay the spec out for ``cfg`` (K = num_devices, M = ``num_modalities``, Nr = num_antennas,
    S = max_pending)."""
    K, M, Nr, S = cfg.num_devices, num_modalities, cfg.num_antennas, cfg.max_pending
    slices: dict[str, tuple[int, int]] = {}
    start = np.full(NUM_BLOCKS, -1, dtype=np.int64)
    offset = np.zeros(NUM_BLOCKS)
    scale = np.ones(NUM_BLOCKS)
    clip_low = np.full(NUM_BLOCKS, -np.inf)
    clip_high = np.full(NUM_BLOCKS, np.inf)
    bounds: list[tuple[int, int, float, float]] = []
    pos = 0
    for e in active_entries(cfg):
        n = int(e.size(K, M, Nr, S))
        slices[e.name] = (pos, pos + n)
        start[e.block] = pos
        offset[e.block] = e.offset
        scale[e.block] = e.scale(cfg)
        lo, hi = float(e.low(cfg)), float(e.high(cfg))
        if e.clip:
            clip_low[e.block], clip_high[e.block] = lo, hi
        bounds.append((pos, pos + n, lo, hi))
        pos += n
    low = np.zeros(pos, dtype=np.float32)
    high = np.ones(pos, dtype=np.float32)
    for a, b, lo, hi in bounds:
        low[a:b], high[a:b] = lo, hi
    return ObsLayout(slices, pos, low, high, start, offset, scale, clip_low, clip_high)


def markdown_table() -> str:
    """The observation table of the ``VMIMOEnv`` docstring, rendered from the spec (one row per entry)."""
    rows = ["| Block | Size | Entry (per device unless noted) | Unit → scaling |", "| --- | --- | --- | --- |"]
    rows += [f"| `{e.name}` | {e.size_doc} | {e.meaning} | {e.unit} → {e.scaling_doc} |" for e in OBS_SPEC]
    return "\n".join(rows)


def device_gather(layout: Mapping[str, Sequence[int]], num_devices: int) -> tuple[np.ndarray, np.ndarray]:
    """Observation indices of every device's features, for a per-device reader such as ``DevicePolicy``.

    Parameters
    ----------
    layout:
        Block name -> (start, stop) of the flat observation (``ObsLayout.slices``, or lists as saved in
        ``policy_kwargs``). Every unconditional block of :data:`OBS_SPEC` must be present.
    num_devices:
        K.

    Returns
    -------
    feat_index : (K, F) int64
        Observation index of each device feature: the blocks of the spec in order, skipping ``"pair"`` and
        ``"scene_major"`` blocks; a ``"global"`` block is repeated for every device.
    pair_index : (K, K) int64
        Observation index of the pairwise entry of devices (i, j), symmetric; -1 on the diagonal.
    """
    K = int(num_devices)
    cols: list[np.ndarray] = []
    pair = np.full((K, K), -1, dtype=np.int64)
    for e in OBS_SPEC:
        if e.name not in layout:
            if e.condition is None:
                raise ValueError(f"obs_layout lacks block {e.name!r}; got {sorted(layout)}")
            continue
        a, b = (int(v) for v in layout[e.name])
        idx = np.arange(a, b)
        if e.axes == "device":
            cols.append(idx.reshape(1, K))
        elif e.axes == "device_major":
            cols.append(idx.reshape(K, -1).T)
        elif e.axes == "re_im":  # per device: Re over its antennas, then Im
            cols.append(idx.reshape(2, K, -1).transpose(0, 2, 1).reshape(-1, K))
        elif e.axes == "global":
            cols.append(np.full((1, K), a))
        elif e.axes == "scene_major":  # per scene, not per device
            continue
        else:  # pair
            iu, ju = np.triu_indices(K, 1)
            pair[iu, ju] = idx
            pair[ju, iu] = idx
    return np.concatenate(cols, axis=0).T.astype(np.int64), pair


__all__ = ["AXES", "OBS_SPEC", "ObsEntry", "ObsLayout", "active_entries", "device_gather", "markdown_table",
           "resolve"]
