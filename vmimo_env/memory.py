"""Memory a batched core will need, estimated before anything is allocated.

``gym.make_vec(..., num_envs=10**6)`` would otherwise spend most of a minute allocating before failing with a bare
``MemoryError``; the vector entry point calls :func:`check_num_envs_memory` first.
"""

from __future__ import annotations

import os

from vmimo_env import obs_spec
from vmimo_env.config import MODALITIES, ScenarioConfig
from vmimo_env.core import draws_per_slot
from vmimo_env.kernels import LATENT_DIM

# fraction of physical memory one batched core may plan to use (override: $VMIMO_MEMORY_FRACTION)
MEMORY_FRACTION = 0.5


def estimate_core_memory_bytes(cfg: ScenarioConfig, num_envs: int) -> int:
    """Estimated peak memory (bytes) of a ``VMIMOCore`` with ``num_envs`` environments stepping.

    Counts the per-environment state the core keeps (random-number blocks, channel state, the pending-scene
    tables, observation and step buffers, one numpy ``Generator``) and the largest per-step temporaries (the
    closing scenes' logits, with heterogeneous devices their received latents, one receiver covariance per
    device), with a 25 % margin for smaller temporaries. The shared scene pool is excluded (it is cached per
    process). Checked against a traced allocation in ``tests/test_config.py``.
    """
    K, Nr, G = cfg.num_devices, cfg.num_antennas, cfg.num_groups
    S, D, M = cfg.max_pending, cfg.deadline_slots, len(MODALITIES)
    rng_block = 32  # slots per refill of vmimo_env.rng.BlockRNG (its default)
    n_uniform, n_normal = draws_per_slot(cfg)
    obs_dim = obs_spec.resolve(cfg).dim
    per_env = (8 * rng_block * (n_uniform + n_normal)  # float64 uniform and normal blocks
               + 3 * 16 * K * Nr  # h, its LOS and scattered parts (complex128)
               + 4 * 8 * S * M  # received prefix, score, SNR, noise offset per pending scene and modality
               + 8 * (S + D + 1)  # ring of scene indices, slot starts
               + 2 * 4 * obs_dim  # observation buffer and the returned copy (float32)
               + 8 * 24 * K + 8 * 4 * G  # per-device and per-group state and step buffers
               + 1024)  # the environment's numpy Generator
    # the logits of the closing scenes (float32, up to 16 classes); the received latents as a batch (only the
    # heterogeneous scenarios' aligner needs them); one receiver covariance per device
    batch_latents = 4 * S * M * LATENT_DIM if cfg.heterogeneous_devices != "none" and cfg.aligner != "none" else 0
    transient = 4 * 16 * S + batch_latents + 16 * K * Nr * Nr
    return int(1.25 * (per_env + transient) * num_envs)


def physical_memory_bytes() -> int | None:
    """Physical memory of this machine in bytes (None where the OS does not say)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


def check_num_envs_memory(cfg: ScenarioConfig, num_envs: int, limit_bytes: int | None = None) -> int:
    """Refuse a batch whose estimated memory exceeds ``limit_bytes`` before anything is allocated.

    ``limit_bytes`` defaults to ``MEMORY_FRACTION`` (or ``$VMIMO_MEMORY_FRACTION``) of physical memory; no check
    where physical memory is unknown. Returns the estimate (bytes). Raises ``ValueError`` with the estimate, the
    limit and the largest ``num_envs`` that fits.
    """
    estimate = estimate_core_memory_bytes(cfg, num_envs)
    if limit_bytes is None:
        total = physical_memory_bytes()
        if total is None:
            return estimate
        fraction = float(os.environ.get("VMIMO_MEMORY_FRACTION", MEMORY_FRACTION))
        limit_bytes = int(fraction * total)
        where = f"{fraction:g} of the {total / 2**30:.1f} GiB of physical memory; $VMIMO_MEMORY_FRACTION sets it"
    else:
        where = "the given limit"
    if estimate > limit_bytes:
        fits = max(1, int(num_envs * limit_bytes / estimate))
        raise ValueError(f"num_envs={num_envs} needs an estimated {estimate / 2**30:.2f} GiB for this scenario "
                         f"({estimate / num_envs / 1024:.0f} KiB per environment), more than the limit of "
                         f"{limit_bytes / 2**30:.2f} GiB ({where}); use num_envs <= {fits} or several processes")
    return estimate
