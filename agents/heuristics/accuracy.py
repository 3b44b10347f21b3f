"""Predicted task accuracy of the frozen fusion head vs SNR × prefix length × modality subset.

The semantic-aware heuristics (max-weight, the NAS-VMIMO controller) need to know what a latent is worth before
sending it. :class:`AccuracyTable` answers ``acc(subset, snr_db, prefix)``: the probability that the frozen
student classifies a scene correctly when the modalities of ``subset`` arrive at SINR ``snr_db`` with ``prefix``
reals each (the others missing).

Source of the numbers, in order of preference:

1. the accuracy table shipped in the frozen model's metadata (``load_frozen_student().accuracy_table`` or
   ``.metadata["accuracy_table"]``), measured by the model build on held-out scenes;
2. otherwise a calibration run here on the environment's own scene pool (the same latents and the same
   ``classify`` the environment uses, a few hundred scenes per cell, about a second, cached per process).

Either way the table is built from the same frozen model that scores the reward, not from a formula.
"""

from __future__ import annotations

from typing import Any

import numpy as np

SNR_GRID_DB = np.array([-10.0, -5.0, 0.0, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0])


class AccuracyTable:
    """``acc[s, i, j]``: accuracy of subset ``subsets[s]`` (tuple of modality indices) at ``snr_db[i]`` and
    ``prefixes[j]``; linear interpolation in SNR (dB), nearest prefix, clamped at the grid edges."""

    def __init__(self, subsets: list[tuple[int, ...]], snr_db: np.ndarray, prefixes: np.ndarray, acc: np.ndarray,
                 num_modalities: int, num_classes: int, source: str) -> None:
        self.subsets = [tuple(sorted(s)) for s in subsets]
        self.index = {s: i for i, s in enumerate(self.subsets)}
        self.snr_db = np.asarray(snr_db, dtype=float)
        self.prefixes = np.asarray(prefixes, dtype=int)
        self.acc = np.asarray(acc, dtype=float)
        self.M = num_modalities
        self.chance = 1.0 / num_classes
        self.source = source
        # the single-modality slices, stacked for one vectorised lookup per call (heuristics call it every slot)
        self._single = np.stack([self.acc[self.index[(m,)]] for m in range(num_modalities)])  # (M, n_snr, n_pre)

    def lookup(self, subset: tuple[int, ...], snr_db: np.ndarray, prefix: np.ndarray) -> np.ndarray:
        """Accuracy of ``subset`` at arrays of SNR (dB) and prefix length (broadcast together)."""
        s = self.index.get(tuple(sorted(subset)))
        if s is None:
            raise KeyError(f"subset {subset} not in the accuracy table")
        snr = np.clip(np.asarray(snr_db, dtype=float), self.snr_db[0], self.snr_db[-1])
        j = np.abs(np.asarray(prefix)[..., None] - self.prefixes).argmin(-1)
        i1 = np.clip(np.searchsorted(self.snr_db, snr), 1, len(self.snr_db) - 1)
        i0 = i1 - 1
        w = (snr - self.snr_db[i0]) / (self.snr_db[i1] - self.snr_db[i0])
        tab = self.acc[s]
        return (1 - w) * tab[i0, j] + w * tab[i1, j]

    def single(self, modality: np.ndarray, snr_db: np.ndarray, prefix: np.ndarray) -> np.ndarray:
        """Accuracy with one modality alone, per entry (``modality``, ``snr_db``, ``prefix`` broadcast together)."""
        modality, snr, prefix = np.broadcast_arrays(np.asarray(modality), np.asarray(snr_db, dtype=float),
                                                    np.asarray(prefix))
        snr = np.clip(snr, self.snr_db[0], self.snr_db[-1])
        j = np.abs(prefix[..., None] - self.prefixes).argmin(-1)
        i1 = np.clip(np.searchsorted(self.snr_db, snr), 1, len(self.snr_db) - 1)
        i0 = i1 - 1
        w = (snr - self.snr_db[i0]) / (self.snr_db[i1] - self.snr_db[i0])
        return (1 - w) * self._single[modality, i0, j] + w * self._single[modality, i1, j]

    def marginal_value(self, snr_db: float = 30.0, prefix: int | None = None) -> np.ndarray:
        """(M,) accuracy each modality adds to the others: ``acc(all) − acc(all \\ {m})``, floored at a small
        positive value (a modality that adds nothing on average still helps when others are missing)."""
        prefix = int(self.prefixes.max()) if prefix is None else prefix
        full = tuple(range(self.M))
        a_all = float(self.lookup(full, np.array(snr_db), np.array(prefix)))
        out = np.zeros(self.M)
        for m in range(self.M):
            rest = tuple(x for x in full if x != m)
            out[m] = a_all - float(self.lookup(rest, np.array(snr_db), np.array(prefix))) if rest in self.index else 0
        return np.maximum(out, 1e-3)

    def modality_prior(self) -> np.ndarray:
        """(M,) stand-alone usefulness of each modality: accuracy above chance alone, at high SNR, full prefix."""
        top = int(self.prefixes.max())
        return np.array([float(self.lookup((m,), np.array(30.0), np.array(top))) - self.chance
                         for m in range(self.M)])


