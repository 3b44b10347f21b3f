"""The shipped frozen student: loader integrity, freezing, the numpy hot path against torch, masking semantics."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from semantic_models import CheckpointError, load_frozen_student
from semantic_models.frozen import DEFAULT_CHECKPOINT
from semantic_models.spec import INPUT_DIMS, LATENT_DIM, MODALITIES, PREFIX_LENGTHS
from semantic_models.student import SEGMENTS, StudentArch, arch_cost

torch.set_num_threads(1)
M = len(MODALITIES)


@pytest.fixture(scope="module")
def fs():
    return load_frozen_student()


def _random_inputs(n: int, seed: int, zero_beyond: bool = True) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    prefix = rng.choice(np.array((0, *PREFIX_LENGTHS)), size=(n, M))
    lat = rng.standard_normal((n, M, LATENT_DIM)).astype(np.float32)
    if zero_beyond:
        lat *= np.arange(LATENT_DIM) < prefix[..., None]
    return lat, prefix


def test_public_attributes(fs) -> None:
    assert fs.modalities == MODALITIES
    assert fs.input_dims == INPUT_DIMS
    assert fs.latent_dim == 64 and fs.prefix_lengths == (4, 8, 16, 32, 64)
    assert fs.num_classes >= 8
    assert len(fs.encoder_mflops) == M and all(0 < f < 1 for f in fs.encoder_mflops)
    assert fs.metadata["sha256"] and fs.accuracy_table["subsets"]
    assert DEFAULT_CHECKPOINT.stat().st_size < 2_000_000


def test_frozen_has_no_trainable_parameters(fs) -> None:
    mod = fs.torch_module
    assert not mod.training
    assert all(not p.requires_grad for p in mod.parameters())
    assert sum(p.numel() for p in mod.parameters() if p.requires_grad) == 0


def test_budgets_and_recorded_costs(fs) -> None:
    meta = fs.metadata
    arch = StudentArch.from_dict(meta["architecture"])
    cost = arch_cost(arch)
    assert cost["params_total"] == sum(p.numel() for p in fs.torch_module.parameters()) == meta["params_total"]
    np.testing.assert_allclose(fs.encoder_mflops, np.array(cost["encoder_flops"]) / 1e6, rtol=1e-5)
    b = meta["budgets"]
    assert max(fs.encoder_mflops) <= b["device_mflops"]
    assert meta["head_mflops"] <= b["head_mflops"]
    assert meta["params_total"] <= b["params"]
    assert meta["teacher"]["params"] >= 4 * meta["params_total"]  # the teacher is several times larger


def test_numpy_classify_matches_torch(fs) -> None:
    for n in (1, 7, 300):
        lat, prefix = _random_inputs(n, seed=n)
        np.testing.assert_allclose(fs.classify(lat, prefix), fs.classify_torch(lat, prefix), rtol=1e-5, atol=1e-5)
    out = fs.classify(*_random_inputs(5, 0))
    assert out.dtype == np.float32 and out.shape == (5, fs.num_classes)


def test_empty_batch(fs) -> None:
    out = fs.classify(np.zeros((0, M, LATENT_DIM), np.float32), np.zeros((0, M), np.int64))
    assert out.shape == (0, fs.num_classes) and out.dtype == np.float32


def test_batch_rows_are_independent(fs) -> None:
    lat, prefix = _random_inputs(64, 3)
    full = fs.classify(lat, prefix)
    rows = np.concatenate([fs.classify(lat[i:i + 1], prefix[i:i + 1]) for i in range(64)])
    np.testing.assert_allclose(full, rows, rtol=1e-5, atol=1e-5)


def test_prefix_zero_is_absent_whatever_the_values(fs) -> None:
    lat, prefix = _random_inputs(200, 4)
    prefix[:, 1] = 0
    prefix[::3, 4] = 0
    clean = lat * (np.arange(LATENT_DIM) < prefix[..., None])
    garbage = lat.copy()
    rng = np.random.default_rng(9)
    garbage[:, 1] = 100.0 * rng.standard_normal((200, LATENT_DIM))
    garbage[::3, 4] = rng.standard_normal((len(garbage[::3]), LATENT_DIM))
    np.testing.assert_array_equal(fs.classify(clean, prefix), fs.classify(garbage, prefix))
    # and likewise values beyond a modality's prefix are never read
    noisy = lat + 5.0 * (np.arange(LATENT_DIM) >= prefix[..., None])
    np.testing.assert_array_equal(fs.classify(clean, prefix), fs.classify(noisy.astype(np.float32), prefix))


def test_encode_nested_unit_power_and_matches_torch(fs) -> None:
    from semantic_models.data import SceneGenerator

    feats, _, _ = SceneGenerator(fs.metadata["data_seed"]).sample(400, "env", seed_offset=99)
    for m, name in enumerate(MODALITIES):
        z = fs.encode(m, feats[name])
        assert z.shape == (400, LATENT_DIM) and z.dtype == np.float32
        for p in PREFIX_LENGTHS:  # every prefix: unit average power per value, per sample
            np.testing.assert_allclose((z[:, :p] ** 2).mean(1), 1.0, atol=1e-3)
        with torch.no_grad():
            ref = fs.torch_module.encode(m, torch.from_numpy(feats[name])).numpy()
        np.testing.assert_allclose(z, ref, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(fs.encode(m, feats[name].astype(np.float64)), z, atol=1e-6)
    assert SEGMENTS == (0, *PREFIX_LENGTHS)
    with pytest.raises(ValueError, match="visual"):
        fs.encode(0, np.zeros((3, 32), np.float32))


# ---------------------------------------------------------------------- loader integrity
@pytest.fixture
def copied(tmp_path: Path) -> Path:
    for name in ("student.pt", "student.json"):
        shutil.copy(DEFAULT_CHECKPOINT.with_name(name), tmp_path / name)
    return tmp_path


def test_loads_from_directory_and_file(copied: Path) -> None:
    a, b = load_frozen_student(copied), load_frozen_student(copied / "student.pt")
    lat, prefix = _random_inputs(10, 1)
    np.testing.assert_array_equal(a.classify(lat, prefix), b.classify(lat, prefix))


def test_tampered_checkpoint_raises(copied: Path) -> None:
    ckpt = copied / "student.pt"
    data = bytearray(ckpt.read_bytes())
    data[len(data) // 2] ^= 0xFF
    ckpt.write_bytes(bytes(data))
    expected = json.loads((copied / "student.json").read_text())["sha256"]
    with pytest.raises(CheckpointError) as err:
        load_frozen_student(copied)
    assert str(ckpt) in str(err.value) and expected in str(err.value)


def test_truncated_checkpoint_raises(copied: Path) -> None:
    ckpt = copied / "student.pt"
    ckpt.write_bytes(ckpt.read_bytes()[:1000])
    expected = json.loads((copied / "student.json").read_text())["sha256"]
    with pytest.raises(CheckpointError, match="truncated") as err:
        load_frozen_student(copied)
    assert str(ckpt) in str(err.value) and expected in str(err.value)


def test_missing_files_raise(copied: Path) -> None:
    (copied / "student.pt").unlink()
    with pytest.raises(CheckpointError, match="missing") as err:
        load_frozen_student(copied)
    assert "student.pt" in str(err.value)
    (copied / "student.json").unlink()
    with pytest.raises(CheckpointError, match=r"student\.json"):
        load_frozen_student(copied)


def test_metadata_without_hash_is_refused(copied: Path) -> None:
    meta_path = copied / "student.json"
    meta = json.loads(meta_path.read_text())
    del meta["sha256"]
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="sha256"):
        load_frozen_student(copied)


def test_package_import_is_light() -> None:
    import subprocess
    import sys

    code = "import sys, semantic_models; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"


# ---------------------------------------------------------------------- every bad file named with its cause
def test_corrupt_metadata_json_names_file(copied: Path) -> None:
    meta_path = copied / "student.json"
    meta_path.write_text('{"sha256": ', encoding="utf-8")
    with pytest.raises(CheckpointError, match="not valid JSON") as err:
        load_frozen_student(copied)
    assert str(meta_path) in str(err.value)


def test_metadata_that_is_not_an_object_names_file(copied: Path) -> None:
    meta_path = copied / "student.json"
    meta_path.write_text("[1, 2, 3]", encoding="utf-8")
    with pytest.raises(CheckpointError, match=r"JSON object.*got a JSON list") as err:
        load_frozen_student(copied)
    assert str(meta_path) in str(err.value)


def test_oversized_checkpoint_is_not_called_truncated(copied: Path) -> None:
    ckpt = copied / "student.pt"
    ckpt.write_bytes(ckpt.read_bytes() + b"\0" * 10)
    with pytest.raises(CheckpointError, match="10 more than") as err:
        load_frozen_student(copied)
    assert str(ckpt) in str(err.value) and "truncated" not in str(err.value)


def test_same_size_tampering_is_not_called_truncated(copied: Path) -> None:
    ckpt = copied / "student.pt"
    data = bytearray(ckpt.read_bytes())
    data[100] ^= 0xFF
    ckpt.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="does not match") as err:
        load_frozen_student(copied)
    assert "truncated" not in str(err.value)


def test_pickle_with_foreign_objects_is_refused_naming_file(copied: Path) -> None:
    # a checkpoint whose recorded hash matches but that holds a non-tensor object: torch's restricted
    # unpickler refuses it, and the error names the file without advising to lift the restriction
    import fractions

    from semantic_models.frozen import sha256_file

    ckpt, meta_path = copied / "student.pt", copied / "student.json"
    torch.save({"w": fractions.Fraction(1, 3)}, ckpt)
    meta = json.loads(meta_path.read_text())
    meta.update(sha256=sha256_file(ckpt), size_bytes=ckpt.stat().st_size)
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="objects other than tensors") as err:
        load_frozen_student(copied)
    msg = str(err.value)
    assert str(ckpt) in msg and "fractions.Fraction" in msg
    assert "weights_only" not in msg and err.value.__cause__ is None and err.value.__suppress_context__


def test_state_dict_not_fitting_the_architecture_names_file(copied: Path) -> None:
    from semantic_models.frozen import sha256_file

    ckpt, meta_path = copied / "student.pt", copied / "student.json"
    torch.save({"w": torch.zeros(3)}, ckpt)
    meta = json.loads(meta_path.read_text())
    meta.update(sha256=sha256_file(ckpt), size_bytes=ckpt.stat().st_size)
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="does not fit the architecture") as err:
        load_frozen_student(copied)
    assert str(ckpt) in str(err.value)


def test_compiled_small_batch_head_equals_the_numpy_head(fs) -> None:
    """Up to ``COMPILED_BATCH`` scenes the head runs as one compiled loop: the numpy head's logits to float32
    rounding and the same decisions; above it, the numpy head itself."""
    from semantic_models.head_kernel import COMPILED_BATCH, head_logits

    worst, agree, total = 0.0, 0, 0
    for seed in range(300):
        n = 1 + seed % COMPILED_BATCH
        lat, prefix = _random_inputs(n, seed=1000 + seed)
        got, ref = fs.classify(lat, prefix), fs.classify_numpy(lat, prefix)
        np.testing.assert_array_equal(got, head_logits(lat, prefix, *fs.head_weights))
        worst = max(worst, float(np.abs(got - ref).max() / np.abs(ref).max()))
        agree += int((got.argmax(1) == ref.argmax(1)).sum())
        total += n
    assert worst < 5e-6, worst
    assert agree == total
    lat, prefix = _random_inputs(COMPILED_BATCH + 1, seed=5)
    np.testing.assert_array_equal(fs.classify(lat, prefix), fs.classify_numpy(lat, prefix))
    np.testing.assert_allclose(fs.classify(lat[:2], prefix[:2]), fs.classify_torch(lat[:2], prefix[:2]), rtol=1e-5,
                               atol=1e-5)


def test_compiled_head_scores_each_scene_alone(fs) -> None:
    """A scene's logits do not depend on the other scenes of its call (so a single env and a vector env that run
    the compiled head on different batches give the same bits)."""
    from semantic_models.head_kernel import COMPILED_BATCH, head_logits

    lat, prefix = _random_inputs(COMPILED_BATCH, seed=11)
    batch = head_logits(lat, prefix, *fs.head_weights)
    for j in range(COMPILED_BATCH):
        np.testing.assert_array_equal(batch[j:j + 1], head_logits(lat[j:j + 1], prefix[j:j + 1], *fs.head_weights))
    np.testing.assert_array_equal(batch[::-1], head_logits(lat[::-1].copy(), prefix[::-1].copy(), *fs.head_weights))


def test_compiled_head_ignores_values_beyond_the_prefix(fs) -> None:
    lat, prefix = _random_inputs(4, 8)
    prefix[1, 2] = 0
    clean = lat * (np.arange(LATENT_DIM) < prefix[..., None])
    noisy = (lat + 7.0 * (np.arange(LATENT_DIM) >= prefix[..., None])).astype(np.float32)
    np.testing.assert_array_equal(fs.classify(clean, prefix), fs.classify(noisy, prefix))


def _one_row_per_pass_hidden():
    """The compiled head's hidden units written the plain way (embeddings, then the fusion layer one nonzero row
    per pass over the hidden units with a branch per row, then the ReLU), the same floating-point flags: the
    reference of the blocked loop's order."""
    from numba import njit

    from semantic_models.head_kernel import FASTMATH, _dot

    @njit(fastmath=FASTMATH)
    def hidden(lat, prefix, embed_t, embed_table, w_fuse, h):
        M, E = prefix.shape[0], embed_t.shape[1]
        P = embed_table.shape[0] // M
        z = np.zeros(M * E, dtype=np.float32)
        for m in range(M):
            row = embed_table[m * P + prefix[m]]
            for u in range(E):
                v = row[u] + _dot(lat[m], embed_t[m, u], prefix[m])
                z[m * E + u] = v if v > 0.0 else np.float32(0.0)
        h[:] = 0.0
        for q in range(M * E):
            if z[q] != 0.0:
                for u in range(h.shape[0]):
                    h[u] += z[q] * w_fuse[q, u]
        for u in range(h.shape[0]):
            if h[u] < 0.0:
                h[u] = 0.0

    return hidden


