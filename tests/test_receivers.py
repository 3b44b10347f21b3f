"""Post-receiver SINR: MMSE / ZF / MMSE-SIC / cooperative SVD against brute-force formulas and MIMO theory."""

from __future__ import annotations

import numpy as np
import pytest

from vmimo_env import receivers


def random_case(rng: np.random.Generator, n: int, k: int, nr: int, g: int, *, snr_spread: tuple[float, float] =
                (-12.0, -8.0)) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    gain = 10 ** rng.uniform(*snr_spread, (n, k, 1))
    h = (rng.standard_normal((n, k, nr)) + 1j * rng.standard_normal((n, k, nr))) * np.sqrt(gain / 2)
    p = rng.uniform(1e-4, 0.2, (n, k))
    grp = rng.integers(0, g + 1, (n, k))
    noise = np.c_[np.zeros(n), rng.uniform(1e-16, 1e-14, (n, g))]  # column 0 unused (zero on purpose)
    return h, p, grp, noise


def brute_mmse(h, p, grp, noise):
    """SINR_k = p_k h_k^H (sigma^2 I + sum_{j != k, same group} p_j h_j h_j^H)^{-1} h_k, one solve per device."""
    n, k, nr = h.shape
    out = np.zeros((n, k))
    for i in range(n):
        for a in range(k):
            if grp[i, a] == 0:
                continue
            r = noise[i, grp[i, a]] * np.eye(nr, dtype=complex)
            for b in range(k):
                if b != a and grp[i, b] == grp[i, a]:
                    r += p[i, b] * np.outer(h[i, b], h[i, b].conj())
            out[i, a] = p[i, a] * np.real(h[i, a].conj() @ np.linalg.solve(r, h[i, a]))
    return out


def brute_zf(h, p, grp, noise):
    """SINR_k = p_k / (sigma^2 [(H^H H)^{-1}]_kk) per group, 0 for groups with more members than antennas."""
    n, k, nr = h.shape
    out = np.zeros((n, k))
    for i in range(n):
        for g in set(grp[i].tolist()) - {0}:
            idx = np.flatnonzero(grp[i] == g)
            if idx.size > nr:
                continue
            hg = h[i, idx].T
            d = np.real(np.diag(np.linalg.inv(hg.conj().T @ hg)))
            out[i, idx] = p[i, idx] / (noise[i, g] * d)
    return out


@pytest.mark.parametrize(("n", "k", "nr", "g"), [(1, 8, 4, 3), (40, 8, 4, 3), (6, 16, 8, 4), (3, 30, 2, 3),
                                                 (2, 24, 16, 2)])
@pytest.mark.parametrize("method", ["auto", "user", "antenna"])
def test_mmse_matches_definition(n: int, k: int, nr: int, g: int, method: str) -> None:
    h, p, grp, noise = random_case(np.random.default_rng(n * 7 + k), n, k, nr, g)
    sinr = receivers.mmse_sinr(h, p, grp, noise, g, method=method)
    ref = brute_mmse(h, p, grp, noise)
    assert sinr.dtype == np.float64 and sinr.shape == (n, k)
    np.testing.assert_allclose(sinr, ref, rtol=1e-7, atol=0)
    assert np.all(sinr[grp == 0] == 0.0)
    np.testing.assert_array_equal(receivers.post_receiver_sinr(h, p, grp, noise, g), receivers.mmse_sinr(
        h, p, grp, noise, g))


def test_zf_matches_definition_and_unresolvable_groups_get_zero() -> None:
    rng = np.random.default_rng(11)
    h, p, grp, noise = random_case(rng, 30, 9, 3, 2)
    sinr = receivers.post_receiver_sinr(h, p, grp, noise, 2, receiver="zf")
    np.testing.assert_allclose(sinr, brute_zf(h, p, grp, noise), rtol=1e-7)
    counts = np.stack([(grp == g).sum(1) for g in (1, 2)], axis=1)
    over = np.take_along_axis(np.c_[np.zeros(30, int), counts], grp, axis=1) > 3
    assert over.any() and np.all(sinr[over] == 0.0)
    assert np.all(sinr[~over & (grp > 0)] > 0.0)


