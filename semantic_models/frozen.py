"""The shipped, frozen student: integrity-checked loading and its numpy and compiled forward passes.

``load_frozen_student`` reads ``student.json`` (metadata) and ``student.pt`` (weights), checks the checkpoint's size
and SHA-256 against the metadata *before* unpickling anything, loads with ``torch.load(weights_only=True)``,
freezes the module (eval, no grad) and exports the weights to contiguous float32 numpy arrays.

Why not torch at run time: callers classify batches of 0…~2000 scenes at a time, and for small batches torch's
per-op dispatch costs more than the arithmetic. (The environment itself scores each closing scene alone through
the compiled loop, ``head_kernel.scene_logits``, from ``vmimo_env.scoring``.) The numpy forward of
:meth:`FrozenStudent.classify` is arranged for few calls:

* biases are folded into the weights through constant-one channels (homogeneous coordinates), so the head is
  three BLAS products and as many ReLUs (plus two per residual block);
* a handful of scenes (up to ``head_kernel.COMPILED_BATCH``, the measured crossover): one compiled loop over
  the same folded weights (``head_kernel.head_logits``, arguments ``FrozenStudent.head_weights``), the numpy
  head's logits to float32 rounding;
* small batches (< 32, per-call overhead rules): one row gather (``np.take`` of a 65 x 67 table by prefix length)
  builds each modality's input row ``[prefix mask (64), present bit, prefix / 64, 1]``, one in-place multiply
  puts the latents under the mask, and the five embeddings are one stacked ``matmul`` on a transposed view;
* large batches (memory traffic rules): the mask is gathered 64 wide and multiplied into contiguous rows, and
  the present-bit / prefix / bias inputs, which depend on the prefix length only, are a gathered table of
  ``M * 65`` precomputed embedding rows;
* either way values at or beyond a prefix are never read, so prefix 0 is exactly "absent" (tested), and large
  batches pin OpenBLAS to the calling thread for the call (``blas.py``: waking its workers between the head's
  short products costs more than it saves on a shared machine).
"""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from .blas import set_local_threads
from .head_kernel import COMPILED_BATCH, head_logits
from .spec import INPUT_DIMS, LATENT_DIM, MODALITIES, PREFIX_LENGTHS
from .student import SEGMENTS

ASSETS = Path(__file__).resolve().parent / "assets"
DEFAULT_CHECKPOINT = ASSETS / "student.pt"


def _augmented_rows() -> np.ndarray:
    """Row p (every legal prefix 0..64): ``[1.0 for the first p values, 0 beyond, p > 0, p / 64, 1]``."""
    p = np.arange(LATENT_DIM + 1)
    rows = np.zeros((LATENT_DIM + 1, LATENT_DIM + 3), np.float32)
    rows[:, :LATENT_DIM] = np.arange(LATENT_DIM)[None, :] < p[:, None]
    rows[:, LATENT_DIM] = p > 0
    rows[:, LATENT_DIM + 1] = p / LATENT_DIM
    rows[:, LATENT_DIM + 2] = 1.0
    return rows


_AUG = _augmented_rows()
_MASK = np.ascontiguousarray(_AUG[:, :LATENT_DIM])


# below this batch OpenBLAS runs the head's products on one thread anyway, so the thread switch is skipped
_BLAS_SPLIT_BATCH = 24
# below this batch the augmented-row path (fewer calls) beats the table path (fewer bytes); measured crossover
_SMALL_BATCH = 32


class CheckpointError(RuntimeError):
    """A checkpoint or its metadata cannot be used: missing, unreadable, of the wrong size, not matching its
    recorded SHA-256, holding objects other than tensors, or not fitting the recorded architecture. The message
    names the file and the cause."""


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
    if want_size is not None and size > want_size:
        raise CheckpointError(f"checkpoint file {ckpt} has {size} bytes, {size - want_size} more than the "
                              f"{want_size} its metadata records (appended to or replaced; expected SHA-256 "
                              f"{expected}); rebuild or restore it")
    got = sha256_file(ckpt)
    if got != expected:
        cause = "modified or replaced" if want_size is not None else "modified, truncated or replaced"
        raise CheckpointError(f"checkpoint file {ckpt} does not match its metadata: SHA-256 {got}, "
                              f"expected {expected} ({cause}; rebuild or restore it)")


