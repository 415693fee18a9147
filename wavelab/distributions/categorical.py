"""Categorical output distribution over the 2^b mu-law codes (a softmax over all bins).

Source: WaveNet (van den Oord et al. 2016, section 2.2) with 8-bit mu-law and 256 classes; SaShiMi (Goel et al. 2022)
uses the same head and reports its NLL in bits per byte.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..audio import num_bins
from .runs import check_runs


class Categorical:
    """Softmax over ``2**bits`` codes; parameters are logits ``[B, 2**bits, T]`` (channel-first).

    Raises:
        ValueError: unsupported ``bits``, wrong parameter channels or codes out of range.
    """

    def __init__(self, bits: int = 8):
        self.bits = bits
        self.num_bins = num_bins(bits)

    @property
    def num_params(self) -> int:
        """Channels the network must produce: ``2**bits`` logits."""
        return self.num_bins

    def __repr__(self) -> str:
        return f"Categorical(bits={self.bits})"

    def _check(self, params: torch.Tensor) -> None:
        if params.shape[1] != self.num_bins:
            raise ValueError(f"Categorical over {self.num_bins} codes expects {self.num_bins} logits in dim 1, "
                             f"got shape {tuple(params.shape)}")

    def log_prob(self, params: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """``[B, 2**bits, T]`` logits and int64 codes ``[B, T]`` -> ``[B, T]`` float32 log-probabilities (nats)."""
        self._check(params)
        if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= self.num_bins):
            raise ValueError(f"codes must lie in [0, {self.num_bins - 1}], got [{int(codes.min())}, {int(codes.max())}]")
        with torch.autocast(device_type=params.device.type, enabled=False):  # float32 also under mixed precision
            return F.log_softmax(params.float(), dim=1).gather(1, codes.unsqueeze(1)).squeeze(1)

    def runs_log_prob(self, params: torch.Tensor, start: torch.Tensor, width: int, count: int) -> torch.Tensor:
        """Log-masses ``[B, N, count]`` (nats) of ``count`` consecutive runs of ``width`` codes from ``start``
        ``[B, N]``, for logits ``params [B, 2**bits, N]``: the sums of the softmax over each run.  The interface,
        shapes and errors of :meth:`wavelab.distributions.DiscretizedMixtureLogistics.runs_log_prob`, which
        :mod:`wavelab.coding` uses; float32, or float64 for float64 ``params``."""
        self._check(params)
        check_runs(start, width, count, self.num_bins)
        with torch.autocast(device_type=params.device.type, enabled=False):
            logits = params if params.dtype == torch.float64 else params.float()
            log_p = F.log_softmax(logits, dim=1).transpose(1, 2)  # [B, N, 2**bits]
            codes = start.unsqueeze(-1) + torch.arange(width * count, device=start.device)  # [B, N, count width]
            per_code = log_p.gather(2, codes).reshape(*start.shape, count, width)
            return torch.logsumexp(per_code, dim=-1)

    def sample(self, params: torch.Tensor, temperature: float = 1.0,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw codes ``[B, ...]`` from ``softmax(logits / temperature)`` (argmax when ``temperature == 0``)."""
        self._check(params)
        if temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {temperature}")
        logits = params.float()
        if temperature == 0:
            return logits.argmax(dim=1)
        u = torch.rand(logits.shape, generator=generator, device=logits.device).clamp(1e-10, 1 - 1e-10)
        return (logits / temperature - torch.log(-torch.log(u))).argmax(dim=1)
