"""The batched VMIMO slot dynamics for N environments at once.

All state lives in arrays with a leading environment axis; ``VMIMOEnv`` is the ``N = 1`` view and
``VMIMOVectorEnv`` the ``N > 1`` one, so both run exactly this code. One slot (``VMIMOCore.step``):

1. Scenes arrive (Poisson, or the hidden-phase MMPP of ``traffic``) and are queued at every device (see 5).
2. The action fixes groups, transmit powers, latent prefix lengths and the groups' bandwidth shares.
3. Each device's channel uses are ``floor(W_g T)`` of its group's band; a latent of ``c`` reals takes ``c / 2``
   complex uses (analog, DeepJSCC-style). It sends ``n_k = min(queue, uses // (c/2), encode cap)`` latents,
   oldest first, and is on air for ``n_k c / 2 / W_g`` seconds (no repetition of spare uses: a device that
   needs less than the slot stops transmitting, which is what makes bandwidth trade SNR against air time).
4. The group's receiver (MMSE by default) gives each transmitting device its post-receiver SINR; every
   received value is the sent value plus N(0, 1 / SINR) noise (unit-power latents). When two devices of one
   modality deliver the same scene, the BS keeps the better copy (longer prefix, then higher SINR).
5. The encode cap ``round(encode_capacity * p_joint)`` comes from the seed's compute/memory process.
6. Scenes that every device has delivered (``close_rule="modalities"``: every sensed modality has arrived, and
   a device then skips the scenes whose modality the BS holds), or whose deadline has come, are classified by
   the frozen fusion head on the latents actually received, each scene on its own (``vmimo_env.scoring``, so
   a scene's score does not depend on what else closes); with ``score_at_truncation`` the episode's last slot
   closes every pending scene too. An expired scene with nothing received
   is wrong.
   With heterogeneous devices the received foreign latents are first mapped into the head's latent space by the
   BS aligner (``vmimo_env.heterogeneous``), or fed raw with ``aligner="none"``.
7. Energy (transmit, circuit, encoding, D2D) is charged; reward = correct / arrival_rate - λ_E E / E_ref.
8. Fading and the resource process advance one slot.

Every rule above that a scheduler may want to predict is written once in ``vmimo_env.rules`` (the compiled
kernels call the same definitions); what the BS knows at the start of a slot is ``VMIMOCore.bs_view()``.

Two paths run this slot: for scenarios without a cooperative array, spatial correlation or mobility and with the
compiled MMSE receiver, the slot is two compiled calls (``kernels.slot_physics``, then the head and the reward in
``scoring.slot_score`` unless the reward is soft or the BS aligns), the single environment's hot path; every other
scenario takes the per-stage path (``_step_reference``), which is also the fused call's reference
(``tests/test_fused_slot.py``: same states and observations bit for bit). Both write the slot's outputs into two
packed arrays (``OUT_FLOAT``, ``OUT_INT``) that the step's ``StepResult`` copies whole.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.special import ndtr

from vmimo_env import channel, energy, kernels, obs_spec, physics, resources, rules, scoring, traffic
from vmimo_env.config import MODALITIES, ScenarioConfig
from vmimo_env.kernels import LATENT_DIM
from vmimo_env.rng import BlockRNG, make_noise_table
from vmimo_env.scenes import ScenePool

if TYPE_CHECKING:
    from vmimo_env.bs_view import BSView


@dataclass(frozen=True)
class InfoField:
    """One key of the per-step ``info`` every VMIMO front end returns (see :data:`INFO_FIELDS`)."""

    key: str
    shape: str  # per environment: "" for a scalar; the vector env adds a leading N axis
    unit: str
    meaning: str


# The one info schema of VMIMOEnv, VMIMOVectorEnv and the SB3 adapter's episode statistics, in key order.
INFO_FIELDS: tuple[InfoField, ...] = (
    InfoField("accuracy_term", "", "1", "reward's accuracy term: correct / arrival_rate (`soft`: Σ p(true class))"),
    InfoField("energy_term", "", "1", "reward's energy term λ_E · E / E_ref"),
    InfoField("energy_j", "", "J", "device energy this slot, the sum of the four parts below"),
    InfoField("energy_tx_j", "", "J", "transmit energy p / η · airtime"),
    InfoField("energy_circuit_j", "", "J", "circuit energy P_c · airtime"),
    InfoField("energy_encode_j", "", "J", "on-device encoder compute energy"),
    InfoField("energy_d2d_j", "", "J", "D2D exchange energy (cooperative mode, else 0)"),
    InfoField("arrived", "", "scenes", "scenes that arrived and were queued this slot"),
    InfoField("dropped", "", "scenes", "arrivals that found the pending table full (counted wrong)"),
    InfoField("closed", "", "scenes", "scenes classified this slot, incl. empty, dropped (and truncation) ones"),
    InfoField("correct", "", "scenes", "closed scenes the fusion head classified correctly (hard count)"),
    InfoField("expired_empty", "", "scenes", "closed with nothing received, incl. dropped ones (counted wrong)"),
    InfoField("closed_full", "", "scenes", "closed scenes holding every modality some device senses (any prefix)"),
    InfoField("sent", "(K,)", "latents", "latents each device delivered this slot"),
    InfoField("sinr_db", "(K,)", "dB", "post-receiver SINR of each transmitting device; 0 for a silent one"),
    InfoField("group", "(K,)", "index", "effective group of each device; 0 where it did not transmit"),
    InfoField("prefix", "(K,)", "reals", "latent prefix length chosen for each device"),
    InfoField("power_w", "(K,)", "W", "transmit power of each device; 0 where it did not transmit"),
    InfoField("queue", "(K,)", "scenes", "scenes waiting at each device after the slot"),
    InfoField("p_joint", "(K,)", "probability", "compute × memory availability for the next slot"),
    InfoField("action", "dict", "native", "the decoded native action (`group`, `power`, `compression`, `bandwidth`)"),
    InfoField("action_mask", "(Σ nvec,)", "bool", "valid entries of the multidiscrete view (all True)"),
)
INFO_KEYS: tuple[str, ...] = tuple(f.key for f in INFO_FIELDS)
RESET_INFO_KEYS: tuple[str, ...] = ("queue", "p_joint", "action_mask")  # what reset() returns, same meanings


def info_markdown_table() -> str:
    """The Info table of the ``VMIMOEnv`` docstring, rendered from :data:`INFO_FIELDS`."""
    rows = ["| Key | Shape (single env) | Unit | Meaning |", "| --- | --- | --- | --- |"]
    rows += [f"| `{f.key}` | {f.shape or 'scalar'} | {f.unit} | {f.meaning} |" for f in INFO_FIELDS]
    return "\n".join(rows)


# the per-step outputs, packed: one float64 and one int64 array per slot, so a result is two copies, and the
# single env reads its scalars with one ``tolist`` each (``StepResult.to_info``); sections in order, of size
# N (scalars), N × 4, N × K or N × G
OUT_FLOAT: tuple[tuple[str, str], ...] = (
    ("reward", "N"), ("accuracy_term", "N"), ("energy_term", "N"), ("energy_j", "N4"), ("sinr", "NK"),
    ("power_w", "NK"), ("sinr_db", "NK"), ("band_hz", "NG"),
)
OUT_INT: tuple[tuple[str, str], ...] = (
    ("arrived", "N"), ("dropped", "N"), ("closed_raw", "N"), ("correct", "N"), ("empty_raw", "N"),
    ("closed_full", "N"), ("sent", "NK"), ("group", "NK"), ("prefix", "NK"), ("queue", "NK"),
)


def out_sections(spec: tuple[tuple[str, str], ...], n: int, k: int, g: int) -> dict[str, tuple[int, int, tuple]]:
    """Name -> (start, stop, shape) of each section of a packed output array (:data:`OUT_FLOAT`, :data:`OUT_INT`)."""
    shapes = {"N": (n,), "N4": (n, 4), "NK": (n, k), "NG": (n, g)}
    out, at = {}, 0
    for name, kind in spec:
        shape = shapes[kind]
        size = int(np.prod(shape))
        out[name] = (at, at + size, shape)
        at += size
    return out


class StepResult:
    """Per-environment outcome of one slot: every field an array with a leading N axis, a view of the slot's two
    packed output arrays (:data:`OUT_FLOAT`, :data:`OUT_INT`), which belong to this result alone; ``closed``,
    ``expired_empty`` and ``shares`` are computed from them on each access (new arrays).

    Fields: ``reward``, ``accuracy_term`` (correct / arrival_rate), ``energy_term`` (λ_E E / E_ref), ``energy_j``
    (N, 4: transmit, circuit, encode, d2d), ``arrived``, ``dropped`` (arrivals that found the table full, counted
    wrong), ``closed`` (scenes classified this slot, incl. empty and dropped ones), ``correct``, ``expired_empty``
    (closed with no modality received, incl. dropped), ``closed_full`` (closed holding every modality some device
    senses, ``kernels.deliver_and_close``), ``sent`` (N, K latents delivered per device), ``sinr`` (N, K linear
    post-receiver SINR, 0 idle), ``group`` (N, K effective group, 0 where the device did not transmit),
    ``power_w``, ``prefix`` (chosen prefix length), ``shares`` (N, G bandwidth shares), ``sinr_db`` (N, K, dB where
    the device transmitted, 0 elsewhere: ``kernels.sinr_db_into``), ``queue`` (N, K scenes waiting after the slot,
    ``VMIMOCore.queue_lengths``).
    """

    __slots__ = ("_bw", "_f", "_fs", "_i", "_is", "_k")

    def __init__(self, out_f: np.ndarray, out_i: np.ndarray, float_sections: dict, int_sections: dict,
                 total_bandwidth_hz: float, num_devices: int) -> None:
        self._f, self._i, self._fs, self._is = out_f, out_i, float_sections, int_sections
        self._bw, self._k = total_bandwidth_hz, num_devices

    def _fv(self, name: str) -> np.ndarray:
        a, b, shape = self._fs[name]
        return self._f[a:b].reshape(shape)

    def _iv(self, name: str) -> np.ndarray:
        a, b, shape = self._is[name]
        return self._i[a:b].reshape(shape)

    reward = property(lambda self: self._fv("reward"))
    accuracy_term = property(lambda self: self._fv("accuracy_term"))
    energy_term = property(lambda self: self._fv("energy_term"))
    energy_j = property(lambda self: self._fv("energy_j"))
    sinr = property(lambda self: self._fv("sinr"))
    power_w = property(lambda self: self._fv("power_w"))
    sinr_db = property(lambda self: self._fv("sinr_db"))
    shares = property(lambda self: self._fv("band_hz") / self._bw)
    arrived = property(lambda self: self._iv("arrived"))
    dropped = property(lambda self: self._iv("dropped"))
    closed = property(lambda self: self._iv("closed_raw") + self._iv("dropped"))
    correct = property(lambda self: self._iv("correct"))
    expired_empty = property(lambda self: self._iv("empty_raw") + self._iv("dropped"))
    closed_full = property(lambda self: self._iv("closed_full"))
    sent = property(lambda self: self._iv("sent"))
    group = property(lambda self: self._iv("group"))
    prefix = property(lambda self: self._iv("prefix"))
    queue = property(lambda self: self._iv("queue"))

    def reward_of(self, i: int) -> float:
        """Environment ``i``'s reward as a Python float (what a single env returns, without building a view)."""
        return self._f.item(i)

    def to_info(self, p_joint: np.ndarray, action: dict[str, np.ndarray], action_mask: np.ndarray,
                index: int | None = None) -> dict[str, Any]:
        """The step ``info`` of :data:`INFO_FIELDS`, in its key order.

        Parameters
        ----------
        p_joint:
            (N, K) resource availability after the slot (a copy of ``VMIMOCore.p_joint``).
        action, action_mask:
            The decoded native action and the multidiscrete mask, already in the caller's shape (batched for a
            vector env, unbatched for a single one); stored as given.
        index:
            None: every value keeps its leading N axis (vector env). An int: environment ``index`` only, scalars
            as Python ``float``/``int`` and per-device entries as (K,) arrays (single env).
        """
        if index is None:
            e = self.energy_j
            info: dict[str, Any] = {
                "accuracy_term": self.accuracy_term, "energy_term": self.energy_term,
                "energy_j": e[:, 0] + e[:, 1] + e[:, 2] + e[:, 3],  # in order, as the reward and the single env add
                "energy_tx_j": e[:, 0], "energy_circuit_j": e[:, 1], "energy_encode_j": e[:, 2],
                "energy_d2d_j": e[:, 3], "arrived": self.arrived, "dropped": self.dropped, "closed": self.closed,
                "correct": self.correct, "expired_empty": self.expired_empty, "closed_full": self.closed_full,
                "sent": self.sent, "sinr_db": self.sinr_db, "group": self.group, "prefix": self.prefix,
                "power_w": self.power_w, "queue": self.queue, "p_joint": p_joint,
            }
        elif self._fs["reward"][1] == 1:  # one environment: the packed scalars in two tolist calls
            # (the positions of OUT_FLOAT / OUT_INT at N = 1; tests/test_step_result.py checks them against the
            # named fields)
            f, iv, k = self._f, self._i, self._k
            _, acc, en, tx, circ, enc, d2d = f[:7].tolist()
            arrived, dropped, closed, correct, empty, full = iv[:6].tolist()
            info = {
                "accuracy_term": acc, "energy_term": en, "energy_j": tx + circ + enc + d2d, "energy_tx_j": tx,
                "energy_circuit_j": circ, "energy_encode_j": enc, "energy_d2d_j": d2d, "arrived": arrived,
                "dropped": dropped, "closed": closed + dropped, "correct": correct, "expired_empty": empty + dropped,
                "closed_full": full, "sent": iv[6:6 + k], "sinr_db": f[7 + 2 * k:7 + 3 * k],
                "group": iv[6 + k:6 + 2 * k], "prefix": iv[6 + 2 * k:6 + 3 * k], "power_w": f[7 + k:7 + 2 * k],
                "queue": iv[6 + 3 * k:6 + 4 * k], "p_joint": p_joint[index],
            }
        else:
            i = index
            tx, circ, enc, d2d = self.energy_j[i].tolist()
            info = {
                "accuracy_term": self.accuracy_term.item(i), "energy_term": self.energy_term.item(i),
                "energy_j": tx + circ + enc + d2d, "energy_tx_j": tx, "energy_circuit_j": circ, "energy_encode_j": enc,
                "energy_d2d_j": d2d, "arrived": self.arrived.item(i), "dropped": self.dropped.item(i),
                "closed": self.closed.item(i), "correct": self.correct.item(i),
                "expired_empty": self.expired_empty.item(i), "closed_full": self.closed_full.item(i),
                "sent": self.sent[i], "sinr_db": self.sinr_db[i], "group": self.group[i], "prefix": self.prefix[i],
                "power_w": self.power_w[i], "queue": self.queue[i], "p_joint": p_joint[i],
            }
        info["action"] = action
        info["action_mask"] = action_mask
        return info


