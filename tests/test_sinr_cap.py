"""The EVM-style SINR cap (``ScenarioConfig.sinr_cap_db``): the rule, its validation, and that the slot and the BS
view's prediction both apply it."""

from __future__ import annotations

import numpy as np
import pytest

from vmimo_env import rules
from vmimo_env.bs_view import predict_sinr
from vmimo_env.config import ScenarioConfig
from vmimo_env.env import VMIMOEnv


def test_cap_formula_limits_and_identity() -> None:
    sinr = np.array([0.0, 1.0, 10.0 ** 2.19, 1e9])
    capped = rules.apply_sinr_cap(sinr.copy(), 21.9)
    cap = 10.0 ** 2.19
    np.testing.assert_allclose(capped[1:], 1.0 / (1.0 / sinr[1:] + 1.0 / cap), rtol=1e-12)
    assert capped[0] == 0.0  # a silent device stays silent
    assert capped[-1] < cap and capped[-1] > 0.999 * cap  # saturates at the cap
    assert np.isclose(capped[2], cap / 2)  # SINR equal to the cap loses 3 dB
    same = sinr.copy()
    assert rules.apply_sinr_cap(same, None) is same and np.array_equal(same, sinr)


@pytest.mark.parametrize("bad", [-30.0, 100.0, float("inf"), "20"])
def test_cap_validation_names_the_field(bad) -> None:
    with pytest.raises(ValueError, match="sinr_cap_db"):
        ScenarioConfig(sinr_cap_db=bad)


def _sinr_of_slot(cap: float | None) -> tuple[np.ndarray, np.ndarray]:
    env = VMIMOEnv(sinr_cap_db=cap)
    env.reset(seed=3)
    K, G = env.cfg.num_devices, env.cfg.num_groups
    a = {"group": np.arange(K) % G + 1, "power": np.full(K, 4), "compression": np.full(K, 2),
         "bandwidth": np.full(G, 1.0 / G, dtype=np.float32)}
    for _ in range(20):  # until every scheduled device sends (the prediction is exact then)
        pred = predict_sinr(env.bs_view(), a["group"], a["power"], a["bandwidth"], compression=a["compression"])
        _, _, _, _, info = env.step(a)
        if (np.asarray(info["sent"]) > 0).all():
            return pred, np.asarray(info["sinr_db"])
    raise AssertionError("no slot in which every device sent")


def test_slot_and_prediction_apply_the_cap() -> None:
    pred_free, db_free = _sinr_of_slot(None)
    pred_cap, db_cap = _sinr_of_slot(15.0)
    on = pred_free > 0
    assert on.any()
    expect = pred_free / (1.0 + pred_free * 10.0 ** -1.5)
    np.testing.assert_allclose(pred_cap[on], expect[on], rtol=1e-9)
    assert (pred_cap[on] < 10.0 ** 1.5).all() and (pred_free[on] > 10.0 ** 1.5).any()
    # the slot's SINR (info, dB) equals the view's prediction in both worlds
    np.testing.assert_allclose(db_cap, 10 * np.log10(pred_cap), atol=1e-4)
    np.testing.assert_allclose(db_free, 10 * np.log10(pred_free), atol=1e-4)
