"""The shipped student is a good, well-behaved model: above chance, monotone in SNR and prefix, fusion pays off,
and the recorded distillation comparison and accuracy table are consistent with the model."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest

from semantic_models import load_frozen_student
from semantic_models.channel import analog_channel_np
from semantic_models.data import SceneGenerator
from semantic_models.evaluate import accuracy_table, lookup, subset_name
from semantic_models.spec import LATENT_DIM, MODALITIES, PREFIX_LENGTHS

M = len(MODALITIES)
N_TEST = 3000


@pytest.fixture(scope="module")
def setup():
    fs = load_frozen_student()
    feats, labels, _ = SceneGenerator(fs.metadata["data_seed"]).sample(N_TEST, "test", seed_offset=5)
    lat = np.stack([fs.encode(m, feats[name]) for m, name in enumerate(MODALITIES)], axis=1)
    return fs, lat, labels


def _acc(fs, lat, labels, snr_db, prefix, present=None, seed=0) -> float:
    """Accuracy with one SNR and prefix for the present modalities (the same noise draw for every call)."""
    n = lat.shape[0]
    present = np.ones(M, bool) if present is None else present
    plen = np.where(present, prefix, 0)[None, :].repeat(n, 0) if np.ndim(prefix) == 0 else prefix * present
    rx = analog_channel_np(lat, plen, snr_db, np.random.default_rng(seed))
    return float((fs.classify(rx, plen).argmax(1) == labels).mean())


def test_far_above_chance(setup) -> None:
    fs, lat, y = setup
    chance = 1.0 / fs.num_classes
    assert _acc(fs, lat, y, 20.0, 64) > 0.85
    assert _acc(fs, lat, y, -10.0, 4) > 3 * chance


def test_accuracy_rises_with_snr(setup) -> None:
    fs, lat, y = setup
    accs = [_acc(fs, lat, y, s, 64) for s in (-10.0, 0.0, 10.0, 20.0)]
    assert all(b >= a for a, b in pairwise(accs)), accs
    assert accs[-1] - accs[0] > 0.1, accs
    # the scheduler's situation: random prefixes and modalities missing; strictly increasing here
    rng = np.random.default_rng(1)
    prefix = np.asarray(PREFIX_LENGTHS)[rng.integers(0, 5, (len(y), M))] * (rng.random((len(y), M)) < 0.6)
    mixed = [_acc(fs, lat, y, s, prefix) for s in (-10.0, 0.0, 10.0, 20.0)]
    assert all(b > a for a, b in pairwise(mixed)), mixed


def test_accuracy_rises_with_prefix_length(setup) -> None:
    fs, lat, y = setup
    for snr in (0.0, 10.0):
        accs = [_acc(fs, lat, y, snr, p) for p in PREFIX_LENGTHS]
        assert all(b >= a - 0.002 for a, b in pairwise(accs)), (snr, accs)
        assert accs[-1] - accs[0] > 0.02, (snr, accs)


def test_all_modalities_beat_every_single_one(setup) -> None:
    fs, lat, y = setup
    for snr in (0.0, 20.0):
        full = _acc(fs, lat, y, snr, 64)
        for m in range(M):
            present = np.zeros(M, bool)
            present[m] = True
            single = _acc(fs, lat, y, snr, 64, present)
            assert full > single + 0.3, (snr, MODALITIES[m], full, single)


def test_more_modalities_help(setup) -> None:
    """Dropping any one modality from the full set costs accuracy (every modality carries information)."""
    fs, lat, y = setup
    full = _acc(fs, lat, y, 10.0, 64)
    for m in range(M):
        present = np.ones(M, bool)
        present[m] = False
        assert _acc(fs, lat, y, 10.0, 64, present) < full, MODALITIES[m]


def test_recorded_table_is_reproducible(setup) -> None:
    """A few cells of the shipped table recomputed from the shipped model with the recorded seed."""
    fs, _, _ = setup
    table = fs.accuracy_table
    meta = fs.metadata
    n = table["n_test"]
    feats, labels, _ = SceneGenerator(meta["data_seed"]).sample(n, "test")
    lat = np.stack([fs.encode(m, feats[name]) for m, name in enumerate(MODALITIES)], axis=1)
    subsets = [(0,), (1, 3), tuple(range(M))]
    again = accuracy_table(fs.classify, lat, labels, tuple(table["snr_db"]), seed=table["noise_seed"],
                           subsets=subsets, prefixes=(16, 64))
    for s in subsets:
        for p in (16, 64):
            for snr in table["snr_db"][::3]:
                assert lookup(again, subset_name(s), p, snr) == pytest.approx(
                    lookup(table, subset_name(s), p, snr), abs=1e-3)
    acc = np.asarray(table["accuracy"])
    assert acc.shape == (2 ** M - 1, len(PREFIX_LENGTHS), len(table["snr_db"]))
    assert ((acc >= 0) & (acc <= 1)).all()


def test_distillation_comparison_recorded_and_consistent(setup) -> None:
    fs, _, _ = setup
    kd = fs.metadata["distillation"]
    for key in ("distilled_acc", "scratch_acc", "distilled_minus_scratch", "standard_error", "n_paired",
                "distilled_beats_scratch", "significant"):
        assert key in kd
    assert kd["distilled_minus_scratch"] == pytest.approx(kd["distilled_acc"] - kd["scratch_acc"], abs=2e-4)
    assert kd["distilled_beats_scratch"] == (kd["distilled_minus_scratch"] > 0)
    assert kd["significant"] == (abs(kd["distilled_minus_scratch"]) > 2 * kd["standard_error"])
    assert kd["n_paired"] >= 5000 and 0 < kd["standard_error"] < 0.02
    assert len(kd["distilled_val_history"]) == len(kd["scratch_val_history"]) == kd["config"]["epochs"]
    assert kd["config"]["temperature"] >= 1 and kd["config"]["hard_weight"] < 0.5


def test_joint_beats_separate_at_low_snr(setup) -> None:
    """The recorded comparison: analog joint coding wins below the digital cliff, and no scheme is far ahead above."""
    fs, _, _ = setup
    comp = fs.metadata["joint_vs_separate"]
    snr = np.asarray(comp["snr_db"])
    for p, analog in comp["analog"].items():
        analog = np.asarray(analog)
        for rows in comp["digital"].values():
            digital = np.asarray(rows[p])
            low = snr <= 0.0
            assert (analog[low] > digital[low] + 0.2).all()
            assert (digital <= analog + 0.02).all()
    assert LATENT_DIM == 64
