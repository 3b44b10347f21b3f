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
=====================  ==================================================================================
"""

from agents.heuristics import coverage, schedulers, semantic  # noqa: F401  (registration)
from agents.heuristics.base import Heuristic  # noqa: F401
