"""Action spaces of VMIMO-v0 and the invertible mappings between its three views.

Native view (``action_view="dict"``), readable by a person::

    Dict(group=MultiDiscrete([G+1]*K), power=MultiDiscrete([L_p]*K),
         compression=MultiDiscrete([L_c]*K), bandwidth=Box(0, 1, (G,), float32))

``group[k]`` is device k's virtual-MIMO group (0 = idle), ``power[k]`` an index into
``ScenarioConfig.power_levels_db``, ``compression[k]`` an index into ``compression_levels`` (latent prefix
length) and ``bandwidth[g]`` group g's raw share of the band. Shares are used as given when they sum to at most
1, and scaled down to sum to 1 otherwise (so unused bandwidth is possible, over-use is not).

Flat views for Stable-Baselines3, one vector ``[group (K) | power (K) | compression (K) | bandwidth (G)]``:

- ``"multidiscrete"``: ``MultiDiscrete([G+1]*K + [L_p]*K + [L_c]*K + [L_b]*G)``; bandwidth level ``b`` means a
  raw share ``b / (L_b - 1)``. Exact round trip on the grid: ``to_multidiscrete(from_multidiscrete(a)) == a``.
- ``"box"``: ``Box(-1, 1, (3K + G,), float32)``. A discrete component with n choices splits [-1, 1] into n equal
  bins (index ``floor((x + 1) / 2 * n)``, the top edge belonging to the last bin); the inverse maps an index to its
  bin centre. Bandwidth share is ``(x + 1) / 2``. Values outside [-1, 1] are clipped first (documented
  clipping, never an error); NaN/inf raise. Gymnasium's generic ``flatten`` is not used: its unflatten maps
  almost every continuous sample of a discrete part to index 0.

Validation is complete before anything is returned, so an environment never acts on (or draws randoms for) a
malformed action: every decoder takes ``batch`` (``None`` = one environment's action, shapes ``(K,)``/``(G,)``/
``(3K+G,)``; ``n`` = a batch of n, ``(n, K)``/``(n, G)``/``(n, 3K+G)``; ``"any"``, the default for offline use =
any common leading axes). ``VMIMOEnv`` decodes with ``batch=None`` and ``VMIMOVectorEnv`` with
``batch=num_envs``. A wrong shape, a bool, complex, object or string array, NaN/inf, a non-integer or out-of-range
index raises ``ValueError`` naming the field, the expected shape and what came; the only silent changes are the
documented clippings (Box values to [-1, 1], native bandwidth shares to [0, 1]).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

import numpy as np
from gymnasium import spaces

from vmimo_env.config import ScenarioConfig, short_repr
from vmimo_env.kernels import indices_in_range, native_action_status

ACTION_VIEWS: tuple[str, ...] = ("dict", "multidiscrete", "box")
ACTION_KEYS: tuple[str, ...] = ("group", "power", "compression", "bandwidth")
# leading axes a decoder accepts: None = one environment (unbatched), n = a batch of n, "any" = whatever leads
Batch = int | None | Literal["any"]


@dataclass(frozen=True)
class ActionLayout:
    """Sizes of the action components of one scenario."""

    num_devices: int
    num_groups: int
    num_power: int
    num_compression: int
    num_bandwidth: int = 5

    @classmethod
    def from_config(cls, cfg: ScenarioConfig, bandwidth_levels: int = 5) -> ActionLayout:
        return cls(cfg.num_devices, cfg.num_groups, len(cfg.power_levels_db), len(cfg.compression_levels),
                   bandwidth_levels)

    @property
    def nvec(self) -> np.ndarray:
        """``nvec`` of the MultiDiscrete view."""
        k, g = self.num_devices, self.num_groups
        return np.array([g + 1] * k + [self.num_power] * k + [self.num_compression] * k + [self.num_bandwidth] * g,
                        dtype=np.int64)

    @cached_property
    def _nvec64(self) -> np.ndarray:
        """``nvec`` built once (the decoder's fast check reads it every step)."""
        return self.nvec

    @property
    def flat_dim(self) -> int:
        return 3 * self.num_devices + self.num_groups

    def dict_space(self, seed: int | None = None) -> spaces.Dict:
        k, g = self.num_devices, self.num_groups
        return spaces.Dict(
            {
                "group": spaces.MultiDiscrete(np.full(k, g + 1, dtype=np.int64)),
                "power": spaces.MultiDiscrete(np.full(k, self.num_power, dtype=np.int64)),
                "compression": spaces.MultiDiscrete(np.full(k, self.num_compression, dtype=np.int64)),
                "bandwidth": spaces.Box(0.0, 1.0, (g,), dtype=np.float32),
            },
            seed=seed,
        )

    def space(self, view: str, seed: int | None = None) -> spaces.Space[Any]:
        if view == "dict":
            return self.dict_space(seed)
        if view == "multidiscrete":
            return spaces.MultiDiscrete(self.nvec, seed=seed)
        if view == "box":
            return spaces.Box(-1.0, 1.0, (self.flat_dim,), dtype=np.float32, seed=seed)
        raise ValueError(f"action_view must be one of {list(ACTION_VIEWS)}, got {view!r}")

    # ------------------------------------------------------------------ decoders -> validated native arrays
    def _split(self, flat: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        k = self.num_devices
        return flat[..., :k], flat[..., k:2 * k], flat[..., 2 * k:3 * k], flat[..., 3 * k:]

    def from_multidiscrete(self, a: Any, *, batch: Batch = "any") -> dict[str, np.ndarray]:
        """MultiDiscrete vector(s) to native arrays, validated completely before anything is returned.

        ``batch=None``: one environment's action, shape ``(3K+G,)``; ``batch=n``: ``(n, 3K+G)``; the default
        ``"any"`` accepts any leading axes ``(..., 3K+G)`` (for offline decoding). Raises ``ValueError`` naming the
        field for a wrong shape, a complex/bool/non-numeric dtype, NaN/inf, non-integers or an out-of-range index.
        """
        lead = _lead(batch)
        if not (type(a) is np.ndarray and a.dtype == np.int64 and a.shape[-1:] == (self.flat_dim,)
                and (lead is None or a.shape[:-1] == lead) and indices_in_range(a, self._nvec64)):
            a = self._checked_multidiscrete(a, lead)
        g, p, c, b = self._split(a)
        return {"group": g.astype(np.int64), "power": p.astype(np.int64), "compression": c.astype(np.int64),
                "bandwidth": (b / (self.num_bandwidth - 1)).astype(np.float32)}

    def _checked_multidiscrete(self, a: Any, lead: tuple[int, ...] | None) -> np.ndarray:
        """The full check of :meth:`from_multidiscrete` (anything off the int64 fast path), naming the field."""
        a = _as_array(a, "action", self.flat_dim, lead, integer=True)
        bad = (a < 0) | (a >= self.nvec)
        if bad.any():
            where = tuple(int(i) for i in np.argwhere(bad)[0])
            j = where[-1]
            raise ValueError(f"action[{', '.join(map(str, where))}] ({self._component_name(j)}) = {a[where].item()!r} "
                             f"out of range [0, {int(self.nvec[j]) - 1}]")
        return a.astype(np.int64, copy=False)

    def to_multidiscrete(self, native: dict[str, np.ndarray]) -> np.ndarray:
        """Native arrays to the MultiDiscrete vector (bandwidth rounded to the nearest level)."""
        b = np.rint(np.clip(np.asarray(native["bandwidth"], dtype=np.float64), 0.0, 1.0) * (self.num_bandwidth - 1))
        return np.concatenate([np.asarray(native["group"]), np.asarray(native["power"]),
                               np.asarray(native["compression"]), b.astype(np.int64)], axis=-1).astype(np.int64)

    def from_box(self, x: Any, *, batch: Batch = "any") -> dict[str, np.ndarray]:
        """Box vector(s) in [-1, 1] to native arrays; out-of-range values are clipped, NaN/inf raise.

        ``batch`` as in :meth:`from_multidiscrete` (shape ``(3K+G,)``, ``(n, 3K+G)`` or any leading axes).
        """
        x = np.clip(_as_array(x, "action", self.flat_dim, _lead(batch), integer=False), -1.0, 1.0)
        g, p, c, b = self._split(x)
        return {"group": _bin(g, self.num_groups + 1), "power": _bin(p, self.num_power),
                "compression": _bin(c, self.num_compression),
                "bandwidth": ((b + 1.0) * 0.5).astype(np.float32)}

    def to_box(self, native: dict[str, np.ndarray]) -> np.ndarray:
        """Native arrays to the Box vector (discrete indices to their bin centres)."""
        b = np.clip(np.asarray(native["bandwidth"], dtype=np.float64), 0.0, 1.0) * 2.0 - 1.0
        parts = [_centre(native["group"], self.num_groups + 1), _centre(native["power"], self.num_power),
                 _centre(native["compression"], self.num_compression), b]
        return np.concatenate(parts, axis=-1).astype(np.float32)

    def validate_native(self, action: Any, *, batch: Batch = "any") -> dict[str, np.ndarray]:
        """Check a native (dict) action completely and return it as arrays (int64 indices, float32 shares).

        ``batch=None``: one environment's action, ``group``/``power``/``compression`` of shape ``(K,)`` and
        ``bandwidth`` ``(G,)``; ``batch=n``: ``(n, K)`` and ``(n, G)``; the default ``"any"`` accepts any common
        leading axes. Indices may be integer arrays or floats holding integers; bool, complex and non-numeric
        arrays, NaN/inf, wrong shapes and out-of-range indices raise ``ValueError`` naming the field. Bandwidth
        shares outside [0, 1] are clipped (documented, not an error).
        """
        lead = _lead(batch)
        fast = self.validate_native_fast(action, lead)
        if fast is not None:
            return fast
        if not isinstance(action, Mapping):
            raise ValueError(f"action must be a dict with keys {list(ACTION_KEYS)}, got {type(action).__name__}")
        missing = [key for key in ACTION_KEYS if key not in action]
        extra = [key for key in action if key not in ACTION_KEYS]
        if missing or extra:
            raise ValueError(f"action keys must be {list(ACTION_KEYS)}; missing {missing}, unexpected {extra}")
        out: dict[str, np.ndarray] = {}
        sizes = {"group": (self.num_devices, self.num_groups + 1), "power": (self.num_devices, self.num_power),
                 "compression": (self.num_devices, self.num_compression)}
        for key, (n, hi) in sizes.items():
            arr = _as_array(action[key], f"action['{key}']", n, lead, integer=True)
            if (arr < 0).any() or (arr >= hi).any():
                raise ValueError(f"action['{key}'] values must be in [0, {hi - 1}], got {short_repr(arr)}")
            out[key] = arr.astype(np.int64)
            if lead is None and out[key].shape != out["group"].shape:
                raise ValueError(f"action['{key}'] has shape {out[key].shape} but action['group'] has shape "
                                 f"{out['group'].shape}: the parts of one action must share their leading axes")
        bw = _as_array(action["bandwidth"], "action['bandwidth']", self.num_groups, lead, integer=False)
        if lead is None and bw.shape[:-1] != out["group"].shape[:-1]:
            raise ValueError(f"action['bandwidth'] has shape {bw.shape} but action['group'] has shape "
                             f"{out['group'].shape}: the parts of one action must share their leading axes")
        out["bandwidth"] = np.clip(bw, 0.0, 1.0).astype(np.float32)
        return out

    def validate_native_fast(self, action: Any, lead: tuple[int, ...] | None) -> dict[str, np.ndarray] | None:
        """:meth:`validate_native`'s common case (a dict of int64 arrays of the right shape, finite float32 or
        float64 shares), checked in few numpy calls; ``lead`` as :meth:`validate_native` resolves its ``batch``
        (``()`` one environment, ``(n,)`` a batch, None any). Returns ``None`` whenever anything is unusual, and
        the full validation then names the problem."""
        if type(action) is not dict or action.keys() != _ACTION_KEY_SET:
            return None
        g, p, c, b = action["group"], action["power"], action["compression"], action["bandwidth"]
        nd = np.ndarray
        if type(g) is not nd or type(p) is not nd or type(c) is not nd or type(b) is not nd:
            return None
        # dtype objects compared (an unpickled array, as subprocess and Ray workers receive, has its own)
        if g.dtype != _INT64 or p.dtype != _INT64 or c.dtype != _INT64 or b.dtype not in _FAST_SHARE_DTYPES:
            return None
        shape = g.shape
        if p.shape != shape or c.shape != shape or not shape or shape[-1] != self.num_devices:
            return None
        if b.ndim != len(shape) or b.shape[-1] != self.num_groups or b.shape[:-1] != shape[:-1]:
            return None
        if lead is not None and shape[:-1] != lead:
            return None
        status = native_action_status(g, p, c, b, self.num_groups, self.num_power, self.num_compression)
        if status < 0:
            return None
        if status:
            b = np.clip(b, 0.0, 1.0)
        return {"group": g, "power": p, "compression": c, "bandwidth": b.astype(np.float32, copy=False)}

    def _component_name(self, j: int) -> str:
        k = self.num_devices
        names = ("group", "power", "compression")
        if j < 3 * k:
            return f"{names[j // k]}[{j % k}]"
        return f"bandwidth[{j - 3 * k}]"


_FAST_SHARE_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))  # the compiled check's share types
_INT64 = np.dtype(np.int64)
_ACTION_KEY_SET = frozenset(ACTION_KEYS)