def test_mmse_at_least_zf_per_device() -> None:
    for spread, noise_scale in (((-12.0, -8.0), 1.0), ((0.0, 0.0), 1e16)):  # 60-90 dB and -20-0 dB SNR
        h, p, grp, noise = random_case(np.random.default_rng(12), 200, 6, 4, 2, snr_spread=spread)
        noise = noise * noise_scale
        mmse = receivers.post_receiver_sinr(h, p, grp, noise, 2, receiver="mmse")
        zf = receivers.post_receiver_sinr(h, p, grp, noise, 2, receiver="zf")
        assert np.all(mmse >= zf * (1 - 1e-9))
    active = zf > 0
    assert np.mean(mmse[active] > zf[active] * 1.01) > 0.3  # strictly better where noise is not negligible


def test_mmse_tends_to_zf_at_high_snr_and_to_mrc_at_low_snr() -> None:
    rng = np.random.default_rng(13)
    n, k, nr = 50, 3, 4
    h = (rng.standard_normal((n, k, nr)) + 1j * rng.standard_normal((n, k, nr))) / np.sqrt(2)
    p = rng.uniform(0.5, 1.0, (n, k))
    grp = np.ones((n, k), dtype=int)
    for snr_db, close_to in ((60.0, "zf"), (-50.0, "mrc")):
        noise = np.c_[np.ones(n), np.full(n, 10 ** (-snr_db / 10))]
        mmse = receivers.post_receiver_sinr(h, p, grp, noise, 1)
        if close_to == "zf":
            other = receivers.post_receiver_sinr(h, p, grp, noise, 1, receiver="zf")
        else:
            other = p * (np.abs(h) ** 2).sum(-1) / noise[:, 1:2]  # matched filter, interference negligible
        rel = np.abs(mmse / other - 1)
        assert rel.max() < 1e-3, (snr_db, rel.max())
    # at moderate SNR neither limit holds, so the check above is not vacuous
    noise = np.c_[np.ones(n), np.ones(n)]
    mmse = receivers.post_receiver_sinr(h, p, grp, noise, 1)
    zf = receivers.post_receiver_sinr(h, p, grp, noise, 1, receiver="zf")
    assert np.abs(mmse / zf - 1).max() > 0.05


def test_mmse_sic_sum_rate_equals_log_det_per_realisation() -> None:
    rng = np.random.default_rng(14)
    h, p, grp, noise = random_case(rng, 60, 8, 4, 3)
    sic = receivers.post_receiver_sinr(h, p, grp, noise, 3, receiver="mmse_sic")
    mmse = receivers.post_receiver_sinr(h, p, grp, noise, 3)
    for i in range(60):
        for g in (1, 2, 3):
            m = grp[i] == g
            if not m.any():
                continue
            hg = h[i, m].T
            logdet = np.linalg.slogdet(np.eye(4) + hg @ np.diag(p[i, m]) @ hg.conj().T / noise[i, g])[1] / np.log(2)
            assert np.log2(1 + sic[i, m]).sum() == pytest.approx(logdet, rel=1e-9)
            assert np.log2(1 + mmse[i, m]).sum() <= logdet + 1e-9  # linear MMSE never beats capacity
    # decoding order: the strongest device of a group is decoded first, against every other member
    i = 0
    g = grp[i][grp[i] > 0][0]
    m = np.flatnonzero(grp[i] == g)
    snr = p[i, m] * (np.abs(h[i, m]) ** 2).sum(-1) / noise[i, g]
    first = m[np.argmax(snr)]
    assert sic[i, first] == pytest.approx(mmse[i, first], rel=1e-9)
    assert np.all(sic[grp == 0] == 0.0)


def test_ergodic_capacity_iid_rayleigh_4x4_at_10db() -> None:
    """Sum rate of the simulator's MMSE-SIC over i.i.d. Rayleigh 4 x 4 at 10 dB (power split over 4 users) equals
    E log2 det(I + SNR/4 H H^H) from an independent Monte-Carlo (different draws) within 1 %; ~10.95 bit/s/Hz."""
    m, nr, snr = 20000, 4, 10.0
    rng = np.random.default_rng(15)
    h = (rng.standard_normal((m, 4, nr)) + 1j * rng.standard_normal((m, 4, nr))) / np.sqrt(2)
    noise = np.ones((m, 2))
    sinr = receivers.post_receiver_sinr(h, np.full((m, 4), snr / 4), np.ones((m, 4), dtype=int), noise, 1,
                                        receiver="mmse_sic")
    sim = np.log2(1 + sinr).sum(1).mean()
    ref_rng = np.random.default_rng(16)
    hh = (ref_rng.standard_normal((m, nr, 4)) + 1j * ref_rng.standard_normal((m, nr, 4))) / np.sqrt(2)
    ref = (np.linalg.slogdet(np.eye(nr) + snr / 4 * hh @ hh.conj().transpose(0, 2, 1))[1] / np.log(2)).mean()
    assert sim == pytest.approx(ref, rel=0.01)
    assert 10.8 < ref < 11.1


