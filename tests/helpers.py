"""Shared test doubles."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from wavelab.audio import mu_law_encode


@dataclass(eq=False)
class PCMUtterance:
    """Utterance-like object over an int16 array: what random_segments, bucket_batches, evaluate and the baselines
    need (``id``, ``num_samples``, ``audio()``, ``codes(bits)``)."""

    id: str
    pcm: np.ndarray

    @property
    def num_samples(self) -> int:
        return len(self.pcm)

    def audio(self) -> np.ndarray:
        return self.pcm

    def codes(self, bits: int = 16) -> torch.Tensor:
        return mu_law_encode(self.pcm, bits)
