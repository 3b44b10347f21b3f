"""Per-environment random streams for a batch of environments.

Each environment owns one ``numpy.random.Generator`` (PCG64) seeded from its own seed, so what happens in
environment ``i`` depends only on its seed and its own history, never on how many environments step beside it
(the contract that lets ``VMIMOVectorEnv`` env ``i`` reproduce ``VMIMOEnv`` with the same seed, step for step).

Calling a generator once per environment per slot would cost N Python-level calls per draw type; instead each
environment draws a *block* of ``block`` slots of fixed-size randomness at once, and a slot reads its row. Blocks
are refilled per environment (only those whose pointer ran out), and a reset discards the rest of an
environment's block, so the stream an environment sees is the same whatever the batch size and whenever the
others reset. The fused slot (``kernels.slot_physics``) reads a slot's rows from the blocks itself, after
:meth:`BlockRNG.refill`, and advances the pointers in place: the same draws as :meth:`BlockRNG.next`.
"""

from __future__ import annotations

import functools

import numpy as np

NOISE_TABLE_SIZE = 1 << 20
NOISE_TABLE_SEED = 0x5EED_7AB1E


@functools.lru_cache(maxsize=2)
def make_noise_table(size: int = NOISE_TABLE_SIZE, seed: int = NOISE_TABLE_SEED) -> np.ndarray:
    """A fixed, read-only table of i.i.d. N(0, 1) float32 values, built once per process and shared.

    Latent noise is read from this table at per-scene random offsets drawn from the environment's own stream:
    every received value is still exactly N(0, 1) marginally, and only what is actually delivered costs
    anything (drawing fresh normals for every possible latent value dominated a naive slot's profile). Windows of
    two scenes may overlap, which correlates their noise but cannot bias any accuracy estimate, since each window
    is marginally i.i.d. The table is a pure function of ``(size, seed)``, so a pickled environment leaves it out
    and the receiving process rebuilds the same bits.
    """
    table = np.random.default_rng(seed).standard_normal(size, dtype=np.float32)
    table.setflags(write=False)
    return table


