"""Nats, bits and bits per frame (bpf).

Havtorn et al., appendix D: the likelihood of a data set in bits per frame weights every utterance by its length,

    bpf = sum_i sum_t -log2 p(x_{i,t} | x_{i,<t}) / sum_i T_i                                    (eq. 11)

while the caption of their Table 3 describes the mean of per-utterance values ``mean_i(-log2 p(x_i) / T_i)``.  Both
are reported.  For latent variable models the negative ELBO replaces ``-log p``, and the figure is an upper bound on
the true bpf (shown with "<=").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

LN2 = math.log(2.0)


def nats_to_bits(x):
    """Convert nats to bits (divide by ln 2).  Works on floats, arrays and tensors."""
    return x / LN2


def bits_to_nats(x):
    """Convert bits to nats (multiply by ln 2)."""
    return x * LN2


@dataclass(frozen=True)
class BitsPerFrame:
    """Likelihood of a set of utterances in bits per frame.

    Attributes:
        weighted: eq. 11, total bits over total frames.
        mean: mean over utterances of each utterance's bits per frame.
        is_bound: True when computed from a negative ELBO (an upper bound on the true bpf).
        frames: total number of frames (samples).
        utterances: number of utterances.
    """

    weighted: float
    mean: float
    is_bound: bool
    frames: int
    utterances: int

    def __str__(self) -> str:
        le = "<= " if self.is_bound else ""
        return f"{le}{self.weighted:.3f} bpf (per-utterance mean {le}{self.mean:.3f}; {self.utterances} utt, {self.frames} frames)"


def bits_per_frame(nll_nats, lengths, is_bound: bool = False) -> BitsPerFrame:
    """Bits per frame of a set from per-utterance negative log-likelihoods.

    Args:
        nll_nats: ``[N]`` per-utterance NLL (or negative ELBO) in nats, summed over each utterance's frames.
        lengths: ``[N]`` frames per utterance (samples; > 0).
        is_bound: mark the result as an upper bound (negative ELBO).
    Returns:
        :class:`BitsPerFrame` with both the length-weighted figure (eq. 11) and the per-utterance mean.
    Raises:
        ValueError: empty input, mismatched shapes, or a non-positive length.
    """
    nll = torch.as_tensor(nll_nats, dtype=torch.float64).reshape(-1)
    T = torch.as_tensor(lengths, dtype=torch.float64).reshape(-1)
    if nll.numel() == 0:
        raise ValueError("bits_per_frame needs at least one utterance")
    if nll.shape != T.shape:
        raise ValueError(f"nll_nats has {nll.numel()} entries but lengths has {T.numel()}")
    if bool((T <= 0).any()):
        raise ValueError("every utterance length must be positive")
    bits = nll / LN2
    return BitsPerFrame(
        weighted=float(bits.sum() / T.sum()),
        mean=float((bits / T).mean()),
        is_bound=is_bound,
        frames=int(T.sum()),
        utterances=int(nll.numel()),
    )