def _subsets_needed(M: int) -> list[tuple[int, ...]]:
    full = tuple(range(M))
    return [(m,) for m in range(M)] + [full] + [tuple(x for x in full if x != m) for m in range(M) if M > 1]


def from_metadata(model: Any, prefixes: np.ndarray) -> AccuracyTable | None:
    """The frozen model's own accuracy table, or None when it has none in the known layout.

    Layout written by ``semantic_models.build`` (``semantic_models.evaluate.accuracy_table``)::

        {"snr_db": [...], "prefix_lengths": [...], "subsets": ["visual", "visual+radar", ...],
         "accuracy": accuracy[subset][prefix][snr]}
    """
    table = getattr(model, "accuracy_table", None)
    if not table:
        table = (getattr(model, "metadata", None) or {}).get("accuracy_table")
    if not isinstance(table, dict):
        return None
    try:
        names = list(model.modalities)
        snr = np.asarray(table["snr_db"], dtype=float)
        pre = np.asarray(table["prefix_lengths"], dtype=int)
        acc = np.asarray(table["accuracy"], dtype=float)  # (subsets, prefixes, snr)
        subsets = [tuple(sorted(names.index(p) for p in name.split("+"))) for name in table["subsets"]]
        if acc.shape != (len(subsets), len(pre), len(snr)):
            return None
        if not all(s in subsets for s in _subsets_needed(len(names))):
            return None
        order = np.argsort(snr)
        return AccuracyTable(subsets, snr[order], pre, acc.transpose(0, 2, 1)[:, order, :], len(names),
                             int(model.num_classes), "metadata")
    except (KeyError, TypeError, ValueError, IndexError):
        return None


def calibrate(model: Any, latents: np.ndarray, labels: np.ndarray, prefixes: np.ndarray,
              n_scenes: int = 384, seed: int = 0) -> AccuracyTable:
    """Measure the table on ``n_scenes`` pool scenes: Gaussian noise at each SNR on the kept prefix."""
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(labels), size=min(n_scenes, len(labels)), replace=False)
    lat, y = np.asarray(latents[idx], dtype=np.float32), np.asarray(labels[idx])
    n, M, D = lat.shape
    subsets = _subsets_needed(M)
    noise = rng.standard_normal(lat.shape).astype(np.float32)
    acc = np.zeros((len(subsets), len(SNR_GRID_DB), len(prefixes)))
    dims = np.arange(D)
    for s, subset in enumerate(subsets):
        present = np.zeros(M, dtype=bool)
        present[list(subset)] = True
        for j, c in enumerate(prefixes):
            lens = np.where(present, int(c), 0)[None, :].repeat(n, axis=0)
            keep = (dims[None, None, :] < lens[..., None]).astype(np.float32)
            for i, snr_db in enumerate(SNR_GRID_DB):
                sd = np.float32(10.0 ** (-snr_db / 20.0))
                rx = (lat + noise * sd) * keep
                acc[s, i, j] = float((model.classify(rx, lens).argmax(axis=1) == y).mean())
    return AccuracyTable(subsets, SNR_GRID_DB, np.asarray(prefixes), acc, M, int(model.num_classes), "calibrated")


_CACHE: dict[tuple[int, tuple[int, ...]], AccuracyTable] = {}


def accuracy_table_for(view: Any) -> AccuracyTable:
    """The table for the frozen model the BS runs (``view.checkpoint``, loaded with ``vmimo_env.scenes.load_model``,
    cached per process) and the view's prefix levels: the model's metadata if usable, else calibrated on the BS's
    scene pool (``view.pool_seed`` / ``view.pool_size``); cached."""
    from vmimo_env.scenes import build_pool, load_model

    model = load_model(view.checkpoint)
    prefixes = np.asarray(view.prefix_levels)
    key = (id(model), tuple(int(c) for c in prefixes))
    if key not in _CACHE:
        table = from_metadata(model, prefixes)
        if table is None:
            if view.pool_seed is None:
                raise ValueError("the frozen model has no accuracy table and the BS view names no scene pool "
                                 "(pool_seed is None) to calibrate one on")
            pool = build_pool(view.pool_size, view.pool_seed, view.checkpoint)
            table = calibrate(model, pool.latents, pool.labels, prefixes)
        _CACHE[key] = table
    return _CACHE[key]
