"""The batched VMIMO slot dynamics for N environments at once.

All state lives in arrays with a leading environment axis; ``VMIMOEnv`` is the ``N = 1`` view and
``VMIMOVectorEnv`` the ``N > 1`` one, so both run exactly this code. One slot (``VMIMOCore.step``):

1. Scenes arrive (Poisson) and are queued at every device (a device encodes on demand, see 5).
2. The action fixes groups, transmit powers, latent prefix lengths and the groups' bandwidth shares.
3. Each device's channel uses are ``floor(W_g T)`` of its group's band; a latent of ``c`` reals takes ``c / 2``
   complex uses (analog, DeepJSCC-style). It sends ``n_k = min(queue, uses // (c/2), encode cap)`` latents,
   oldest first, and is on air for ``n_k c / 2 / W_g`` seconds (no repetition of spare uses: a device that
   needs less than the slot stops transmitting, which is what makes bandwidth trade SNR against air time).
4. The group's receiver (MMSE by default) gives each transmitting device its post-receiver SINR; every
   received value is the sent value plus N(0, 1 / SINR) noise (unit-power latents). When two devices of one
   modality deliver the same scene, the BS keeps the better copy (longer prefix, then higher SINR).
5. The encode cap ``round(encode_capacity * p_joint)`` comes from the seed's compute/memory process.
6. Scenes that every device has delivered, or whose deadline has come, are classified by the frozen fusion
   head in one batched call on the latents actually received. An expired scene with nothing received is wrong.
7. Energy (transmit, circuit, encoding, D2D) is charged; reward = correct / arrival_rate - λ_E E / E_ref.
8. Fading and the resource process advance one slot.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vmimo_env import channel, energy, geometry, receivers, resources
from vmimo_env.config import MODALITIES, ScenarioConfig
from vmimo_env.rng import BlockRNG, make_noise_table
from vmimo_env.scenes import ScenePool
from vmimo_env.spaces import normalise_shares

LATENT_DIM = 64
MAX_ARRIVALS = 8  # per slot; P(Poisson(3) > 8) < 4e-3, and arrivals beyond are dropped and counted wrong


@dataclass
class StepResult:
    """Per-environment outcome of one slot (arrays with a leading N axis)."""

    reward: np.ndarray  # (N,)
    accuracy_term: np.ndarray  # (N,) correct / arrival_rate
    energy_term: np.ndarray  # (N,) λ_E E / E_ref
    energy_j: np.ndarray  # (N, 4) transmit, circuit, encode, d2d
    arrived: np.ndarray  # (N,)
    dropped: np.ndarray  # (N,) arrivals that found the table full (counted wrong)
    closed: np.ndarray  # (N,) scenes classified this slot (incl. empty ones)
    correct: np.ndarray  # (N,)
    expired_empty: np.ndarray  # (N,) closed with no modality received
    sent: np.ndarray  # (N, K) latents delivered per device
    sinr: np.ndarray  # (N, K) linear post-receiver SINR (0 idle)
    group: np.ndarray  # (N, K) effective group (0 where the device did not transmit)
    power_w: np.ndarray  # (N, K)
    prefix: np.ndarray  # (N, K) chosen prefix length
    shares: np.ndarray  # (N, G)


class VMIMOCore:
    """State and dynamics of N VMIMO environments (see the module docstring for one slot)."""

    def __init__(self, cfg: ScenarioConfig, num_envs: int, pool: ScenePool, model, *, reward_table=None) -> None:
        self.cfg = cfg
        self.N = N = num_envs
        self.K = K = cfg.num_devices
        self.Nr = cfg.num_antennas
        self.G = cfg.num_groups
        self.D = D = cfg.deadline_slots
        self.A = A = MAX_ARRIVALS
        self.pool = pool
        self.model = model
        self.reward_table = reward_table

        # ------------------------------------------------------------ constants
        mod_index = {m: i for i, m in enumerate(MODALITIES)}
        self.M = len(MODALITIES)
        self.device_modality = np.array([mod_index[m] for m in cfg.device_modalities], dtype=np.int64)
        self.modality_onehot = np.zeros((K, self.M), dtype=np.float32)
        self.modality_onehot[np.arange(K), self.device_modality] = 1.0
        self.power_levels_w = cfg.max_power_w * 10.0 ** (np.asarray(cfg.power_levels_db) / 10.0)
        self.prefix_levels = np.asarray(cfg.compression_levels, dtype=np.int64)
        self.encoder_mflops = np.asarray(model.encoder_mflops, dtype=np.float64)[self.device_modality]  # (K,)
        self.rho = channel.doppler_rho(cfg.speed_mps, cfg.carrier_hz, cfg.slot_s)
        self.spatial_sqrt = channel.exponential_correlation_sqrt(self.Nr, cfg.spatial_correlation)
        # Poisson arrivals by inversion of a precomputed CDF (one uniform per slot, no per-env sampler call)
        lam = cfg.arrival_rate
        pmf = np.exp(-lam) * np.cumprod(np.r_[1.0, lam / np.arange(1, 4 * A)])
        self.arrival_cdf = np.cumsum(pmf)
        self.noise_table = make_noise_table()
        self.noise_span = self.noise_table.shape[0] - LATENT_DIM * D * A - 1
        self._lat_idx = np.arange(LATENT_DIM)
        self._rows = np.arange(N)
        self._iu0, self._iu1 = np.triu_indices(K, 1)

        # ------------------------------------------------------------ random streams
        # uniforms: arrivals (1), scene draws (A), noise offsets (K); normals: fading (2 K Nr), resources (2 K)
        self.rng = BlockRNG(N, n_uniform=1 + A + K, n_normal=2 * K * self.Nr + 2 * K)

        # ------------------------------------------------------------ state
        self.t = np.zeros(N, dtype=np.int64)
        self.gain = np.zeros((N, K))  # large-scale linear power gain
        self.h_los = np.zeros((N, K, self.Nr), dtype=np.complex128)  # LOS part incl. sqrt(K/(K+1))
        self.scat_scale = np.ones((N, K))  # sqrt(1/(K+1)) per device
        self.h_scat = np.zeros((N, K, self.Nr), dtype=np.complex128)
        self.h = np.zeros((N, K, self.Nr), dtype=np.complex128)
        self.res_state = np.zeros((N, K, 2))
        self.p_joint = np.ones((N, K))
        self.dist_m = np.zeros((N, K))
        self.los = np.zeros((N, K), dtype=bool)
        # scene table: rows indexed by arrival slot mod D, A arrivals per row
        self.active = np.zeros((N, D, A), dtype=bool)
        self.scene = np.zeros((N, D, A), dtype=np.int64)
        self.pending = np.zeros((N, D, A, K), dtype=bool)
        self.rx_len = np.zeros((N, D, A, self.M), dtype=np.int64)
        self.rx_score = np.zeros((N, D, A, self.M))
        self.rx_snr = np.ones((N, D, A, self.M))
        self.rx_off = np.zeros((N, D, A, self.M), dtype=np.int64)

    # ================================================================== reset
    def reset(self, env_ids: np.ndarray, seeds: list[int | None] | None = None) -> None:
        """Start new episodes in ``env_ids`` (re-seeding them when ``seeds`` is given)."""
        env_ids = np.asarray(env_ids, dtype=np.int64)
        if seeds is not None:
            self.rng.seed(env_ids, seeds)
        else:
            self.rng.discard(env_ids)
        cfg = self.cfg
        for i in env_ids.tolist():
            g = self.rng.spawn_generator(i)
            d2d = geometry.drop_devices(g, cfg.num_devices, cfg.min_distance_m, cfg.cell_radius_m)
            self._init_links(i, g, d2d)
        self.t[env_ids] = 0
        self.active[env_ids] = False
        self.pending[env_ids] = False
        self.rx_len[env_ids] = 0

    def _init_links(self, i: int, g: np.random.Generator, d2d: np.ndarray) -> None:
        cfg = self.cfg
        los, gain_db, k_factor, h_los_dir, h_scat, res = channel.initial_link_state(
            g, d2d, cfg, self.spatial_sqrt)
        self.dist_m[i] = d2d
        self.los[i] = los
        self.gain[i] = 10.0 ** (gain_db / 10.0)
        self.h_los[i] = h_los_dir * np.sqrt(k_factor / (k_factor + 1.0))[:, None]
        self.scat_scale[i] = np.sqrt(1.0 / (k_factor + 1.0))
        self.h_scat[i] = h_scat
        self.res_state[i] = res
        self.p_joint[i] = resources.p_joint(res, cfg)
        self._compose_channel(np.array([i]))

    def _compose_channel(self, ids: np.ndarray | slice = slice(None)) -> None:
        amp = np.sqrt(self.gain[ids])[..., None]
        self.h[ids] = amp * (self.h_los[ids] + self.scat_scale[ids][..., None] * self.h_scat[ids])

    # ================================================================== step
    def queue_lengths(self) -> np.ndarray:
        """Scenes waiting at each device, (N, K)."""
        return self.pending.sum(axis=(1, 2))

    def encode_cap(self) -> np.ndarray:
        return np.floor(self.cfg.encode_capacity * self.p_joint + 0.5).astype(np.int64)

    def step(self, group: np.ndarray, power_idx: np.ndarray, comp_idx: np.ndarray, bw_raw: np.ndarray) -> StepResult:
        cfg = self.cfg
        N, K, D, A, G = self.N, self.K, self.D, self.A, self.G
        rows = self._rows
        u, z = self.rng.next()

        # ---------------------------------------------------------------- 1. arrivals
        r_now = self.t % D
        n_arr = np.searchsorted(self.arrival_cdf, u[:, 0])
        n_in = np.minimum(n_arr, A)
        dropped = n_arr - n_in
        new = np.arange(A)[None, :] < n_in[:, None]  # (N, A)
        self.active[rows, r_now] = new
        self.scene[rows, r_now] = (u[:, 1:1 + A] * self.pool.size).astype(np.int64)
        self.pending[rows, r_now] = new[:, :, None]
        self.rx_len[rows, r_now] = 0
        self.rx_score[rows, r_now] = 0.0

        # ---------------------------------------------------------------- 2-3. resources and channel uses
        queue = self.pending.sum(axis=(1, 2))
        shares = normalise_shares(bw_raw.astype(np.float64))
        band_hz = shares * cfg.total_bandwidth_hz  # (N, G)
        uses_g = np.floor(band_hz * cfg.slot_s)
        in_group = group > 0
        gidx = np.maximum(group - 1, 0)
        uses_k = np.where(in_group, np.take_along_axis(uses_g, gidx, axis=1), 0.0)
        prefix = self.prefix_levels[comp_idx]
        fit = (uses_k // (prefix // 2)).astype(np.int64)
        n_send = np.minimum(np.minimum(queue, fit), self.encode_cap())
        tx = n_send > 0
        geff = np.where(tx, group, 0)
        power_w = np.where(tx, self.power_levels_w[power_idx], 0.0)
        bw_k = np.take_along_axis(band_hz, gidx, axis=1)
        airtime = np.where(tx, n_send * (prefix // 2) / np.maximum(bw_k, 1e-30), 0.0)

        # ---------------------------------------------------------------- 4. receiver
        noise_w = np.empty((N, G + 1))
        noise_w[:, 0] = 1.0
        noise_w[:, 1:] = np.maximum(band_hz, 1e-30) * cfg.noise_psd_w_hz
        if cfg.cooperative:
            sinr = receivers.cooperative_svd_sinr(self.h, power_w, geff, noise_w, G)
        else:
            sinr = receivers.post_receiver_sinr(self.h, power_w, geff, noise_w, G, receiver=cfg.receiver)

        # ---------------------------------------------------------------- FIFO delivery
        order = (self.t[:, None] - D + 1 + np.arange(D)[None, :]) % D  # rows oldest first, (N, D)
        pend_o = self.pending[rows[:, None], order].reshape(N, D * A, K)
        send_o = pend_o & (np.cumsum(pend_o, axis=1) <= n_send[:, None, :])
        self.pending[rows[:, None], order] = (pend_o & ~send_o).reshape(N, D, A, K)
        sent_tbl = np.zeros((N, D, A, K), dtype=bool)
        sent_tbl[rows[:, None], order] = send_o.reshape(N, D, A, K)
        self._receive(sent_tbl, prefix, sinr, u[:, 1 + A:])

        # ---------------------------------------------------------------- 6. close and classify
        deadline = np.zeros((N, D), dtype=bool)
        deadline[rows, order[:, 0]] = True
        done = ~self.pending.any(axis=3)
        close = self.active & (done | deadline[:, :, None])
        correct, empty, closed = self._classify(close)
        self.active &= ~close
        self.pending &= ~close[..., None]

        # ---------------------------------------------------------------- 7. energy and reward
        e_tx = energy.transmit_energy_j(power_w, airtime, cfg.pa_efficiency)
        e_circ = energy.circuit_energy_j(airtime, cfg.circuit_power_w)
        e_enc = energy.encode_energy_j(n_send, self.encoder_mflops, cfg.encode_energy_j_per_mflop)
        e_d2d = np.zeros((N, K))
        if cfg.cooperative:
            e_d2d = energy.d2d_energy_j(self._coop_symbols(geff, n_send, prefix), cfg.d2d_energy_j_per_symbol)
        energy_j = np.stack([e_tx.sum(1), e_circ.sum(1), e_enc.sum(1), e_d2d.sum(1)], axis=1)
        acc_term = (correct + 0.0) / cfg.arrival_rate
        en_term = cfg.energy_weight * energy_j.sum(1) / cfg.energy_ref_j
        reward = acc_term - en_term

        # ---------------------------------------------------------------- 8. advance
        self._advance(z)
        self.t += 1
        return StepResult(reward, acc_term, en_term, energy_j, n_in, dropped, closed + dropped, correct,
                          empty + dropped, n_send, sinr, geff, power_w, prefix, shares)

    def _receive(self, sent: np.ndarray, prefix: np.ndarray, sinr: np.ndarray, u_off: np.ndarray) -> None:
        """Record what the BS holds per (scene, modality): the best copy delivered so far."""
        if not sent.any():
            return
        N, D, A, _ = sent.shape
        # score orders copies by prefix length first, SINR second (sinr/(1+sinr) lies in [0, 1))
        score_k = prefix + sinr / (1.0 + sinr)  # (N, K)
        cand = np.where(sent, score_k[:, None, None, :], 0.0)  # (N, D, A, K)
        best = np.zeros((N, D, A, self.M))
        best_dev = np.zeros((N, D, A, self.M), dtype=np.int64)
        for m in range(self.M):  # M = 5 modalities: a handful of vector ops each
            devs = np.flatnonzero(self.device_modality == m)
            if devs.size == 0:
                continue
            sub = cand[..., devs]
            j = sub.argmax(axis=-1)
            best[..., m] = np.take_along_axis(sub, j[..., None], axis=-1)[..., 0]
            best_dev[..., m] = devs[j]
        better = best > self.rx_score
        if not better.any():
            return
        n, d, a, m = np.nonzero(better)
        k = best_dev[n, d, a, m]
        self.rx_score[n, d, a, m] = best[n, d, a, m]
        self.rx_len[n, d, a, m] = prefix[n, k]
        self.rx_snr[n, d, a, m] = sinr[n, k]
        # disjoint windows for the scenes a device sends in one slot; independent bases across devices
        base = (u_off[n, k] * self.noise_span).astype(np.int64)
        self.rx_off[n, d, a, m] = base + LATENT_DIM * (d * A + a)

    def _classify(self, close: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        N = self.N
        closed = close.sum(axis=(1, 2))
        if not closed.any():
            z = np.zeros(N, dtype=np.int64)
            return z, z, closed
        env, d, a = np.nonzero(close)
        rx_len = self.rx_len[env, d, a]  # (n, M)
        has_any = rx_len.any(axis=1)
        empty = np.bincount(env[~has_any], minlength=N)
        env, d, a, rx_len = env[has_any], d[has_any], a[has_any], rx_len[has_any]
        correct = np.zeros(N, dtype=np.int64)
        if env.size:
            scene = self.scene[env, d, a]
            lat = self.pool.latents[scene]  # (n, M, 64)
            snr = self.rx_snr[env, d, a]
            noise = self.noise_table[self.rx_off[env, d, a][..., None] + self._lat_idx]
            rx = lat + noise * (1.0 / np.sqrt(np.maximum(snr, 1e-12)))[..., None].astype(np.float32)
            rx *= self._lat_idx < rx_len[..., None]
            if self.reward_table is not None:
                hit = self.reward_table.sample_correct(rx_len, snr, self.pool.labels[scene], rx)
            else:
                pred = self.model.classify(rx, rx_len).argmax(axis=1)
                hit = pred == self.pool.labels[scene]
            correct = np.bincount(env[hit], minlength=N)
        return correct, empty, closed

    def _coop_symbols(self, geff: np.ndarray, n_send: np.ndarray, prefix: np.ndarray) -> np.ndarray:
        """D2D symbols each device sends in cooperative mode: its latents to every other group member."""
        members = np.stack([(geff == g + 1).sum(1) for g in range(self.G)], axis=1)  # (N, G)
        gidx = np.maximum(geff - 1, 0)
        others = np.where(geff > 0, np.take_along_axis(members, gidx, axis=1) - 1, 0)
        return n_send * (prefix // 2) * others

    def _advance(self, z: np.ndarray) -> None:
        N, K, Nr = self.N, self.K, self.Nr
        w = (z[:, :K * Nr] + 1j * z[:, K * Nr:2 * K * Nr]).reshape(N, K, Nr) * np.sqrt(0.5)
        if self.spatial_sqrt is not None:
            w = w @ self.spatial_sqrt.T
        self.h_scat = channel.gauss_markov_step(self.h_scat, self.rho, w)
        self._compose_channel()
        eps = z[:, 2 * K * Nr:].reshape(N, K, 2)
        self.res_state = resources.ar1_step(self.res_state, eps, self.cfg)
        self.p_joint = resources.p_joint(self.res_state, self.cfg)

    # ================================================================== observation
    def obs_layout(self) -> dict[str, tuple[int, int]]:
        """Name -> (start, stop) of each block in the flat observation (see ``VMIMOEnv`` docstring)."""
        K, M = self.K, self.M
        sizes = [("gain_db", K), ("snr_db", K), ("queue", K), ("hol_age", K), ("p_joint", K),
                 ("modality", K * M), ("correlation", K * (K - 1) // 2)]
        if self.cfg.obs_full_csi:
            sizes.append(("csi", 2 * K * self.Nr))
        sizes.append(("time", 1))
        out, start = {}, 0
        for name, n in sizes:
            out[name] = (start, start + n)
            start += n
        return out

    @property
    def obs_dim(self) -> int:
        return max(stop for _, stop in self.obs_layout().values())

    def observe(self) -> np.ndarray:
        """Flat float32 observation (N, obs_dim), every entry O(1); layout in ``obs_layout``."""
        cfg = self.cfg
        N, K, D = self.N, self.K, self.D
        h = self.h
        norm2 = np.einsum("nkr,nkr->nk", h.real, h.real) + np.einsum("nkr,nkr->nk", h.imag, h.imag)
        ref_noise = cfg.noise_psd_w_hz * cfg.total_bandwidth_hz / self.G
        snr_db = 10.0 * np.log10(np.maximum(cfg.max_power_w * norm2 / ref_noise, 1e-12))
        gain_db = 10.0 * np.log10(self.gain)
        rowpend = self.pending.any(axis=2)  # (N, D, K)
        age = (self.t[:, None] - np.arange(D)[None, :]) % D  # (N, D) age in slots of each row's scenes
        hol = np.where(rowpend, age[:, :, None], 0).max(axis=1)
        queue = rowpend.sum(axis=1) if self.A == 1 else self.pending.sum(axis=(1, 2))
        gram = np.abs(np.einsum("nir,njr->nij", h.conj(), h))
        nrm = np.sqrt(np.maximum(norm2, 1e-300))
        corr = (gram / (nrm[:, :, None] * nrm[:, None, :]))[:, self._iu0, self._iu1]
        parts = [
            (gain_db + 100.0) / 20.0,
            snr_db / 20.0,
            queue / (cfg.arrival_rate * D),
            hol / D,
            self.p_joint,
            np.broadcast_to(self.modality_onehot.reshape(1, -1), (N, K * self.M)),
            corr,
        ]
        if cfg.obs_full_csi:
            hn = h / np.sqrt(self.gain)[..., None]
            parts += [hn.real.reshape(N, -1), hn.imag.reshape(N, -1)]
        parts.append((self.t / cfg.horizon)[:, None])
        return np.concatenate(parts, axis=1).astype(np.float32)
