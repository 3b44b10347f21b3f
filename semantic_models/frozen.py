"""The shipped, frozen student: integrity-checked loading and the numpy hot path the environment calls.

``load_frozen_student`` reads ``student.json`` (metadata) and ``student.pt`` (weights), checks the checkpoint's size
and SHA-256 against the metadata *before* unpickling anything, loads with ``torch.load(weights_only=True)``,
freezes the module (eval, no grad) and exports the weights to contiguous float32 numpy arrays.

Why numpy on the hot path: the environment classifies a batch of 0…~2000 scenes per step, and for small batches
torch's per-op dispatch costs more than the arithmetic. The numpy forward is arranged for few calls:

* the beyond-prefix mask is one row gather (``np.take`` of a 65 x 64 0/1 table by prefix length) and a multiply,
  which also makes a modality with prefix 0 exactly absent whatever values sit in its slots;
* the present bit and ``prefix / 64`` inputs of each modality's embedding only take 65 possible values, so their
  contribution plus the bias is a precomputed table of ``M * 65`` rows gathered by ``np.take`` (faster than
  two-array fancy indexing) instead of a matmul;
* the per-modality embeddings are one stacked ``matmul`` over a ``(M, n, 64)`` view (no copy of the latents);
* large batches pin OpenBLAS to the calling thread for the call (``blas.py``: waking its workers between the
  head's short products costs more than it saves on a shared machine).
"""

from __future__ import annotations

import hashlib
import json
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

from .blas import set_local_threads
from .spec import INPUT_DIMS, LATENT_DIM, MODALITIES, PREFIX_LENGTHS
from .student import SEGMENTS

ASSETS = Path(__file__).resolve().parent / "assets"
DEFAULT_CHECKPOINT = ASSETS / "student.pt"

# row p: 1.0 for the first p values; rows cover every legal prefix length 0..64
_PREFIX_MASK = (np.arange(LATENT_DIM)[None, :] < np.arange(LATENT_DIM + 1)[:, None]).astype(np.float32)


# below this batch OpenBLAS runs the head's products on one thread anyway, so the thread switch is skipped
_BLAS_SPLIT_BATCH = 24


class CheckpointError(RuntimeError):
    """The shipped checkpoint is missing, truncated or does not match its recorded SHA-256."""


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _resolve(path: str | Path | None) -> tuple[Path, Path]:
    """(checkpoint, metadata) paths from a checkpoint file, a directory holding ``student.pt``, or None."""
    if path is None:
        ckpt = DEFAULT_CHECKPOINT
    else:
        p = Path(path)
        ckpt = p / "student.pt" if p.is_dir() else p
    return ckpt, ckpt.with_suffix(".json")


def verify_checkpoint(ckpt: Path, meta: dict) -> None:
    """Raise :class:`CheckpointError` naming the file and the expected hash if the bytes are not the recorded ones."""
    expected = meta.get("sha256")
    if not expected:
        raise CheckpointError(f"metadata for {ckpt} has no 'sha256' entry; refusing to load an unverified checkpoint")
    if not ckpt.is_file():
        raise CheckpointError(f"checkpoint file {ckpt} is missing (expected SHA-256 {expected}); "
                              "rebuild it with `python -m semantic_models.build`")
    size, want_size = ckpt.stat().st_size, meta.get("size_bytes")
    if want_size is not None and size < want_size:
        raise CheckpointError(f"checkpoint file {ckpt} is truncated: {size} of {want_size} bytes "
                              f"(expected SHA-256 {expected})")
    got = sha256_file(ckpt)
    if got != expected:
        raise CheckpointError(f"checkpoint file {ckpt} does not match its metadata: SHA-256 {got}, "
                              f"expected {expected} (tampered, truncated or replaced; rebuild or restore it)")


