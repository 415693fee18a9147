"""A linear-prediction path beside a network: the mixture's means are offset by a linear predictor of the sample.

Speech codecs (LPC, FLAC's LPC subframes) predict each sample as a linear function of the ``p`` before it and code the
residual.  LPCNet (Valin and Skoglund 2019, "LPCNet: Improving neural speech synthesis through linear prediction",
section 3.3) puts that predictor beside its network, so that the network only models the excitation.  Our models are
unconditional (no per-frame features to compute the coefficients from), so the predictor here is one global set of
coefficients:

    x_hat_t = sum_{j=1..p} a_j x_{t-j}                                 (linear amplitudes in [-1, 1])

initialised by Burg's method on the training split (:func:`fit_lpc`, via :func:`librosa.lpc`) and then trained with
the network.  A model using it (``WaveNetConfig.lpc_order``) adds the predictor's image in its output domain to every
mixture component's mean, ``mu_m = net_m + g(x_hat_t)`` with ``g = c`` (the mu-law compander) for ``"pcm16"`` and
``g = id`` for ``"linear"``, so that the network learns the residual around the prediction.  Zero coefficients give
the plain model back exactly.  The predictor only reads past samples, so the pmf stays a proper causal
autoregressive factorisation and the codec (:mod:`wavelab.coding`) uses it unchanged.  The predictor runs in float32
even under bf16 autocast: a bf16 sum of 32 products would move the mean by tens of int16 steps.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def fit_lpc(signals: Iterable[np.ndarray], order: int) -> np.ndarray:
    """Linear-prediction coefficients ``a_1 .. a_p`` of the concatenated signals by Burg's method.

    Args:
        signals: int16 (or float) 1-D arrays, e.g. the training split's ``Utterance.audio()``; int16 is scaled to
            ``[-1, 1)`` by ``1 / 32768``.  They are joined end to end (the joins are a negligible part of the data).
        order: ``p >= 1``.
    Returns:
        float64 ``[p]``: ``x_hat_t = sum_j a[j - 1] x_{t-j}``.
    Raises:
        ValueError: ``order < 1``, no samples, fewer samples than ``order + 1``, or silent signals (no predictor).
    Source: :func:`librosa.lpc` (Burg's method), which returns the filter ``[1, -a_1, ..., -a_p]``.
    """
    import librosa

    if not isinstance(order, int) or order < 1:
        raise ValueError(f"fit_lpc: order must be an integer >= 1, got {order!r}")
    parts = []
    for s in signals:
        s = np.asarray(s)
        parts.append(s.astype(np.float64) / 32768.0 if s.dtype == np.int16 else s.astype(np.float64))
    x = np.concatenate(parts) if parts else np.zeros(0)
    if x.size < order + 1:
        raise ValueError(f"fit_lpc: {x.size} samples cannot fit an order-{order} predictor")
    if not np.any(x):
        raise ValueError("fit_lpc: the signals are silent; there is no predictor to fit")
    return -librosa.lpc(x, order=order)[1:]


class LinearPrediction(nn.Module):
    """``x_hat_t = sum_{j=1..p} a_j x_{t-j}`` over linear amplitudes, from strictly past samples (see the module).

    Attributes:
        a: ``[p]`` coefficients (a trainable parameter, zeros until :meth:`fit`).
    """

    def __init__(self, order: int):
        super().__init__()
        if not isinstance(order, int) or order < 1:
            raise ValueError(f"LinearPrediction: order must be an integer >= 1, got {order!r}")
        self.order = order
        self.a = nn.Parameter(torch.zeros(order))

    @torch.no_grad()
    def fit(self, signals: Iterable[np.ndarray]) -> None:
        """Set :attr:`a` to :func:`fit_lpc` of ``signals`` (same errors)."""
        self.a.copy_(torch.from_numpy(fit_lpc(signals, self.order)).to(self.a))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Predictions ``[B, T]`` of ``x [B, T]`` (linear amplitudes): ``x_hat_t`` from ``x_{t-p} .. x_{t-1}``, with
        zeros before ``t = 0``.  Runs in the dtype of :attr:`a` with autocast off."""
        with torch.autocast(device_type=x.device.type, enabled=False):
            x = x.to(self.a.dtype)
            T, p = x.shape[1], self.order
            # output t sees padded[t .. t+p-1] = x[t-p .. t-1]; kernel index k multiplies x[t-p+k], i.e. a_{p-k}
            out = F.conv1d(F.pad(x.unsqueeze(1), (p, 0)), self.a.flip(0).view(1, 1, p))
            return out[:, 0, :T]

    def step(self, history: torch.Tensor) -> torch.Tensor:
        """The prediction ``[B]`` of the next sample from ``history [B, p]``, the last ``p`` linear amplitudes (oldest
        first, zeros before the first sample), as :meth:`forward` computes it at that time."""
        with torch.autocast(device_type=history.device.type, enabled=False):
            return history.to(self.a.dtype) @ self.a.flip(0)
