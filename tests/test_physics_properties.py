"""Property tests over random shapes and scenarios: the physics never produces NaN/inf or negative SINR/energy."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from vmimo_env import geometry, pathloss, physics, receivers, resources, rules
from vmimo_env.config import ScenarioConfig

SETTINGS = settings(max_examples=40, deadline=None)


@st.composite
def receiver_inputs(draw):
    n = draw(st.integers(1, 4))
    k = draw(st.integers(1, 10))
    nr = draw(st.integers(1, 6))
    g = draw(st.integers(1, 4))
    seed = draw(st.integers(0, 2**32 - 1))
    log_gain = draw(st.floats(-14.0, -4.0))
    rng = np.random.default_rng(seed)
    gain = 10 ** (log_gain + rng.uniform(-2, 2, (n, k, 1)))
    h = (rng.standard_normal((n, k, nr)) + 1j * rng.standard_normal((n, k, nr))) * np.sqrt(gain / 2)
    if draw(st.booleans()):  # fully correlated channels: rank-deficient groups
        h[:] = h[:, :1]
    p = rng.uniform(0, 0.2, (n, k)) * (rng.random((n, k)) > 0.1)  # some zero powers
    grp = rng.integers(0, g + 1, (n, k))
    noise = np.c_[np.zeros(n), 10 ** rng.uniform(-17, -12, (n, g))]
    return h, p, grp, noise, g


@SETTINGS
@given(receiver_inputs())
def test_receivers_finite_nonnegative_and_idle_zero(case) -> None:
    h, p, grp, noise, g = case
    results = {rx: receivers.post_receiver_sinr(h, p, grp, noise, g, receiver=rx) for rx in receivers.RECEIVERS}
    results["antenna"] = receivers.mmse_sinr(h, p, grp, noise, g, method="antenna")
    for alloc in receivers.POWER_ALLOCATIONS:
        results[alloc] = receivers.cooperative_svd_sinr(h, p, grp, noise, g, power_allocation=alloc)
    for name, s in results.items():
        assert s.shape == p.shape and s.dtype == np.float64, name
        assert np.all(np.isfinite(s)) and np.all(s >= 0), name
        assert np.all(s[grp == 0] == 0.0) and np.all(s[p == 0] == 0.0), name
    mmse = results["mmse"]
    # the receivers are exact in exact arithmetic; in floating point a route carries up to ~eps * SNR relative
    # error (receivers module docstring), so comparisons get that slack (SNR reaches 130 dB here on purpose)
    noise_of = np.take_along_axis(np.c_[np.full(len(p), np.inf), noise[:, 1:]], grp, axis=1)
    slack = 1e-7 + 1e-14 * (p * (np.abs(h) ** 2).sum(-1) / noise_of).max()
    assert np.all(mmse >= results["zf"] * (1 - slack))
    np.testing.assert_allclose(results["antenna"], mmse, rtol=slack, atol=1e-9)
    # SIC reaches the group capacity, linear MMSE cannot exceed it
    assert np.log2(1 + results["mmse_sic"]).sum() >= np.log2(1 + mmse).sum() - 2 * slack * mmse.size


@st.composite
def scenarios(draw):
    radius = draw(st.floats(50.0, 1000.0))
    return ScenarioConfig(
        num_devices=draw(st.integers(1, 12)), num_antennas=draw(st.integers(1, 8)), num_groups=draw(st.integers(1, 4)),
        cell_radius_m=radius, min_distance_m=draw(st.floats(1.0, radius / 2)),
        carrier_hz=draw(st.floats(0.7e9, 30e9)), total_bandwidth_hz=draw(st.floats(1e3, 1e8)),
        fading=draw(st.sampled_from(["umi", "rayleigh", "rician"])), rician_k_db=draw(st.floats(-10.0, 20.0)),
        speed_mps=draw(st.floats(0.0, 30.0)), spatial_correlation=draw(st.floats(0.0, 0.95)),
        shadowing=draw(st.booleans()), max_power_dbm=draw(st.floats(0.0, 30.0)),
        receiver=draw(st.sampled_from(["mmse", "zf", "mmse_sic"])), cooperative=draw(st.booleans()),
    )


@SETTINGS
@given(scenarios(), st.integers(1, 3), st.integers(0, 2**32 - 1))
def test_physics_slot_over_random_scenarios(cfg: ScenarioConfig, n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    links = physics.init_links(cfg, rng, n)
    k, nr, g = cfg.num_devices, cfg.num_antennas, cfg.num_groups
    assert np.all(np.isfinite(links.gain)) and np.all(links.gain > 0)
    for _ in range(3):
        power = cfg.max_power_w * rng.random((n, k))
        group = rng.integers(0, g + 1, (n, k))
        shares = rng.dirichlet(np.ones(g), n)
        noise = rules.receiver_noise_w(shares, cfg)
        airtime = cfg.slot_s * rng.random((n, k)) * (group > 0)
        white = physics.complex_innovation(rng.standard_normal((n, k, 2 * nr)))
        sinr, e = physics.physics_slot(links, white, power, group, noise, airtime, rng.integers(0, 5, (n, k)),
                                       np.full(k, 1.5), cfg)
        h = links.channel()
        assert np.all(np.isfinite(h))
        assert np.all(np.isfinite(sinr)) and np.all(sinr >= 0) and np.all(sinr[group == 0] == 0)
        assert np.all(np.isfinite(e)) and np.all(e >= 0)


@settings(max_examples=12, deadline=None)
@given(scenarios(), st.integers(0, 2**32 - 1))
def test_init_links_starts_where_the_environment_starts(cfg: ScenarioConfig, seed: int) -> None:
    """One start-state composition: the facade's links for seed s are VMIMOEnv's after reset(seed=s)."""
    from vmimo_env.env import VMIMOEnv

    env = VMIMOEnv(config=cfg)
    env.reset(seed=seed)
    links = physics.init_links(cfg, np.random.default_rng(seed), 1)
    core = env.core
    np.testing.assert_array_equal(links.d2d_m, core.dist_m)
    np.testing.assert_array_equal(links.los, core.los)
    np.testing.assert_array_equal(links.gain, core.gain)
    np.testing.assert_array_equal(links.h_los, core.h_los)
    np.testing.assert_array_equal(links.scatter, core.h_scat)
    np.testing.assert_array_equal(links.res_state, core.res_state)
    np.testing.assert_array_equal(links.channel(), core.h)
    assert links.rho == core.rho


def test_init_links_draws_the_los_direction_uniformly() -> None:
    """The start state's LOS direction of arrival is uniform in [-pi/2, pi/2), independent of the drop: the
    steering phase step sin(theta) pi is then spread over (-pi, pi) with mean ~0 and arcsine-law variance."""
    cfg = ScenarioConfig(num_devices=8, num_antennas=2, fading="rician")
    links = physics.init_links(cfg, np.random.default_rng(0), 500)
    k = 10 ** (cfg.rician_k_db / 10)
    lw = np.sqrt(k / (k + 1))  # LOS weight of every (Rician) device
    phase = np.angle(links.h_los[..., 1] / links.h_los[..., 0])  # pi sin(theta)
    s = (phase / np.pi).ravel()
    assert np.allclose(np.abs(links.h_los), lw)
    assert abs(s.mean()) < 0.05 and abs((s**2).mean() - 0.5) < 0.03  # E[sin^2] = 1/2 for uniform theta
    assert abs(np.corrcoef(s, links.d2d_m.ravel())[0, 1]) < 0.1


@SETTINGS
@given(st.lists(st.floats(0.0, 6000.0), min_size=1, max_size=20), st.floats(0.5e9, 100e9),
       st.floats(1.0, 22.5), st.booleans())
def test_pathloss_finite_and_bounded(d2d: list[float], fc: float, h_ut: float, los: bool) -> None:
    d = np.asarray(d2d)
    pl = pathloss.umi_pathloss_db(np.hypot(d, 10.0 - h_ut), d, fc, 10.0, h_ut, los)
    assert np.all(np.isfinite(pl)) and np.all(pl > 20.0)
    p = pathloss.umi_los_probability(d)
    assert np.all((p >= 0) & (p <= 1))


@SETTINGS
@given(st.integers(0, 2**32 - 1), st.floats(0.0, 50.0))
def test_mobility_stays_in_annulus_and_resources_in_unit_interval(seed: int, speed: float) -> None:
    rng = np.random.default_rng(seed)
    pos = geometry.drop_positions(rng, (3, 5), 20.0, 100.0)
    heading = rng.uniform(-np.pi, np.pi, (3, 5))
    for _ in range(50):
        pos, heading = geometry.mobility_step(pos, heading, speed, 0.1, 0.3 * rng.standard_normal((3, 5)), 20.0,
                                              100.0)
    r = np.hypot(pos[..., 0], pos[..., 1])
    assert np.all((r >= 20.0 - 1e-9) & (r <= 100.0 + 1e-9)) and np.all(np.abs(heading) <= np.pi)
    cfg = ScenarioConfig()
    x = resources.stationary_state(rng, (3, 5), cfg) * rng.uniform(0, 20)
    pj = resources.p_joint(resources.ar1_step(x, rng.standard_normal(x.shape), cfg), cfg)
    assert np.all(np.isfinite(pj)) and np.all((pj >= 0) & (pj <= 1))


@settings(max_examples=12, deadline=None)
@given(scenarios(), st.integers(2, 9), st.integers(0, 2**32 - 1), st.booleans(), st.booleans())
def test_starts_of_many_environments_are_each_one_alone(cfg: ScenarioConfig, n: int, seed: int, lognormal: bool,
                                                       mobility: bool) -> None:
    """``physics.initial_link_states`` (a vector env's reset of many environments at once) gives each environment
    the start it gets alone from its generator (``initial_link_state``), bit for bit: the same draws per
    generator, elementwise transforms."""
    from dataclasses import fields

    from vmimo_env import channel

    cfg = cfg.replace(k_factor_model="lognormal" if lognormal else "fixed", mobility=mobility)
    corr = channel.exponential_correlation_sqrt(cfg.num_antennas, cfg.spatial_correlation)
    batch = physics.initial_link_states(np.random.default_rng(seed).spawn(n), cfg, corr)
    for j, g in enumerate(np.random.default_rng(seed).spawn(n)):
        alone = physics.initial_link_state(g, cfg, corr)
        for f in fields(physics.LinkStart):
            np.testing.assert_array_equal(getattr(batch, f.name)[j], getattr(alone, f.name), err_msg=f.name)