def test_idle_exactly_zero_and_groups_do_not_interfere() -> None:
    rng = np.random.default_rng(17)
    h, p, grp, noise = random_case(rng, 20, 8, 4, 3)
    h2, p2 = h.copy(), p.copy()
    other = grp != 1
    h2[other] = h2[other] * 7 + 1e-5  # change everything outside group 1
    p2[other] = rng.uniform(0, 0.2, other.sum())
    for rx in receivers.RECEIVERS:
        a = receivers.post_receiver_sinr(h, p, grp, noise, 3, receiver=rx)
        b = receivers.post_receiver_sinr(h2, p2, grp, noise, 3, receiver=rx)
        np.testing.assert_allclose(a[grp == 1], b[grp == 1], rtol=1e-9)
        assert np.all(a[grp == 0] == 0.0) and np.all(b[grp == 0] == 0.0)
    for alloc in receivers.POWER_ALLOCATIONS:
        a = receivers.cooperative_svd_sinr(h, p, grp, noise, 3, power_allocation=alloc)
        b = receivers.cooperative_svd_sinr(h2, p2, grp, noise, 3, power_allocation=alloc)
        np.testing.assert_allclose(a[grp == 1], b[grp == 1], rtol=1e-9)
        assert np.all(a[grp == 0] == 0.0)
    # a device alone in its group gets the matched-filter SNR from every receiver
    solo = np.zeros((1, 8), dtype=int)
    solo[0, 3] = 2
    mrc = p[0, 3] * (np.abs(h[0, 3]) ** 2).sum() / noise[0, 2]
    for rx in receivers.RECEIVERS:
        s = receivers.post_receiver_sinr(h[:1], p[:1], solo, noise[:1], 3, receiver=rx)
        assert s[0, 3] == pytest.approx(mrc, rel=1e-9) and np.count_nonzero(s) == 1
    assert receivers.cooperative_svd_sinr(h[:1], p[:1], solo, noise[:1], 3)[0, 3] == pytest.approx(mrc, rel=1e-9)


def test_cooperative_svd_streams() -> None:
    rng = np.random.default_rng(18)
    n, k, nr = 40, 6, 4
    h, p, _, noise = random_case(rng, n, k, nr, 1)
    grp = np.ones((n, k), dtype=int)  # 6 members > 4 antennas: 4 streams, the 2 weakest devices wait
    eq = receivers.cooperative_svd_sinr(h, p, grp, noise, 1)
    wf = receivers.cooperative_svd_sinr(h, p, grp, noise, 1, power_allocation="waterfill")
    for i in range(n):
        sv2 = np.linalg.svd(h[i].T, compute_uv=False) ** 2  # descending
        gain = np.sum(np.abs(h[i]) ** 2, axis=1)
        rank = np.argsort(-gain, kind="stable")
        expected = np.zeros(k)
        expected[rank[:nr]] = p[i].sum() / nr * sv2 / noise[i, 1]  # i-th strongest device <-> i-th stream
        np.testing.assert_allclose(eq[i], expected, rtol=1e-8)
        assert np.log2(1 + wf[i]).sum() >= np.log2(1 + eq[i]).sum() - 1e-9  # water-filling is rate-optimal
        # water-filling spends exactly the pooled power
        pw = wf[i][rank[:nr]] * noise[i, 1] / sv2
        assert pw.sum() == pytest.approx(p[i].sum(), rel=1e-9)
    with pytest.raises(ValueError, match="power_allocation"):
        receivers.cooperative_svd_sinr(h, p, grp, noise, 1, power_allocation="greedy")


def test_invalid_receiver_name_raises() -> None:
    h, p, grp, noise = random_case(np.random.default_rng(19), 1, 2, 2, 1)
    with pytest.raises(ValueError, match="receiver"):
        receivers.post_receiver_sinr(h, p, grp, noise, 1, receiver="mrc")
    with pytest.raises(ValueError, match="method"):
        receivers.mmse_sinr(h, p, grp, noise, 1, method="fast")


def test_noise_power() -> None:
    # -174 dBm/Hz + 7 dB NF over 20 kHz: -174 + 7 + 43.01 = -123.99 dBm
    psd = 10 ** ((-174 + 7 - 30) / 10)
    assert 10 * np.log10(receivers.noise_power_w(20e3, psd)) + 30 == pytest.approx(-123.99, abs=0.01)
