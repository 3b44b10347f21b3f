"""Post-receiver SINR of the virtual-MIMO uplink: linear MMSE (default), ZF, MMSE-SIC, cooperative SVD array.

Setting (docs/MODEL.md, "Receivers").
Devices with the same group id g in 1..G transmit at the same time on group g's band and
are received jointly by the Nr-antenna BS; groups use orthogonal bands, so devices in different groups never
interfere; group 0 is idle. With ``h_k`` the (Nr,) channel of device k including its large-scale amplitude,
``p_k`` its transmit power (W) and ``sigma_g^2`` the noise power in its group's band (W), the per-device SINRs
are, for k in group g with members S_g:

- linear MMSE (Tse & Viswanath, *Fundamentals of Wireless Communication*, §8.3.3)::

      SINR_k = p_k h_k^H (sigma_g^2 I + sum_{j in S_g, j != k} p_j h_j h_j^H)^{-1} h_k

  evaluated without a solve per device, by one factorisation per group or per environment (see "Numerics").
- zero forcing::

      SINR_k = p_k / (sigma_g^2 [(H_g^H H_g)^{-1}]_kk),   H_g = [h_j]_{j in S_g}  (Nr x m)

  ZF can null at most Nr - 1 interferers: a group with more members than antennas (m > Nr) is unresolvable and
  all its members get SINR 0 (the Gram matrix is singular; a pseudo-inverse would not give an interference-free
  stream either). Likewise a device whose channel lies (numerically: all but 1e-9 of its energy) in the span of
  its group-mates' channels gets 0.
- MMSE-SIC (Tse & Viswanath §8.3.4): within a group, devices are decoded in descending order of received SNR
  ``p_k ||h_k||^2 / sigma_g^2`` (ties by device index); each is detected by linear MMSE against the devices not
  yet decoded and then cancelled. By the chain rule of mutual information the group's sum of
  ``log2(1 + SINR_k)`` equals ``log2 det(I + H_g P_g H_g^H / sigma_g^2)`` exactly (the capacity of the group's
  multiple-access channel). Computed as the Cholesky pivots of ``I + Gamma`` in reverse decoding order, where
  ``Gamma_kj = sqrt(p_k p_j) h_k^H h_j / sigma_g^2`` (same group), since the pivot of position i is the ratio of
  leading principal minors ``det(I + Gamma_{:i+1}) / det(I + Gamma_{:i}) = 1 + SINR``.
- cooperative SVD array (``cooperative_svd_sinr``): see its docstring.

Shapes: ``h`` complex (N, K, Nr); ``power_w`` (N, K) W; ``group`` int (N, K) in 0..G; ``noise_w`` (N, G + 1) W
(column 0 unused, every used column > 0). Every function returns float64 (N, K) linear SINR, exactly 0 for idle
devices (group 0), for devices with zero power and for unresolvable ZF groups.

Numerics and cost. The receivers are computed in the user domain from the noise-normalised matrix
``Gamma_kj = sqrt(p_k p_j) h_k^H h_j / sigma_g^2`` (k, j in the same group, 0 across groups and for idle devices),
one K x K matrix per environment whose blocks are the groups:

- MMSE: ``1 + SINR_k = 1 / [(I + Gamma)^{-1}]_kk`` (the same quantity as the formula above, by the matrix
  inversion lemma; Tse & Viswanath eq. 8.69), or in the antenna domain with one Cholesky factor per group,
  ``R~_g = I + sum_j p_j h_j h_j^H / sigma_g^2 = L L^H``, ``q_k = p_k ||L^{-1} h_k||^2 / sigma_g^2`` and
  ``SINR_k = q_k / (1 - q_k)``. Both are exact in exact arithmetic. In floating point, forming ``I + (terms of
  size SNR)`` perturbs the unit eigenvalues by ~eps * SNR: the user-domain route then errs by ~eps * SNR
  (relative) when a group has more members than antennas, the antenna-domain route when it has fewer
  (measured: 1e-16..1e-8 at 90 dB SNR in the good regime, up to ~1e-7 in the other). ``method="auto"`` takes the
  antenna domain for large K > 2 Nr (big groups, and faster there) and the user domain otherwise. (An explicit
  inverse instead of the Cholesky factor, ``q_k = p_k h_k^H R^{-1} h_k``, is much worse, ~eps * SINR^2: 5e-3 at
  70 dB; this environment's defaults -- a 20 kHz shared band, 23 dBm devices 20-250 m away -- give 60-90 dB.)
- ZF: ``SINR_k = 1 / [Gamma_g^{-1}]_kk``; MMSE-SIC: Cholesky pivots of ``I + Gamma`` (above).

Cost: user domain, one batched complex matmul for the Gram matrices and one batched LAPACK call (inverse or
Cholesky) on N matrices of K x K, O(K^2 Nr + K^3) per environment, ~15 numpy calls; antenna domain (MMSE only),
O(K Nr^2 G + G Nr^3) per environment, linear in K, ~4 Nr + 15 calls.
"""

