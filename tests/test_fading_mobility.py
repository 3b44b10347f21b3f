"""The v1 fading and mobility options: monotone Doppler rule, log-normal K-factor, moving large-scale state.

Every option is a ``ScenarioConfig`` field whose default keeps v0; these tests check the new laws (against their
formulas and the TR 38.901 parameters) and that the defaults leave v0's random streams where they were.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import j0, ndtr
from seed_contract import assert_vector_equals_singles

from vmimo_env import channel, geometry, pathloss, physics
from vmimo_env.config import ScenarioConfig
from vmimo_env.env import VMIMOEnv
from vmimo_env.vector import VMIMOVectorEnv

MOVING = {"mobility": True, "k_factor_model": "lognormal", "doppler_rule": "j0_first_zero"}


# ---------------------------------------------------------------------------------------------- Doppler rule
@pytest.mark.parametrize(("fc", "slot"), [(3.5e9, 0.01), (28e9, 1e-3), (0.7e9, 0.05)])
def test_first_zero_rule_is_non_increasing_in_speed(fc: float, slot: float) -> None:
    speed = np.linspace(0.0, 100.0, 20001)
    rho = channel.doppler_rho(speed, fc, slot, "j0_first_zero")
    assert np.all(np.diff(rho) <= 0.0)
    assert np.all((rho >= 0.0) & (rho < 1.0))
    x = 2 * np.pi * speed * fc / pathloss.SPEED_OF_LIGHT_MPS * slot
    below = x < channel.J0_FIRST_ZERO
    np.testing.assert_allclose(rho[below & (x > 1e-3)], j0(x[below & (x > 1e-3)]), rtol=0, atol=1e-15)
    assert np.all(rho[~below] == 0.0)


def test_v0_rule_is_not_monotone_and_the_first_zero_rule_fixes_it() -> None:
    """At 3.5 GHz and 10 ms the clipped J0 gives a 10 m/s device more correlation than a 3 m/s one."""
    fc, slot = 3.5e9, 0.01
    v0 = channel.doppler_rho(np.array([3.0, 10.0]), fc, slot, "j0_clipped")
    v1 = channel.doppler_rho(np.array([3.0, 10.0]), fc, slot, "j0_first_zero")
    assert v0[1] > v0[0] > 0.0
    assert v1[0] == v0[0] and v1[1] == 0.0
    assert channel.doppler_rho(1.0, fc, slot, "j0_first_zero") == channel.doppler_rho(1.0, fc, slot)
    with pytest.raises(ValueError, match="rule"):
        channel.doppler_rho(1.0, fc, slot, "bessel")


def test_env_uses_the_configured_doppler_rule() -> None:
    for rule in ("j0_clipped", "j0_first_zero"):
        cfg = ScenarioConfig(speed_mps=10.0, doppler_rule=rule)
        links = physics.init_links(cfg, np.random.default_rng(0), 1)
        assert links.rho == float(channel.doppler_rho(10.0, cfg.carrier_hz, cfg.slot_s, rule))
    env = VMIMOEnv(scenario="small", speed_mps=10.0, doppler_rule="j0_first_zero")
    assert float(env.core.rho) == 0.0


# ---------------------------------------------------------------------------------------------- K-factor
def test_lognormal_k_factor_has_the_38901_law_over_many_resets() -> None:
    venv = VMIMOVectorEnv(num_envs=64, scenario="small", fading="rician", k_factor_model="lognormal")
    core = venv.core
    samples = []
    for r in range(25):
        core.reset(np.arange(core.N), [1000 * r + i for i in range(core.N)])
        samples.append(10 * np.log10(core.k_factor))
        # the LOS part carries the device's own K: |h_los| = sqrt(K/(K+1)), scatter weight sqrt(1/(K+1))
        k = core.k_factor
        los_w = np.broadcast_to(np.sqrt(k / (k + 1))[..., None], core.h_los.shape)
        np.testing.assert_allclose(np.abs(core.h_los), los_w, rtol=1e-12)
        np.testing.assert_allclose(core.scat_scale, np.sqrt(1 / (k + 1)), rtol=1e-12)
    kdb = np.concatenate(samples).ravel()
    n = kdb.size
    cfg = core.cfg
    assert (cfg.rician_k_mu_db, cfg.rician_k_sigma_db) == (9.0, 5.0)  # TR 38.901 Table 7.5-6, UMi LOS
    assert abs(kdb.mean() - 9.0) < 4 * 5.0 / np.sqrt(n)
    assert abs(kdb.std() - 5.0) < 4 * 5.0 / np.sqrt(2 * n)
    assert abs(np.mean(((kdb - 9.0) / 5.0) ** 3)) < 0.1  # symmetric in dB (log-normal in linear units)


def test_k_factor_is_per_device_and_episode_and_fixed_by_default() -> None:
    env = VMIMOEnv(scenario="small", fading="rician", k_factor_model="lognormal")
    env.reset(seed=3)
    k0 = env.core.k_factor.copy()
    assert np.unique(k0).size == k0.size  # one draw per device
    for _ in range(5):
        env.step(env.action_space.sample())
    np.testing.assert_array_equal(env.core.k_factor, k0)  # constant within the episode
    env.reset(seed=4)
    assert not np.array_equal(env.core.k_factor, k0)
    fixed = VMIMOEnv(scenario="small", fading="rician")
    fixed.reset(seed=3)
    np.testing.assert_array_equal(fixed.core.k_factor, 10 ** (0.9))


def test_lognormal_k_is_used_only_for_los_links() -> None:
    cfg = ScenarioConfig(num_devices=16, k_factor_model="lognormal")  # umi: a mix of LOS and NLOS devices
    links = physics.init_links(cfg, np.random.default_rng(1), 50)
    assert links.los.any() and (~links.los).any()
    assert np.all(links.h_los[~links.los] == 0) and np.all(links.scat_scale[~links.los] == 1.0)
    k = links.k_factor[links.los]
    np.testing.assert_allclose(links.scat_scale[links.los], np.sqrt(1 / (k + 1)), rtol=1e-12)


# ---------------------------------------------------------------------------------------------- v0 streams
def test_new_options_append_their_draws_after_v0s() -> None:
    """The log-normal K and the mobility start draw after every v0 draw, so the rest of the start is v0's;
    without mobility the per-slot stream keeps v0's size."""
    base = ScenarioConfig(num_devices=12)
    ref = physics.init_links(base, np.random.default_rng(7), 20)
    for change in ({"k_factor_model": "lognormal"}, {"mobility": True}, MOVING):
        links = physics.init_links(base.replace(**change), np.random.default_rng(7), 20)
        for name in ("d2d_m", "los", "gain", "scatter", "res_state"):
            np.testing.assert_array_equal(getattr(links, name), getattr(ref, name), err_msg=f"{change} {name}")
    v0 = VMIMOEnv(scenario="small")
    assert v0.core.rng.n_normal == 2 * 4 * 2 + 2 * 4 and v0.core.mobility is None
    moving = VMIMOEnv(scenario="small", mobility=True)
    assert moving.core.rng.n_normal == 2 * 4 * 2 + 2 * 4 + physics.MOBILITY_NORMALS_PER_DEVICE * 4