def normalise_shares(raw: np.ndarray) -> np.ndarray:
    """Raw group shares ``(..., G)`` in [0, 1] to shares that sum to at most 1 (scaled down if over): the slot's
    rule, ``vmimo_env.rules.band_shares``."""
    from vmimo_env.rules import band_shares

    return band_shares(raw)


def _lead(batch: Batch) -> tuple[int, ...] | None:
    """Leading axes an action must have: ``()`` for one environment, ``(n,)`` for a batch, None for any."""
    if batch is None:
        return ()
    if isinstance(batch, str):
        if batch != "any":
            raise ValueError(f"batch must be None, a positive int or 'any', got {batch!r}")
        return None
    if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch < 1:
        raise ValueError(f"batch must be None, a positive int or 'any', got {batch!r}")
    return (int(batch),)


def _as_array(a: Any, name: str, last: int, lead: tuple[int, ...] | None, *, integer: bool) -> np.ndarray:
    """``a`` as a real numeric array of shape ``lead + (last,)`` (any leading axes if ``lead`` is None).

    Checked in full before anything is converted: the dtype (bool, complex, object and strings refused: a cast
    would silently drop an imaginary part or turn a mask into indices), the exact shape, finiteness and, for index
    parts, integrality. The array is returned in its own dtype (callers range-check before casting, so a huge
    float cannot wrap around in an int64 cast).
    """
    try:
        arr = np.asarray(a)
    except (ValueError, TypeError) as err:  # ragged nested lists
        raise ValueError(f"{name} must be a numeric array, got {short_repr(a)} ({err})") from None
    kind = arr.dtype.kind
    if kind == "b":
        raise ValueError(f"{name} must be a numeric (int or float) array, got a bool array {short_repr(arr)}; "
                         "cast it explicitly if 0/1 indices are meant")
    if kind == "c":
        raise ValueError(f"{name} must be real, got the complex array {short_repr(arr)}")
    if kind not in "iuf":
        raise ValueError(f"{name} must be numeric, got dtype {arr.dtype} ({short_repr(arr)})")
    if lead is None:
        if arr.ndim == 0 or arr.shape[-1] != last:
            raise ValueError(f"{name} must have last dimension {last}, got shape {arr.shape}")
    elif arr.shape != (*lead, last):
        what = "one environment's action" if not lead else f"a batch of {lead[0]} environments"
        if arr.ndim == 0 or arr.shape[-1] != last:
            raise ValueError(f"{name} must have last dimension {last}, shape {(*lead, last)} ({what}); "
                             f"got shape {arr.shape}")
        raise ValueError(f"{name} must have shape {(*lead, last)} ({what}), got shape {arr.shape}")
    if kind == "f":
        if not np.isfinite(arr).all():
            raise ValueError(f"{name} contains NaN or inf: {short_repr(arr)}")
        if integer and not np.array_equal(arr, np.round(arr)):
            raise ValueError(f"{name} must hold integers, got {short_repr(arr)}")
    return arr


def _bin(x: np.ndarray, n: int) -> np.ndarray:
    return np.minimum(((x + 1.0) * 0.5 * n).astype(np.int64), n - 1)


def _centre(idx: Any, n: int) -> np.ndarray:
    return (2.0 * np.asarray(idx, dtype=np.float64) + 1.0) / n - 1.0
