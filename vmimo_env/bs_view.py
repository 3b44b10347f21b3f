"""What the base station knows at the start of a slot (``BSView``), and predictions of a candidate action from it.

A scheduler (a heuristic, a planner, a learned policy) should decide from this view and from the rules of
``vmimo_env.rules``, never from the simulator's internals, so that it runs behind any wrapper or process boundary:

- ``VMIMOCore.bs_view()``, ``VMIMOEnv.bs_view()``, ``VMIMOVectorEnv.bs_view()`` and ``VMIMOSB3VecEnv.bs_view()``
  return it (through wrappers: ``env.get_wrapper_attr("bs_view")()``, ``venv.env_method("bs_view")``);
- ``gym.make(id, info_bs_view=True)`` (and the vector / SB3 front ends) add ``info["bs_view"]``, the view as a
  plain dict of arrays (``BSView.to_dict()``; ``BSView.from_dict`` restores it);
- ``vmimo_env.frontend.view_fetcher`` turns any of those front ends into a function returning the current view.

The model assumes the BS estimates the CSI and receives queue and compute/memory reports, so all of it is known.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from vmimo_env import rules
from vmimo_env.config import MODALITIES, ScenarioConfig

PER_ENV_FIELDS: tuple[str, ...] = ("t", "h", "gain", "queue", "hol_age", "p_joint", "encode_cap", "queue_unheld",
                                   "scene_valid", "scene_held", "scene_slack", "scene_queued", "burst_belief")
SHARED_ARRAY_FIELDS: tuple[str, ...] = ("device_modality", "encoder_mflops", "power_levels_w", "prefix_levels")
SCALAR_FIELDS: tuple[str, ...] = ("checkpoint", "pool_seed", "pool_size")


@dataclasses.dataclass(frozen=True, eq=False)
class BSView:
    """What the BS knows at the start of a slot, for N environments (read-only copies: a view never changes).

    Per-environment fields have a leading N axis (N = 1 for a single ``VMIMOEnv``); ``S`` is
    ``cfg.max_pending``, ``M`` the number of modalities, pending-scene rows are oldest first.

    | Field             | Shape      | Unit, dtype        | Meaning                                                  |
    |-------------------|------------|--------------------|----------------------------------------------------------|
    | `t`               | (N,)       | slot, int64        | slot index in the episode                                |
    | `h`               | (N, K, Nr) | √gain, complex128  | channel of each device incl. its large-scale amplitude   |
    | `gain`            | (N, K)     | linear, float64    | large-scale power gain (path loss and shadowing)         |
    | `queue`           | (N, K)     | latents, int64     | queued at each device, before this slot's arrivals       |
    | `hol_age`         | (N, K)     | slots, int64       | age of the head-of-line scene (0: empty queue)           |
    | `p_joint`         | (N, K)     | probability        | compute × memory availability report                     |
    | `encode_cap`      | (N, K)     | latents, int64     | latents encodable this slot (``rules.encode_cap``)       |
    | `queue_unheld`    | (N, K)     | latents, int64     | queued latents of scenes whose modality the BS lacks     |
    | `scene_valid`     | (N, S)     | bool               | row j is a pending scene (the j-th oldest)               |
    | `scene_held`      | (N, S, M)  | reals, int64       | prefix the BS holds of each modality (0: not held)       |
    | `scene_slack`     | (N, S)     | slots, int64       | slots left to deliver the scene, this one included       |
    | `scene_queued`    | (N, S, K)  | bool               | the scene still waits in device k's queue                |
    | `burst_belief`    | (N,)       | probability        | P(busy traffic phase) from the arrival counts (MMPP; 0)  |
    | `device_modality` | (K,)       | index, int64       | modality of each device (into ``config.MODALITIES``)     |
    | `encoder_mflops`  | (K,)       | MFLOP, float64     | encoder cost of one latent on each device                |
    | `power_levels_w`  | (L_p,)     | W, float64         | transmit power of each ``power`` action index            |
    | `prefix_levels`   | (L_c,)     | reals, int64       | latent prefix of each ``compression`` action index       |
    | `cfg`             | -          | ``ScenarioConfig`` | scenario scalars (band, noise, slot, deadline, energy)   |
    | `checkpoint`      | -          | str or None        | frozen student the BS runs (``scenes.load_model``)       |
    | `pool_seed`       | -          | int or None        | seed of the BS's scene pool (``scenes.build_pool``)      |
    | `pool_size`       | -          | int                | scenes in that pool                                      |

    ``to_dict()`` / ``from_dict()`` convert to and from plain arrays and builtins (picklable, so the view crosses
    process boundaries); ``stack`` batches single-environment views, ``take`` / ``row`` / ``unbatch`` split them.
    """

    t: np.ndarray
    h: np.ndarray
    gain: np.ndarray
    queue: np.ndarray
    hol_age: np.ndarray
    p_joint: np.ndarray
    encode_cap: np.ndarray
    queue_unheld: np.ndarray
    scene_valid: np.ndarray
    scene_held: np.ndarray
    scene_slack: np.ndarray
    scene_queued: np.ndarray
    burst_belief: np.ndarray
    device_modality: np.ndarray
    encoder_mflops: np.ndarray
    power_levels_w: np.ndarray
    prefix_levels: np.ndarray
    cfg: ScenarioConfig
    checkpoint: str | None = None
    pool_seed: int | None = None
    pool_size: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.cfg, ScenarioConfig):
            raise TypeError(f"cfg must be a ScenarioConfig, got {type(self.cfg).__name__}")
        for name in (*PER_ENV_FIELDS, *SHARED_ARRAY_FIELDS):
            object.__setattr__(self, name, frozen(getattr(self, name)))
        N = int(self.t.shape[0]) if self.t.ndim == 1 else -1
        for name, want in _expected_shapes(self.cfg, N):
            got = getattr(self, name).shape
            if N < 1 or got != want:
                cfg = self.cfg
                raise ValueError(f"BSView.{name} must have shape {want} (N={N} environments, K={cfg.num_devices}, "
                                 f"Nr={cfg.num_antennas}, S={cfg.max_pending}), got {got}")

    def __repr__(self) -> str:
        return (f"BSView(N={self.N}, K={self.K}, Nr={self.Nr}, G={self.G}, t={self.t.tolist()}, "
                f"pending={self.scene_valid.sum(axis=1).tolist()}, checkpoint={self.checkpoint!r})")

    # ------------------------------------------------------------------ sizes
    @property
    def N(self) -> int:
        """Number of environments in the view."""
        return int(self.t.shape[0])

    @property
    def K(self) -> int:
        return self.cfg.num_devices

    @property
    def Nr(self) -> int:
        return self.cfg.num_antennas

    @property
    def G(self) -> int:
        return self.cfg.num_groups

    @property
    def S(self) -> int:
        return self.cfg.max_pending

    @property
    def M(self) -> int:
        return len(MODALITIES)

    # ------------------------------------------------------------------ plain form
    def to_dict(self) -> dict[str, Any]:
        """Plain, picklable form: every array field (read-only numpy arrays), ``cfg`` as a dict of builtins
        (``ScenarioConfig`` field -> value, tuples as tuples) and the scalar fields."""
        out: dict[str, Any] = {name: getattr(self, name) for name in (*PER_ENV_FIELDS, *SHARED_ARRAY_FIELDS)}
        out["cfg"] = dict(_cfg_items(self.cfg))
        out.update({name: getattr(self, name) for name in SCALAR_FIELDS})
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BSView:
        """Inverse of :meth:`to_dict` (shapes are checked; the arrays are copied)."""
        if isinstance(data, BSView):
            return data
        if not isinstance(data, Mapping):
            raise TypeError(f"a BS view dict must be a mapping, got {type(data).__name__}")
        want = {*PER_ENV_FIELDS, *SHARED_ARRAY_FIELDS, *SCALAR_FIELDS, "cfg"}
        missing, extra = sorted(want - set(data)), sorted(set(data) - want)
        if missing or extra:
            raise ValueError(f"BS view dict keys: missing {missing}, unexpected {extra}")
        cfg = data["cfg"]
        if not isinstance(cfg, ScenarioConfig):
            if not isinstance(cfg, Mapping):
                raise TypeError(f"a BS view dict's cfg must be a mapping of scenario parameters, got {cfg!r}")
            cfg = _cfg_from_items(tuple((k, tuple(v) if type(v) is list else v) for k, v in cfg.items()))
        return cls(**{k: v for k, v in data.items() if k != "cfg"}, cfg=cfg)

    def __reduce__(self) -> tuple[Any, ...]:
        return (BSView.from_dict, (self.to_dict(),))

    # ------------------------------------------------------------------ batching
    @classmethod
    def stack(cls, views: Sequence[BSView | Mapping[str, Any]]) -> BSView:
        """One view of all environments of ``views`` (each of any N, in order); their scenarios must agree."""
        views = [cls.from_dict(v) for v in views]
        if not views:
            raise ValueError("BSView.stack needs at least one view")
        first = views[0]
        for j, v in enumerate(views[1:], 1):
            same = (v.cfg == first.cfg and all(getattr(v, s) == getattr(first, s) for s in SCALAR_FIELDS)
                    and all(np.array_equal(getattr(v, s), getattr(first, s)) for s in SHARED_ARRAY_FIELDS))
            if not same:
                raise ValueError(f"BSView.stack: view {j} is of another scenario than view 0 (cfg, action grids, "
                                 "modalities or model differ)")
        if len(views) == 1:
            return first
        per_env = {name: np.concatenate([getattr(v, name) for v in views]) for name in PER_ENV_FIELDS}
        return dataclasses.replace(first, **per_env)

    @staticmethod
    def split_dict(data: Mapping[str, Any]) -> list[dict[str, Any]]:
        """One plain dict (N = 1) per environment of a view's plain dict (``to_dict()``), without building views:
        per-environment arrays are read-only slices of the batched ones (cheap enough for every step's infos)."""
        n = int(np.shape(data["t"])[0])
        return [{**data, "cfg": dict(data["cfg"]), **{name: data[name][i:i + 1] for name in PER_ENV_FIELDS}}
                for i in range(n)]

    def take(self, rows: Sequence[int] | np.ndarray) -> BSView:
        """The view of environments ``rows`` (in that order, repeats allowed)."""
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        if rows.size == 0 or rows.min() < -self.N or rows.max() >= self.N:
            raise ValueError(f"rows must be indices into the view's {self.N} environments, got {rows.tolist()}")
        return dataclasses.replace(self, **{name: getattr(self, name)[rows] for name in PER_ENV_FIELDS})

    def row(self, i: int) -> BSView:
        """The single-environment view (N = 1) of environment ``i``."""
        return self.take([i])

    def unbatch(self) -> list[BSView]:
        """One N = 1 view per environment."""
        return [self.row(i) for i in range(self.N)]


def frozen(x: Any) -> np.ndarray:
    """``x`` as a read-only array that nothing else can change: a read-only array owning its data is kept, anything
    else (writeable, or a view of another array) is copied first."""
    arr = np.asarray(x)
    if arr.flags.writeable or arr.base is not None:
        arr = arr.copy()
        arr.flags.writeable = False
    return arr


@functools.lru_cache(maxsize=64)
def _cfg_items(cfg: ScenarioConfig) -> tuple[tuple[str, Any], ...]:
    """The scenario as (name, builtin value) pairs, tuples kept (immutable, so the cached pairs stay as built)."""
    return tuple((name, getattr(cfg, name)) for name in cfg.field_names())


@functools.lru_cache(maxsize=64)
def _expected_shapes(cfg: ScenarioConfig, N: int) -> tuple[tuple[str, tuple[int, ...]], ...]:
    K, Nr, S, M = cfg.num_devices, cfg.num_antennas, cfg.max_pending, len(MODALITIES)
    return (("t", (N,)), ("h", (N, K, Nr)), ("gain", (N, K)), ("queue", (N, K)), ("hol_age", (N, K)),
            ("p_joint", (N, K)), ("encode_cap", (N, K)), ("queue_unheld", (N, K)), ("scene_valid", (N, S)),
            ("scene_held", (N, S, M)), ("scene_slack", (N, S)), ("scene_queued", (N, S, K)), ("burst_belief", (N,)),
            ("device_modality", (K,)), ("encoder_mflops", (K,)), ("power_levels_w", (len(cfg.power_levels_db),)),
            ("prefix_levels", (len(cfg.compression_levels),)))


@functools.lru_cache(maxsize=64)
def _cfg_from_items(items: tuple[tuple[str, Any], ...]) -> ScenarioConfig:
    return ScenarioConfig.from_dict(dict(items))


# ====================================================================== predictions of a candidate action
def _batched(view: BSView, x: Any, name: str, last: int) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim == 1 and view.N == 1:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape != (view.N, last):
        raise ValueError(f"{name} must have shape ({view.N}, {last}) (or ({last},) for a single environment), "
                         f"got {arr.shape}")
    return arr


def _power_w(view: BSView, power: Any) -> np.ndarray:
    p = _batched(view, power, "power", view.K)
    if p.dtype.kind in "iu":
        if (p < 0).any() or (p >= len(view.power_levels_w)).any():
            raise ValueError(f"power indices must be in [0, {len(view.power_levels_w) - 1}], got {p.tolist()}")
        return view.power_levels_w[p]
    return p.astype(np.float64)


def band_hz(view: BSView, bandwidth: Any) -> np.ndarray:
    """Hz of each group's band (N, G) for raw shares ``bandwidth`` (N, G), as the slot splits the band."""
    return rules.band_shares(_batched(view, bandwidth, "bandwidth", view.G)) * view.cfg.total_bandwidth_hz


def planned_latents(view: BSView, group: Any, compression: Any, bandwidth: Any,
                    queue: np.ndarray | None = None) -> np.ndarray:
    """Latents (N, K) each device sends under the action: ``rules.latents_sent(queue, fit, encode cap)`` for a
    scheduled device, 0 for an idle one.

    ``queue`` (N, K) is the backlog when the devices send, i.e. after this slot's arrivals, which the BS cannot
    know yet: the default ``view.queue`` is the backlog before them (a lower bound); pass a larger one (e.g.
    ``view.queue + arrivals``) to plan for the arrivals.
    """
    g = _batched(view, group, "group", view.K).astype(np.int64)
    c = view.prefix_levels[_batched(view, compression, "compression", view.K)]
    band = band_hz(view, bandwidth)
    own = np.take_along_axis(band, np.maximum(g - 1, 0), axis=1)
    q = view.queue if queue is None else _batched(view, queue, "queue", view.K).astype(np.int64)
    n = rules.latents_sent(q, rules.latents_that_fit(own, c, view.cfg.slot_s), view.encode_cap)
    return np.where(g > 0, n, 0)


def predict_sinr(view: BSView, group: Any, power: Any, bandwidth: Any, *, compression: Any = None,
                 receiver: str | None = None) -> np.ndarray:
    """Post-receiver SINR (N, K), linear, that the slot gives each device under a candidate action.

    ``group`` (N, K) in 0..G, ``power`` (N, K) power indices (integer dtype) or watts (float dtype),
    ``bandwidth`` (N, G) raw shares (as the core receives them: the environments cast to float32); single
    environment arrays (K,) / (G,) are accepted when ``view.N == 1`` (the result is then (K,)). The receiver,
    noise and band split are the slot's own (``rules.slot_sinr``, ``rules.receiver_noise_w``,
    ``rules.band_shares``); ``receiver`` forces another one (e.g. ``"mmse"``) instead of the scenario's.

    A device that sends nothing this slot neither transmits nor interferes. With ``compression`` given, devices
    whose encode cap or band leave no room for one latent are treated as idle, exactly as the slot does; a
    device whose queue is still empty after this slot's arrivals is idle in the slot too, which the BS cannot
    know in advance, so the prediction is exact whenever every scheduled device has data to send.
    """
    single = np.asarray(group).ndim == 1
    g = _batched(view, group, "group", view.K).astype(np.int64)
    if (g < 0).any() or (g > view.G).any():
        raise ValueError(f"group must be in [0, {view.G}], got {g.tolist()}")
    if compression is not None:
        big = np.full(g.shape, np.iinfo(np.int64).max // 2)
        g = np.where(planned_latents(view, g, compression, bandwidth, queue=big) > 0, g, 0)
    p = np.where(g > 0, _power_w(view, power), 0.0)
    shares = rules.band_shares(_batched(view, bandwidth, "bandwidth", view.G))
    noise = rules.receiver_noise_w(shares, view.cfg)
    sinr = rules.slot_sinr(view.cfg, np.asarray(view.h), p, g, noise, receiver=receiver)
    return sinr[0] if single else sinr


def action_energy_j(view: BSView, group: Any, power: Any, compression: Any, bandwidth: Any,
                    num_latents: Any) -> np.ndarray:
    """Device energy (N, K) in joules of the action when device k sends ``num_latents[k]`` latents (e.g.
    :func:`planned_latents`): transmit + circuit over its air time, encoding, and in cooperative mode the D2D
    exchange, exactly as the slot charges it (``rules``, ``vmimo_env.energy``)."""
    from vmimo_env import energy

    g = _batched(view, group, "group", view.K).astype(np.int64)
    n = np.where(g > 0, _batched(view, num_latents, "num_latents", view.K), 0).astype(np.int64)
    g = np.where(n > 0, g, 0)
    c = view.prefix_levels[_batched(view, compression, "compression", view.K)]
    own = np.take_along_axis(band_hz(view, bandwidth), np.maximum(g - 1, 0), axis=1)
    p = np.where(g > 0, _power_w(view, power), 0.0)
    t_air = np.where(g > 0, rules.airtime_s(n, c, own), 0.0)
    e_tx, e_circ, e_enc = rules.device_energy_j(p, t_air, n, view.encoder_mflops, view.cfg)
    total = e_tx + e_circ + e_enc
    if view.cfg.cooperative:
        sym = rules.d2d_symbols(g, n, c, view.G)
        total = total + energy.d2d_energy_j(sym, view.cfg.d2d_energy_j_per_symbol)
    return total


def view_from_info(info: Any) -> BSView | None:
    """The ``BSView`` in a step's info (``info["bs_view"]``, or a list of per-environment infos as SB3 returns
    them), None when the info carries none (or only as a Gymnasium ``SyncVectorEnv`` merges dict entries, field by
    field with ``_``-masks; ``view_fetcher`` then gets it through ``call("bs_view")``)."""
    if isinstance(info, Mapping):
        v = info.get("bs_view")
        if v is None or (isinstance(v, Mapping) and "_t" in v):
            return None  # absent, or merged field by field by a Gymnasium Sync/AsyncVectorEnv: fetch it instead
        return BSView.from_dict(v)
    if isinstance(info, (list, tuple)) and info and all(isinstance(i, Mapping) and "bs_view" in i for i in info):
        return BSView.stack([i["bs_view"] for i in info])
    return None


def check_info_flag(value: Any) -> bool:
    """Validate the ``info_bs_view`` environment keyword (a bool)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"info_bs_view must be a bool (add the BS view to info), got {value!r}")
    return bool(value)