def draws_per_slot(cfg: ScenarioConfig) -> tuple[int, int]:
    """(uniforms, normals) one environment draws per slot.

    Uniforms: arrivals (1), scene draws (``traffic.max_arrivals``), noise offsets (K), then with bursty arrivals
    only the phase move (1). Normals: fading (2 K Nr), resources (2 K), then with mobility only the large-scale
    evolution's per-device normals. What a scenario does not use it does not draw, so v0 streams are unchanged.
    """
    K = cfg.num_devices
    n_mob = physics.MOBILITY_NORMALS_PER_DEVICE * K if cfg.mobility else 0
    n_phase = 1 if cfg.arrival_process == "mmpp" else 0
    return 1 + traffic.max_arrivals(cfg) + K + n_phase, 2 * K * cfg.num_antennas + 2 * K + n_mob

# below this many environments per thread, handing a shard to another thread costs more than it saves (the
# "1 thread" rows of ``benchmarks/bench_env.py`` against the default ones)
MIN_ENVS_PER_THREAD = 64


def shard_rows(n: int, shards: int) -> list[tuple[int, int]]:
    """``shards`` contiguous row ranges ``[lo, hi)`` covering ``range(n)`` in order, sizes within one of each
    other."""
    return [(n * i // shards, n * (i + 1) // shards) for i in range(shards)]


def available_cores() -> int:
    """CPU cores this process may run on (its affinity where the OS reports one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def auto_threads(num_envs: int) -> int:
    """The default thread count of a core of ``num_envs`` environments: one per available core, but at least
    :data:`MIN_ENVS_PER_THREAD` environments per thread."""
    return max(1, min(available_cores(), num_envs // MIN_ENVS_PER_THREAD))


def soft_numerator(logits: np.ndarray, scene: np.ndarray, labels: np.ndarray, close_env: np.ndarray,
                   num_envs: int) -> np.ndarray | None:
    """``reward_mode="soft"``: Σ p(true class) per environment (num_envs,) over the closing scenes (rows of
    ``logits``, of pool scenes ``scene`` in environments ``close_env``; softmax over the few classes); None for
    no scene."""
    nc = len(logits)
    if nc == 0:
        return None
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    p_true = e[np.arange(nc), labels[scene]] / e.sum(axis=1)
    return np.bincount(close_env, weights=p_true, minlength=num_envs)


@dataclass(frozen=True)
class _Shard:
    """Environments ``[lo, hi)`` of a core stepped on their own thread: their compiled structs and entries."""

    lo: int
    hi: int
    own: tuple[np.ndarray, ...]  # its closing-scene lists, logits and the head's scratch (VMIMOCore._bound_structs)
    slot: Any
    score: Any
    observe: Any
    slot_entry: Any
    score_entry: Any
    observe_entry: Any


class VMIMOCore:
    """State and dynamics of N VMIMO environments (see the module docstring for one slot)."""

    def __init__(self, cfg: ScenarioConfig, num_envs: int, pool: ScenePool, model) -> None:
        self.cfg = cfg
        self.N = N = num_envs
        self.K = K = cfg.num_devices
        self.Nr = cfg.num_antennas
        self.G = cfg.num_groups
        self.D = D = cfg.deadline_slots
        self.S = S = cfg.max_pending
        self.A = traffic.max_arrivals(cfg)
        self.pool = pool
        self.model = model
        # which frozen head the BS runs and which scenes it was calibrated on (for the BS view's policies)
        self.model_source = (pool.checkpoint, pool.seed, pool.size)
        # heterogeneous devices: the devices send foreign latents (another pool) and the BS may align them first
        self.bs_aligner = None
        if cfg.heterogeneous_devices != "none":
            from vmimo_env import heterogeneous

            self.pool, self.bs_aligner = heterogeneous.setup(cfg, pool, model)

        # ------------------------------------------------------------ constants
        mod_index = {m: i for i, m in enumerate(MODALITIES)}
        self.M = M = len(MODALITIES)
        self.device_modality = np.array([mod_index[m] for m in cfg.device_modalities], dtype=np.int64)
        self.modality_onehot = np.zeros((K, M), dtype=np.float32)
        self.modality_onehot[np.arange(K), self.device_modality] = 1.0
        self.modality_present = np.zeros(M, dtype=np.bool_)  # modalities some device senses (info closed_full)
        self.modality_present[self.device_modality] = True
        self.power_levels_w = cfg.max_power_w * 10.0 ** (np.asarray(cfg.power_levels_db) / 10.0)
        self.prefix_levels = np.asarray(cfg.compression_levels, dtype=np.int64)
        dev_mflops = model.encoder_mflops if self.pool.encoder_mflops is None else self.pool.encoder_mflops
        self.encoder_mflops = np.asarray(dev_mflops, dtype=np.float64)[self.device_modality]  # (K,)
        self.rho = channel.doppler_rho(cfg.speed_mps, cfg.carrier_hz, cfg.slot_s, cfg.doppler_rule)
        self._rho = float(self.rho)
        self._rho_c = math.sqrt(1.0 - self._rho * self._rho)  # as channel.gauss_markov_step computes it
        self.mobility = physics.MobilityParams.from_config(cfg) if cfg.mobility else None
        self.spatial_sqrt = channel.exponential_correlation_sqrt(self.Nr, cfg.spatial_correlation)
        self.res_params = resources.ResourceParams.from_config(cfg)  # not per step: hashing a config costs µs
        # arrivals by inversion of a precomputed CDF per phase (one uniform per slot, no sampler call per env)
        self.arrivals = traffic.ArrivalLaw.from_config(cfg)
        self._bursty = self.arrivals.bursty
        self.noise_table = make_noise_table()
        self.noise_span = self.noise_table.shape[0] - LATENT_DIM * S - 1
        self._iu0, self._iu1 = np.triu_indices(K, 1)
        self.obs_spec = obs_spec.resolve(cfg, M)
        # episode rules (ScenarioConfig.close_rule, score_at_truncation), as the compiled close step takes them
        self._by_modality = cfg.close_rule == "modalities"
        self._close_all_from = cfg.horizon - 1 if cfg.score_at_truncation else np.iinfo(np.int64).max
        # the whole slot but the head in one compiled call (kernels.slot_physics) where it covers the scenario
        self._fused = (not cfg.cooperative and rules.uses_compiled_mmse(cfg) and self.spatial_sqrt is None
                       and self.mobility is None)
        self._res_coeffs = tuple(np.ascontiguousarray(c) for c in resources.step_coefficients(self.res_params))
        self._inv_sinr_cap = 0.0 if cfg.sinr_cap_db is None else 10.0 ** (-float(cfg.sinr_cap_db) / 10.0)

        # ------------------------------------------------------------ random streams
        self.rng = BlockRNG(N, *draws_per_slot(cfg))

        # ------------------------------------------------------------ state
        self.t = np.zeros(N, dtype=np.int64)
        self.gain = np.ones((N, K))  # large-scale linear power gain
        self.h_los = np.zeros((N, K, self.Nr), dtype=np.complex128)  # LOS part incl. sqrt(K/(K+1))
        self.scat_scale = np.ones((N, K))  # sqrt(1/(K+1)) per device
        self.h_scat = np.zeros((N, K, self.Nr), dtype=np.complex128)
        self.h = np.zeros((N, K, self.Nr), dtype=np.complex128)
        self.res_state = np.zeros((N, K, 2))
        self.p_joint = np.ones((N, K))
        self.dist_m = np.zeros((N, K))
        self.los = np.zeros((N, K), dtype=bool)
        # large-scale state that moves with cfg.mobility (physics.large_scale_step); without it only k_factor is read
        self.pos_xy = np.zeros((N, K, 2))  # device positions (m)
        self.heading = np.zeros((N, K))  # direction of motion (rad)
        self.k_factor = np.zeros((N, K))  # linear Rician K-factor of each device when LOS
        self.shadow_z = np.zeros((N, K, 2))  # normalised LOS / NLOS shadowing fields
        self.los_z = np.zeros((N, K))  # Gaussian LOS field (umi)
        # queues: an arrival-ordered ring of S scenes per env, sequence numbers [head, tail)
        self.head = np.zeros(N, dtype=np.int64)
        self.tail = np.zeros(N, dtype=np.int64)
        self.next_seq = np.zeros((N, K), dtype=np.int64)
        self.slot_start = np.zeros((N, D + 1), dtype=np.int64)
        self.ring_scene = np.zeros((N, S), dtype=np.int64)
        self.rx_len = np.zeros((N, S, M), dtype=np.int64)
        self.rx_score = np.zeros((N, S, M))
        self.rx_snr = np.ones((N, S, M))
        self.rx_off = np.zeros((N, S, M), dtype=np.int64)
        # bursty arrivals: the hidden phase (0 quiet, 1 busy) and the BS's posterior P(busy) from the counts
        self.phase = np.zeros(N, dtype=np.int64)
        self.burst_belief = np.full(N, self.arrivals.busy_share)
        # once per process, before the compiled scoring is bound: no stale cached copy of the head or the kernels
        scoring.check_compiled_scoring(self.pool.latents, self.pool.labels, self.noise_table, self.model.head_weights)
        self._num_threads = 1  # set_num_threads
        self._pool: ThreadPoolExecutor | None = None
        self._pool_pid = 0  # the process the pool's threads belong to
        self._alloc_buffers()

    def __getstate__(self) -> dict:
        # the noise table is a pure function of its seed (and the scene pool pickles as its recipe), so a pickled
        # environment carries neither: subprocesses and Ray workers rebuild the same bits or find them cached
        state = self.__dict__.copy()
        state["noise_table"] = None
        # compiled structs: not picklable, and the scoring one holds the noise table and the pool's latents
        state["_slot_args"] = state["_observe_args"] = state["_score_args"] = None  # built again on arrival
        state["_score_entry"] = state["_observe_entry"] = state["_slot_entry"] = None  # entries of this process
        state["_bound_rng"] = None
        state["_shards"], state["_pool"], state["_pool_pid"] = [], None, 0  # structs and threads of this process
        state["_avail_parts"] = None  # views, which pickling would copy apart
        for attr in (*self._OUT_VIEWS, *self._OUT_INT_VIEWS):
            state[attr] = None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.noise_table = make_noise_table()
        try:
            # a worker process may unpickle a core before building one
            scoring.check_compiled_scoring(self.pool.latents, self.pool.labels, self.noise_table,
                                           self.model.head_weights)
            self._out_views()
            self._bind_slot()
        except AttributeError as err:  # a pickle holds the core's attributes, not its code
            raise ValueError(f"this environment was pickled by another version of vmimo_env ({err}): a pickle "
                             "carries state, not code, so it loads only into the version that wrote it; build the "
                             "environment again (gym.make) in this version") from err

    def _alloc_buffers(self) -> None:
        """Per-step outputs, allocated once (the hot path writes into them)."""
        N, K, G, S, M = self.N, self.K, self.G, self.S, self.M
        # the slot's outputs (OUT_FLOAT, OUT_INT): two packed arrays that a result copies whole (``_result``)
        self._out_fs = out_sections(OUT_FLOAT, N, K, G)
        self._out_is = out_sections(OUT_INT, N, K, G)
        self._out_f = np.zeros(max(b for _, b, _ in self._out_fs.values()))
        self._out_i = np.zeros(max(b for _, b, _ in self._out_is.values()), dtype=np.int64)
        self._out_views()
        # the slot's action (kernels.action_into copies it here) and its rows of the random blocks
        self._act = (np.zeros((N, K), dtype=np.int64), np.zeros((N, K), dtype=np.int64),
                     np.zeros((N, K), dtype=np.int64), np.zeros((N, G)))
        self._draw_u = np.zeros((N, self.rng.n_uniform))
        self._draw_z = np.zeros((N, self.rng.n_normal))
        self._airtime = np.zeros((N, K))
        self._noise_w = np.zeros((N, G + 1))
        self._close_env = np.zeros(N * S, dtype=np.int64)
        self._close_pos = np.zeros(N * S, dtype=np.int64)
        # received latents as a batch: only an aligner needs them (the head reads them scene by scene), so they
        # are allocated on the aligner's first use (``_logits``), whenever one is set
        self._lat = np.zeros((0, M, LATENT_DIM), dtype=np.float32)
        self._len = np.zeros((N * S, M), dtype=np.int64)
        self._scene = np.zeros(N * S, dtype=np.int64)
        self._soft_correct: np.ndarray | None = None  # reward_mode "soft": Σ p(true class) per env this slot
        # scenes the last slot closed, all environments: entries of _close_env, or with shards (set_num_threads)
        # of each shard's own lists, the core's then left as they were
        self.last_closing = 0
        self._obs = np.zeros((N, self.obs_dim), dtype=np.float32)
        self._ndtr_arg = np.zeros((N, K, 2))
        self._avail = np.zeros((N, K, 2))
        self._logit_buf = np.zeros((N * S, self.model.num_classes), dtype=np.float32)
        self._no_logits = self._logit_buf[:0]
        self._no_soft = np.zeros(0)
        # one scene's received latents and the head's hidden vectors, for the compiled scoring
        # (numpy's own zeroed arrays, not head_scratch's: a pickled env must be the same bytes in every process)
        self._head_scratch = (np.zeros((M, LATENT_DIM), dtype=np.float32),
                              *(np.zeros(a.shape, dtype=a.dtype.str) for a in scoring.head_scratch(
                                  self.model.head_weights[0], self.model.head_weights[2])))
        self._bind_slot()

    # the per-step buffers the kernels write, each a section of the packed outputs
    _OUT_VIEWS = {"_reward": "reward", "_acc_term": "accuracy_term", "_en_term": "energy_term", "_energy_j": "energy_j",
                  "_sinr": "sinr", "_power_w": "power_w", "_sinr_db": "sinr_db", "_band_hz": "band_hz"}
    _OUT_INT_VIEWS = {"_arrived": "arrived", "_dropped": "dropped", "_closed": "closed_raw", "_correct": "correct",
                      "_empty": "empty_raw", "_full": "closed_full", "_n_send": "sent", "_geff": "group",
                      "_prefix": "prefix", "_queue": "queue"}

    def _out_views(self) -> None:
        """Name the sections of the packed outputs as the per-step buffers (views; rebuilt after unpickling, which
        would copy views apart)."""
        for attr, name in self._OUT_VIEWS.items():
            a, b, shape = self._out_fs[name]
            setattr(self, attr, self._out_f[a:b].reshape(shape))
        for attr, name in self._OUT_INT_VIEWS.items():
            a, b, shape = self._out_is[name]
            setattr(self, attr, self._out_i[a:b].reshape(shape))

    def _bind_slot(self) -> None:
        """The arguments of the compiled slot, scoring and observation calls that do not change between steps (the
        state arrays, always updated in place; the constants; the per-step buffers), each set bound once into a
        compiled struct (``kernels.SlotArgs``, ``kernels.ObserveArgs``, ``scoring.ScoreArgs``) that holds the
        arrays by reference; rebuilt whenever the buffers are (a replica) and after unpickling. With more than one
        thread (:meth:`set_num_threads`) each shard of environments gets its own structs too, over row views of the
        same arrays and with its own list of closing scenes."""
        # SciPy's normal CDF called from the kernel where this SciPy exports it (an address of this process)
        self._ndtr_addr = kernels.scipy_ndtr_address()
        self._cdf_in_kernel = self._ndtr_addr != 0
        # views (pickling copies views apart, so they are bound again on arrival like the rest)
        self._avail_parts = (self._avail[..., 0], self._avail[..., 1])  # compute and memory availability
        self._bound_rng = self.rng
        self._slot_args, self._score_args, self._observe_args = self._bound_structs(
            None, (self._close_env, self._close_pos, self._len, self._scene, self._logit_buf, *self._head_scratch))
        self._slot_entry = kernels.bound_entry(kernels.slot_physics_bound, self._slot_args)
        self._score_entry = (None if self._score_args is None
                             else kernels.bound_entry(scoring.slot_score_bound, 0, self._score_args))
        self._observe_entry = kernels.bound_entry(kernels.observe_bound, self._observe_args)
        self._shards = []
        if min(self._num_threads, self.N) > 1 and self._fused:
            S, C = self.S, self.model.num_classes
            for lo, hi in shard_rows(self.N, min(self._num_threads, self.N)):
                n = hi - lo  # the shard's own closing-scene lists, indexed by its own rows
                own = (np.zeros(n * S, dtype=np.int64), np.zeros(n * S, dtype=np.int64),
                       np.zeros((n * S, self.M), dtype=np.int64), np.zeros(n * S, dtype=np.int64),
                       np.zeros((n * S, C), dtype=np.float32), *(np.zeros_like(a) for a in self._head_scratch))
                slot, score, observe = self._bound_structs(slice(lo, hi), own)
                self._shards.append(_Shard(lo, hi, own, slot, score, observe,
                                           kernels.bound_entry(kernels.slot_physics_bound, slot),
                                           None if score is None else kernels.bound_entry(scoring.slot_score_bound,
                                                                                          0, score),
                                           kernels.bound_entry(kernels.observe_bound, observe)))

    @property
    def num_threads(self) -> int:
        """Threads a step and an observation run on (:meth:`set_num_threads`)."""
        return self._num_threads if self._sharded() else 1

    def _sharded(self) -> bool:
        """Whether steps and observations run in shards: the fused slot without a BS aligner (an aligner may be
        set after construction, so it is checked on every call)."""
        return bool(self._shards) and self.bs_aligner is None

    def set_num_threads(self, n: int | None) -> None:
        """Step and observe the environments in ``n`` contiguous shards, one thread each (None: one per available
        core with at least :data:`MIN_ENVS_PER_THREAD` environments each, :func:`auto_threads`; 1: the calling
        thread only). Environments are independent and each is computed by the same code, so any ``n`` gives the
        same bits. Only the fused slot without a BS aligner is sharded; other scenarios run on one thread whatever
        ``n`` says (:attr:`num_threads` tells)."""
        if n is None:
            n = auto_threads(self.N)
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"num_threads must be a positive integer or None, got {n!r}")
        n = min(int(n), self.N)
        if n == self._num_threads:
            return
        self._num_threads = n
        self.close()
        self._bind_slot()

    def close(self) -> None:
        """Stop the shards' threads (a later step starts them again)."""
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def _run_shards(self, fn: Any) -> list[Any]:
        """``fn(shard)`` for every shard, the first on the calling thread and the others on the core's pool, and
        their results in shard order; an error in any is raised, the first in shard order, once all have
        finished (so no shard still writes the core's arrays when the caller sees it)."""
        if self._pool is None or self._pool_pid != os.getpid():
            # a forked child inherits the pool object but none of its threads: it gets a pool of its own
            self._pool = ThreadPoolExecutor(max_workers=len(self._shards) - 1, thread_name_prefix="vmimo-shard")
            self._pool_pid = os.getpid()
        futures = [self._pool.submit(fn, sh) for sh in self._shards[1:]]
        results: list[Any] = []
        error: BaseException | None = None
        try:
            results.append(fn(self._shards[0]))
        except BaseException as err:  # re-raised below, once the other shards finished
            error = err
        wait(futures)
        for f in futures:
            if error is None and f.exception() is not None:
                error = f.exception()
            results.append(None if f.exception() is not None else f.result())
        if error is not None:
            raise error
        return results

    def _bound_structs(self, rows: slice | None, own: tuple[np.ndarray, ...]) -> tuple[Any, Any, Any]:
        """The slot, scoring (None for a soft reward) and observation structs of environments ``rows`` (row views of
        every per-environment array; None: all of them, the arrays themselves), with ``own`` the buffers that list
        the slot's closing scenes (environment indices local to ``rows``) and the head's scratch."""
        cfg = self.cfg

        def r(a: np.ndarray) -> np.ndarray:
            return a if rows is None else a[rows]

        close_env, close_pos, lens, scene, logit_buf, *scratch = own
        phi, innov_t, slope, offset = self._res_coeffs
        rng = self.rng
        slot = kernels.make_slot_args(  # unboxed as one argument per call (kernels.SLOT_FIELDS)
            *(r(a) for a in self._act), r(rng._uniform), r(rng._normal), r(rng._ptr), r(self._draw_u),
            r(self._draw_z), r(self.t), r(self.head), r(self.tail), r(self.next_seq), r(self.slot_start),
            r(self.ring_scene), r(self.rx_len), r(self.rx_score), r(self.rx_snr), r(self.rx_off), r(self.h_scat),
            r(self.h_los), r(self.scat_scale), r(self.gain), r(self.h), r(self.res_state), r(self.p_joint),
            self.arrivals.cdf, r(self.phase), self.pool.size, self.power_levels_w, self.prefix_levels,
            cfg.encode_capacity, cfg.total_bandwidth_hz, cfg.slot_s, cfg.noise_psd_w_hz, self.A, self.G,
            self._inv_sinr_cap, self.device_modality, self.modality_present, self.noise_span, self.D,
            self._by_modality, self._close_all_from, self.encoder_mflops, 1.0 / cfg.pa_efficiency,
            cfg.circuit_power_w, cfg.encode_energy_j_per_mflop, self._rho, self._rho_c, phi, innov_t, slope, offset,
            self._ndtr_addr,
            r(self._n_send), r(self._geff), r(self._power_w), r(self._prefix), r(self._airtime), r(self._band_hz),
            r(self._noise_w), r(self._arrived), r(self._dropped), r(self._sinr), r(self._sinr_db), close_env,
            close_pos, r(self._closed), r(self._empty), r(self._full), r(self._ndtr_arg), r(self._energy_j),
            r(self._queue), self.pool.latents, self.noise_table)
        spec = self.obs_spec
        observe = kernels.make_observe_args(
            r(self.h), r(self.gain), r(self.t), r(self.head), r(self.tail), r(self.next_seq), r(self.slot_start),
            r(self.p_joint), r(self.burst_belief), self.modality_onehot, r(self.rx_len), self.device_modality,
            cfg.max_power_w, cfg.noise_psd_w_hz * cfg.total_bandwidth_hz / self.G, self.D, spec.start, spec.offset,
            spec.scale, spec.clip_low, spec.clip_high, r(self._obs))
        # the slot's scoring in one compiled call (scoring.slot_score) where nothing numpy runs between the
        # received latents and the reward: argmax reward, no aligner at the BS (checked again every step)
        score = None
        if cfg.reward_mode != "soft":
            score = scoring.make_score_args(
                close_env, close_pos, r(self.ring_scene), r(self.rx_len), r(self.rx_snr), r(self.rx_off),
                self.pool.latents, self.noise_table, lens, scene, *self.model.head_weights, logit_buf,
                self.pool.labels, self._no_soft, cfg.arrival_rate, cfg.energy_weight / cfg.energy_ref_j,
                r(self._energy_j), r(self._correct), r(self._acc_term), r(self._en_term), r(self._reward), *scratch)
        return slot, score, observe

    # ================================================================== reset
    def reset(self, env_ids: np.ndarray, seeds: list[int | None] | None = None) -> None:
        """Start new episodes in ``env_ids`` (re-seeding them when ``seeds`` is given)."""
        env_ids = np.asarray(env_ids, dtype=np.int64)
        if seeds is not None:
            self.rng.seed(env_ids, seeds)
        else:
            self.rng.discard(env_ids)
        gens = [self.rng.spawn_generator(i) for i in env_ids.tolist()]
        self._init_links(env_ids, gens)
        if self.arrivals.bursty:  # drawn after the links, so the Poisson scenarios' start states are unchanged
            for i, g in zip(env_ids.tolist(), gens, strict=True):
                self.phase[i] = self.arrivals.initial_phase(g)
        self.burst_belief[env_ids] = self.arrivals.busy_share
        self.t[env_ids] = 0
        self.head[env_ids] = 0
        self.tail[env_ids] = 0
        self.next_seq[env_ids] = 0
        self.slot_start[env_ids] = 0

    # the core's arrays of an environment's link start, and the physics.LinkStart fields they hold
    _LINK_FIELDS = (("dist_m", "d2d_m"), ("los", "los"), ("gain", "gain"), ("h_los", "h_los"),
                    ("scat_scale", "scat_scale"), ("h_scat", "h_scat"), ("res_state", "res_state"),
                    ("pos_xy", "pos_xy"), ("heading", "heading"), ("k_factor", "k_factor"), ("shadow_z", "shadow_z"),
                    ("los_z", "los_z"))

    def _init_links(self, env_ids: np.ndarray, gens: list[np.random.Generator]) -> None:
        """The link start of environments ``env_ids``, environment ``env_ids[j]`` from ``gens[j]``
        (``physics.initial_link_states``)."""
        start = physics.initial_link_states(gens, self.cfg, self.spatial_sqrt)
        # a single env's reset writes a row, not a fancy index (the same values)
        rows: np.ndarray | int = int(env_ids[0]) if len(env_ids) == 1 else env_ids
        for attr, name in self._LINK_FIELDS:
            getattr(self, attr)[rows] = getattr(start, name)
        self.p_joint[rows] = resources.p_joint(start.res_state, self.res_params)
        self.h[rows] = channel.compose_channel(start.h_scat, start.h_los, start.scat_scale, start.gain)

    # ================================================================== step
    def queue_lengths(self) -> np.ndarray:
        """Scenes waiting at each device, (N, K), a fresh array."""
        return kernels.queue_lengths(self.head, self.tail, self.next_seq)

    def step(self, group: np.ndarray, power_idx: np.ndarray, comp_idx: np.ndarray, bw_raw: np.ndarray) -> StepResult:
        """One slot of every environment under the native action: ``group``, ``power_idx``, ``comp_idx`` (N, K)
        indices and ``bw_raw`` (N, G) raw shares (copied, so the caller may reuse its arrays)."""
        kernels.action_into(group, power_idx, comp_idx, bw_raw, *self._act)
        return self._step()

    def step_one(self, group: np.ndarray, power_idx: np.ndarray, comp_idx: np.ndarray,
                 bw_raw: np.ndarray) -> StepResult:
        """:meth:`step` of a core of one environment under its unbatched action ((K,) and (G,) arrays)."""
        kernels.action_row_into(group, power_idx, comp_idx, bw_raw, *self._act)
        return self._step()

    def _step(self) -> StepResult:
        """The slot under the action in the buffers ``_act``."""
        if self._fused:
            if self.rng is not self._bound_rng:  # a new BlockRNG was assigned: bind its blocks
                self._bind_slot()
            if self._bursty:
                u, _ = self.rng.current()  # the phase moves on this slot's draw before the kernel reads it
                self.arrivals.step_phase(self.phase, u[:, 1 + self.A + self.K])
            if self._shards and self._sharded():  # the single env: one falsy check
                return self._step_sharded(refill=not self._bursty)
            if not self._bursty:
                self.rng.refill()
            return self._step_fused()
        u, z = self.rng.next()
        if self._bursty:
            self.arrivals.step_phase(self.phase, u[:, 1 + self.A + self.K])
        return self._step_reference(*self._act, u, z)

    def _step_fused(self) -> StepResult:
        """The slot with one compiled call for everything but the head (``kernels.slot_physics``: the action from
        the buffers ``_act``, this slot's draws read from the random blocks, which the caller refilled) and one
        for the head and the reward (``scoring.slot_score``, argmax reward without aligner); equal to
        :meth:`_step_reference` (tests/test_fused_slot.py)."""
        cfg = self.cfg
        nc = self.last_closing = self._slot_entry(self._slot_args)  # kernels.slot_physics_bound
        self._after_slot_kernel()
        if self._score_args is not None and self.bs_aligner is None:  # an aligner may be set after construction
            self._score_entry(nc, self._score_args)  # scoring.slot_score_bound, into the packed outputs
        else:
            logits = self._logits(nc)
            if cfg.reward_mode == "soft":
                self._score_soft(logits, nc)
                soft = self._soft_correct if self._soft_correct is not None else np.zeros(self.N)
            else:
                soft = self._no_soft
            kernels.slot_outcome_into(logits, self._scene[:nc], self.pool.labels, self._close_env[:nc], soft,
                                      self._energy_j, cfg.arrival_rate, cfg.energy_weight / cfg.energy_ref_j,
                                      self._correct, self._acc_term, self._en_term, self._reward)
        return self._result()  # the kernel advanced t

    def _step_sharded(self, refill: bool) -> StepResult:
        """:meth:`_step_fused`, each shard of environments on its own thread: its random blocks refilled (NumPy's
        generators fill without the GIL), its slot and its scoring (compiled without the GIL; a soft reward's
        softmax in NumPy on the shard's scenes); the same bits as one call over all environments, which computes
        one environment after another."""

        def run(sh: _Shard) -> int:
            if refill:
                self.rng.refill_rows(sh.lo, sh.hi)
            nc = sh.slot_entry(sh.slot)  # kernels.slot_physics_bound
            if sh.score_entry is not None:
                sh.score_entry(nc, sh.score)  # scoring.slot_score_bound
            else:
                self._score_shard_soft(sh, nc)
            return nc

        self.last_closing = sum(self._run_shards(run))
        self._after_slot_kernel()
        return self._result()

    def _after_slot_kernel(self) -> None:
        """What the fused slot leaves to NumPy once its kernel ran (sharded or not): the bursty arrivals' belief
        and, where SciPy's CDF is not callable from the kernel, the availability."""
        if self._bursty:
            self.arrivals.update_belief(self.burst_belief, self._arrived + self._dropped)
        self._soft_correct = None
        if not self._cdf_in_kernel:
            ndtr(self._ndtr_arg, out=self._avail)
            np.multiply(*self._avail_parts, out=self.p_joint)

    def _score_shard_soft(self, sh: _Shard, nc: int) -> None:
        """The soft reward of one shard's slot: the head on its ``nc`` closing scenes, :func:`soft_numerator` and
        ``kernels.slot_outcome_into`` into its rows of the outputs (the unsharded soft path, on fewer rows)."""
        cfg = self.cfg
        r = slice(sh.lo, sh.hi)
        close_env, close_pos, lens, scene, logit_buf = sh.own[:5]
        if nc:
            scoring.closing_logits(close_env, close_pos, nc, self.ring_scene[r], self.rx_len[r], self.rx_snr[r],
                                   self.rx_off[r], self.pool.latents, self.noise_table, lens, scene,
                                   *self.model.head_weights, logit_buf)
        logits = logit_buf[:nc]
        soft = soft_numerator(logits, scene[:nc], self.pool.labels, close_env[:nc], sh.hi - sh.lo)
        kernels.slot_outcome_into(logits, scene[:nc], self.pool.labels, close_env[:nc],
                                  np.zeros(sh.hi - sh.lo) if soft is None else soft, self._energy_j[r],
                                  cfg.arrival_rate, cfg.energy_weight / cfg.energy_ref_j, self._correct[r],
                                  self._acc_term[r], self._en_term[r], self._reward[r])

    def _step_reference(self, group: np.ndarray, power_idx: np.ndarray, comp_idx: np.ndarray, bw_raw: np.ndarray,
                        u: np.ndarray, z: np.ndarray) -> StepResult:
        """The slot from the rules' numpy definitions and the per-stage kernels: every scenario (cooperative
        arrays, spatial correlation, mobility, the numpy receivers), and the reference of the fused path."""
        cfg = self.cfg
        A = self.A
        n_send, geff, power_w, prefix, airtime = self._n_send, self._geff, self._power_w, self._prefix, self._airtime
        kernels.plan_slot(self.t, self.head, self.tail, self.next_seq, self.slot_start, self.ring_scene, self.rx_len,
                          self.rx_score, group, power_idx, comp_idx, bw_raw, self.p_joint, u,
                          self.arrivals.cdf, self.phase, self.pool.size, self.power_levels_w, self.prefix_levels,
                          cfg.encode_capacity, cfg.total_bandwidth_hz, cfg.slot_s, cfg.noise_psd_w_hz, A,
                          n_send, geff, power_w, prefix, airtime, self._band_hz, self._noise_w,
                          self._arrived, self._dropped)
        if self._bursty:
            self.arrivals.update_belief(self.burst_belief, self._arrived + self._dropped)
        sinr = rules.slot_sinr(cfg, self.h, power_w, geff, self._noise_w, out=self._sinr)
        if sinr is not self._sinr:
            self._sinr[...] = sinr
        kernels.sinr_db_into(sinr, geff, self._sinr_db)
        nc = kernels.deliver_and_close(self.t, self.head, self.tail, self.next_seq, self.slot_start, self.rx_len,
                                       self.rx_score, self.rx_snr, self.rx_off, n_send, prefix, sinr, u[:, 1 + A:],
                                       self.device_modality, self.modality_present, self.noise_span, self.D,
                                       self._by_modality, self._close_all_from, self._close_env, self._close_pos,
                                       self._closed, self._empty, self._full)
        self.last_closing = nc
        self._soft_correct = None
        self._correct[...] = self._classify(nc)

        e_tx, e_circ, e_enc = rules.device_energy_j(power_w, airtime, n_send, self.encoder_mflops, cfg)
        energy_j = self._energy_j
        energy_j[:, 0] = e_tx.sum(1)
        energy_j[:, 1] = e_circ.sum(1)
        energy_j[:, 2] = e_enc.sum(1)
        if cfg.cooperative:
            sym = rules.d2d_symbols(geff, n_send, prefix, self.G)
            energy_j[:, 3] = energy.d2d_energy_j(sym, cfg.d2d_energy_j_per_symbol).sum(1)
        else:
            energy_j[:, 3] = 0.0
        if cfg.reward_mode == "soft":
            self._acc_term[...] = (np.zeros(self.N) if self._soft_correct is None else self._soft_correct) \
                / cfg.arrival_rate
        else:
            self._acc_term[...] = self._correct / cfg.arrival_rate
        self._en_term[...] = rules.energy_term(energy_j.sum(1), cfg)
        self._reward[...] = self._acc_term - self._en_term

        self._advance(z)
        self.t += 1
        kernels.queue_into(self.head, self.tail, self.next_seq, self._queue)
        return self._result()

    def _result(self) -> StepResult:
        """The slot's outcome, in arrays of its own (the packed per-step outputs are reused next slot)."""
        return StepResult(self._out_f.copy(), self._out_i.copy(), self._out_fs, self._out_is,
                          self.cfg.total_bandwidth_hz, self.K)

    def _logits(self, nc: int) -> np.ndarray:
        """The frozen fusion head's logits (nc, C) on what the BS received of the slot's ``nc`` closing scenes
        (their envs, ring positions and pool scenes in ``_close_env``, ``_close_pos``, ``_scene``): the compiled
        head scene by scene (``scoring.closing_logits``), so the same bits at any batch; a view of a per-step
        buffer."""
        if nc == 0:
            return self._no_logits
        if self.bs_aligner is None:
            scoring.closing_logits(self._close_env, self._close_pos, nc, self.ring_scene, self.rx_len, self.rx_snr,
                                   self.rx_off, self.pool.latents, self.noise_table, self._len, self._scene,
                                   *self.model.head_weights, self._logit_buf)
            return self._logit_buf[:nc]
        # foreign latents into the head's space first, the map chosen by prefix and SINR
        if self._lat.shape[0] < self.N * self.S:
            self._lat = np.zeros((self.N * self.S, self.M, LATENT_DIM), dtype=np.float32)
        lat, lens, scene = self._lat[:nc], self._len[:nc], self._scene[:nc]
        kernels.gather_received(self._close_env, self._close_pos, nc, self.ring_scene, self.rx_len, self.rx_snr,
                                self.rx_off, self.pool.latents, self.noise_table, lat, lens, scene)
        self.bs_aligner.apply(lat, lens, self.rx_snr[self._close_env[:nc], self._close_pos[:nc]])
        return scoring.head_logits(lat, lens, *self.model.head_weights)

    def _score_soft(self, logits: np.ndarray, nc: int) -> None:
        """``reward_mode="soft"``: Σ p(true class) per env into ``_soft_correct`` (softmax over the few classes)."""
        if nc:
            self._soft_correct = soft_numerator(logits, self._scene[:nc], self.pool.labels, self._close_env[:nc],
                                                self.N)

    def _classify(self, nc: int) -> np.ndarray:
        """Run the frozen fusion head once on every closing scene of every env; correct count per env (and the
        soft score when the reward asks for it)."""
        if nc == 0:
            return np.zeros(self.N, dtype=np.int64)
        logits = self._logits(nc)
        if self.cfg.reward_mode == "soft":
            self._score_soft(logits, nc)
        hit = logits.argmax(axis=1) == self.pool.labels[self._scene[:nc]]
        return np.bincount(self._close_env[:nc][hit], minlength=self.N)

    def _advance(self, z: np.ndarray) -> None:
        N, K, Nr = self.N, self.K, self.Nr
        if self.spatial_sqrt is None:  # the compiled twin of the numpy lines below, in place (same bits)
            kernels.gauss_markov_into(z, self._rho, self._rho_c, self.h_scat)
        else:
            w = (z[:, :K * Nr] + 1j * z[:, K * Nr:2 * K * Nr]).reshape(N, K, Nr) * np.sqrt(0.5)
            self.h_scat[...] = channel.gauss_markov_step(self.h_scat, self.rho, w @ self.spatial_sqrt.T)
        if self.mobility is not None:  # the devices move: the large-scale state and the LOS term follow
            base = 2 * K * Nr + 2 * K
            physics.large_scale_step(self.mobility, self.pos_xy, self.heading, self.shadow_z, self.los_z, self.los,
                                     self.k_factor, z[:, base:].reshape(N, -1, K), self.dist_m, self.gain,
                                     self.h_los, self.scat_scale)
        kernels.compose_into(self.h_scat, self.h_los, self.scat_scale, self.gain, self.h)
        # in place: the state arrays keep their identity (the fused slot holds them, ``_bind_slot``); the compiled
        # twin of resources.ar1_step, as the fused slot steps it (the same bits on every machine)
        phi, innov_t, slope, offset = self._res_coeffs
        kernels.ar1_step_into(self.res_state, z, 2 * K * Nr, phi, innov_t, self._ndtr_arg, slope, offset)
        ndtr(self._ndtr_arg, out=self._avail)
        np.multiply(*self._avail_parts, out=self.p_joint)

    # ================================================================== observation
    def obs_layout(self) -> dict[str, tuple[int, int]]:
        """Name -> (start, stop) of each block in the flat observation (defined in ``vmimo_env.obs_spec``)."""
        return dict(self.obs_spec.slices)

    def obs_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Finite (low, high) of every observation entry (``obs_spec``); ``kernels.observe`` clips to them."""
        return self.obs_spec.low.copy(), self.obs_spec.high.copy()

    @property
    def obs_dim(self) -> int:
        return self.obs_spec.dim

    def observe(self) -> np.ndarray:
        """Flat float32 observation (N, obs_dim), every entry O(1); layout and scaling in ``obs_spec``."""
        if self._shards and self._sharded():
            self._run_shards(lambda sh: sh.observe_entry(sh.observe))
        else:
            self._observe_entry(self._observe_args)  # kernels.observe_bound on the arguments bound in _bind_slot
        return self._obs.copy()

    # ================================================================== what the BS knows
    def bs_view(self) -> BSView:
        """A read-only snapshot of what the BS knows at the start of this slot, for all N environments
        (fields in ``vmimo_env.bs_view.BSView``); later steps never change it."""
        from vmimo_env.bs_view import BSView

        N, K, S, M = self.N, self.K, self.S, self.M
        hol_age = np.empty((N, K), dtype=np.int64)
        valid = np.empty((N, S), dtype=bool)
        held = np.empty((N, S, M), dtype=np.int64)
        slack = np.empty((N, S), dtype=np.int64)
        queued = np.empty((N, S, K), dtype=bool)
        unheld = np.empty((N, K), dtype=np.int64)
        kernels.pending_scenes(self.t, self.head, self.tail, self.next_seq, self.slot_start, self.rx_len,
                               self.device_modality, self.D, hol_age, valid, held, slack, queued, unheld)
        checkpoint, pool_seed, pool_size = self.model_source
        fresh = {"t": self.t.copy(), "h": self.h.copy(), "gain": self.gain.copy(), "queue": self.queue_lengths(),
                 "hol_age": hol_age, "p_joint": self.p_joint.copy(),
                 "encode_cap": rules.encode_cap(self.p_joint, self.cfg.encode_capacity), "queue_unheld": unheld,
                 "scene_valid": valid, "scene_held": held, "scene_slack": slack, "scene_queued": queued,
                 "burst_belief": self.burst_belief.copy()}
        for arr in fresh.values():  # new arrays nothing else holds: read-only, so the view keeps them uncopied
            arr.flags.writeable = False
        return BSView(**fresh, device_modality=self.device_modality, encoder_mflops=self.encoder_mflops,
                      power_levels_w=self.power_levels_w, prefix_levels=self.prefix_levels, cfg=self.cfg,
                      checkpoint=checkpoint, pool_seed=pool_seed, pool_size=pool_size)

    # ================================================================== copies for planning
    # every per-environment state array (leading N axis); the rest of the core is shared by all environments
    STATE_FIELDS = ("t", "gain", "h_los", "scat_scale", "h_scat", "h", "res_state", "p_joint", "dist_m", "los",
                    "pos_xy", "heading", "k_factor", "shadow_z", "los_z", "head", "tail", "next_seq", "slot_start",
                    "ring_scene", "rx_len", "rx_score", "rx_snr", "rx_off", "phase", "burst_belief")

    def hold(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        """Copies of environments ``rows``' state, for :meth:`release` to put them back after the next slot (a
        vector env holding just-reset environments at their first slot). Their random blocks must be fresh (a
        reset discards the rest of a block), so the slot draws a new block for them and reads its first row."""
        rows = np.asarray(rows, dtype=np.int64)
        if not self.rng.discarded(rows):
            raise ValueError("hold() takes just-reset environments (their random blocks discarded)")
        return {name: getattr(self, name)[rows] for name in self.STATE_FIELDS}

    def release(self, rows: np.ndarray, held: dict[str, np.ndarray]) -> None:
        """Put environments ``rows`` back where :meth:`hold` found them, one slot later: their state from
        ``held``, and their random streams rewound to the first row of the block the slot drew (the block the
        next slot would otherwise draw, so the same draws: ``BlockRNG.rewind``)."""
        rows = np.asarray(rows, dtype=np.int64)
        for name, saved in held.items():
            getattr(self, name)[rows] = saved
        self.rng.rewind(rows)

    def replicate(self, rows: np.ndarray | list[int] | int, n: int | None = None, *,
                  future_seeds: list[int] | np.ndarray | None = None, reward_mode: str | None = None) -> VMIMOCore:
        """A new core whose environment ``j`` is an exact copy of this core's environment ``rows[j]`` (state and
        random stream); ``replicate(i, n)`` is short for ``replicate([i] * n)``.

        Stepping it with different actions evaluates them all on the same future (same arrivals, fading and
        noise): what a clairvoyant planner such as the clairvoyant oracle in ``agents`` needs. The source is not
        changed and the copies share no state with it; the pool, the model and the noise table are shared.

        ``future_seeds`` (one per copy) makes it a *sampled* future instead, for a causal planner: copy ``j``
        draws its randomness from a fresh stream seeded with ``future_seeds[j]`` (this slot's and later arrivals
        and scenes, fading innovations, latent noise, resource process, mobility: the same laws, new draws), and
        the identities of its pending scenes are redrawn uniformly from the pool with that stream's spawn (the
        BS knows when scenes arrived and which prefixes at which SINR it received, not which scenes they are;
        their labels stay unknown). Copies given equal seeds see the same sampled future.

        ``reward_mode`` scores the copies with another ``ScenarioConfig.reward_mode`` (e.g. ``"soft"``, the head's
        probability of the true class: a lower-variance estimate of accuracy for a planner's comparisons).
        """

        if n is not None:
            if not isinstance(rows, (int, np.integer)):
                raise TypeError(f"replicate(i, n) takes one environment index i, got {rows!r}")
            rows = np.full(int(n), int(rows), dtype=np.int64)
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        if rows.size == 0 or rows.min() < 0 or rows.max() >= self.N:
            raise ValueError(f"rows must be a non-empty list of environment indices in [0, {self.N - 1}], "
                             f"got {rows.tolist()}")
        new = object.__new__(type(self))  # a shallow copy without the pickling hooks (they rebind and rebuild)
        new.__dict__.update(self.__dict__)
        new.N = int(rows.size)
        for name in self.STATE_FIELDS:
            setattr(new, name, getattr(self, name)[rows])  # fancy indexing: a copy
        if future_seeds is None:
            new.rng = self.rng.take(rows)
        else:
            seeds = [int(x) for x in np.asarray(future_seeds).reshape(-1)]
            if len(seeds) != new.N:
                raise ValueError(f"future_seeds needs one seed per copy ({new.N}), got {len(seeds)}")
            new.rng = BlockRNG(new.N, *draws_per_slot(self.cfg))
            new.rng.seed(np.arange(new.N), seeds)
            for j in range(new.N):  # the pending scenes' identities (and so their labels) are not the BS's to know
                g = new.rng.spawn_generator(j)
                new.ring_scene[j] = g.integers(0, self.pool.size, self.S)
                if self.arrivals.bursty:  # nor is the traffic phase: drawn from the BS's posterior
                    new.phase[j] = int(g.random() < new.burst_belief[j])
        if reward_mode is not None and reward_mode != self.cfg.reward_mode:
            new.cfg = self.cfg.replace(reward_mode=reward_mode)
        new._num_threads, new._pool, new._pool_pid = 1, None, 0  # a replica steps on the calling thread
        new._alloc_buffers()
        return new