def test_blocked_fusion_keeps_the_order_of_the_sums(fs) -> None:
    """The fusion layer adds four nonzero rows per pass over the hidden units (``head_kernel.scene_logits``); each
    hidden unit still takes the rows one after another, so the hidden units are those of one row per pass bit for
    bit, whatever the number of nonzero embeddings (0, a multiple of four or not). Read from the head's work vector
    after the call (the embeddings, then the hidden units), so the shipped head must have no residual block."""
    from semantic_models.head_kernel import head_scratch, scene_logits

    embed_t, embed_table, w_fuse, blocks_t, out_t = fs.head_weights
    assert blocks_t.shape[0] == 0
    ref_hidden = _one_row_per_pass_hidden()
    lat, prefix = _random_inputs(200, seed=21)
    prefix[:8] = 0  # scenes with nothing received: only the embeddings' constant rows
    lat[8:16] *= 40.0  # large inputs: many embeddings nonzero
    work, nzi = head_scratch(embed_t, w_fuse)
    me, hdim = embed_t.shape[0] * embed_t.shape[1], w_fuse.shape[1]
    out, ref = np.zeros(out_t.shape[0], dtype=np.float32), np.zeros(hdim, dtype=np.float32)
    counts = set()
    for j in range(lat.shape[0]):
        scene_logits(lat[j], prefix[j], *fs.head_weights, work, nzi, out)
        ref_hidden(lat[j], prefix[j], embed_t, embed_table, w_fuse, ref)
        np.testing.assert_array_equal(work[me:me + hdim], ref)
        counts.add(int(np.count_nonzero(work[:me])) % 4)
    assert counts == {0, 1, 2, 3}  # every remainder of the four-row passes was exercised