from __future__ import annotations

import functools

import numpy as np

RECEIVERS: tuple[str, ...] = ("mmse", "zf", "mmse_sic")
POWER_ALLOCATIONS: tuple[str, ...] = ("equal", "waterfill")


def noise_power_w(bandwidth_hz: np.ndarray | float, noise_psd_w_hz: float) -> np.ndarray:
    """Thermal noise power N0 W (W) in a band of ``bandwidth_hz``; ``noise_psd_w_hz`` includes the noise figure."""
    return np.asarray(bandwidth_hz, dtype=np.float64) * noise_psd_w_hz


@functools.lru_cache(maxsize=64)
def _group_ids(num_groups: int) -> np.ndarray:
    return np.arange(1, num_groups + 1).reshape(1, num_groups, 1)


@functools.lru_cache(maxsize=64)
def _row_offsets(n_env: int, n_cols: int) -> np.ndarray:
    return (np.arange(n_env) * n_cols)[:, None]


@functools.lru_cache(maxsize=64)
def _eye(n: int) -> np.ndarray:
    eye = np.eye(n)
    eye.flags.writeable = False  # shared between calls
    return eye


def _snr_weights(power_w: np.ndarray, group: np.ndarray, noise_w: np.ndarray) -> np.ndarray:
    """p_k / sigma_g^2 for devices in a group, 0 for idle ones (column 0 of noise_w is never read)."""
    sigma2 = np.take(noise_w, group + _row_offsets(*noise_w.shape))  # noise of each device's own band
    return np.divide(power_w, sigma2, out=np.zeros(power_w.shape), where=group > 0)


def normalized_gram(h: np.ndarray, power_w: np.ndarray, group: np.ndarray, noise_w: np.ndarray,
                    num_groups: int | None = None) -> np.ndarray:
    """User-domain matrix Gamma (N, K, K): ``sqrt(p_k p_j) h_k^H h_j / sigma_g^2`` for k, j in the same group g
    (1..G), 0 otherwise (idle devices have zero rows and columns). ``det(I + Gamma_g)`` equals the group's
    ``det(I + H_g P_g H_g^H / sigma_g^2)`` by Sylvester's determinant identity. (``num_groups`` is unused:
    the group ids themselves say who shares a band.)"""
    hs = h * np.sqrt(_snr_weights(power_w, group, noise_w))[..., None]
    gram = hs.conj() @ hs.transpose(0, 2, 1)  # gram[n, k, j] = conj(h_k) . h_j (scaled)
    gram *= group[:, :, None] == group[:, None, :]  # orthogonal bands: no coupling across groups
    return gram


def _mmse_sinr_user_domain(h: np.ndarray, power_w: np.ndarray, group: np.ndarray, noise_w: np.ndarray,
                           num_groups: int) -> np.ndarray:
    """MMSE SINR as ``1 / [(I + Gamma)^{-1}]_kk - 1``: one K x K inverse per environment."""
    a = normalized_gram(h, power_w, group, noise_w)
    a += _eye(h.shape[1])
    d = np.diagonal(np.linalg.inv(a), axis1=1, axis2=2).real  # = 1 / (1 + SINR_k), in (0, 1]
    return np.reciprocal(d) - 1.0