def test_without_mobility_the_large_scale_state_is_static() -> None:
    env = VMIMOEnv(scenario="small", speed_mps=10.0)
    env.reset(seed=0)
    c = env.core
    before = {n: getattr(c, n).copy() for n in ("dist_m", "los", "gain", "h_los", "pos_xy")}
    for _ in range(20):
        env.step(env.action_space.sample())
    for n, v in before.items():
        np.testing.assert_array_equal(getattr(c, n), v, err_msg=n)
    # the v0 position is the drop distance along the LOS direction: consistent with both, no draw
    np.testing.assert_allclose(np.hypot(c.pos_xy[..., 0], c.pos_xy[..., 1]), c.dist_m, rtol=1e-12)


# ---------------------------------------------------------------------------------------------- mobility
def _moving_links(n: int, cfg: ScenarioConfig, seed: int = 0) -> tuple[physics.LinkState, physics.MobilityParams]:
    return physics.init_links(cfg, np.random.default_rng(seed), n), physics.MobilityParams.from_config(cfg)


def _advance(links: physics.LinkState, p: physics.MobilityParams, z: np.ndarray) -> None:
    physics.large_scale_step(p, links.pos_xy, links.heading, links.shadow_z, links.los_z, links.los, links.k_factor,
                             z, links.d2d_m, links.gain, links.h_los, links.scat_scale)


