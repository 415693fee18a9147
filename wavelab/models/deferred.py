"""Weight gradients of a recurrent loop computed once per segment instead of once per step.

Why: the latent models' transition, posterior and prior networks run step by step (VRNN, SRNN, CW-VAE: ``z_t``
feeds step ``t + 1``), at a batch of 2 to 4 rows.  Under plain autograd every step's backward forms the gradient of
every weight matrix it used, ``dW += g_t^T x_t``: a ``[out, in]`` matrix written back to memory per step for a
product of 2 to 4 rows.  Over a segment of ``S`` steps that moves ``S |W|`` floats for ``S B |W|`` multiply-adds,
so these loops run memory-bound at a few per cent of the CPU's matmul rate (``benchmarks/results/training_speed.json``).
The sum over steps is one matmul: ``dW = G^T X`` with ``G [S B, out]`` and ``X [S B, in]`` the stacked output
gradients and inputs.  Here the per-step backward computes only the input gradient ``g_t W`` and keeps ``g_t``;
after the loop's whole backward, one node forms ``G^T X`` and ``sum_t g_t`` (the bias) per layer.

How the order is guaranteed: :meth:`DeferredGrads.enter` passes the loop's inputs (initial state, precomputed
features) through one identity node, so every per-step node lies between that node and the loss.  Autograd runs a
node only when the gradients of all its outputs are complete, which for this node means after every step's
backward: its backward is where the sums are formed.  A per-step linear map whose input does not descend from the
entered tensors would have its gradient lost; ``tests/test_deferred.py`` checks, for every model that uses this,
that the gradients equal plain autograd's (up to float summation order).

The maths is unchanged; only the order of float additions differs.  Under autocast the deferred layers run in
their weights' precision (float32): the loop's matmuls of a few rows gain nothing from 16 bits, while the parallel
parts of the model (convolutions, the decoder over all steps) keep autocast's.  Outside training (no gradient) the
layers run as they are.  :func:`set_enabled` switches it off (``benchmarks/training_speed.py`` compares both).
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

_ENABLED = True


def set_enabled(flag: bool) -> bool:
    """Turn deferred weight gradients on or off for every model (default on); returns the previous setting."""
    global _ENABLED
    previous, _ENABLED = _ENABLED, bool(flag)
    return previous


@contextmanager
def enabled(flag: bool):
    """Context manager form of :func:`set_enabled`."""
    previous = set_enabled(flag)
    try:
        yield
    finally:
        set_enabled(previous)


class _Buffer:
    """Per layer (by ``id`` of the weight): the inputs ``x_t`` of the forward steps, in order, and the output
    gradients of the backward steps with the index of the step each belongs to."""

    def __init__(self, layers: list[nn.Module]):
        self.layers = {id(layer.weight): layer for layer in layers}
        self.inputs: dict[int, list[torch.Tensor]] = {k: [] for k in self.layers}
        self.grads: dict[int, list[tuple[int, torch.Tensor]]] = {k: [] for k in self.layers}

    def weight_grads(self, key: int) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """``(G^T X, sum of G's rows)`` of one layer over the steps that received a gradient (``None`` for none)."""
        xs, gs = self.inputs[key], sorted(self.grads[key], key=lambda pair: pair[0])
        self.grads[key] = []
        if not gs:
            return None, None
        G = torch.cat([g for _, g in gs], 0)
        X = torch.cat([xs[i] for i, _ in gs], 0).to(G.dtype)
        return G.t() @ X, G.sum(0)


class _DeferredLinear(torch.autograd.Function):
    """``y = x W^T + b`` whose backward returns only ``dx = g W`` and keeps ``g`` for :class:`_Flush`."""

    @staticmethod
    def forward(ctx, x, weight, bias, buffer, key, index):
        ctx.save_for_backward(weight)
        ctx.buffer, ctx.key, ctx.index, ctx.x_dtype = buffer, key, index, x.dtype
        # in the weights' precision also under autocast: the loop's small matmuls gain nothing from 16 bits
        with torch.autocast(device_type=x.device.type, enabled=False):
            return F.linear(x.to(weight.dtype), weight, bias)

    @staticmethod
    def backward(ctx, g):
        (weight,) = ctx.saved_tensors
        ctx.buffer.grads[ctx.key].append((ctx.index, g))
        return (g @ weight).to(ctx.x_dtype), None, None, None, None, None


class _Flush(torch.autograd.Function):
    """Identity on the loop's inputs; its backward (after every step's) returns each layer's ``G^T X`` and
    ``sum g`` as the gradients of its weight and bias."""

    @staticmethod
    def forward(ctx, buffer, n_inputs, *args):
        ctx.buffer = buffer
        return tuple(a.clone() for a in args[:n_inputs])

    @staticmethod
    def backward(ctx, *grads):
        params: list[torch.Tensor | None] = []
        for key, layer in ctx.buffer.layers.items():
            dW, db = ctx.buffer.weight_grads(key)
            params += [dW, db if layer.bias is not None else None]
        return (None, None, *grads, *params)


class DeferredGrads:
    """The per-step linear maps of one loop over one segment, their weight gradients formed once (see the module
    docstring).

    Usage: ``dg = DeferredGrads(module, ...)``; ``h, feats = dg.enter(h, feats)`` before the loop (every tensor the
    loop reads that carries a gradient); inside it ``dg.linear(layer, x)``, ``dg.mlp(seq, x)`` or
    ``dg.gru_cell(cell, x, h)`` in place of ``layer(x)``, ``seq(x)`` and ``cell(x, h)``.

    Args:
        modules: the modules whose ``nn.Linear`` / ``nn.GRUCell`` layers the loop calls.
    """

    def __init__(self, *modules: nn.Module):
        self.active = _ENABLED and torch.is_grad_enabled() and any(p.requires_grad for m in modules
                                                                   for p in m.parameters())
        if not self.active:
            return
        layers: list[nn.Module] = []
        for m in modules:
            for sub in m.modules():
                if isinstance(sub, nn.Linear):
                    layers.append(sub)
                elif isinstance(sub, nn.GRUCell):
                    layers.extend(_gru_linears(sub))
        self.buffer = _Buffer(layers)
        self._order = [p for layer in self.buffer.layers.values() for p in (layer.weight, layer.bias)]

    def enter(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The loop's input tensors passed through the node whose backward forms the weight gradients; tensors that
        are ``None`` pass through as they are.  Call once, before the loop."""
        if not self.active:
            return tensors
        present = [t for t in tensors if t is not None]
        passed = iter(_Flush.apply(self.buffer, len(present), *present, *self._order))
        return tuple(next(passed) if t is not None else None for t in tensors)

    def per_step(self, x: torch.Tensor | None) -> list[torch.Tensor] | tuple[torch.Tensor, ...] | None:
        """``x [B, S, D]`` as ``S`` tensors ``[B, D]`` (``None`` stays ``None``).  Deferred, one ``unbind``: its
        backward stacks the ``S`` gradients once, where a slice per step writes a zero tensor of the whole segment
        per step in backward (``S^2 B D`` floats).  Otherwise the slices plain autograd would take."""
        if x is None:
            return None
        return x.unbind(1) if self.active else [x[:, i] for i in range(x.shape[1])]

    def linear(self, layer: nn.Linear, x: torch.Tensor) -> torch.Tensor:
        """``layer(x)`` for ``x [B, in]`` -> ``[B, out]``, its weight gradient deferred."""
        if not self.active:
            return layer(x)
        key = id(layer.weight)
        inputs = self.buffer.inputs[key]
        inputs.append(x.detach())
        bias = None if layer.bias is None else layer.bias.detach()
        return _DeferredLinear.apply(x, layer.weight.detach(), bias, self.buffer, key, len(inputs) - 1)

    def mlp(self, seq: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
        """``seq(x)`` with every ``nn.Linear`` of the sequence through :meth:`linear` (other modules as they are)."""
        for module in seq:
            x = self.linear(module, x) if isinstance(module, nn.Linear) and self.active else module(x)
        return x

    def gru_cell(self, cell: nn.GRUCell, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """``cell(x, h)`` for ``x [B, in]``, ``h [B, H]`` -> ``[B, H]``: the GRU update of ``torch.nn.GRUCell``
        (gates ``r, z``, candidate ``n = tanh(i_n + r * (W_hn h + b_hn))``, ``h' = (1 - z) n + z h``) with both
        matmuls through :meth:`linear`."""
        if not self.active:
            return cell(x, h)
        w_ih, w_hh = _gru_linears(cell)
        i_r, i_z, i_n = self.linear(w_ih, x).chunk(3, dim=-1)
        h_r, h_z, h_n = self.linear(w_hh, h).chunk(3, dim=-1)
        r = torch.sigmoid(i_r + h_r)
        z = torch.sigmoid(i_z + h_z)
        n = torch.tanh(i_n + r * h_n)
        return n + z * (h - n)


class _GRUView(nn.Module):
    """One of a GRU cell's two matmuls seen as an ``nn.Linear``-like layer (the cell's own parameters, not copies)."""

    def __init__(self, weight: nn.Parameter, bias: nn.Parameter | None):
        super().__init__()
        self.weight, self.bias = weight, bias

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)


def _gru_linears(cell: nn.GRUCell) -> tuple[nn.Linear, nn.Linear]:
    """The input and hidden matmuls of ``cell`` as two linear layers sharing its parameters (cached on the cell)."""
    views = cell.__dict__.get("_deferred_views")
    if views is None or views[0].weight is not cell.weight_ih or views[1].weight is not cell.weight_hh:
        views = (_GRUView(cell.weight_ih, cell.bias_ih), _GRUView(cell.weight_hh, cell.bias_hh))
        cell.__dict__["_deferred_views"] = views
    return views


__all__ = ["DeferredGrads", "enabled", "set_enabled"]
