"""The contract every wavelab model follows, so that training, evaluation, tables and the listening room never
special-case a model.

A model is an ``nn.Module`` with

* ``config``: a dataclass whose field names and defaults are the paper's configuration;
* ``forward(codes, lengths) -> ModelOutput``: ``codes`` is an int64 tensor ``[B, T]`` of mu-law codes in
  ``[0, 2**bits - 1]`` (right-padded), ``lengths`` an int64 tensor ``[B]`` of valid samples per row;
* ``sample(num_samples, batch_size=1, temperature=1.0, generator=None, progress=False) -> codes [B, num_samples]``,
  unconditional generation through the model's fast path;
* ``bits``: the mu-law bit depth of its inputs and outputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class ModelOutput:
    """What a model's forward pass returns for a batch.

    Attributes:
        nll: ``[B]`` float, per-utterance negative log-likelihood in nats summed over the valid frames (for a latent
            variable model, the negative ELBO, an upper bound on the NLL).
        frames: ``[B]`` int64, the number of frames each ``nll`` covers.
        is_bound: True when ``nll`` is a bound (negative ELBO) rather than an exact NLL.
        kl: per-term KL divergences in nats, each ``[B]`` (empty for exact-likelihood models).
        extras: anything else a model wants to log (tensors, not used by the training loop).
        objective: optional ``[B]`` per-utterance training objective in nats, when it differs from ``nll`` (e.g. a
            latent model's KL warm-up or free nats); :meth:`loss` minimises it instead of ``nll``.  It never enters
            reported likelihoods, which always come from ``nll``.
    """

    nll: torch.Tensor
    frames: torch.Tensor
    is_bound: bool = False
    kl: dict[str, torch.Tensor] = field(default_factory=dict)
    extras: dict[str, torch.Tensor] = field(default_factory=dict)
    objective: torch.Tensor | None = None

    def loss(self) -> torch.Tensor:
        """Training loss: nats per frame over the batch, ``sum(objective or nll) / sum(frames)`` (scalar)."""
        total = self.nll if self.objective is None else self.objective
        return total.sum() / self.frames.sum().clamp_min(1)


def length_mask(lengths: torch.Tensor, T: int) -> torch.Tensor:
    """Boolean mask ``[B, T]`` that is True for the first ``lengths[b]`` positions of row ``b``."""
    return torch.arange(T, device=lengths.device)[None, :] < lengths[:, None]


def check_batch(codes: torch.Tensor, lengths: torch.Tensor, bits: int, where: str) -> torch.Tensor:
    """Check a model's input batch and return ``lengths`` as int64 on the device of ``codes``.

    Args:
        codes: int64 ``[B, T]`` mu-law codes in ``[0, 2**bits - 1]`` (right-padded).
        lengths: ``[B]`` valid samples per row, in ``[0, T]``.
        bits: the mu-law bit depth of the model.
        where: the caller's name for the messages, e.g. ``"VRNN.forward"``.
    Raises:
        ValueError: wrong type, dtype or shape, lengths outside ``[0, T]`` or codes outside the bins; the message names
            the argument.
    """
    from ..audio import num_bins

    if not isinstance(codes, torch.Tensor) or codes.dtype != torch.int64 or codes.dim() != 2:
        desc = (f"{codes.dtype} tensor of shape {tuple(codes.shape)}" if isinstance(codes, torch.Tensor)
                else type(codes).__name__)
        raise ValueError(f"{where}: codes must be an int64 tensor [B, T] of mu-law codes, got {desc}")
    B, T = codes.shape
    if not isinstance(lengths, torch.Tensor) or lengths.shape != (B,):
        shape = tuple(lengths.shape) if isinstance(lengths, torch.Tensor) else type(lengths).__name__
        raise ValueError(f"{where}: lengths must be a tensor of shape [{B}] (one per row of codes), got {shape}")
    lengths = lengths.to(device=codes.device, dtype=torch.int64)
    if B and (int(lengths.min()) < 0 or int(lengths.max()) > T):
        raise ValueError(f"{where}: lengths must lie in [0, {T}] (codes has T = {T}), got {lengths.tolist()}")
    if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= num_bins(bits)):
        raise ValueError(f"{where}: codes must lie in [0, {num_bins(bits) - 1}] for {bits}-bit mu-law, "
                         f"got range [{int(codes.min())}, {int(codes.max())}]")
    return lengths