def read_metadata(meta_path: Path) -> dict:
    """The checkpoint's metadata (a JSON object); :class:`CheckpointError` naming the file for anything else."""
    try:
        text = meta_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise CheckpointError(f"metadata file {meta_path} cannot be read: {err}") from None
    try:
        meta = json.loads(text)
    except json.JSONDecodeError as err:
        raise CheckpointError(f"metadata file {meta_path} is not valid JSON ({err.msg} at line {err.lineno}, "
                              f"column {err.colno}); rebuild with `python -m semantic_models.build`") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"metadata file {meta_path} must hold a JSON object (the checkpoint's metadata), "
                              f"got a JSON {type(meta).__name__}")
    return meta


def _unpickling_cause(err: BaseException) -> str:
    """What torch's restricted unpickler refused, without its advice to turn the restriction off."""
    for line in str(err).splitlines():
        line = line.strip()
        if "Unsupported global" in line or "Unsupported operand" in line:
            cause = line.split("error:", 1)[-1].strip()
            return cause.split(" was not ")[0].split(". ")[0]
    return type(err).__name__


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
        self._export_head(module.head, f32)
        self._segments = SEGMENTS
        self._seg_len = np.diff(np.asarray(SEGMENTS))
        self._seg_len_f = self._seg_len.astype(np.float32)

    def _export_head(self, head: Any, f32: Any) -> None:
        """Fold the head into few, bias-free products (see the module docstring).

        Layout: every modality's input row is ``[latent (64), present bit, prefix / 64, 1]`` (67 values; the
        gathered table ``_AUG`` supplies the mask and the last three). Its embedding weights gain one output
        channel that is a constant 1 for modality 0 (0 for the others), which survives the ReLU and carries the
        fusion bias; the fusion layer gains one output unit fed only by that channel, a constant 1 again, which
        carries the biases of the residual blocks and of the output layer.
        """
        M, L = len(MODALITIES), LATENT_DIM
        ew, eb = f32(head.embed_w), f32(head.embed_b)  # (M, 66, e), (M, e)
        e = ew.shape[2]
        w_emb = np.zeros((M, L + 3, e + 1), np.float32)
        w_emb[:, :L + 2, :e] = ew
        w_emb[:, L + 2, :e] = eb
        w_emb[0, L + 2, e] = 1.0
        fw, fb = f32(head.fuse.weight.T).reshape(M, e, -1), f32(head.fuse.bias)  # (M, e, H)
        H = fw.shape[2]
        w_fuse = np.zeros((M, e + 1, H + 1), np.float32)
        w_fuse[:, :e, :H] = fw
        w_fuse[0, e, :H] = fb
        w_fuse[0, e, H] = 1.0
        self._embed_w = w_emb  # small batches: the augmented rows go through these directly
        # large batches: the latent part as a product over contiguous (n, M, 64) rows, and the three extra inputs
        # (which depend on the prefix length only) as a table of M * 65 rows gathered by prefix length
        self._embed_lat = np.ascontiguousarray(w_emb[:, :L, :])
        table = np.einsum("pk,mke->mpe", _AUG[:, L:], w_emb[:, L:, :])  # (M, 65, e + 1)
        self._embed_table = np.ascontiguousarray(table.reshape(M * (L + 1), e + 1), dtype=np.float32)
        self._table_offset = (np.arange(M) * (L + 1))[:, None]  # (M, 1) first row of each modality
        self._fuse_w = np.ascontiguousarray(w_fuse.reshape(M * (e + 1), H + 1))
        self._blk = []
        for blk in head.blocks:
            w = np.zeros((H + 1, H + 1), np.float32)
            w[:H, :H] = f32(blk.weight.T)
            w[H, :H] = f32(blk.bias)  # the constant unit's own column stays 0: relu(0) adds nothing to it
            self._blk.append(w)
        w_out = np.zeros((H + 1, self.num_classes), np.float32)
        w_out[:H] = f32(head.out.weight.T)
        w_out[H] = f32(head.out.bias)
        self._out_w = w_out
        # the compiled head's layout (``head_kernel.head_logits``): the latent embedding, the blocks and the output
        # layer transposed (output unit first) for its dot products
        self._embed_t = np.ascontiguousarray(self._embed_lat.transpose(0, 2, 1))
        blk = np.stack(self._blk) if self._blk else np.zeros((0, H + 1, H + 1), np.float32)
        self._blk_t = np.ascontiguousarray(blk.transpose(0, 2, 1))
        self._out_t = np.ascontiguousarray(w_out.T)
        # the compiled head's weight arguments after (latents, prefix_len), in its order
        self.head_weights: tuple[np.ndarray, ...] = (self._embed_t, self._embed_table, self._fuse_w, self._blk_t,
                                                      self._out_t)

    # ------------------------------------------------------------------ device side
    def encode(self, modality_index: int, x: np.ndarray) -> np.ndarray:
        """Clean nested latent of one modality: float (n, d_m) → float32 (n, 64), unit mean square per segment."""
        w_in, b_in, blocks, w_out, b_out = self._enc[modality_index]
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != w_in.shape[0]:
            raise ValueError(f"{self.modalities[modality_index]} features must be (n, {w_in.shape[0]}), "
                             f"got {x.shape}")
        old = set_local_threads(1) if set_local_threads is not None and x.shape[0] >= _BLAS_SPLIT_BATCH else None
        try:
            h = x @ w_in
            h += b_in
            np.maximum(h, 0.0, out=h)
            for w, b in blocks:
                r = h @ w
                r += b
                h += np.maximum(r, 0.0, out=r)
            z = h @ w_out
            z += b_out
        finally:
            if old is not None:
                set_local_threads(old)
        # per-segment mean square (segments are the prefix increments), then one broadcast scale
        ms = np.add.reduceat(z * z, self._segments[:-1], axis=1) / self._seg_len_f
        return z * np.repeat(1.0 / np.sqrt(ms + np.float32(1e-6)), self._seg_len, axis=1)

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
        if n <= COMPILED_BATCH:  # few scenes: one compiled loop (equal to float32 rounding)
            return head_logits(latents, np.asarray(prefix_len, dtype=np.int64), *self.head_weights)
        return self.classify_numpy(latents, prefix_len)

    def classify_numpy(self, latents: np.ndarray, prefix_len: np.ndarray) -> np.ndarray:
        """:meth:`classify` by numpy products at any batch size (the reference of the compiled small-batch
        head, ``semantic_models.head_kernel``)."""
        n = latents.shape[0]
        if n == 0:
            return np.zeros((0, self.num_classes), dtype=np.float32)
        latents = np.asarray(latents, dtype=np.float32)
        if n < _BLAS_SPLIT_BATCH or set_local_threads is None:
            return self._classify(latents, prefix_len, n)
        old = set_local_threads(1)  # scoped to this thread and call; see blas.py for why
        try:
            return self._classify(latents, prefix_len, n)
        finally:
            set_local_threads(old)

    def _classify(self, latents: np.ndarray, prefix_len: np.ndarray, n: int) -> np.ndarray:
        if n < _SMALL_BATCH:
            # fewest calls: gather the augmented rows [mask, present, prefix / 64, 1], put the latents under the
            # mask in place, one stacked product
            x = np.take(_AUG, prefix_len, axis=0)  # (n, M, 67)
            x[..., :LATENT_DIM] *= latents  # zero at and beyond each prefix, whatever the input holds there
            z = np.matmul(x.transpose(1, 0, 2), self._embed_w)  # (M, n, e + 1): one BLAS call per modality
        else:
            # fewest bytes: contiguous 64-wide rows for the product, the prefix-only inputs as a table gather
            x = latents * np.take(_MASK, prefix_len, axis=0)  # zero at and beyond each prefix
            z = np.matmul(x.transpose(1, 0, 2), self._embed_lat)
            z += np.take(self._embed_table, prefix_len.T + self._table_offset, axis=0)
        np.maximum(z, 0.0, out=z)
        h = z.transpose(1, 0, 2).reshape(n, -1) @ self._fuse_w  # (n, H + 1), last unit == 1
        np.maximum(h, 0.0, out=h)
        for w in self._blk:
            r = h @ w
            np.maximum(r, 0.0, out=r)
            h += r
        return h @ self._out_w

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
    meta = read_metadata(meta_path)
    verify_checkpoint(ckpt, meta)
    try:
        state = torch.load(ckpt, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        # the file matches its recorded hash, but holds more than tensors: refused, never unpickled in full
        raise CheckpointError(f"checkpoint file {ckpt} holds objects other than tensors "
                              f"({_unpickling_cause(err)}); only plain state dicts are loaded, so arbitrary code "
                              "in a checkpoint never runs. Rebuild it with `python -m semantic_models.build`") from None
    except (RuntimeError, EOFError, OSError) as err:
        raise CheckpointError(f"checkpoint file {ckpt} is not a readable torch checkpoint "
                              f"({type(err).__name__}: {str(err).splitlines()[0][:200]})") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint file {ckpt} must hold a state dict, got {type(state).__name__}")
    try:
        module = Student(StudentArch.from_dict(meta["architecture"]))
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"metadata file {meta_path} has no usable 'architecture' entry "
                              f"({type(err).__name__}: {err})") from None
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise CheckpointError(f"checkpoint file {ckpt} does not fit the architecture in {meta_path.name}: "
                              f"{str(err)[:300]}") from None
    return FrozenStudent(module, meta)