def test_mobility_start_positions_are_uniform_by_area_and_consistent() -> None:
    cfg = ScenarioConfig(mobility=True, fading="rician")
    links = physics.init_links(cfg, np.random.default_rng(2), 2000)
    pos = links.pos_xy
    r = np.hypot(pos[..., 0], pos[..., 1])
    np.testing.assert_allclose(r, links.d2d_m, rtol=1e-12)
    phi = np.arctan2(pos[..., 1], pos[..., 0]).ravel()
    hist = np.histogram(phi, bins=8, range=(-np.pi, np.pi))[0] / phi.size
    assert np.all(np.abs(hist - 1 / 8) < 0.01)  # azimuth uniform: uniform by area with the uniform-area radius
    # the LOS steering vector points at the device: phase step pi sin(theta), theta = arcsin(y / d)
    step = np.angle(links.h_los[..., 1] / links.h_los[..., 0])
    want = np.angle(np.exp(1j * np.pi * pos[..., 1] / r))
    np.testing.assert_allclose(np.angle(np.exp(1j * (step - want))), 0.0, atol=1e-9)


def test_devices_move_at_speed_and_stay_in_the_annulus() -> None:
    for speed in (1.0, 5.0, 30.0):
        env = VMIMOVectorEnv(num_envs=8, scenario="small", horizon=1000, speed_mps=speed, mobility=True)
        env.reset(seed=1)
        c = env.core
        idle = (np.zeros((8, c.K), dtype=np.int64),) * 3 + (np.zeros((8, c.G)),)
        steps = []
        for _ in range(100):
            before = c.pos_xy.copy()
            c.step(*idle)
            steps.append(np.hypot(*np.moveaxis(c.pos_xy - before, -1, 0)))
        disp = np.array(steps)
        assert abs(disp.mean() / (speed * c.cfg.slot_s) - 1.0) < 0.01
        assert disp.max() <= speed * c.cfg.slot_s * (1 + 1e-9)
        r = np.hypot(c.pos_xy[..., 0], c.pos_xy[..., 1])
        assert np.all((r >= c.cfg.min_distance_m - 1e-9) & (r <= c.cfg.cell_radius_m + 1e-9))
        np.testing.assert_allclose(c.dist_m, r, rtol=1e-12)


def test_shadowing_correlation_follows_gudmundson_along_the_track() -> None:
    cfg = ScenarioConfig(num_devices=8, mobility=True, speed_mps=20.0)  # 0.2 m per slot
    links, p = _moving_links(3000, cfg)
    rng = np.random.default_rng(5)
    z0 = links.shadow_z.copy()
    lags = {10: None, 25: None, 50: None, 100: None}  # slots: 2, 5, 10, 20 m travelled
    for t in range(1, 101):
        _advance(links, p, rng.standard_normal((3000, 4, 8)))
        if t in lags:
            lags[t] = links.shadow_z.copy()
    for t, zt in lags.items():
        d = t * p.step_m
        for col, dcorr in ((0, cfg.shadow_corr_los_m), (1, cfg.shadow_corr_nlos_m)):
            corr = np.corrcoef(z0[..., col].ravel(), zt[..., col].ravel())[0, 1]
            assert abs(corr - np.exp(-d / dcorr)) < 0.03, (t, col, corr)
        assert abs(zt.std() - 1.0) < 0.02  # stationary N(0, 1)


def test_gain_follows_distance_los_state_and_shadowing_every_slot() -> None:
    env = VMIMOVectorEnv(num_envs=4, horizon=1000, speed_mps=10.0, **MOVING)
    env.reset(seed=2)
    c, cfg = env.core, env.core.cfg
    idle = (np.zeros((4, c.K), dtype=np.int64),) * 3 + (np.zeros((4, c.G)),)
    gains = []
    for _ in range(50):
        c.step(*idle)
        d2d, d3d = geometry.distances_m(c.pos_xy, cfg.bs_height_m, cfg.ut_height_m)
        pl = pathloss.umi_pathloss_db(d3d, d2d, cfg.carrier_hz, cfg.bs_height_m, cfg.ut_height_m, c.los)
        shadow = np.where(c.los, 4.0 * c.shadow_z[..., 0], 7.82 * c.shadow_z[..., 1])
        np.testing.assert_allclose(10 * np.log10(c.gain), -(pl + shadow), atol=1e-9)
        np.testing.assert_array_equal(c.los, ndtr(c.los_z) < pathloss.umi_los_probability(d2d))
        # the LOS term follows the new angle and path length
        k = np.where(c.los, c.k_factor, 0.0)
        theta = geometry.broadside_angle_rad(c.pos_xy)
        want = (np.sqrt(k / (k + 1)) * np.exp(-2j * np.pi * d3d * cfg.carrier_hz / pathloss.SPEED_OF_LIGHT_MPS)
                )[..., None] * channel.ula_steering(theta, c.Nr)
        np.testing.assert_allclose(c.h_los, want, atol=1e-9)  # phases of ~2e4 rad: a few ulp of rounding
        np.testing.assert_allclose(c.h, channel.compose_channel(c.h_scat, c.h_los, c.scat_scale, c.gain))
        gains.append(c.gain.copy())
    assert np.all(np.diff(np.array(gains), axis=0) != 0)  # every device's gain changes every slot


