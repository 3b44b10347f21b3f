"""What one slot did to the pending scenes, rebuilt from the BS view before the slot and the step's info only.

An independent account of delivery and closing for tests: it reads none of the core's buffers. Row ``j < P`` of the
result is the ``j``-th oldest scene pending before the slot (``BSView`` order), rows ``P..P + arrived - 1`` the
slot's arrivals, which every device queues behind its backlog. Each device sends FIFO from its queue, and the BS
keeps the longest prefix of each scene-modality (``docs/MODEL.md``, Delivery); scenes close in arrival order, so
the slot closes the oldest ``closed - dropped`` rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from vmimo_env.bs_view import BSView


@dataclass(frozen=True)
class SlotReplay:
    """One environment's slot: held prefixes before and after delivery, what each device sent and what closed."""

    held_before: np.ndarray  # (P + arrived, M) prefix held before the slot (0 for the slot's arrivals)
    held_after: np.ndarray  # (P + arrived, M) prefix held after the slot's delivery
    sent_rows: list[np.ndarray]  # per device, the rows it delivered this slot (oldest first)
    pending_before: int  # P
    num_closed: int  # rows 0..num_closed - 1 closed this slot (dropped arrivals excluded)
    slack: np.ndarray  # (P + arrived,) slots left before the slot (the deadline for arrivals)
    present: np.ndarray  # (M,) bool, modalities some device senses

    def full(self, rows: slice | np.ndarray) -> np.ndarray:
        """Whether each of ``rows`` holds every present modality after delivery."""
        return (self.held_after[rows][:, self.present] > 0).all(axis=1)


def replay(view: BSView, info: Mapping[str, Any] | Any, i: int = 0) -> SlotReplay:
    """The slot of environment ``i`` that led from ``view`` (taken before the step) to its outcome ``info``: a
    single env's step info, a vector env's batched one or a core's ``StepResult`` (row ``i`` of the batch)."""
    def get(key: str) -> np.ndarray:
        return np.asarray(info[key] if isinstance(info, Mapping) else getattr(info, key))

    batched = get("sent").ndim == 2
    sent, prefix = (get(k)[i] if batched else get(k) for k in ("sent", "prefix"))
    arrived, closed, dropped = (int(get(k)[i] if batched else get(k)) for k in ("arrived", "closed", "dropped"))
    valid = view.scene_valid[i]
    P = int(valid.sum())
    M = view.scene_held.shape[2]
    held = np.zeros((P + arrived, M), dtype=np.int64)
    held[:P] = view.scene_held[i, :P]
    before = held.copy()
    slack = np.concatenate([view.scene_slack[i, :P], np.full(arrived, view.cfg.deadline_slots)])
    sent_rows = []
    for k in range(view.K):
        queue = np.concatenate([np.flatnonzero(view.scene_queued[i, :P, k]), np.arange(P, P + arrived)])
        rows = queue[:int(sent[k])]
        m = view.device_modality[k]
        held[rows, m] = np.maximum(held[rows, m], prefix[k])
        sent_rows.append(rows)
    present = np.zeros(M, dtype=bool)
    present[view.device_modality] = True
    return SlotReplay(before, held, sent_rows, P, closed - dropped, slack, present)
