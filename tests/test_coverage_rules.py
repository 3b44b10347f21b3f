"""The value-searched rules of the coverage scheduler (``agents.heuristics.coverage``): valid, causal, and what
their docstrings say they choose."""

from __future__ import annotations

import numpy as np
import pytest

from agents.heuristics.coverage import ComponentPolicy, CoveragePolicy
from vmimo_env.vector import VMIMOVectorEnv


@pytest.fixture(scope="module")
def core():
    env = VMIMOVectorEnv(num_envs=6, scenario="v1")
    env.reset(seed=123)
    for _ in range(5):  # queues and held prefixes away from the empty start
        env.step(env.action_space.sample())
    return env.core


def test_search_split_is_the_best_predicted_among_its_candidates(core) -> None:
    pol = ComponentPolicy(core, group="cover1", power="adaptive", compression=0, bandwidth="search")
    view = core.bs_view()
    pol.view = view
    group = pol._groups()
    comp = np.zeros_like(group)
    best = pol._shares(group, comp)
    used = np.stack([(group == g + 1).any(axis=1) for g in range(pol.G)], axis=1)
    assert np.allclose(best.sum(axis=1), used.any(axis=1)), "the searched split uses the whole band"
    assert np.all(best[~used] == 0.0), "no band for a group nobody is in"

    def value(sh: np.ndarray) -> np.ndarray:
        return np.where(group > 0, pol._fused_value(group, sh, comp, pol._power(group, sh, comp)), 0.0).sum(axis=1)

    for other in (pol._rule_shares("demand", group, comp), pol._rule_shares("equal", group, comp)):
        assert np.all(value(best) >= value(other) - 1e-9)


def test_fused_compression_maximises_predicted_value_among_prefixes_that_fit(core) -> None:
    pol = ComponentPolicy(core, group="cover1", power="adaptive", compression="fused", bandwidth="demand")
    pol.view = core.bs_view()
    group = pol._groups()
    shares = pol._rule_shares("equal", group, None)
    comp = pol._compression(group, shares)
    fit = pol._fit(group, shares)
    power = pol._power(group, shares, np.zeros_like(group))
    vals = np.stack([pol._fused_value(group, shares, np.full(group.shape, j), power)
                     for j in range(fit.shape[-1])], axis=-1)
    vals = np.where(fit, vals, -np.inf)
    chosen = np.take_along_axis(vals, comp[..., None], axis=-1)[..., 0]
    ok = fit.any(axis=-1)
    assert np.all(chosen[ok] >= vals.max(axis=-1)[ok] - 1e-12)
    # a higher price of energy never lengthens a prefix: the choice responds to the trade-off it claims to make
    cheap = ComponentPolicy(core, group="cover1", power="adaptive", compression="fused", value_scale=8.0)
    cheap.view = pol.view
    assert np.all(cheap._compression(group, shares)[ok] >= comp[ok])
    assert (cheap._compression(group, shares)[ok] > comp[ok]).any()


def test_coverage_defaults_act_validly_and_reject_bad_rules(core) -> None:
    pol = CoveragePolicy(core)
    a = pol.act_view(core.bs_view())
    assert a["bandwidth"].sum(axis=1).max() <= 1.0 + 1e-6
    assert a["compression"].min() >= 0 and a["compression"].max() < len(core.cfg.compression_levels)
    with pytest.raises(ValueError, match="bandwidth"):
        ComponentPolicy(core, bandwidth="wide")
    with pytest.raises(ValueError, match="compression"):
        ComponentPolicy(core, compression="long")
    with pytest.raises(ValueError, match="bw_steps"):
        ComponentPolicy(core, bw_steps=1)
    assert ComponentPolicy(core, compression="2").comp_rule == 2