class BlockRNG:
    """Fixed-size uniform and normal draws per slot for N environments, refilled in blocks.

    Parameters
    ----------
    num_envs:
        N, the number of environments.
    n_uniform, n_normal:
        How many U[0, 1) and N(0, 1) float64 values one environment needs per slot.
    block:
        Slots drawn per refill. Larger blocks amortise the per-environment Python call; smaller ones use less
        memory (``N * block * (n_uniform + n_normal) * 8`` bytes).
    """

    def __init__(self, num_envs: int, n_uniform: int, n_normal: int, block: int = 32) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.num_envs = num_envs
        self.n_uniform = n_uniform
        self.n_normal = n_normal
        self.block = block
        self.generators: list[np.random.Generator] = [np.random.default_rng(0) for _ in range(num_envs)]
        self._uniform = np.zeros((num_envs, block, n_uniform))
        self._normal = np.zeros((num_envs, block, n_normal))
        self._ptr = np.full(num_envs, block, dtype=np.int64)  # == block means "refill before use"
        self._rows = np.arange(num_envs)
        self._slot_views: list[tuple[np.ndarray, np.ndarray]] | None = None  # N = 1: each slot's rows, as views

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_slot_views"] = None  # views, which pickling would copy apart from the blocks: made again on use
        return state

    def seed(self, env_ids: np.ndarray, seeds: list[int | None]) -> None:
        """Re-seed the given environments (``None`` draws fresh OS entropy) and discard their blocks."""
        for i, s in zip(env_ids.tolist(), seeds, strict=True):
            self.generators[i] = np.random.default_rng(s)
        self._ptr[env_ids] = self.block

    def discard(self, env_ids: np.ndarray) -> None:
        """Drop the unused rest of these environments' blocks (called on reset without a seed)."""
        self._ptr[env_ids] = self.block

    def spawn_generator(self, env_id: int) -> np.random.Generator:
        """A child generator for one-off draws at reset (device drops, initial channels)."""
        return self.generators[env_id].spawn(1)[0]

    def take(self, rows: np.ndarray) -> BlockRNG:
        """A new ``BlockRNG`` whose environment ``j`` continues environment ``rows[j]``'s stream exactly (its
        generator state and the unread rest of its block are copied; rows may repeat). ``self`` is unchanged."""
        import copy

        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        if rows.size == 0 or rows.min() < 0 or rows.max() >= self.num_envs:
            raise ValueError(f"rows must be a non-empty list of indices in [0, {self.num_envs - 1}], "
                             f"got {rows.tolist()}")
        new = BlockRNG(int(rows.size), self.n_uniform, self.n_normal, self.block)
        new.generators = [copy.deepcopy(self.generators[i]) for i in rows.tolist()]
        new._uniform[:] = self._uniform[rows]
        new._normal[:] = self._normal[rows]
        new._ptr[:] = self._ptr[rows]
        return new

    def discarded(self, env_ids: np.ndarray) -> bool:
        """Whether every one of these environments has no block left (just seeded or reset): its next slot draws
        a fresh block."""
        return bool((self._ptr[env_ids] == self.block).all())

    def rewind(self, env_ids: np.ndarray) -> None:
        """Make these environments read their current block again from its first slot. For environments that
        drew a fresh block and used one slot of it: the next slot then reads what it would have drawn itself (the
        generator already stands past that block), the same draws."""
        if (self._ptr[env_ids] != 1).any():
            raise ValueError("rewind() takes environments that used exactly one slot of a fresh block")
        self._ptr[env_ids] = 0

    def refill(self) -> None:
        """Draw new blocks for the environments whose block ran out (pointer at ``block``) and point them at its
        first slot; the rest is untouched. :meth:`next` does this first; the fused slot calls it and then reads
        and advances the pointers itself (``kernels.slot_physics``)."""
        if self.num_envs == 1:
            if self._ptr.item(0) >= self.block:
                self._refill_env(0)
            return
        for i in np.flatnonzero(self._ptr >= self.block).tolist():
            self._refill_env(i)

    def refill_rows(self, lo: int, hi: int) -> None:
        """:meth:`refill` of environments ``[lo, hi)`` only (a shard of a threaded core)."""
        for i in (np.flatnonzero(self._ptr[lo:hi] >= self.block) + lo).tolist():
            self._refill_env(i)

    def _refill_env(self, i: int) -> None:
        g = self.generators[i]
        g.random(out=self._uniform[i])
        g.standard_normal(out=self._normal[i])
        self._ptr[i] = 0

    def current(self) -> tuple[np.ndarray, np.ndarray]:
        """This slot's draws, as :meth:`next` returns them, without advancing (refilling first where needed)."""
        self.refill()
        if self.num_envs == 1:
            p = self._ptr.item(0)
            return self._uniform[:, p], self._normal[:, p]
        return self._uniform[self._rows, self._ptr], self._normal[self._rows, self._ptr]

    def next(self) -> tuple[np.ndarray, np.ndarray]:
        """Return this slot's (uniform (N, n_uniform), normal (N, n_normal)) draws and advance."""
        if self.num_envs == 1:  # the single env's path: no index arrays, views made once, the same draws
            p = self._ptr.item(0)
            if p >= self.block:
                self._refill_env(0)
                p = 0
            self._ptr[0] = p + 1
            if self._slot_views is None:
                self._slot_views = [(self._uniform[:, q], self._normal[:, q]) for q in range(self.block)]
            return self._slot_views[p]
        self.refill()
        ptr = self._ptr
        u = self._uniform[self._rows, ptr]
        z = self._normal[self._rows, ptr]
        ptr += 1  # in place: the fused slot holds this array (``VMIMOCore._bind_slot``)
        return u, z
