"""VMIMO-v1 keeps its levers: the calibration's effects, in direction and size, on a few seeds and short episodes.

Each test measures with the calibration study's own machinery (``benchmarks.headroom``: the component rules decide
from the BS view, every policy runs on the same seeds) and fails if a change flattens the lever it names: power
nearly free again, energy negligible, one group on the whole band enough, prefix irrelevant, SINR out of the frozen
model's sensitive range. The figures of ``docs/headroom.md`` come from the full study on other seeds.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from agents.common.stats import paired_difference
from benchmarks import headroom as H
from vmimo_env import ENV_IDS
from vmimo_env.config import ScenarioConfig
from vmimo_env.scenario import SCENARIOS, make_config

SEEDS = list(range(100, 112))
HORIZON = 100


@pytest.fixture(scope="module")
def core():
    return H.make_core("v1", len(SEEDS), horizon=HORIZON)


@pytest.fixture(scope="module")
def reference(core):
    return H.run(core, SEEDS, H.component_factory(), "reference", record_sinr=True)


def test_v0_is_unchanged_and_v1_ids_are_registered() -> None:
    assert make_config("default") == ScenarioConfig() and ScenarioConfig().sinr_cap_db is None
    for name in ("VMIMO-v1", "VMIMO-MultiDiscrete-v1", "VMIMO-Box-v1", "VMIMO-Dense-v1", "VMIMO-IoT-v1",
                 "VMIMO-Mobility-v1", "VMIMO-Hetero-v1", "VMIMO-Cooperative-v1", "VMIMO-GenK-v1",
                 "VMIMO-GenSpeed-v1", "VMIMO-GenNLOS-v1"):
        assert name in ENV_IDS and gym.spec(name).max_episode_steps == make_config(ENV_IDS[name]["scenario"]).horizon
    assert set(H.TIERS.values()) <= set(SCENARIOS)
    v1 = make_config("v1")
    assert v1.sinr_cap_db is not None and v1.num_devices > v1.num_antennas
    assert make_config("dense_v1").num_devices >= 4 * v1.num_antennas
    assert make_config("iot_v1").max_power_dbm < v1.max_power_dbm
    env = gym.make("VMIMO-MultiDiscrete-v1")
    assert isinstance(env.action_space, gym.spaces.MultiDiscrete)
    env.reset(seed=0)
    env.step(env.action_space.sample())


def test_max_power_sinr_spans_the_models_sensitive_range(reference) -> None:
    sinr = np.concatenate([s for s in reference.sinr_db_max if s.size])
    p5, p50, p95 = np.percentile(sinr, [5, 50, 95])
    cap = make_config("v1").sinr_cap_db
    assert -10.0 <= p50 <= 20.0
    assert p5 < 0.0  # some links are power-limited even at full power
    assert 15.0 < p95 <= cap + 1e-9  # the EVM cap is what bounds the best links


def test_energy_is_a_real_share_of_the_return(reference) -> None:
    share = reference.energy.mean() / reference.acc.mean()
    lo, hi = H.GOALS["energy_share"]
    assert lo <= share <= hi
    parts = reference.parts_j.sum(axis=0) / reference.parts_j.sum()
    assert parts[0] > 0.2 and parts[2] > 0.1  # transmit energy matters, and encoding is visible


def test_power_adaptation_beats_every_fixed_level(core, reference) -> None:
    fixed = [H.run(core, SEEDS, H.component_factory(power=j), f"p{j}").ret for j in range(5)]
    best = max(fixed, key=np.mean)
    gain, ci, _ = paired_difference(reference.ret, best)
    assert gain - ci > 0 and gain >= 0.02 * reference.ret.mean()
    assert np.mean(fixed[-1]) - np.mean(fixed[0]) > 0.1 * reference.ret.mean()  # the level itself matters


def test_grouping_by_coverage_beats_round_robin_and_one_group_cannot_carry_the_load(core, reference) -> None:
    rr = {n: H.run(core, SEEDS, H.component_factory(group=f"rr{n}"), f"rr{n}") for n in (1, 2, 3)}
    best = max(rr.values(), key=lambda e: e.ret.mean())
    gain, ci, _ = paired_difference(reference.ret, best.ret)
    assert gain - ci > 0 and gain >= 0.02 * reference.ret.mean()
    # more latent demand than one group on the whole band carries: a second group adds accuracy
    assert rr[2].acc.mean() > 1.1 * rr[1].acc.mean()


def test_prefix_is_a_trade_off(core, reference) -> None:
    short, mid, full = (H.run(core, SEEDS, H.component_factory(compression=j), f"c{j}") for j in (0, 2, 4))
    assert mid.acc.mean() > short.acc.mean()  # longer prefixes carry more
    assert max(short.ret.mean(), mid.ret.mean()) - full.ret.mean() > 0.1 * reference.ret.mean()  # and cost more


def test_causal_one_component_search_scores_only_sampled_futures() -> None:
    """The causal search replicates with fresh future streams every slot (never the true draws) and scores on the
    soft reward; the same sampling seed gives the same episode; the clairvoyant one uses the true future."""
    core = H.make_core("v1", 2, horizon=12)
    calls: list[dict] = []
    real = core.replicate

    def spy(rows, *args, **kwargs):
        calls.append(kwargs)
        return real(rows, *args, **kwargs)

    core.replicate = spy
    choices = H.fixed_choices(core.cfg)["compression"][:3]
    a = H.one_component_search(core, [5, 6], "compression", choices, "causal", futures=2, future_seed=3)
    assert len(calls) == 12 and all(c.get("future_seeds") is not None and c.get("reward_mode") == "soft"
                                    for c in calls)
    b = H.one_component_search(core, [5, 6], "compression", choices, "causal", futures=2, future_seed=3)
    assert np.array_equal(a.ret, b.ret)
    calls.clear()
    H.clairvoyant(core, [5, 6], "compression", choices, "clairvoyant")
    assert len(calls) == 12 and all(c.get("future_seeds") is None for c in calls)


def test_equal_energy_table_shows_prefix_and_power_are_substitutes(core) -> None:
    # the claim the table is cited for in MODEL.md: a longer prefix gains much at a fixed SINR per use, but almost
    # nothing once its extra received energy is taken away (the same energy spread over more reals)
    from agents.heuristics.accuracy import accuracy_table_for

    ee = H.equal_energy_accuracy(core, budgets_db=(0.0,))
    table = accuracy_table_for(core.bs_view())
    every = tuple(range(table.M))
    prefixes = ee["prefixes"]
    assert prefixes == list(core.cfg.compression_levels)
    row = np.asarray(ee["rows"]["0"])
    assert row[0] == float(table.lookup(every, np.array(0.0), np.array(prefixes[0])))  # the budget's anchor
    fixed_sinr_gain = float(table.lookup(every, np.array(0.0), np.array(prefixes[-1]))) - row[0]
    assert fixed_sinr_gain > 0.15
    assert np.ptp(row) < 0.075


def test_study_takes_scenario_overrides_and_names_them(tmp_path, capsys) -> None:
    """``--env-kwargs`` studies a candidate recalibration: the override reaches the environment (a 4x cheaper energy
    reference cuts the energy share of the return on the same seeds) and the report's tier heading names it; a bad
    key is refused in one line before any study runs."""
    base = H.study("default", [11, 12], horizon=8, oracle=False, verbose=False)
    cheap = H.study("default", [11, 12], horizon=8, oracle=False, verbose=False, overrides={"energy_ref_j": 1.6e-3})
    assert cheap["overrides"] == {"energy_ref_j": 1.6e-3} and base["overrides"] == {}
    assert 0.0 < cheap["energy"]["share"] < 0.5 * base["energy"]["share"]
    out = tmp_path / "study.md"
    H.main(["--tier", "default", "--seeds", "2", "--horizon", "8", "--no-oracle", "--env-kwargs",
            "energy_ref_j:1.6e-3", "--markdown", str(out)])
    assert "scenario `v1`, energy_ref_j = 0.0016, 2 seeds" in out.read_text(encoding="utf-8")
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        H.main(["--tier", "default", "--seeds", "2", "--env-kwargs", "energy_reference:1"])
    assert exc.value.code == 2 and "energy_reference" in capsys.readouterr().err
