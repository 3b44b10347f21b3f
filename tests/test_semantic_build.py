"""The rebuild pipeline end to end (--quick), and its parts: NSGA-II, the weight-sharing supernet, separate coding."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from semantic_models.build import main
from semantic_models.digital import digital_receive, quantize, supported_bits
from semantic_models.frozen import ASSETS, load_frozen_student, sha256_file
from semantic_models.nas import Candidate, non_dominated_sort, pareto_front
from semantic_models.space import Budgets, SearchSpace
from semantic_models.spec import LATENT_DIM, MODALITIES
from semantic_models.student import StudentArch, arch_cost
from semantic_models.supernet import Supernet

torch.set_num_threads(1)
M = len(MODALITIES)


@pytest.fixture(scope="module")
def quick_build(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    out = tmp_path_factory.mktemp("quick")
    t0 = time.perf_counter()
    assert main(["--quick", "--out", str(out), "--no-progress"]) == 0
    return out, time.perf_counter() - t0


def test_quick_build_end_to_end(quick_build: tuple[Path, float]) -> None:
    out, seconds = quick_build
    assert seconds < 60
    meta = json.loads((out / "student.json").read_text())
    assert meta["sha256"] == sha256_file(out / "student.pt")
    fs = load_frozen_student(out)
    lat = np.zeros((3, M, LATENT_DIM), np.float32)
    assert fs.classify(lat, np.full((3, M), 64)).shape == (3, fs.num_classes)
    for key in ("teacher", "distillation", "accuracy_table", "joint_vs_separate", "search", "build", "generator"):
        assert key in meta
    assert meta["build"]["quick"] is True
    assert not (ASSETS / "student.pt").samefile(out / "student.pt")


def test_quick_build_search_log(quick_build: tuple[Path, float]) -> None:
    out, _ = quick_build
    log = json.loads((out / "nas_log.json").read_text())
    cands = log["candidates"]
    assert len(cands) >= log["config"]["population"]
    for c in cands:
        assert {"arch", "accuracy", "device_mflops_total", "params", "feasible"} <= set(c)
    feasible = [c for c in cands if c["feasible"]]
    best = max(c["accuracy"] for c in feasible)
    assert log["chosen"]["feasible"] and log["chosen"]["accuracy"] == best
    front = [c for c in feasible if c["arch"] in log["pareto_front"]]
    assert front
    for f in front:  # nothing feasible is both more accurate and cheaper
        assert not any(c["accuracy"] > f["accuracy"] and c["device_mflops_total"] < f["device_mflops_total"]
                       for c in feasible)


def test_shipped_search_log_and_choice() -> None:
    log = json.loads((ASSETS / "nas_log.json").read_text())
    meta = json.loads((ASSETS / "student.json").read_text())
    assert (ASSETS / "nas_log.json").stat().st_size < 200_000
    assert log["chosen"]["arch"] == meta["architecture_key"]
    assert len(log["candidates"]) >= 100 and log["search_space_size"] > 1e6
    assert sum(not c["feasible"] for c in log["candidates"]) > 0 or log["budgets"]  # budgets were in play
    assert log["chosen"]["accuracy"] == max(c["accuracy"] for c in log["candidates"] if c["feasible"])


# ---------------------------------------------------------------------- NSGA-II pieces
def _cand(acc: float, flops: float, violation: float = 0.0) -> Candidate:
    arch = SearchSpace().smallest(10)
    return Candidate((0,), arch, acc, {"device_flops_total": flops}, violation, 0)


def test_non_dominated_sort_and_constraints() -> None:
    pop = [_cand(0.9, 10), _cand(0.8, 5), _cand(0.7, 20), _cand(0.95, 1, violation=0.5), _cand(0.6, 30, 0.1)]
    fronts = non_dominated_sort(pop)
    assert sorted(fronts[0]) == [0, 1]  # feasible and non-dominated
    assert fronts[1] == [2]  # dominated by 0
    assert fronts[2] == [4] and fronts[3] == [3]  # infeasible last, smaller violation first
    assert [c.accuracy for c in pareto_front(pop)] == [0.8, 0.9]


def test_budgets_bind_the_search_space() -> None:
    space, budgets = SearchSpace(), Budgets()
    assert not budgets.feasible(space.largest(10)) and budgets.feasible(space.smallest(10))
    arch = StudentArch((64,) * 5, (1,) * 5, 16, 96, 0)
    cost = arch_cost(arch)
    assert cost["encoder_flops"][0] == 2 * (128 * 64 + 64 * 64 + 64 * 64) + 2 * 64 * 2 + 64 + 64 + 3 * 64


def test_supernet_subnet_equals_extracted_student() -> None:
    """Weight sharing is real: a sub-network's slice of the supernet computes exactly the standalone student."""
    torch.manual_seed(0)
    net = Supernet(SearchSpace(), 10).eval()
    rng = np.random.default_rng(0)
    arch = StudentArch((48, 16, 128, 32, 96), (2, 0, 1, 1, 0), 24, 96, 1)
    xs = [torch.randn(20, d) for d in (128, 32, 32, 64, 64)]
    prefix = torch.from_numpy(rng.choice([0, 4, 16, 64], size=(20, M)))
    with torch.no_grad():
        lat = net.encode_all(xs, arch)
        ref = net.classify(lat, prefix, arch)
        st = net.extract(arch)
        torch.testing.assert_close(st.encode_all(xs), lat)
        torch.testing.assert_close(st.classify(lat, prefix), ref)


# ---------------------------------------------------------------------- separate coding
def test_quantizer_levels_and_error() -> None:
    x = np.random.default_rng(0).standard_normal(200_000).astype(np.float32)
    prev = np.inf
    for b in (1, 2, 4, 8):
        q = quantize(x, b)
        assert len(np.unique(q)) <= 2 ** b
        mse = float(((q - x) ** 2).mean())
        assert mse < prev
        prev = mse
    assert prev < 1e-3


def test_digital_cliff() -> None:
    # 2 bits per real value need 4 bits per complex use: SNR >= 2**4 - 1 = 15 (11.76 dB)
    assert supported_bits(11.7) == 1 and supported_bits(11.8) == 2 and supported_bits(-5.0) == 0
    lat = np.random.default_rng(1).standard_normal((4, M, LATENT_DIM)).astype(np.float32)
    plen = np.full((4, M), 16)
    rx, eff = digital_receive(lat, plen, 11.7, bits=2)
    assert (eff == 0).all() and (rx == 0).all()  # below the cliff the block is lost
    rx, eff = digital_receive(lat, plen, 11.8, bits=2)
    assert (eff == 16).all() and (rx[..., 16:] == 0).all()
    np.testing.assert_array_equal(rx[..., :16], quantize(lat[..., :16], 2))
    _, eff = digital_receive(lat, plen, np.array([[-5.0] * M, [5.0] * M, [12.0] * M, [30.0] * M]), "adaptive")
    assert (eff[0] == 0).all() and (eff[1:] == 16).all()
