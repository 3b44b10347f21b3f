"""Bursty arrivals (``arrival_process="mmpp"``): the law, the hidden phase, the BS's filter and the seed contract."""

import numpy as np
import pytest

from vmimo_env.config import ScenarioConfig
from vmimo_env.vector import VMIMOVectorEnv


def _run(n_envs: int, slots: int, **kw):
    core = VMIMOVectorEnv(num_envs=n_envs, scenario="v1", **kw).core
    core.reset(np.arange(n_envs), list(range(n_envs)))
    idle = np.zeros((n_envs, core.K), dtype=np.int64)
    bw = np.ones((n_envs, core.G), dtype=np.float32)
    arr, phase, belief = [], [], []
    for _ in range(slots):
        res = core.step(idle, idle, idle, bw)
        arr.append(res.arrived + res.dropped)
        phase.append(core.phase.copy())
        belief.append(core.burst_belief.copy())
    return core, np.array(arr), np.array(phase), np.array(belief)


def test_mmpp_keeps_the_mean_and_makes_the_load_bursty():
    core, arr, phase, belief = _run(64, 200, arrival_process="mmpp")
    quiet, busy = core.cfg.phase_rates()
    assert busy == pytest.approx(core.cfg.burst_rate_ratio * quiet)
    assert abs(phase.mean() - core.cfg.burst_fraction) < 0.06
    assert abs(arr[phase == 1].mean() - busy) < 0.3 and abs(arr[phase == 0].mean() - quiet) < 0.1
    a = arr - arr.mean()
    assert (a[1:] * a[:-1]).mean() / a.var() > 0.4  # consecutive slots' loads are strongly correlated
    # the BS's posterior tells the phases apart from the counts alone
    assert belief[phase == 1].mean() > 0.8 and belief[phase == 0].mean() < 0.2


def test_poisson_load_is_not_bursty_and_has_no_phase():
    _, arr, phase, belief = _run(64, 200)
    a = arr - arr.mean()
    assert abs((a[1:] * a[:-1]).mean() / a.var()) < 0.05
    assert not phase.any() and not belief.any()


def test_mmpp_same_seed_same_trajectory_and_vector_rows_equal_single_envs():
    _, arr4, ph4, _ = _run(4, 100, arrival_process="mmpp")
    _, arr4b, ph4b, _ = _run(4, 100, arrival_process="mmpp")
    assert np.array_equal(arr4, arr4b) and np.array_equal(ph4, ph4b)
    core = VMIMOVectorEnv(num_envs=1, scenario="v1", arrival_process="mmpp").core
    core.reset(np.arange(1), [2])
    idle = np.zeros((1, core.K), dtype=np.int64)
    got = []
    for _ in range(100):
        res = core.step(idle, idle, idle, np.ones((1, core.G), np.float32))
        got.append(int(res.arrived[0] + res.dropped[0]))
    assert got == arr4[:, 2].tolist()  # env i of a vector env is the single env seeded seed + i


def test_replica_copies_the_phase_and_sampled_futures_draw_it_from_the_belief():
    core, _, _, _ = _run(2, 30, arrival_process="mmpp")
    rep = core.replicate([0, 1])
    assert np.array_equal(rep.phase, core.phase) and np.array_equal(rep.burst_belief, core.burst_belief)
    sampled = core.replicate(0, 400, future_seeds=list(range(400)))
    assert abs(sampled.phase.mean() - core.burst_belief[0]) < 0.1


@pytest.mark.parametrize("kw, msg", [
    ({"arrival_process": "bursty"}, "arrival_process"),
    ({"arrival_process": "mmpp", "arrival_rate": 4.0, "burst_rate_ratio": 50.0}, "busy rate"),
    ({"arrival_process": "mmpp", "burst_fraction": 0.99, "burst_mean_slots": 1.0}, "mean quiet run"),
    ({"arrival_process": "mmpp", "burst_fraction": 0.0}, "burst_fraction"),
])
def test_bad_burst_parameters_are_refused_by_name(kw, msg):
    with pytest.raises(ValueError, match=msg):
        ScenarioConfig(**kw)


def test_the_bs_view_and_the_observation_carry_the_phase_posterior():
    import gymnasium as gym

    import vmimo_env  # noqa: F401  (registers the ids)

    core, _, phase, belief = _run(16, 60, arrival_process="mmpp")
    view = core.bs_view()
    np.testing.assert_array_equal(view.burst_belief, core.burst_belief)
    assert not view.burst_belief.flags.writeable
    a, b = core.obs_layout()["burst_belief"]
    assert b == a + 1
    np.testing.assert_array_equal(core.observe()[:, a], core.burst_belief.astype(np.float32))
    # the entry moves with the phase (high in busy stretches, low in quiet ones), and round-trips the plain form
    assert belief[phase == 1].mean() > belief[phase == 0].mean() + 0.5
    from vmimo_env.bs_view import BSView

    np.testing.assert_array_equal(BSView.from_dict(view.to_dict()).burst_belief, view.burst_belief)
    # Poisson scenarios: no such block (their observations are unchanged), a zero posterior in the view
    poisson = VMIMOVectorEnv(num_envs=2, scenario="v1").core
    assert "burst_belief" not in poisson.obs_layout()
    assert not poisson.bs_view().burst_belief.any()
    env = gym.make("VMIMO-v1", arrival_process="mmpp")
    obs, _ = env.reset(seed=3)
    assert env.observation_space.contains(obs) and "burst_belief" in env.unwrapped.obs_layout()
