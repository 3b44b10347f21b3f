"""Fixed interface constants shared by every module of the semantic model and by the environment.

They live in one tiny module (no torch import) so the environment, the data generator and the loader agree on the
modality order, the input sizes and the nested latent layout without importing each other.
"""

from __future__ import annotations

#: Modality order; equal to ``vmimo_env.config.MODALITIES`` (a test checks it).
MODALITIES: tuple[str, ...] = ("visual", "radar", "infrared", "audio", "environmental")
#: Raw feature size per modality (the NAS-VMIMO seed's dims).
INPUT_DIMS: dict[str, int] = {"visual": 128, "radar": 32, "infrared": 32, "audio": 64, "environmental": 64}
#: Reals in a full nested latent.
LATENT_DIM: int = 64
#: Prefix lengths a device may send; every prefix is a union of whole power-normalised segments (see ``student``).
PREFIX_LENGTHS: tuple[int, ...] = (4, 8, 16, 32, 64)
#: Channel SNR range (dB) the student is trained over, per sample and modality.
TRAIN_SNR_DB: tuple[float, float] = (-10.0, 25.0)