def _mmse_sinr_antenna_domain(h: np.ndarray, power_w: np.ndarray, group: np.ndarray, noise_w: np.ndarray,
                              num_groups: int) -> np.ndarray:
    """MMSE SINR via one Cholesky factor per group: ``q_k = w_k ||L_g^{-1} h_k||^2``, ``SINR = q / (1 - q)``."""
    n_env, k_dev, nr = h.shape
    snr_w = _snr_weights(power_w, group, noise_w)  # (N, K) p / sigma^2 of the device's own band
    w = (group[:, None, :] == _group_ids(num_groups)) * snr_w[:, None, :]  # (N, G, K) membership x p / sigma^2
    # per-device outer products h_i conj(h_j) as interleaved reals, summed into every group by one real matmul
    outer = (h[..., :, None] * h.conj()[..., None, :]).reshape(n_env, k_dev, nr * nr).view(np.float64)
    r = (w @ outer).view(np.complex128).reshape(n_env * num_groups, nr, nr)  # sum_j p_j/sigma^2 h_j h_j^H
    r += _eye(nr)
    chol = np.linalg.cholesky(r)
    # each device's own group factor, laid out (Nr, Nr, N, K) so the substitution runs along the long axes
    flat = np.maximum(group - 1, 0) + _row_offsets(n_env, num_groups)
    lt = np.ascontiguousarray(chol.transpose(1, 2, 0))[:, :, flat]
    ht = np.moveaxis(h, 2, 0)
    y = np.empty(ht.shape, dtype=np.complex128)  # y = L^{-1} h_k by forward substitution (loop over antennas)
    y[0] = ht[0] / lt[0, 0].real
    for i in range(1, nr):
        y[i] = (ht[i] - (lt[i, :i] * y[:i]).sum(axis=0)) / lt[i, i].real
    q = (y.real**2 + y.imag**2).sum(axis=0) * snr_w
    return q / np.maximum(1.0 - q, 1e-300)  # q < 1 in exact arithmetic; the floor only guards round-off


def mmse_sinr(h: np.ndarray, power_w: np.ndarray, group: np.ndarray, noise_w: np.ndarray, num_groups: int,
              method: str = "auto") -> np.ndarray:
    """Linear-MMSE post-receiver SINR (N, K) (formula and methods in the module docstring).

    ``method``: ``"user"`` (K x K per environment), ``"antenna"`` (Nr x Nr Cholesky per group) or ``"auto"``:
    the antenna domain when K > 2 Nr, Nr <= 8 and N K^3 >= 65536 (where it was measured faster: its cost is
    linear in K but it makes ~4 Nr + 15 numpy calls against ~15), the user domain otherwise. Groups tend to
    outnumber the antennas exactly when K > 2 Nr, which is also where the antenna domain is the more accurate.
    """
    n_env, k_dev, nr = h.shape
    if method == "auto":
        method = "antenna" if (k_dev > 2 * nr and nr <= 8 and n_env * k_dev**3 >= 65536) else "user"
    if method == "user":
        sinr = _mmse_sinr_user_domain(h, power_w, group, noise_w, num_groups)
    elif method == "antenna":
        sinr = _mmse_sinr_antenna_domain(h, power_w, group, noise_w, num_groups)
    else:
        raise ValueError(f"method must be 'auto', 'user' or 'antenna', got {method!r}")
    # idle and zero-power devices decouple (d = 1, q = 0) and come out 0; the clip removes round-off below 0
    return np.maximum(sinr, 0.0, out=sinr)


