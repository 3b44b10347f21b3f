"""Semantic models for VMIMO: the multimodal scene generator, the NAS-found distilled student and its loader.

Importing the package is cheap (no torch): :func:`load_frozen_student` imports the heavy parts on first call.
``semantic_models.alignment`` holds the latent-space alignment tools (a separate subpackage).

Hot-path API::

    from semantic_models import load_frozen_student
    fs = load_frozen_student()            # shipped checkpoint, SHA-256 checked
    fs.encode(m, x)                       # (n, d_m) -> (n, 64) nested unit-power latent
    fs.classify(latents, prefix_len)      # (n, M, 64), (n, M) -> logits (n, C)

Rebuild everything: ``python -m semantic_models.build`` (``--quick`` for a tiny version).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .frozen import CheckpointError, FrozenStudent, load_frozen_student

__all__ = ["CheckpointError", "FrozenStudent", "load_frozen_student"]


def __getattr__(name: str) -> Any:
    # Lazy: the environment imports this package early; torch is only needed once a model is loaded.
    if name in __all__:
        from . import frozen

        return getattr(frozen, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
