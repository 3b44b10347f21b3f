"""Neural aligner: hard per-sample power, pruning knob and FLOPs, accuracy close to the linear aligner."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from semantic_models.alignment import (
    aligner_flops,
    fit_linear_aligner,
    fit_linear_classifier,
    fit_neural_aligner,
    neural_flops,
    rayleigh_channel,
)
from semantic_models.alignment.synthetic import linear_latent_pair

torch.set_num_threads(1)

PAIR = linear_latent_pair(n_train=2000, n_test=1000, d_tx=16, d_rx=16, seed=0)
H4 = rayleigh_channel(4, 4, np.random.default_rng(5))


@pytest.fixture(scope="module")
def trained():
    return fit_neural_aligner(PAIR.x_train, PAIR.y_train, H4, snr_db=30.0, power=2.0, epochs=20, seed=0)


def test_per_sample_power_exactly_at_budget(trained) -> None:
    s = trained.encode(PAIR.x_test)
    assert s.shape == (4, 1000) and np.iscomplexobj(s)
    np.testing.assert_allclose(np.sum(np.abs(s) ** 2, axis=0), 2.0, rtol=1e-12)
    # The torch forward used in training already normalises (float32 accuracy).
    with torch.no_grad():
        st = trained.net.precode(torch.as_tensor(PAIR.x_test, dtype=torch.float32))
    np.testing.assert_allclose(st.pow(2).sum(1).numpy(), 2.0, rtol=1e-5)


def test_high_snr_accuracy_close_to_linear(trained) -> None:
    clf = fit_linear_classifier(PAIR.y_train, PAIR.labels_train)
    rng = np.random.default_rng(1)
    acc_nn = clf.accuracy(trained.simulate(PAIR.x_test, rng), PAIR.labels_test)
    lin = fit_linear_aligner(PAIR.x_train, PAIR.y_train, H4, snr_db=30.0, power=2.0, representation="real")
    acc_lin = clf.accuracy(lin.simulate(PAIR.x_test, rng), PAIR.labels_test)
    assert acc_nn > acc_lin - 0.05, (acc_nn, acc_lin)
    assert trained.train_loss[-1] < trained.train_loss[0]


def test_pruning_reaches_sparsity_and_cuts_flops(trained) -> None:
    pruned = fit_neural_aligner(PAIR.x_train, PAIR.y_train, H4, snr_db=30.0, power=2.0, epochs=5,
                                finetune_epochs=3, sparsity=0.8, seed=0)
    w = torch.cat([lin.weight.detach().flatten() for lin in pruned.net.linears()])
    assert float((w == 0).float().mean()) == pytest.approx(0.8, abs=0.01)
    assert neural_flops(pruned) < 0.4 * neural_flops(trained)
    # Still a valid transmitter after masked fine-tuning.
    np.testing.assert_allclose(np.sum(np.abs(pruned.encode(PAIR.x_test)) ** 2, axis=0), 2.0, rtol=1e-12)


def test_flops_of_dense_network(trained) -> None:
    # 16->64->8 (encoder, 2Nt = 8) and 8->64->16 (decoder): 2·weights + biases + ReLUs + power normalisation.
    dense = 2 * (16 * 64 + 64 * 8 + 8 * 64 + 64 * 16) + (64 + 8 + 64 + 16) + (64 + 64) + (2 * 8 + 2 + 8)
    assert neural_flops(trained) == dense
    assert aligner_flops(trained) == dense


def test_channel_unaware_variant_and_determinism() -> None:
    a = fit_neural_aligner(PAIR.x_train[:300], PAIR.y_train[:300], H4, snr_db=10.0, epochs=2, seed=3,
                           channel_aware=False)
    b = fit_neural_aligner(PAIR.x_train[:300], PAIR.y_train[:300], H4, snr_db=10.0, epochs=2, seed=3,
                           channel_aware=False)
    np.testing.assert_array_equal(a.encode(PAIR.x_test[:5]), b.encode(PAIR.x_test[:5]))
    assert a.link.__class__.__name__ == "SVDMMSELink"
    assert aligner_flops(a) > neural_flops(a)  # the conventional link is counted on top


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="sparsity"):
        fit_neural_aligner(PAIR.x_train, PAIR.y_train, H4, snr_db=10.0, sparsity=1.0)
    with pytest.raises(ValueError, match="same samples"):
        fit_neural_aligner(PAIR.x_train, PAIR.y_train[:5], H4, snr_db=10.0)
    with pytest.raises(ValueError, match="power"):
        fit_neural_aligner(PAIR.x_train, PAIR.y_train, H4, snr_db=10.0, power=0.0)
    x = PAIR.x_train.copy()
    x[1, 1] = np.inf
    with pytest.raises(ValueError, match="non-finite"):
        fit_neural_aligner(x, PAIR.y_train, H4, snr_db=10.0)