def zf_sinr(h: np.ndarray, power_w: np.ndarray, group: np.ndarray, noise_w: np.ndarray,
            num_groups: int) -> np.ndarray:
    """Zero-forcing SINR ``1 / [Gamma_g^{-1}]_kk`` = ``p_k / (sigma^2 [(H^H H)^{-1}]_kk)``; groups with more
    members than antennas get 0 (see the module docstring). One K x K inverse per environment."""
    _, k_dev, nr = h.shape
    active = (group > 0) & (group <= num_groups) & (power_w > 0)
    gidx = np.where(active, group, 0)
    counts = (gidx[:, :, None] == np.arange(num_groups + 1)).sum(axis=1)  # (N, G + 1) members per group
    resolvable = active & (np.take_along_axis(counts, gidx, axis=1) <= nr)
    gram = normalized_gram(h, power_w, np.where(resolvable, gidx, 0), noise_w, num_groups)
    # decouple devices outside resolvable groups with a unit diagonal so one inverse serves the whole env; a
    # 1e-12 relative ridge keeps rank-deficient groups (a channel in the span of the others) invertible
    idx = np.arange(k_dev)
    snr = gram[:, idx, idx].real
    gram[:, idx, idx] = np.where(resolvable, snr * (1.0 + 1e-12), 1.0)
    d = np.diagonal(np.linalg.inv(gram), axis1=1, axis2=2).real
    with np.errstate(divide="ignore", invalid="ignore"):
        sinr = 1.0 / d
        # ZF SINR = SNR x (fraction of the device's channel energy outside its group-mates' span); below 1e-9 the
        # channel is numerically in that span (rank-deficient group) and ZF has nothing to give it
        separable = sinr > 1e-9 * snr
    return np.where(resolvable & separable & (d > 0), sinr, 0.0)


def mmse_sic_sinr(h: np.ndarray, power_w: np.ndarray, group: np.ndarray, noise_w: np.ndarray,
                  num_groups: int) -> np.ndarray:
    """MMSE-SIC SINR, decoding each group in descending received SNR (see the module docstring)."""
    n_env, k_dev, _ = h.shape
    active = (group > 0) & (group <= num_groups)
    a = normalized_gram(h, power_w, group, noise_w, num_groups)
    snr = np.diagonal(a, axis1=1, axis2=2).real  # received SNR p_k ||h_k||^2 / sigma^2
    # position 0 = decoded last: ascending SNR; sorting the reversed array stably puts the higher device index
    # first among equal SNRs, so ties are decoded in ascending device index
    order = k_dev - 1 - np.argsort(snr[:, ::-1], axis=1, kind="stable")
    rows = np.arange(n_env)[:, None]
    a_perm = a[rows[..., None], order[:, :, None], order[:, None, :]] + _eye(k_dev)
    chol = np.linalg.cholesky(a_perm)
    pivots = np.diagonal(chol, axis1=1, axis2=2).real ** 2  # 1 + SINR in permuted order
    sinr = np.empty((n_env, k_dev))
    sinr[rows, order] = pivots - 1.0
    return np.where(active, np.maximum(sinr, 0.0), 0.0)


_DISPATCH = {"mmse": mmse_sinr, "zf": zf_sinr, "mmse_sic": mmse_sic_sinr}


def post_receiver_sinr(h: np.ndarray, power_w: np.ndarray, group: np.ndarray, noise_w: np.ndarray,
                       num_groups: int, receiver: str = "mmse") -> np.ndarray:
    """Post-receiver SINR (N, K) of every device for ``receiver`` in ``("mmse", "zf", "mmse_sic")``.

    h complex (N, K, Nr) incl. large-scale amplitude; power_w (N, K) W (ignored where group == 0); group int
    (N, K) in 0..G, 0 = idle; noise_w (N, G + 1) W per group band (column 0 unused). Exactly 0 for idle devices.
    """
    try:
        fn = _DISPATCH[receiver]
    except KeyError:
        raise ValueError(f"receiver must be one of {list(RECEIVERS)}, got {receiver!r}") from None
    return fn(np.asarray(h), np.asarray(power_w, dtype=np.float64), np.asarray(group), np.asarray(noise_w,
              dtype=np.float64), num_groups)


