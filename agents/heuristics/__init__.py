"""Heuristic VMIMO schedulers (baselines for the RL agents); importing registers them with ``agents.policies``.

=====================  ==================================================================================
name                   what it optimises (source in each class docstring)
=====================  ==================================================================================
``random``             nothing: uniform random action
``round_robin``        equal access: devices served in cyclic order, Nr per group
``greedy``             instantaneous channel strength (max-SNR)
``proportional_fair``  Σ log throughput (rate / average rate)
``fractional_power``   round-robin + 3GPP open-loop fractional power control (P0 + α·PL)
``sus``                spatial separability: semi-orthogonal user selection groups, MMSE reception
``max_weight``         Σ queue × predicted accuracy, with accuracy/energy link adaptation
``nas_vmimo``          the NAS-VMIMO seed's Algorithm 1 (parallel / soft selection / joint compression)
``coverage``           coverage first: the latents the BS still lacks, by deadline; SINR-target power
=====================  ==================================================================================

Power rules (``power_rule`` of ``round_robin``, ``greedy``, ``proportional_fair``, ``sus``, ``max_weight``,
``nas_vmimo``; one implementation each in :mod:`agents.heuristics.base`): ``"level"`` (the default; ``max_weight``'s
default is its own ``"value"``), ``"fpc"`` (fractional power control, :func:`~agents.heuristics.base.fpc_power_levels`)
and ``"target"`` (SINR target from current CSI, :func:`~agents.heuristics.base.target_power_levels`).
``coverage=True`` skips devices whose queued latents the BS already holds. Parameters tuned per scenario on
validation seeds: ``python -m agents.tune_baselines`` → ``agents/hyperparams/baselines/<scenario>.yml``, applied by
``make_policy(name, env, tuned=True)``.
"""

from agents.heuristics import coverage, schedulers, semantic  # noqa: F401  (registration)
from agents.heuristics.base import Heuristic  # noqa: F401
