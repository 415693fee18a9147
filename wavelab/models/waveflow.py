"""WaveFlow (Ping et al. 2020) and WaveGlow-style bipartite flows on squeezed mu-law audio, with the uniform
dequantization bound that turns their continuous density into a bound on discrete bits per frame.

Sources: Ping, Peng, Zhao, Song 2020, "WaveFlow: A compact flow-based model for raw audio" (ICML; section 3: the
squeeze, the autoregressive affine coupling over the height, the 2-D dilated convolution net, the permutations over
the height, and WaveNet / WaveGlow as the special cases h = n / bipartite); Prenger, Valle, Catanzaro 2019
("WaveGlow") for the bipartite coupling over squeezed channels; Theis, van den Oord, Bethge 2016 ("A note on the
evaluation of generative models", section 3.1) and Ho et al. 2019 ("Flow++", section 3.1) for uniform dequantization.
Public code read to understand the method (nothing copied): PaddlePaddle/Parakeet ``parakeet/models/waveflow.py``
(official; permutation schedule, height dilation table, row-by-row inference with per-layer buffers) and
L0SG/WaveFlow ``model.py``.

Squeeze.  A waveform of ``n`` samples (padded with zeros up to ``T' = h W``, ``W = ceil(n / h)``) becomes a matrix
``X [h, W]`` filled column by column: sample ``i`` sits at row ``i % h``, column ``i // h``.  Consecutive samples are
neighbouring rows of one column, so an autoregressive model over the ``h`` rows is autoregressive over short stretches
of time, while the ``W`` columns are processed in parallel.

One flow (autoregressive affine coupling, section 3.1 of the paper), in the flow's row order::

    z[r, c] = x[r, c] * exp(log_s[r, c]) + t[r, c],      (log_s, t)[r, :] = Net(x[<r, :])
    log|det dz/dx| = sum_{r, c} log_s[r, c]

``Net`` is a WaveNet-like stack of gated residual layers of 2-D dilated convolutions (kernel ``kh x kw``, dilation
``dh_i`` over the height, by default the official implementation's table per ``h`` (:func:`parakeet_dilation_h`), and
``dw_i = 2^i`` over the width), causal over the height (its input is ``X`` shifted down by
one row, with zero padding on top) and non-causal ("same" zero padding) over the width.  Its 1x1 output conv starts at
zero, so every flow starts as the identity.  The Jacobian of a flow is triangular in the row order (``z[r, c]``
depends on ``x[r, c]`` and on rows ``< r`` of any column), so the flow is invertible row by row:
``x[r] = (z[r] - t[r]) * exp(-log_s[r])``, ``h`` sequential steps, each one row of convolutions thanks to per-layer
caches of earlier rows.  After flow ``i`` the rows are permuted (Parakeet's schedule): for the first half of the flows
the height order is reversed, for the second half each half of the rows is reversed separately.  ``z`` is returned in
time order (the accumulated permutation is undone; it is volume preserving and the prior is i.i.d.).

Special cases.  ``h = n`` (a single column) gives an autoregressive flow over all samples, like WaveNet (with
``permutation="none"`` the Jacobian ``dz/dx`` of the whole model is lower triangular in time).  ``coupling="bipartite"``
gives WaveGlow-like coupling: after the permutation the first ``h // 2`` rows pass unchanged and, read as channels of
a 1-D signal over the width, condition (through the same gated conv net with kernel ``1 x kw``) an affine transform of
the other rows.

Likelihood and the dequantization bound.  Audio is discrete: code ``k`` has companded value
``y_k = -1 + 2k / (2^bits - 1)`` and the cells ``[y_k - delta, y_k + delta]`` with ``delta = 1 / (2^bits - 1)`` (half
the gap) tile ``[-1 - delta, 1 + delta]``.  Any continuous density ``p_cont`` on the reals defines a discrete model
``P(k) = int_{-delta}^{delta} p_cont(y_k + u) du`` (the cells do not overlap, so ``sum_k P(k) <= 1``).  Writing the
integral as an expectation over ``u ~ U(-delta, delta)`` and applying Jensen's inequality::

    log P(k) = log(2 delta) + log E_u[p_cont(y_k + u)] >= log(2 delta) + E_u[log p_cont(y_k + u)].

For a sequence the same holds with ``u`` uniform on the product of cells, so
``-log P(k_1..k_n) <= -E_u[log p_cont(y + u)] - n log(2 delta)``.  :meth:`WaveFlow.forward` returns the one-sample
estimate of the right-hand side, ``nll = -(log p_cont(x) + n log(2 delta))`` with ``x = y + u``, in nats, marked
``is_bound=True``: an upper bound (in expectation) on the discrete NLL, so the bits per frame are reported with
``<=``.  For 16 bits, ``-log2(2 delta) = log2(65535 / 2) = 14.99998`` bits per sample; a density uniform on
``[-1 - delta, 1 + delta]`` adds ``log2(2 + 2 delta)`` (just over 1 bit) and gives exactly the uniform baseline of
16 bpf.  ``log p_cont(x) = sum_valid log N(z; 0,
sigma^2) + sum_flows log|det|`` (change of variables).  Training minimises this bound; training and evaluation draw
fresh noise ``u`` on every call.

Other representations (:mod:`wavelab.representations`, config field ``representation``).  With ``"linear"`` or
``"pcm16"`` the flow models the representation's model-domain values (linear amplitude, or the companded int16
value), and code ``k`` owns the cell ``[e_k, e_{k+1}]`` of the representation's finite bin edges, of width ``w_k``
(uniform for linear, non-uniform for pcm16).  The same argument with ``u`` uniform on each cell gives
``log P(k) >= log w_k + E_u[log p_cont(e_k + u w_k)]``, ``u ~ U(0, 1)``, so the bound adds each sample's own
log-width: ``nll = -(log p_cont(x) + sum_valid log w_{k_t})`` (the widths from a float64 table).  The default
``"mulaw"`` keeps the computation above unchanged (its noise ``u`` in ``[-delta, delta]``).

Variable lengths.  Positions ``>= lengths[b]`` (including the squeeze padding) are set to 0 before every flow, the
masks follow the row permutations, hidden activations of every layer are zeroed there (so the width convolutions see
exactly the zero padding they would see without the padding), and the prior and the log-determinants are summed over
valid positions only.  The model is therefore an exact density of the ``lengths[b]`` valid samples, independent of
the padding content and of the other rows of the batch.

Configurations: ``WaveFlowConfig()`` is the paper's small model (h = 16, 8 flows x 8 layers, 64 residual channels;
5,228,048 parameters here, unconditional; the paper's 5.91M include the mel-conditioning projections), see
:data:`WAVEFLOW_PRESETS` for the larger 128-channel model; :class:`WaveGlowConfig` is the WaveGlow-style bipartite
configuration of the same code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ..audio import SUPPORTED_BITS, bin_half_width, codes_to_companded, companded_to_codes, num_bins
from ..distributions import float32_head
from ..representations import check_representation, get_representation
from .base import ModelConfig, ModelOutput, Progress, WavelabModel, length_mask, progress_bar

COUPLINGS = ("autoregressive", "bipartite")
PERMUTATIONS = ("waveflow", "reverse", "none")
DILATION_H_SCHEDULES = ("parakeet", "cycle")
LOG_2PI = math.log(2 * math.pi)

#: Cycle length ``m`` of the official WaveFlow height dilations per ``h`` (layer ``i`` has dilation ``2^(i mod m)``).
#: Over 8 layers this reproduces the table of the official implementation (PaddlePaddle/Parakeet
#: ``parakeet/models/waveflow.py``, ``WaveFlow.dilations_dict``, used with kernel height 3), see
#: :data:`PARAKEET_DILATION_H`.
_PARAKEET_CYCLE = {8: 1, 16: 1, 32: 3, 64: 5, 128: 7}

#: The official per-``h`` height dilations of the 8 layers of a flow's net:
#: ``8, 16 -> all 1``; ``32 -> 1, 2, 4, 1, 2, 4, 1, 2``; ``64 -> 1, 2, 4, 8, 16, 1, 2, 4``;
#: ``128 -> 1, 2, 4, 8, 16, 32, 64, 1``.
PARAKEET_DILATION_H: dict[int, tuple[int, ...]] = {
    h: tuple(2 ** (i % m) for i in range(8)) for h, m in _PARAKEET_CYCLE.items()
}


def default_dilation_h(h: int, n_layers: int, kh: int = 3) -> tuple[int, ...]:
    """Schedule ``"cycle"``: height dilations ``1, 2, 4, ..., 2^(m-1)`` repeated over the layers, with the largest
    cycle length ``m`` whose height receptive field ``1 + (kh - 1)(2^m - 1)`` fits in ``h`` rows (at least one layer
    of dilation 1).

    E.g. ``h = 16, kh = 3``: ``(1, 2, 4, 1, 2, 4, 1, 2)``; ``h = 64``: cycle ``1 .. 16``.  The model's default is the
    official table instead, :func:`parakeet_dilation_h`.
    """
    m = 1
    if kh > 1:
        while 1 + (kh - 1) * (2 ** (m + 1) - 1) <= h:
            m += 1
    return tuple(2 ** (i % m) for i in range(n_layers))


def parakeet_dilation_h(h: int, n_layers: int) -> tuple[int, ...]:
    """Schedule ``"parakeet"`` (the default): the height dilations of the official WaveFlow implementation (Ping et
    al. 2020; PaddlePaddle/Parakeet ``parakeet/models/waveflow.py``, a table per ``h`` for 8 layers, kernel ``3 x 3``).

    The table, :data:`PARAKEET_DILATION_H`: ``h = 8`` and ``16``: all 1; ``32``: ``1, 2, 4, 1, 2, 4, 1, 2``; ``64``:
    ``1, 2, 4, 8, 16, 1, 2, 4``; ``128``: ``1, 2, 4, 8, 16, 32, 64, 1``.  Every entry is a cycle ``2^(i mod m)``
    (``m = 1, 1, 3, 5, 7``), so with kernel height 3 the height receptive field of a flow's net,
    ``1 + 2 * sum(dilations)``, is 17, 17, 35, 77, 257 rows: at least ``h``.

    Outside the table (a rule of this code, not of the official one, which only accepts these ``h`` and 8 layers):
    ``n_layers != 8`` repeats (or truncates) the same cycle over the layers; an ``h`` not in the table uses the cycle
    of the largest tabulated height ``<= h`` (all 1 below 8).  Dilations then never exceed ``h / 2``, but the receptive
    field may be shorter than ``h`` (e.g. few layers); causality holds for any dilations (the causal padding is
    ``(kh - 1) * dilation`` zero rows).  Pass ``dilation_h`` or use schedule ``"cycle"`` for another rule.
    """
    m = _PARAKEET_CYCLE[max((k for k in _PARAKEET_CYCLE if k <= h), default=min(_PARAKEET_CYCLE))]
    return tuple(2 ** (i % m) for i in range(n_layers))


def _positive_int(owner: str, name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{owner}.{name} must be a positive integer, got {value!r}")


@dataclass
class WaveFlowConfig(ModelConfig):
    """WaveFlow hyper-parameters; defaults are the small model of Ping et al. 2020 (section 5, "WaveFlow h = 16,
    r = 64"), unconditional on 16-bit mu-law audio.

    Attributes:
        h: squeezed height (rows per column, samples per autoregressive group), 16 (8, 16, 32, 64 in the paper; any
            ``h >= 2`` works, inputs are padded to a multiple of ``h``).
        n_flows: number of flows, 8.
        n_layers: gated residual layers per flow net, 8.
        residual_channels: channels of every layer (residual, gate halves and skip), 64 (128 for the larger model).
        kernel_size: ``(kh, kw)`` of the dilated 2-D convolutions (height, width), ``(3, 3)``; ``kw`` must be odd
            ("same" padding over the width).  Bipartite coupling uses ``(1, kw)`` (its net runs over the width only).
        dilation_h: per-layer height dilations; ``None`` -> from ``dilation_h_schedule``.  An explicit tuple wins
            over the schedule (results records store the tuple, so old runs load unchanged).
        dilation_w: per-layer width dilations; ``None`` -> ``1, 2, 4, ..., 2^(n_layers - 1)``.
        dilation_h_schedule: default height dilations when ``dilation_h`` is ``None``: ``"parakeet"`` (the official
            WaveFlow table per ``h``, :func:`parakeet_dilation_h`; ``h = 16``: all 1, height receptive field 17 rows)
            or ``"cycle"`` (:func:`default_dilation_h`, cycles ``1, 2, 4, ...`` fitting in ``h``; ``h = 16``:
            ``1, 2, 4, 1, 2, 4, 1, 2``, 35 rows).  Either way all 1 for bipartite coupling or kernel height 1
            (no height taps).  Height receptive field of a flow's net: ``1 + (kh - 1) * sum(dilation_h)`` rows.
        coupling: ``"autoregressive"`` (WaveFlow) or ``"bipartite"`` (WaveGlow-style).
        permutation: row permutation after each flow: ``"waveflow"`` (first half of the flows reverse the height
            order, second half reverse each half separately), ``"reverse"`` (every flow reverses), ``"none"``.
        bits: mu-law bit depth, 16.
        sigma: standard deviation of the Gaussian prior ``N(0, sigma^2)`` on ``z``, 1.0.
        representation: the waveform representation (:mod:`wavelab.representations`), ``"mulaw"`` (default),
            ``"linear"`` or ``"pcm16"``: the dequantization cells (see the module docstring).

    Raises:
        ValueError: any field out of range (the message names the field).
    """

    display_name: ClassVar[str] = "WaveFlow"
    key_fields: ClassVar[tuple[str, ...]] = ("h", "n_flows", "n_layers", "residual_channels")

    h: int = 16
    n_flows: int = 8
    n_layers: int = 8
    residual_channels: int = 64
    kernel_size: tuple[int, int] = (3, 3)
    dilation_h: tuple[int, ...] | None = None
    dilation_w: tuple[int, ...] | None = None
    dilation_h_schedule: str = "parakeet"
    coupling: str = "autoregressive"
    permutation: str = "waveflow"
    bits: int = 16
    sigma: float = 1.0
    representation: str = "mulaw"

    def __post_init__(self):
        owner = type(self).__name__
        for name in ("n_flows", "n_layers", "residual_channels"):
            _positive_int(owner, name, getattr(self, name))
        if isinstance(self.h, bool) or not isinstance(self.h, int) or self.h < 2:
            raise ValueError(f"{owner}.h must be an integer >= 2 (rows of the squeezed matrix), got {self.h!r}")
        ks = tuple(self.kernel_size) if isinstance(self.kernel_size, (list, tuple)) else None
        if ks is None or len(ks) != 2 or any(isinstance(k, bool) or not isinstance(k, int) or k < 1 for k in ks):
            raise ValueError(f"{owner}.kernel_size must be two positive integers (height, width), "
                             f"got {self.kernel_size!r}")
        if ks[1] % 2 == 0:
            raise ValueError(f"{owner}.kernel_size width must be odd for 'same' padding over the width, got {ks}")
        self.kernel_size = ks
        if self.coupling not in COUPLINGS:
            raise ValueError(f"{owner}.coupling must be one of {COUPLINGS}, got {self.coupling!r}")
        if self.permutation not in PERMUTATIONS:
            raise ValueError(f"{owner}.permutation must be one of {PERMUTATIONS}, got {self.permutation!r}")
        if self.dilation_h_schedule not in DILATION_H_SCHEDULES:
            raise ValueError(f"{owner}.dilation_h_schedule must be one of {DILATION_H_SCHEDULES}, "
                             f"got {self.dilation_h_schedule!r}")
        if self.dilation_h is None:
            if self.coupling == "bipartite" or ks[0] == 1:  # no height taps: a height dilation would do nothing
                self.dilation_h = (1,) * self.n_layers
            elif self.dilation_h_schedule == "parakeet":
                self.dilation_h = parakeet_dilation_h(self.h, self.n_layers)
            else:
                self.dilation_h = default_dilation_h(self.h, self.n_layers, ks[0])
        if self.dilation_w is None:
            self.dilation_w = tuple(2**i for i in range(self.n_layers))
        for name in ("dilation_h", "dilation_w"):
            value = getattr(self, name)
            if not isinstance(value, (list, tuple)) or len(value) != self.n_layers or any(
                isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in value
            ):
                raise ValueError(f"{owner}.{name} must be {self.n_layers} positive integers (one per layer, "
                                 f"n_layers = {self.n_layers}) or None for the default, got {value!r}")
            setattr(self, name, tuple(value))
        if self.bits not in SUPPORTED_BITS:
            raise ValueError(f"{owner}.bits must be one of {SUPPORTED_BITS}, got {self.bits!r}")
        check_representation(owner, self.representation, self.bits)
        if isinstance(self.sigma, bool) or not isinstance(self.sigma, (int, float)) or not self.sigma > 0:
            raise ValueError(f"{owner}.sigma must be a positive number (prior standard deviation), got {self.sigma!r}")
        self.sigma = float(self.sigma)

    @classmethod
    def quick_overrides(cls) -> dict:
        """A tiny configuration for smoke tests: h = 4, 2 flows x 2 layers, 8 channels."""
        return {"h": 4, "n_flows": 2, "n_layers": 2, "residual_channels": 8}


#: Named overrides of :class:`WaveFlowConfig` for the paper's unconditional-equivalent models (h = 16, 8 x 8 layers):
#: "h16-r64" is the small model (the default), "h16-r128" the larger one with 128 residual channels.
WAVEFLOW_PRESETS: dict[str, dict] = {
    "h16-r64": {"h": 16, "n_flows": 8, "n_layers": 8, "residual_channels": 64},
    "h16-r128": {"h": 16, "n_flows": 8, "n_layers": 8, "residual_channels": 128},
}


@dataclass
class WaveGlowConfig(WaveFlowConfig):
    """WaveGlow-style configuration of the same code (Prenger et al. 2019; WaveFlow paper section 3.3): ``h = 8``
    squeezed channels, 12 bipartite affine couplings, each conditioned by an 8-layer gated WaveNet over the width
    (kernel ``1 x 3``, width dilations 1..128) with 256 channels, rows reversed after every flow.

    Differences from WaveGlow itself: a fixed reversal instead of learned invertible 1x1 convolutions, no early
    outputs, one channel count for residual and skip paths (WaveGlow: 512 / 256), no mel conditioning.
    Fields and errors as :class:`WaveFlowConfig`.
    """

    display_name: ClassVar[str] = "WaveGlow"

    h: int = 8
    n_flows: int = 12
    n_layers: int = 8
    residual_channels: int = 256
    kernel_size: tuple[int, int] = (1, 3)
    coupling: str = "bipartite"
    permutation: str = "reverse"

    @classmethod
    def quick_overrides(cls) -> dict:
        """A tiny configuration for smoke tests: h = 4, 2 flows x 2 layers, 8 channels."""
        return {"h": 4, "n_flows": 2, "n_layers": 2, "residual_channels": 8}


def flow_permutations(h: int, n_flows: int, scheme: str) -> list[tuple[int, ...]]:
    """Row permutation applied after each flow: ``rows_new[j] = rows_old[perm[j]]``.

    ``"waveflow"``: reverse all ``h`` rows after the first ``n_flows // 2`` flows, reverse rows ``[0, h//2)`` and
    ``[h//2, h)`` separately after the others (Ping et al. 2020, section 5; Parakeet ``WaveFlow._create_perm``);
    ``"reverse"``: reverse after every flow; ``"none"``: identity.
    """
    rows = list(range(h))
    half = h // 2
    perms = []
    for i in range(n_flows):
        if scheme == "none":
            perms.append(tuple(rows))
        elif scheme == "reverse" or i < n_flows // 2:
            perms.append(tuple(rows[::-1]))
        else:
            perms.append(tuple(rows[:half][::-1] + rows[half:][::-1]))
    return perms


class GatedConv2dLayer(nn.Module):
    """One gated residual layer of the flow net: 2-D dilated conv (causal over height, "same" over width), ``tanh *
    sigmoid`` gate, 1x1 skip conv and (except in the last layer) 1x1 residual conv.

    Args:
        C: residual channels; kernel_size: ``(kh, kw)``; dilation: ``(dh, dw)``; residual: keep the residual conv.
    """

    def __init__(self, C: int, kernel_size: tuple[int, int], dilation: tuple[int, int], residual: bool = True):
        super().__init__()
        kh, kw = kernel_size
        dh, dw = dilation
        self.conv = nn.Conv2d(C, 2 * C, (kh, kw), dilation=(dh, dw))
        self.skip = nn.Conv2d(C, C, 1)
        self.residual = nn.Conv2d(C, C, 1) if residual else None
        self.dh, self.dw = dh, dw
        self.pad_top = (kh - 1) * dh  # rows of history the layer needs
        self.pad_w = (kw - 1) // 2 * dw

    def _gate(self, a: torch.Tensor, h: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        g = torch.tanh(a[:, : a.shape[1] // 2]) * torch.sigmoid(a[:, a.shape[1] // 2:])
        h_next = (h + self.residual(g)) * mask if self.residual is not None else h
        return h_next, self.skip(g)

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``h [B, C, H, W]``, ``mask [B, 1, H or 1, W]`` -> ``(h_next [B, C, H, W], skip [B, C, H, W])``."""
        a = self.conv(F.pad(h, (self.pad_w, self.pad_w, self.pad_top, 0)))
        return self._gate(a, h, mask)

    def step(self, h_row: torch.Tensor, mask_row: torch.Tensor, r: int, cache: torch.Tensor):
        """Row ``r`` only, equal to ``forward(h, mask)[:, :, r]``: ``h_row [B, C, 1, W]`` is written into ``cache
        [B, C, pad_top + H, W]`` (rows ``< pad_top`` stay zero, the causal padding) and the conv reads the ``kh`` rows
        ``r - (kh-1) dh, ..., r`` from it.  Returns ``(h_next_row, skip_row)``, each ``[B, C, 1, W]``."""
        cache[:, :, self.pad_top + r] = h_row[:, :, 0]
        window = cache[:, :, r: r + self.pad_top + 1: self.dh]  # [B, C, kh, W]
        a = F.conv2d(window, self.conv.weight, self.conv.bias, padding=(0, self.pad_w), dilation=(1, self.dw))
        return self._gate(a, h_row, mask_row)


class FlowNet(nn.Module):
    """The WaveNet-like 2-D conv net of one flow: ``u [B, in, H, W] -> (log_s, t)``, each ``[B, out, H, W]``.

    1x1 input conv -> ``n_layers`` :class:`GatedConv2dLayer` (dilations ``(dilation_h[i], dilation_w[i])``) -> sum of
    skips -> zero-initialised 1x1 output conv (so ``log_s = t = 0`` and the flow starts as the identity).  Hidden
    activations and outputs are multiplied by ``mask`` (1 = valid, 0 = padding) after every layer.
    """

    def __init__(self, in_channels: int, out_channels: int, C: int, kernel_size: tuple[int, int],
                 dilation_h: tuple[int, ...], dilation_w: tuple[int, ...]):
        super().__init__()
        n = len(dilation_h)
        self.start = nn.Conv2d(in_channels, C, 1)
        self.layers = nn.ModuleList(
            GatedConv2dLayer(C, kernel_size, (dh, dw), residual=i < n - 1)
            for i, (dh, dw) in enumerate(zip(dilation_h, dilation_w))
        )
        self.end = nn.Conv2d(C, 2 * out_channels, 1)
        nn.init.zeros_(self.end.weight)
        nn.init.zeros_(self.end.bias)
        self.C = C

    def _out(self, skip: torch.Tensor, mask: torch.Tensor, dtype: torch.dtype):
        # float32 also under autocast: log_s is the log-determinant and t shifts z, both terms of the likelihood
        log_s, t = (float32_head(self.end, skip) * mask).to(dtype).chunk(2, dim=1)
        return log_s, t

    def forward(self, u: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``u [B, in, H, W]`` (already shifted for causality), ``mask [B, 1, H, W]`` -> ``(log_s, t)``."""
        h = self.start(u) * mask
        skip = 0
        for layer in self.layers:
            h, s = layer(h, mask)
            skip = skip + s
        return self._out(skip, mask, u.dtype)

    def new_caches(self, B: int, H: int, W: int, like: torch.Tensor) -> list[torch.Tensor]:
        """Zeroed per-layer row caches ``[B, C, pad_top + H, W]`` for :meth:`step`."""
        return [like.new_zeros(B, self.C, layer.pad_top + H, W) for layer in self.layers]

    def step(self, u_row: torch.Tensor, mask_row: torch.Tensor, r: int, caches: list[torch.Tensor]):
        """Row ``r`` of :meth:`forward` from row ``r`` of its input, ``u_row [B, in, 1, W]``, given that rows
        ``< r`` went through earlier calls with the same ``caches``.  Cost: one row of every conv."""
        h = self.start(u_row) * mask_row
        skip = 0
        for layer, cache in zip(self.layers, caches):
            h, s = layer.step(h, mask_row, r, cache)
            skip = skip + s
        return self._out(skip, mask_row, u_row.dtype)


def shift_down(x: torch.Tensor) -> torch.Tensor:
    """``[B, C, H, W]`` -> same shape with row ``r`` holding row ``r - 1`` and zeros in row 0 (causality over H)."""
    return F.pad(x, (0, 0, 1, 0))[:, :, :-1]


class AutoregressiveCoupling(nn.Module):
    """WaveFlow's flow (Ping et al. 2020, eq. 3-5): ``z[r] = x[r] exp(log_s[r]) + t[r]`` with ``(log_s, t)[r]`` from
    rows ``< r`` of all columns (a :class:`FlowNet` on ``x`` shifted down one row)."""

    def __init__(self, config: WaveFlowConfig):
        super().__init__()
        self.net = FlowNet(1, 1, config.residual_channels, config.kernel_size, config.dilation_h, config.dilation_w)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x [B, 1, H, W]``, float ``mask [B, 1, H, W]`` (rows in this flow's order) -> ``(z, log_s)``, both
        ``[B, 1, H, W]``; ``z`` and ``log_s`` are 0 at padding; ``log|det dz/dx| = log_s.sum()`` per row."""
        x = x * mask
        log_s, t = self.net(shift_down(x), mask)
        return (x * torch.exp(log_s) + t) * mask, log_s

    def inverse(self, z: torch.Tensor, mask: torch.Tensor, naive: bool = False, tick=None) -> torch.Tensor:
        """``x`` from ``z`` in ``H`` sequential row steps, columns in parallel (``[B, 1, H, W]`` both).

        The default uses per-layer row caches (one row of convolutions per step); ``naive=True`` recomputes the whole
        net on the rows found so far at every step (reference for tests).  ``tick()`` is called after each row.
        """
        B, _, H, W = z.shape
        x = torch.zeros_like(z)
        caches = None if naive else self.net.new_caches(B, H, W, z)
        for r in range(H):
            m = mask[:, :, r: r + 1]
            if naive:
                log_s, t = self.net(shift_down(x), mask)
                log_s, t = log_s[:, :, r: r + 1], t[:, :, r: r + 1]
            else:
                prev = x[:, :, r - 1: r] if r > 0 else torch.zeros_like(z[:, :, :1])
                log_s, t = self.net.step(prev, m, r, caches)
            x[:, :, r: r + 1] = (z[:, :, r: r + 1] - t) * torch.exp(-log_s) * m
            if tick is not None:
                tick()
        return x


class BipartiteCoupling(nn.Module):
    """WaveGlow-style affine coupling on the squeezed matrix: rows ``[0, h//2)`` pass unchanged and, as ``h//2``
    channels of a signal over the width, condition ``z_b = x_b exp(log_s) + t`` of rows ``[h//2, h)`` through a
    :class:`FlowNet` with kernel ``1 x kw`` (Dinh et al. 2017; Prenger et al. 2019)."""

    def __init__(self, config: WaveFlowConfig):
        super().__init__()
        self.na = config.h // 2
        self.nb = config.h - self.na
        kernel = (1, config.kernel_size[1])
        self.net = FlowNet(self.na, self.nb, config.residual_channels, kernel, (1,) * config.n_layers,
                           config.dilation_w)

    def _params(self, xa: torch.Tensor, mask: torch.Tensor):
        column_mask = mask.amax(dim=2, keepdim=True)  # [B, 1, 1, W]: column holds a valid sample
        log_s, t = self.net(xa.transpose(1, 2), column_mask)  # [B, nb, 1, W]
        mb = mask[:, :, self.na:]
        return log_s.transpose(1, 2) * mb, t.transpose(1, 2) * mb

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Same contract as :meth:`AutoregressiveCoupling.forward` (``log_s`` is 0 on the first half)."""
        x = x * mask
        xa, xb = x[:, :, : self.na], x[:, :, self.na:]
        log_s, t = self._params(xa, mask)
        zb = (xb * torch.exp(log_s) + t) * mask[:, :, self.na:]
        return torch.cat([xa, zb], dim=2), torch.cat([torch.zeros_like(xa), log_s], dim=2)

    def inverse(self, z: torch.Tensor, mask: torch.Tensor, naive: bool = False, tick=None) -> torch.Tensor:
        """One parallel step: ``x_a = z_a``, ``x_b = (z_b - t(x_a)) exp(-log_s(x_a))``."""
        za = z[:, :, : self.na] * mask[:, :, : self.na]
        log_s, t = self._params(za, mask)
        xb = (z[:, :, self.na:] - t) * torch.exp(-log_s) * mask[:, :, self.na:]
        if tick is not None:
            tick()
        return torch.cat([za, xb], dim=2)


class WaveFlow(WavelabModel):
    """WaveFlow / WaveGlow-style flow on squeezed mu-law audio; see the module docstring for the maths.

    Args:
        config: :class:`WaveFlowConfig` (or :class:`WaveGlowConfig`).
    """

    is_bound = True  # the uniform dequantization bound, an upper bound on the discrete NLL in expectation

    def estimator(self, iw_samples: int | None = None) -> str:
        """``"uniform dequantization bound, 1 noise sample"``, written into results records by ``evaluate``.

        Raises:
            CapabilityError: ``iw_samples`` given (a flow has no latent posterior to importance-sample).
        """
        if iw_samples is not None:
            return super().estimator(iw_samples)  # raises CapabilityError: a flow has no iw_bound
        return "uniform dequantization bound, 1 noise sample"

    def __init__(self, config: WaveFlowConfig):
        super().__init__()
        self.config = config
        self.bits = config.bits
        self.representation = get_representation(config.representation, config.bits)
        self.h = config.h
        coupling = AutoregressiveCoupling if config.coupling == "autoregressive" else BipartiteCoupling
        self.flows = nn.ModuleList(coupling(config) for _ in range(config.n_flows))
        # absolute row order each flow works in: order_0 = identity, order_{i+1} = order_i[perm_i]
        order = list(range(config.h))
        self.orders: list[list[int]] = []
        for perm in flow_permutations(config.h, config.n_flows, config.permutation):
            self.orders.append(order)
            order = [order[j] for j in perm]
        self.inverse_orders = [sorted(range(config.h), key=o.__getitem__) for o in self.orders]

    # ------------------------------------------------------------------ squeeze

    def squeeze(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, T]`` -> ``[B, 1, h, W]`` with ``W = ceil(T / h)``, zero-padded; sample ``i`` at row ``i % h``,
        column ``i // h`` (column-major, Ping et al. 2020 section 3)."""
        B, T = x.shape
        W = -(-T // self.h)
        x = F.pad(x, (0, W * self.h - T))
        return x.view(B, W, self.h).transpose(1, 2).unsqueeze(1)

    def unsqueeze(self, X: torch.Tensor, T: int) -> torch.Tensor:
        """Inverse of :meth:`squeeze`: ``[B, 1, h, W]`` -> ``[B, T]`` (drops the squeeze padding)."""
        B = X.shape[0]
        return X[:, 0].transpose(1, 2).reshape(B, -1)[:, :T]

    def _check_lengths(self, lengths, B: int, T: int, who: str) -> torch.Tensor:
        if not isinstance(lengths, torch.Tensor) or lengths.shape != (B,) or lengths.is_floating_point():
            desc = f"{lengths.dtype} tensor of shape {tuple(lengths.shape)}" if isinstance(lengths, torch.Tensor) \
                else type(lengths).__name__
            raise ValueError(f"WaveFlow.{who}: lengths must be an integer tensor of shape [{B}] (one per row), "
                             f"got {desc}")
        if B and (int(lengths.min()) < 0 or int(lengths.max()) > T):
            raise ValueError(f"WaveFlow.{who}: lengths must lie in [0, {T}] (the input has T = {T}), "
                             f"got {lengths.tolist()}")
        return lengths.to(torch.int64)

    # ------------------------------------------------------------------ the bijection

    def transform(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The flow ``x -> z`` and its log-determinant over the valid samples.

        Args:
            x: float ``[B, T]``, continuous (dequantized companded) audio in time order.
            lengths: int64 ``[B]``, valid samples per row, ``0 <= lengths <= T``.
        Returns:
            ``(z [B, T], log_det [B])``: ``z`` in time order (0 at padding), ``log_det = log|det dz/dx|`` over the
            valid samples, in nats.
        Raises:
            ValueError: ``x`` not a float ``[B, T]`` tensor, bad ``lengths``.
        """
        if not isinstance(x, torch.Tensor) or x.dim() != 2 or not x.is_floating_point():
            raise ValueError("WaveFlow.transform: x must be a float tensor [B, T]")
        B, T = x.shape
        lengths = self._check_lengths(lengths, B, T, "transform")
        if T == 0:
            return x.clone(), x.new_zeros(B)
        X = self.squeeze(x)
        M = self.squeeze(length_mask(lengths.to(x.device), T).to(x.dtype))
        log_det = x.new_zeros(B)
        for flow, order, inverse in zip(self.flows, self.orders, self.inverse_orders):
            Z, log_s = flow(X[:, :, order], M[:, :, order])
            X = Z[:, :, inverse]
            log_det = log_det + log_s.sum(dim=(1, 2, 3))
        return self.unsqueeze(X, T), log_det

    def inverse(self, z: torch.Tensor, lengths: torch.Tensor, naive: bool = False,
                progress: Progress = False) -> torch.Tensor:
        """The inverse flow ``z -> x``: per flow (last first), ``h`` sequential row steps with cached convolutions
        (one step for bipartite coupling), all columns in parallel.

        Args:
            z: float ``[B, T]`` in time order (as returned by :meth:`transform`).
            lengths: int64 ``[B]``; positions ``>= lengths`` are ignored and returned as 0.
            naive: recompute the whole net at every row step instead of using the caches (slow reference).
            progress: show a tqdm progress bar over the row steps, or a callable ``progress(done, total)``
                (:func:`~wavelab.models.base.progress_bar`).
        Returns:
            ``x [B, T]`` with ``transform(x, lengths)[0] == z`` at the valid samples.
        Raises:
            ValueError: ``z`` not a float ``[B, T]`` tensor, bad ``lengths``.
        """
        if not isinstance(z, torch.Tensor) or z.dim() != 2 or not z.is_floating_point():
            raise ValueError("WaveFlow.inverse: z must be a float tensor [B, T]")
        B, T = z.shape
        lengths = self._check_lengths(lengths, B, T, "inverse")
        if T == 0:
            return z.clone()
        Z = self.squeeze(z)
        M = self.squeeze(length_mask(lengths.to(z.device), T).to(z.dtype))
        Z = Z * M
        steps = sum(self.h if self.config.coupling == "autoregressive" else 1 for _ in self.flows)
        bar = progress_bar(steps, progress, "WaveFlow (row steps)", unit="row")
        tick = bar.update if bar is not None else None
        for i in reversed(range(len(self.flows))):
            order, inverse = self.orders[i], self.inverse_orders[i]
            X = self.flows[i].inverse(Z[:, :, order], M[:, :, order], naive=naive, tick=tick)
            Z = X[:, :, inverse]
        if bar is not None:
            bar.close()
        return self.unsqueeze(Z, T)

    # ------------------------------------------------------------------ likelihood

    def dequantize(self, codes: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """``x = y_k + u``: companded codes plus uniform noise ``u ~ U(-delta, delta)``, ``delta = 1/(2^bits - 1)``
        (``"mulaw"``); for the other representations ``x = e_k + u w_k`` with ``u ~ U(0, 1)`` on the code's cell
        ``[e_k, e_k + w_k]`` (see the module docstring).

        Args:
            codes: int64 ``[B, T]``.
            noise: optional ``u [B, T]`` with ``|u| <= delta`` (mulaw) or ``0 <= u <= 1`` (the fraction of the cell,
                other representations); fresh noise is drawn when ``None``.
        Returns:
            float ``[B, T]`` in the dtype of the model's weights.
        Raises:
            ValueError: ``noise`` of the wrong shape or outside its range.
        """
        dtype = self.flows[0].net.start.weight.dtype
        rep = self.representation
        if rep.name != "mulaw":
            if noise is None:
                noise = torch.rand(codes.shape, device=codes.device, dtype=torch.float64)
            elif not isinstance(noise, torch.Tensor) or noise.shape != codes.shape:
                raise ValueError(f"WaveFlow: noise must be a float tensor of the codes' shape {tuple(codes.shape)}")
            elif noise.numel() and (float(noise.min()) < 0 or float(noise.max()) > 1):
                raise ValueError(f"WaveFlow: noise for representation {rep.name!r} is the fraction of the code's "
                                 f"cell and must lie in [0, 1], got [{float(noise.min()):.6g}, "
                                 f"{float(noise.max()):.6g}]")
            edges = rep.bin_edges(torch.float64, codes.device)
            widths = rep.bin_widths(torch.float64, codes.device)
            return (edges[codes] + noise.to(torch.float64) * widths[codes]).to(dtype)
        y = codes_to_companded(codes, self.bits, dtype=dtype)
        delta = bin_half_width(self.bits)
        if noise is None:
            noise = (torch.rand_like(y) * 2 - 1) * delta
        elif not isinstance(noise, torch.Tensor) or noise.shape != codes.shape:
            raise ValueError(f"WaveFlow: noise must be a float tensor of the codes' shape {tuple(codes.shape)}")
        elif noise.numel() and float(noise.abs().max()) > delta * (1 + 1e-6):
            raise ValueError(f"WaveFlow: noise must lie in [-delta, delta] with delta = {delta:.6g} (half the gap "
                             f"between companded levels), got max |u| = {float(noise.abs().max()):.6g}")
        return y + noise.to(dtype)

    def forward(self, codes: torch.Tensor, lengths: torch.Tensor, noise: torch.Tensor | None = None) -> ModelOutput:
        """Dequantization bound on the negative log-likelihood of each sequence, in nats.

        ``nll = -(log p_cont(x) + lengths * log(2 delta))``, ``x = y + u`` (see the module docstring), with
        ``log p_cont(x) = log_pz + log_det``, ``log_pz = sum_valid log N(z; 0, sigma^2)``.

        Args:
            codes: int64 ``[B, T]`` mu-law codes in ``[0, 2**bits - 1]``, right-padded (padding values do not matter).
            lengths: int64 ``[B]``, valid samples per row.
            noise: optional dequantization noise ``[B, T]`` in ``[-delta, delta]`` (tests); fresh uniform noise
                otherwise, in training and in evaluation.
        Returns:
            :class:`ModelOutput` with ``nll [B]`` (nats), ``frames = lengths``, ``is_bound = True`` and ``extras``
            ``"log_p_cont"``, ``"log_det"``, ``"log_pz"`` (each ``[B]``, nats).
        Raises:
            ValueError: codes not an int64 ``[B, T]`` tensor or out of range, bad lengths or noise.
        """
        if not isinstance(codes, torch.Tensor) or codes.dtype != torch.int64 or codes.dim() != 2:
            desc = f"{codes.dtype} tensor of shape {tuple(codes.shape)}" if isinstance(codes, torch.Tensor) \
                else type(codes).__name__
            raise ValueError(f"WaveFlow: codes must be an int64 tensor [B, T] of mu-law codes, got {desc}")
        B, T = codes.shape
        lengths = self._check_lengths(lengths, B, T, "forward")
        if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= num_bins(self.bits)):
            raise ValueError(f"WaveFlow: codes must lie in [0, {num_bins(self.bits) - 1}] for bits = {self.bits}")
        x = self.dequantize(codes, noise)
        z, log_det = self.transform(x, lengths)
        mask = length_mask(lengths.to(z.device), T)
        sigma = self.config.sigma
        log_n = -0.5 * (z / sigma) ** 2 - math.log(sigma) - 0.5 * LOG_2PI
        log_pz = torch.where(mask, log_n, torch.zeros_like(log_n)).sum(dim=1)
        log_p_cont = log_pz + log_det
        if self.representation.name == "mulaw":
            nll = -(log_p_cont + lengths.to(z.dtype) * math.log(2 * bin_half_width(self.bits)))
        else:  # each sample's own cell width (non-uniform for pcm16)
            log_w = self.representation.log_bin_widths(torch.float64, codes.device)[codes]
            nll = -(log_p_cont + torch.where(mask, log_w, torch.zeros_like(log_w)).sum(dim=1).to(z.dtype))
        return ModelOutput(nll=nll, frames=lengths, is_bound=True,
                           extras={"log_p_cont": log_p_cont, "log_det": log_det, "log_pz": log_pz})

    # ------------------------------------------------------------------ generation

    @torch.inference_mode()
    def sample(self, num_samples: int, batch_size: int = 1, temperature: float = 1.0,
               generator: torch.Generator | None = None, progress: Progress = False) -> torch.Tensor:
        """Generate audio: ``z ~ N(0, (temperature sigma)^2)``, ``x = inverse(z)`` (``h`` row steps per flow with
        cached convolutions), codes = nearest mu-law level of ``x`` (:func:`companded_to_codes`, clipped to
        ``[-1, 1]``).

        Args:
            num_samples: samples per sequence (16,000 = 1 s at 16 kHz).
            batch_size: ``B`` independent sequences.
            temperature: scale of the prior's standard deviation (1.0 = the model; 0 gives ``z = 0``).
            generator: optional ``torch.Generator`` on the model's device for reproducible draws.
            progress: tqdm progress bar over the row steps, or a callable ``progress(done, total)``
                (:func:`~wavelab.models.base.progress_bar`).
        Returns:
            int64 codes ``[B, num_samples]``.
        Raises:
            ValueError: negative ``num_samples``, ``batch_size < 1`` or negative ``temperature``.
        """
        if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 0:
            raise ValueError(f"WaveFlow.sample: num_samples must be an integer >= 0, got {num_samples!r}")
        if batch_size < 1:
            raise ValueError(f"WaveFlow.sample: batch_size must be >= 1, got {batch_size}")
        if temperature < 0:
            raise ValueError(f"WaveFlow.sample: temperature must be >= 0, got {temperature}")
        weight = self.flows[0].net.start.weight
        z = torch.randn(batch_size, num_samples, generator=generator, device=weight.device, dtype=weight.dtype)
        z = z * (temperature * self.config.sigma)
        lengths = torch.full((batch_size,), num_samples, dtype=torch.int64, device=weight.device)
        x = self.inverse(z, lengths, progress=progress)
        if self.representation.name == "mulaw":
            return companded_to_codes(x, self.bits)
        return self.representation.codes_from_values(x)


__all__ = [
    "AutoregressiveCoupling", "BipartiteCoupling", "FlowNet", "GatedConv2dLayer", "WAVEFLOW_PRESETS", "WaveFlow",
    "WaveFlowConfig", "WaveGlowConfig", "default_dilation_h", "flow_permutations",
    "DILATION_H_SCHEDULES", "PARAKEET_DILATION_H", "parakeet_dilation_h",
]