def _waterfill(gains: np.ndarray, total: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Water-filling powers over streams with SNR-per-watt ``gains`` (..., S), sorted descending, only where
    ``valid``; ``total`` (...) watts. Level mu solves sum (mu - 1/g)^+ = P; vectorised over candidate counts."""
    with np.errstate(divide="ignore"):  # a zero-gain stream gets an infinite floor: never above water
        inv = np.where(valid, 1.0 / np.where(valid, gains, 1.0), np.inf)
    n = np.arange(1, gains.shape[-1] + 1)
    csum = np.cumsum(np.where(valid, inv, 0.0), axis=-1)
    mu = (total[..., None] + csum) / n  # water level if the first n streams are active
    ok = valid & (mu > inv)  # stream n is above water at level mu_n (monotone in n for sorted gains)
    n_act = ok.sum(axis=-1, keepdims=True)
    level = np.take_along_axis(mu, np.maximum(n_act - 1, 0), axis=-1)
    return np.where(valid & (n <= n_act), np.maximum(level - inv, 0.0), 0.0)


def cooperative_svd_sinr(h: np.ndarray, power_w: np.ndarray, group: np.ndarray, noise_w: np.ndarray,
                         num_groups: int, power_allocation: str = "equal") -> np.ndarray:
    """Per-device SINR of the cooperative virtual array (seed NAS-VMIMO): SVD-precoded joint transmission.

    Model. The m members of group g first exchange their latents over D2D (energy charged by the caller per
    exchanged symbol, ``energy.d2d_energy_j``), so every member holds every member's data and the group acts as
    one m-antenna transmitter with channel ``H_g`` (Nr x m) and the pooled power ``P_g = sum_k p_k`` (a sum-power
    constraint; each device still spends its own p_k, which is what the energy model charges). With
    ``H_g = U S V^H`` it precodes r = min(Nr, m) streams with V and the BS combines with U^H, giving r parallel
    interference-free eigen-channels with SNR ``P_i s_i^2 / sigma_g^2``. Power split ``"equal"``
    (P_i = P_g / r) or ``"waterfill"`` (capacity-optimal over the eigen-channels; weak streams may get none).

    Stream assignment: the members are ranked by their own channel gain ``||h_k||^2`` (descending, ties by index)
    and the i-th ranked member's latents ride on the i-th strongest eigen-stream; members ranked beyond r
    (m > Nr) get no stream this slot (SINR 0). Returns (N, K) linear SINR, 0 for idle devices.
    """
    if power_allocation not in POWER_ALLOCATIONS:
        raise ValueError(f"power_allocation must be one of {list(POWER_ALLOCATIONS)}, got {power_allocation!r}")
    h = np.asarray(h)
    power_w = np.asarray(power_w, dtype=np.float64)
    n_env, k_dev, nr = h.shape
    group = np.where(power_w > 0, group, 0)  # a member without power adds no antenna: treated as idle
    member = group[:, None, :] == _group_ids(num_groups)  # (N, G, K)
    outer = (h[..., :, None] * h.conj()[..., None, :]).reshape(n_env, k_dev, nr * nr).view(np.float64)
    cov = (member.astype(np.float64) @ outer).view(np.complex128).reshape(n_env, num_groups, nr, nr)
    eig = np.linalg.eigvalsh(cov)[..., ::-1].clip(min=0.0)  # (N, G, Nr) squared singular values, descending
    m = member.sum(axis=2)  # (N, G)
    r = np.minimum(m, nr)
    valid = np.arange(nr) < r[..., None]  # (N, G, Nr): the r strongest eigen-channels carry streams
    p_tot = (member * power_w[:, None, :]).sum(axis=2)  # (N, G)
    gains = eig / noise_w[:, 1:, None]  # SNR per watt of each eigen-channel
    if power_allocation == "equal":
        p_stream = np.where(valid, (p_tot / np.maximum(r, 1))[..., None], 0.0)
    else:
        p_stream = _waterfill(gains, p_tot, valid)
    stream_sinr = p_stream * gains  # (N, G, Nr)
    # rank of each device among its group by ||h_k||^2 (descending, ties by device index)
    g2 = np.einsum("nkr,nkr->nk", h.real, h.real) + np.einsum("nkr,nkr->nk", h.imag, h.imag)
    same = group[:, :, None] == group[:, None, :]
    idx = np.arange(k_dev)
    ahead = (g2[:, None, :] > g2[:, :, None]) | ((g2[:, None, :] == g2[:, :, None]) & (idx < idx[:, None]))
    rank = (same & ahead).sum(axis=2)  # (N, K)
    active = (group > 0) & (group <= num_groups)
    gidx = np.where(active, group - 1, 0)
    per_group = np.take_along_axis(stream_sinr, gidx[..., None], axis=1)  # (N, K, Nr) streams of own group
    sinr = np.take_along_axis(per_group, np.minimum(rank, nr - 1)[..., None], axis=2)[..., 0]
    return np.where(active & (rank < nr), sinr, 0.0)
