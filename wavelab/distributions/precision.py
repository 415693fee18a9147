"""Full precision for the layers that make an exact likelihood under mixed precision.

Under autocast (fp16 on CUDA, bf16 on CPU or CUDA) linear maps and convolutions run in 16 bits.  That is fine for the
body of a network, but not for the layer that produces the parameters of the output distribution: a bin of 16-bit
mu-law is ``2 / 65535`` wide (3e-5), while bf16 resolves a mean near 0.5 only to ``2^-9`` (about 64 bins) and fp16 to
``2^-11``.  So the output heads (DMoL / categorical parameters, a flow's ``log_s`` and ``t``) run through
:func:`float32_head` (autocast off, inputs cast to float32), and the distributions compute their log-probabilities in
float32 whatever the incoming dtype.  The likelihood path is float32 end to end: the bin centres ``y_k`` of the DMoL and
a flow's dequantized input ``x = y_k + u`` are float32.  The networks' input layers that read ``y_k`` stay under
autocast: at 16 bits the next layer rounds their outputs again, and keeping them in float32 did not measurably move
the NLL.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

_HALF = (torch.float16, torch.bfloat16)


Head = nn.Module | Callable[[torch.Tensor], torch.Tensor]


def float32_head(head: Head | tuple[Head, ...], x: torch.Tensor) -> torch.Tensor:
    """``head(x)`` with autocast disabled on a float32 copy of ``x``: the layer's weights (float32 under autocast,
    which keeps the master weights in float32), inputs and outputs are all float32.

    A float64 model (or input) stays float64; a model whose weights were cast to 16 bits as a whole (no autocast)
    runs in its own dtype, since there is no float32 copy of its weights to use.

    Args:
        head: the layer producing distribution parameters (or reading ``y_k``): a module or any callable of one
            tensor, or a tuple of them applied in order (e.g. ``(norm, linear)``).
        x: its input, of any float dtype.
    Returns:
        ``head(x)``, float32 (float64 for a float64 model).
    """
    layers = head if isinstance(head, tuple) else (head,)
    dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    weight = next((p for m in layers if isinstance(m, nn.Module) for p in m.parameters() if p.is_floating_point()),
                  None)
    if weight is not None:
        dtype = weight.dtype
    x = x.to(dtype)
    if dtype in _HALF:  # a model stored in 16 bits: nothing to gain
        for layer in layers:
            x = layer(x)
        return x
    with torch.autocast(device_type=x.device.type, enabled=False):
        for layer in layers:
            x = layer(x)
        return x


class Float32Linear(nn.Linear):
    """An ``nn.Linear`` that always runs through :func:`float32_head` (same parameters and state-dict keys): the last
    layer of an MLP decoder whose outputs are distribution parameters."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.weight.dtype in _HALF:
            return super().forward(x)
        return float32_head(super().forward, x)


__all__ = ["Float32Linear", "float32_head"]