def test_los_switches_happen_and_their_rate_falls_with_correlation_distance() -> None:
    rates, fractions = [], []
    for dcorr in (5.0, 50.0, 500.0):
        cfg = ScenarioConfig(num_devices=8, mobility=True, speed_mps=20.0, los_corr_m=dcorr, shadowing=False)
        links, p = _moving_links(500, cfg, seed=3)
        rng = np.random.default_rng(4)
        switches, los_frac, plos = 0, [], []
        for _ in range(200):
            prev = links.los.copy()
            _advance(links, p, rng.standard_normal((500, 4, 8)))
            switches += int((links.los != prev).sum())
            los_frac.append(links.los.mean())
            plos.append(pathloss.umi_los_probability(links.d2d_m).mean())
        rates.append(switches / (200 * 500 * 8))
        fractions.append((np.mean(los_frac), np.mean(plos)))
    assert rates[0] > rates[1] > rates[2] > 0.0, rates
    for frac, plos in fractions:  # the LOS field is stationary N(0, 1): P(LOS | d) stays Pr_LOS(d)
        assert abs(frac - plos) < 0.03


def test_long_moving_run_stays_finite() -> None:
    env = VMIMOVectorEnv(num_envs=3, scenario="small", horizon=3000, speed_mps=30.0, cell_radius_m=60.0, **MOVING)
    env.action_space.seed(0)
    env.reset(seed=9)
    c = env.core
    for _ in range(3000):
        _, r, _, _, _ = env.step(env.action_space.sample())
        assert np.all(np.isfinite(r))
    for name in ("h", "gain", "h_los", "pos_xy", "shadow_z", "los_z"):
        assert np.all(np.isfinite(getattr(c, name))), name
    assert np.all(c.gain > 0) and np.all(np.abs(c.heading) <= np.pi)
    r = np.hypot(c.pos_xy[..., 0], c.pos_xy[..., 1])
    assert np.all((r >= c.cfg.min_distance_m - 1e-9) & (r <= c.cfg.cell_radius_m + 1e-9))
    assert abs(c.shadow_z.std() - 1.0) < 0.6  # no drift of the AR(1) fields


def test_seed_contract_with_mobility() -> None:
    n, steps, seed = 3, 60, 21  # crosses the 50-slot horizon: autoreset included
    venv = VMIMOVectorEnv(num_envs=n, scenario="small", autoreset_mode="same_step", **MOVING)
    assert_vector_equals_singles(venv, lambda: VMIMOEnv(scenario="small", **MOVING), seed, steps,
                                 state=lambda core: core.pos_xy)


def test_replicate_copies_the_moving_state() -> None:
    env = VMIMOVectorEnv(num_envs=2, scenario="small", **MOVING)
    env.reset(seed=0)
    c = env.core
    idle = (np.zeros((2, c.K), dtype=np.int64),) * 3 + (np.zeros((2, c.G)),)
    for _ in range(3):
        c.step(*idle)
    twin = c.replicate([1, 1])
    for name in ("pos_xy", "heading", "k_factor", "shadow_z", "los_z"):
        assert name in c.STATE_FIELDS
        np.testing.assert_array_equal(getattr(twin, name)[0], getattr(c, name)[1])
    twin.step(*idle)
    c.step(*idle)
    np.testing.assert_array_equal(twin.pos_xy[0], c.pos_xy[1])
    np.testing.assert_array_equal(twin.pos_xy[1], c.pos_xy[1])
    np.testing.assert_array_equal(twin.h[0], c.h[1])


@pytest.mark.parametrize(("field", "value"), [("doppler_rule", "bessel"), ("k_factor_model", "gamma"),
                                              ("rician_k_mu_db", 40.0), ("rician_k_sigma_db", -1.0),
                                              ("mobility", 1), ("shadow_corr_los_m", 0.0),
                                              ("shadow_corr_nlos_m", -3.0), ("los_corr_m", float("nan"))])