class FrozenStudent:
    """Frozen student with a numpy forward (see the module docstring) and the torch module beside it."""

    def __init__(self, module: Any, metadata: dict) -> None:
        import torch  # local: keeps `import semantic_models` light

        module.eval()
        for p in module.parameters():
            p.requires_grad_(False)
        self.torch_module = module
        self.metadata = metadata
        self.modalities: tuple[str, ...] = MODALITIES
        self.input_dims: dict[str, int] = dict(INPUT_DIMS)
        self.latent_dim: int = LATENT_DIM
        self.prefix_lengths: tuple[int, ...] = PREFIX_LENGTHS
        self.num_classes: int = int(metadata["num_classes"])
        self.encoder_mflops: tuple[float, ...] = tuple(float(v) for v in metadata["encoder_mflops"])
        self.accuracy_table: dict = metadata.get("accuracy_table", {})

        def f32(t: torch.Tensor) -> np.ndarray:
            return np.ascontiguousarray(t.detach().cpu().numpy(), dtype=np.float32)

        # encoders: weights transposed to (in, out) so the forward is x @ W + b
        self._enc = []
        for enc in module.encoders:
            blocks = [(f32(b.weight.T), f32(b.bias)) for b in enc.blocks]
            self._enc.append((f32(enc.inp.weight.T), f32(enc.inp.bias), blocks, f32(enc.out.weight.T),
                              f32(enc.out.bias)))
        head = module.head
        ew = f32(head.embed_w)  # (M, 66, e)
        self._embed_w = np.ascontiguousarray(ew[:, :LATENT_DIM, :])  # (M, 64, e)
        p = np.arange(LATENT_DIM + 1, dtype=np.float32)
        # (M, 65, e): bias + present-bit weight * (p > 0) + prefix weight * p / 64, for every legal prefix p
        table = (f32(head.embed_b)[:, None, :] + (p > 0)[None, :, None] * ew[:, None, LATENT_DIM, :]
                 + (p / LATENT_DIM)[None, :, None] * ew[:, None, LATENT_DIM + 1, :])
        self._embed_table = np.ascontiguousarray(table.reshape(-1, table.shape[-1]), dtype=np.float32)
        self._fuse_w, self._fuse_b = f32(head.fuse.weight.T), f32(head.fuse.bias)
        self._blk = [(f32(b.weight.T), f32(b.bias)) for b in head.blocks]
        self._out_w, self._out_b = f32(head.out.weight.T), f32(head.out.bias)
        self._table_offset = (np.arange(len(MODALITIES)) * (LATENT_DIM + 1))[:, None]  # (M, 1) row offsets
        self._segments = SEGMENTS

    # ------------------------------------------------------------------ device side
    def encode(self, modality_index: int, x: np.ndarray) -> np.ndarray:
        """Clean nested latent of one modality: float (n, d_m) → float32 (n, 64), unit mean square per segment."""
        w_in, b_in, blocks, w_out, b_out = self._enc[modality_index]
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != w_in.shape[0]:
            raise ValueError(f"{self.modalities[modality_index]} features must be (n, {w_in.shape[0]}), "
                             f"got {x.shape}")
        h = np.maximum(x @ w_in + b_in, 0.0)
        for w, b in blocks:
            h = h + np.maximum(h @ w + b, 0.0)
        z = h @ w_out + b_out
        out = np.empty_like(z)
        for a, b in pairwise(self._segments):
            s = z[:, a:b]
            out[:, a:b] = s / np.sqrt((s * s).mean(1, keepdims=True) + 1e-6)
        return out

    # ------------------------------------------------------------------ BS side (hot path)
    def classify(self, latents: np.ndarray, prefix_len: np.ndarray) -> np.ndarray:
        """Logits float32 (n, C) from received latents (n, M, 64) and prefix lengths int (n, M) in 0..64.

        Values at or beyond a modality's prefix are ignored (masked), so prefix 0 means absent whatever the
        latent slots hold. ``n == 0`` returns an empty (0, C) array.
        """
        n = latents.shape[0]
        if n == 0:
            return np.zeros((0, self.num_classes), dtype=np.float32)
        latents = np.asarray(latents, dtype=np.float32)  # no copy for the float32 the environment passes
        if n < _BLAS_SPLIT_BATCH or set_local_threads is None:
            return self._classify(latents, prefix_len, n)
        old = set_local_threads(1)  # scoped to this thread and call; see blas.py for why
        try:
            return self._classify(latents, prefix_len, n)
        finally:
            set_local_threads(old)

    def _classify(self, latents: np.ndarray, prefix_len: np.ndarray, n: int) -> np.ndarray:
        x = latents * np.take(_PREFIX_MASK, prefix_len, axis=0)  # (n, M, 64), zero beyond each prefix
        z = np.matmul(x.transpose(1, 0, 2), self._embed_w)  # (M, n, e): one BLAS call per modality, no copy
        z += np.take(self._embed_table, prefix_len.T + self._table_offset, axis=0)
        np.maximum(z, 0.0, out=z)
        h = z.transpose(1, 0, 2).reshape(n, -1) @ self._fuse_w
        h += self._fuse_b
        np.maximum(h, 0.0, out=h)
        for w, b in self._blk:
            r = h @ w
            r += b
            np.maximum(r, 0.0, out=r)
            h += r
        out = h @ self._out_w
        out += self._out_b
        return out

    def classify_torch(self, latents: np.ndarray, prefix_len: np.ndarray) -> np.ndarray:
        """Same as :meth:`classify` through the torch module (for comparison and benchmarks)."""
        import torch

        with torch.no_grad():
            return self.torch_module(torch.from_numpy(np.asarray(latents, dtype=np.float32)),
                                     torch.from_numpy(np.asarray(prefix_len, dtype=np.int64))).numpy()

    def __repr__(self) -> str:
        arch = self.metadata.get("architecture", {})
        return f"FrozenStudent(classes={self.num_classes}, arch={arch}, sha256={self.metadata.get('sha256', '')[:12]})"


def load_frozen_student(path: str | Path | None = None) -> FrozenStudent:
    """Load the frozen student (default: the shipped ``semantic_models/assets/student.pt``).

    ``path`` may be a checkpoint file (its metadata is the same name with ``.json``) or a directory holding
    ``student.pt`` and ``student.json``. Raises :class:`CheckpointError` for a missing, truncated or tampered
    checkpoint, naming the file and the expected SHA-256.
    """
    import torch

    from .student import Student, StudentArch

    ckpt, meta_path = _resolve(path)
    if not meta_path.is_file():
        raise CheckpointError(f"metadata file {meta_path} is missing (it records the SHA-256 of {ckpt.name}); "
                              "rebuild with `python -m semantic_models.build`")
    meta = json.loads(meta_path.read_text())
    verify_checkpoint(ckpt, meta)
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    module = Student(StudentArch.from_dict(meta["architecture"]))
    module.load_state_dict(state, strict=True)
    return FrozenStudent(module, meta)