def test_bad_fading_fields_raise_naming_the_field(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        ScenarioConfig(**{field: value})


def test_mobility_step_longer_than_the_annulus_allows_is_refused() -> None:
    with pytest.raises(ValueError, match="speed_mps"):
        ScenarioConfig(mobility=True, speed_mps=100.0, slot_s=1.0, cell_radius_m=300.0, min_distance_m=250.0)
    ScenarioConfig(mobility=False, speed_mps=100.0, slot_s=1.0, cell_radius_m=300.0, min_distance_m=250.0)


def test_compiled_motion_is_geometry_mobility_step() -> None:
    """The compiled slot moves devices exactly as ``geometry.mobility_step`` (reflections included)."""
    cfg = ScenarioConfig(num_devices=8, mobility=True, speed_mps=30.0, cell_radius_m=22.0, min_distance_m=20.0)
    links, p = _moving_links(200, cfg, seed=6)
    rng = np.random.default_rng(7)
    crossed = 0
    for _ in range(100):
        z = rng.standard_normal((200, 4, 8))
        want_pos, want_heading = geometry.mobility_step(links.pos_xy, links.heading, cfg.speed_mps, cfg.slot_s,
                                                        p.turn_std_rad * z[:, 0], cfg.min_distance_m,
                                                        cfg.cell_radius_m)
        free = links.pos_xy + p.step_m * np.stack([np.cos(links.heading + p.turn_std_rad * z[:, 0]),
                                                   np.sin(links.heading + p.turn_std_rad * z[:, 0])], axis=-1)
        r_free = np.hypot(free[..., 0], free[..., 1])
        crossed += int(((r_free > cfg.cell_radius_m) | (r_free < cfg.min_distance_m)).sum())
        _advance(links, p, z)
        np.testing.assert_allclose(links.pos_xy, want_pos, rtol=0, atol=1e-9)
        np.testing.assert_allclose(np.angle(np.exp(1j * (links.heading - want_heading))), 0.0, atol=1e-9)
    assert crossed > 100  # the reflections were exercised


def test_compiled_path_loss_constants_are_pathloss_ones() -> None:
    assert physics._MOB_MIN_D2D_M == pathloss.UMI_MIN_D2D_M
    # devices inside the 10 m clamp and beyond the breakpoint, LOS and NLOS, against pathloss.umi_pathloss_db
    cfg = ScenarioConfig(num_devices=64, mobility=True, min_distance_m=2.0, cell_radius_m=400.0, shadowing=False)
    links = physics.init_links(cfg, np.random.default_rng(8), 20)
    rng = np.random.default_rng(0)
    links.los[:] = rng.random(links.los.shape) < 0.5
    radius, phi = rng.uniform(2.5, 399.0, links.los.shape), rng.uniform(-np.pi, np.pi, links.los.shape)
    links.pos_xy[:] = np.stack([radius * np.cos(phi), radius * np.sin(phi)], axis=-1)
    pm = physics.MobilityParams.from_config(cfg.replace(fading="rician"))  # keep the LOS state set above
    _advance(links, pm, np.zeros((20, 4, 64)))
    d2d, d3d = geometry.distances_m(links.pos_xy, cfg.bs_height_m, cfg.ut_height_m)
    assert (d2d < 10).any() and (d2d > 250).any()
    pl = pathloss.umi_pathloss_db(d3d, d2d, cfg.carrier_hz, cfg.bs_height_m, cfg.ut_height_m, links.los)
    np.testing.assert_allclose(-10 * np.log10(links.gain), pl, atol=1e-9)


def test_motion_keeps_devices_uniform_by_area() -> None:
    """The drop is the mobility model's stationary law: after many crossings of a small annulus the devices are
    still uniform by area (the CDF of r^2 stays linear)."""
    cfg = ScenarioConfig(num_devices=8, mobility=True, speed_mps=30.0, min_distance_m=20.0, cell_radius_m=60.0)
    links, p = _moving_links(500, cfg, seed=11)
    rng = np.random.default_rng(12)
    for _ in range(1000):  # 300 m travelled: several crossings of the 40 m wide annulus
        _advance(links, p, rng.standard_normal((500, 4, 8)))
    r2 = (links.d2d_m ** 2 - 20.0 ** 2) / (60.0 ** 2 - 20.0 ** 2)
    hist = np.histogram(r2, bins=10, range=(0.0, 1.0))[0] / r2.size
    assert np.all(np.abs(hist - 0.1) < 0.015), hist
