"""CW-VAE: the Clockwork Variational Autoencoder adapted to raw speech, with a DMoL output.

Sources: Saxena, Ba & Hafner 2021 ("Clockwork Variational Autoencoders": a hierarchy of RSSM cells, layer ``l``
ticking every ``s_l`` steps, top-down inference); Havtorn et al. 2022 ("Benchmarking generative latent variable models
for speech"), sections 2.5 and 2.6 (strides ``s_l = c^(l-1) s1``, a ladder encoder that processes the waveform once,
1-D convolutional encoder/decoder, "autoregressive only in latent space"), appendix B (Conv-TasNet-style residual
blocks with downsampling factors larger than two), section 3 (``s1 = 64`` or ``256``, ``c = 8``, ``L = 1..3``).
TIMIT, s1 = 64: L=1 <= 12.44, L=2 <= 12.17, L=3 <= 12.15 bpf.  Training settings from the authors' public code
(github.com/JakobHavtorn/benchmarking-lvms, ``experiments/benchmarks.txt``, ``blvm/modules/rssm.py``): hidden size
192, latent size 128, precision-weighted posterior, KL weight annealed over 150k steps, free nats over 300k steps.

Notation (paper symbols; ``l = 1 .. L`` from the bottom, sample index ``i``, layer-``l`` step ``t``)::

    s_l = c^(l-1) s1                      stride of layer l in samples; n_l = ceil(T / s_l) steps
    e^1 = Enc_1(x),  e^l = Enc_l(e^(l-1))  ladder encoder: e^l_t summarises samples around t s_l .. (t+1) s_l - 1
    ctx^l_t = [h^(l+1)_u, z^(l+1)_u],  u = floor(t / c)    context from the layer above (empty for l = L): the
                                                           upper state is COPIED to the c lower steps it covers
    h^l_t = GRU(ReLU(W_z z^l_(t-1) + W_c ctx^l_t), h^l_(t-1))          deterministic state (z_(-1) = 0, h_(-1) = 0)
    p(z^l_t | h^l_t)       = N(mu_p, sd_p^2)       [mu_p, sd_p] = phi_prior(h^l_t)
    q(z^l_t | h^l_t, e^l_t) = N(mu_q, sd_q^2)      precision-weighted combination of phi_post([h^l_t, e^l_t]) and
                                                   the prior (Sonderby et al. 2016; the authors' setting)
    p(x | z) = prod_i DMoL(x_i; rho_i),  rho_(t s1 .. t s1 + s1 - 1) = Dec([h^1_t, z^1_t])   no autoregression in x

Inference is top-down: layer L over its ``n_L`` steps first, then layer L-1 given its contexts, ..., layer 1.  The
negative ELBO (nats, ``ModelOutput.nll``) is ``-log p(x | z) + sum_l sum_t KL(q(z^l_t) || p(z^l_t))`` with the
analytic Gaussian KL (Havtorn et al. eq. 9-10; the KL terms of one posterior sample of the layers above).

Receptive fields and exact segment evaluation (:meth:`CWVAE.evaluate_long`):

* the **encoder** is non-causal: each Conv-TasNet block has a depthwise dilated convolution with "same" padding, so a
  step's features see ``encoder_margin`` samples on either side of its window.  Every temporal convolution reads its
  input with the positions at or beyond a row's length set to zero, so padding never reaches a valid row, and a
  window of the waveform gives the same features as the whole utterance as long as it extends ``halo`` samples
  (``encoder_margin`` rounded up to a multiple of ``s_L``) beyond the segment on both sides.  Segments start on
  multiples of ``s_L``, so every layer's grid stays aligned; per-time-step channel normalisation (not Conv-TasNet's
  global layer norm, which pools over time) keeps the features local;
* the **RSSM cells** are causal; their ``(h, z)`` are carried from one segment to the next;
* the **decoder** is frame-local: the transposed convolutions have kernel = stride and the residual blocks convolve
  within each latent step's ``s1`` samples only, so the DMoL of samples ``t s1 .. t s1 + s1 - 1`` depends on
  ``[h^1_t, z^1_t]`` alone (like the frame decoders of VRNN / SRNN).  Context across frames flows through ``h^1``.

Hence ``evaluate_long`` with the same noise equals ``forward`` up to float rounding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ..audio import SUPPORTED_BITS
from ..distributions import DiscretizedMixtureLogistics, float32_head
from ..representations import check_representation, get_representation
from .base import ModelConfig, ModelOutput, Progress, WavelabModel, check_batch, progress_bar
from .deferred import DeferredGrads
from .latent import (FREE_NATS_MODES, LOG_2PI, free_nats_at, free_nats_kl, gaussian_kl, gaussian_log_prob,
                     gaussian_params, iw_bound_from, kl_weight)
from .papers import PaperFigure, table_1, table_2, thesis
from .stacking import mlp

# --------------------------------------------------------------------------------------------------------------------
# config


def stride_factors(s: int, max_factor: int = 4) -> list[int]:
    """Split a stride into the factors of the strided convolutions that realise it: as many ``4`` as possible, then
    ``2`` and ``3`` (e.g. ``64 -> [4, 4, 4]``, ``8 -> [4, 2]``, ``1 -> []``).

    Raises:
        ValueError: ``s`` is not a positive integer whose prime factors are 2 and 3 only.
    """
    if not isinstance(s, int) or isinstance(s, bool) or s < 1:
        raise ValueError(f"a stride must be a positive integer, got {s!r}")
    out, rest = [], s
    for f in (max_factor, 2, 3):
        while f > 1 and rest % f == 0:
            out.append(f)
            rest //= f
    if rest != 1:
        raise ValueError(f"stride {s} cannot be realised by strided convolutions with factors 2, 3 and 4; use a "
                         f"product of 2s and 3s (e.g. 64 = 4*4*4, 256, 8)")
    return out


@dataclass
class CWVAEConfig(ModelConfig):
    """CW-VAE hyper-parameters (defaults: Havtorn et al. section 3 / Table 2's two-layer model and the authors'
    ``experiments/benchmarks.txt``).

    Attributes:
        s1: stride of the bottom layer in samples (64; 256 in the paper's other setting).  Must be a product of 2s and
            3s: the encoder downsamples by it with strided convolutions of factors 4, 2, 3 (64 = 4*4*4).
        c: stride ratio between consecutive layers, ``s_l = c^(l-1) s1`` (8; a product of 2s and 3s, >= 2).
        L: number of latent layers (2; the paper reports 1, 2, 3).
        Dz: latent size per layer and step, 128.
        Dh: size of the deterministic states ``h^l``, of the MLPs' hidden layers and of the convolution channels, 192.
        enc_blocks: Conv-TasNet residual blocks after every downsampling convolution of the encoder (dilations 1, 2,
            4, ...), 2.
        dec_blocks: residual blocks after every upsampling convolution of the decoder (frame-local), 2.
        kernel_size: kernel of the depthwise convolutions (odd), 5.
        mlp_layers: linear layers of the prior and posterior MLPs, 3.
        precision_posterior: combine the posterior network's Gaussian with the prior by precision weighting (the
            authors' setting), True; False: the posterior network's Gaussian is used directly.
        num_components: logistic components of the DMoL, 10.  bits: mu-law bit depth, 16.
        min_sd: lower bound added to every Gaussian standard deviation, 1e-4.
        free_nats: free nats per layer-1 step at the start of training, 4 (the authors' default); layer ``l`` gets
            ``free_nats * s_l / s1`` per step (the same budget per second of audio, as in the authors' code).
        free_nats_mode: ``"per_dim"`` or ``"per_step"``, see :func:`~wavelab.models.latent.free_nats_kl`.
        free_nats_steps: steps over which the free nats go to 0 (constant, then cosine), 300,000; ``None``: constant.
        kl_warmup_steps: steps of linear KL warm-up from 0 to 1, 150,000 (the authors anneal with a cosine).
        eval_segment_steps: top-layer steps per segment of :meth:`CWVAE.evaluate_long` (64: 32,768 samples for
            s1 = 64, c = 8, L = 2).
        representation: the waveform representation (:mod:`wavelab.representations`), ``"mulaw"`` (default),
            ``"linear"`` or ``"pcm16"``: the encoder's input values and the DMoL's bins.
    Raises:
        ValueError: any invalid field (the message names it).
    """

    display_name: ClassVar[str] = "CW-VAE"
    key_fields: ClassVar[tuple[str, ...]] = ("Dz", "Dh", "c")
    paper_figures: ClassVar[tuple[PaperFigure, ...]] = (
        *(table_1(bpf, True, "c=8", f" s=64 L={L}") for L, bpf in ((1, 12.44), (2, 12.17), (3, 12.15))),
        *(table_1(bpf, True, "c=8", f" s=256 L={L}") for L, bpf in ((1, 13.11), (2, 12.97), (3, 12.87))),
        table_2(12.43, True, "12.33 with 100 h", " s=64 L=1"), table_2(12.39, True, "12.32 with 100 h", " s=64 L=2"),
        thesis(7.989, True, "s=64; the number of layers L is not in the quote", " s=64"))

    @classmethod
    def label_suffix(cls, config: dict) -> str:
        """``" s=<s1>"`` when the lowest layer's stride ``s1`` (or ``s``) is not 1, then ``" L=<L>"``: the rows of
        Havtorn et al.'s Table 1, e.g. ``"cwvae s=64 L=2"``."""
        s = config.get("s1", config.get("s", 1))
        suffix = f" s={s}" if s not in (None, 1) else ""
        return suffix + (f" L={config['L']}" if config.get("L") is not None else "")

    s1: int = 64
    c: int = 8
    L: int = 2
    Dz: int = 128
    Dh: int = 192
    enc_blocks: int = 2
    dec_blocks: int = 2
    kernel_size: int = 5
    mlp_layers: int = 3
    precision_posterior: bool = True
    num_components: int = 10
    bits: int = 16
    min_sd: float = 1e-4
    free_nats: float = 4.0
    free_nats_mode: str = "per_dim"
    free_nats_steps: int | None = 300_000
    kl_warmup_steps: int = 150_000
    eval_segment_steps: int = 64
    representation: str = "mulaw"

    def __post_init__(self):
        name = type(self).__name__
        for f in ("s1", "c", "L", "Dz", "Dh", "kernel_size", "mlp_layers", "num_components", "eval_segment_steps"):
            v = getattr(self, f)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name}.{f} must be a positive integer, got {v!r}")
        for f in ("enc_blocks", "dec_blocks", "kl_warmup_steps"):
            v = getattr(self, f)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise ValueError(f"{name}.{f} must be an integer >= 0, got {v!r}")
        try:
            stride_factors(self.s1)
        except ValueError as err:
            raise ValueError(f"{name}.s1: {err}") from None
        if self.c < 2:
            raise ValueError(f"{name}.c must be >= 2 (layer l+1 ticks c times slower than layer l), got {self.c!r}")
        try:
            stride_factors(self.c)
        except ValueError as err:
            raise ValueError(f"{name}.c: {err}") from None
        if self.kernel_size % 2 == 0:
            raise ValueError(f"{name}.kernel_size must be odd (same padding), got {self.kernel_size}")
        if not isinstance(self.precision_posterior, bool):
            raise ValueError(f"{name}.precision_posterior must be True or False, got {self.precision_posterior!r}")
        if self.bits not in SUPPORTED_BITS:
            raise ValueError(f"{name}.bits must be one of {SUPPORTED_BITS}, got {self.bits!r}")
        check_representation(name, self.representation, self.bits)
        if not (isinstance(self.min_sd, (int, float)) and self.min_sd > 0):
            raise ValueError(f"{name}.min_sd must be > 0, got {self.min_sd!r}")
        if not (isinstance(self.free_nats, (int, float)) and self.free_nats >= 0):
            raise ValueError(f"{name}.free_nats must be >= 0 (0 turns free nats off), got {self.free_nats!r}")
        if self.free_nats_mode not in FREE_NATS_MODES:
            raise ValueError(f"{name}.free_nats_mode must be one of {FREE_NATS_MODES}, got {self.free_nats_mode!r}")
        if self.free_nats_steps is not None and (not isinstance(self.free_nats_steps, int) or self.free_nats_steps < 1):
            raise ValueError(f"{name}.free_nats_steps must be a positive integer or None, got {self.free_nats_steps!r}")

    @property
    def strides(self) -> list[int]:
        """``[s_1, ..., s_L]`` with ``s_l = c^(l-1) s1`` (samples per step of each layer)."""
        return [self.s1 * self.c ** l for l in range(self.L)]

    @classmethod
    def quick_overrides(cls) -> dict:
        """A tiny configuration for smoke tests: ``s1 = 4``, ``c = 2``, ``Dz = 8``, ``Dh = 16``, one block per stage,
        2-layer MLPs, 3 logistics."""
        return {"s1": 4, "c": 2, "Dz": 8, "Dh": 16, "enc_blocks": 1, "dec_blocks": 1, "kernel_size": 3,
                "mlp_layers": 2, "num_components": 3}


# --------------------------------------------------------------------------------------------------------------------
# convolutional blocks


class ChannelNorm(nn.Module):
    """Layer normalisation over the channels of every time step separately, ``[B, C, N] -> [B, C, N]`` (statistics
    never pool over time, which keeps features local for segment evaluation)."""

    def __init__(self, channels: int):
        super().__init__()
        self.norm = nn.LayerNorm(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.transpose(1, 2)).transpose(1, 2)


class ResidualBlock(nn.Module):
    """Conv-TasNet residual block (Luo & Mesgarani 2019, fig. 1C): 1x1 conv, PReLU, norm, depthwise dilated conv
    ("same" zero padding), PReLU, norm, 1x1 conv, plus the input.  ``[B, C, N] -> [B, C, N]``.

    ``mask`` (``[B, 1, N]``, 1 at valid positions) zeroes the depthwise convolution's input at invalid positions, the
    only place where time steps mix.  ``margin`` = ``dilation (kernel_size - 1) / 2`` positions on each side.
    """

    def __init__(self, channels: int, kernel_size: int, dilation: int):
        super().__init__()
        self.margin = dilation * (kernel_size - 1) // 2
        self.inp = nn.Conv1d(channels, channels, 1)
        self.act1, self.norm1 = nn.PReLU(), ChannelNorm(channels)
        self.depthwise = nn.Conv1d(channels, channels, kernel_size, dilation=dilation, padding=self.margin,
                                   groups=channels)
        self.act2, self.norm2 = nn.PReLU(), ChannelNorm(channels)
        self.out = nn.Conv1d(channels, channels, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        y = self.norm1(self.act1(self.inp(x)))
        if mask is not None:
            y = y * mask
        y = self.norm2(self.act2(self.depthwise(y)))
        return x + self.out(y)


def valid_mask(lengths: torch.Tensor, resolution: int, N: int, dtype: torch.dtype) -> torch.Tensor:
    """``[B, 1, N]`` mask of the positions of a feature map at ``resolution`` samples per position that cover at
    least one valid sample: position ``j < ceil(lengths / resolution)``."""
    steps = torch.div(lengths + resolution - 1, resolution, rounding_mode="floor")
    return (torch.arange(N, device=lengths.device)[None, :] < steps[:, None]).unsqueeze(1).to(dtype)


class LadderEncoder(nn.Module):
    """The ladder encoder (Havtorn et al. 2.6): the companded waveform is downsampled by ``s1`` with strided
    convolutions (kernel = stride, factors from :func:`stride_factors`), each followed by ``enc_blocks`` residual
    blocks, giving ``e^1``; ``e^l`` comes from ``e^(l-1)`` downsampled by ``c`` in the same way.

    ``forward(x [B, N], lengths [B]) -> [e^1 [B, N / s_1, Dh], ..., e^L [B, N / s_L, Dh]]`` (``N`` a multiple of
    ``s_L``; ``lengths`` in samples, positions at or beyond them are treated as zeros).
    """

    def __init__(self, config: CWVAEConfig):
        super().__init__()
        C, k = config.Dh, config.kernel_size
        self.layers = nn.ModuleList()
        self.resolutions: list[list[int]] = []
        margin, res, c_in = 0, 1, 1
        for l in range(config.L):
            stages = nn.ModuleList()
            resolutions = []
            for f in stride_factors(config.s1 if l == 0 else config.c) or [1]:
                res *= f
                blocks = nn.ModuleList(ResidualBlock(C, k, 2 ** b) for b in range(config.enc_blocks))
                stages.append(nn.ModuleDict({"down": nn.Conv1d(c_in, C, f, stride=f), "blocks": blocks}))
                resolutions.append(res)
                margin += sum(blk.margin for blk in blocks) * res
                c_in = C
            self.layers.append(stages)
            self.resolutions.append(resolutions)
        self.margin = margin  # samples either side of a step's window that its features depend on

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> list[torch.Tensor]:
        y = x.unsqueeze(1) * valid_mask(lengths, 1, x.shape[1], x.dtype)
        feats = []
        prev_res = 1
        for stages, resolutions in zip(self.layers, self.resolutions):
            for stage, res in zip(stages, resolutions):
                y = y * valid_mask(lengths, prev_res, y.shape[-1], y.dtype)
                y = stage["down"](y)
                mask = valid_mask(lengths, res, y.shape[-1], y.dtype)
                for blk in stage["blocks"]:
                    y = blk(y, mask)
                prev_res = res
            feats.append(y.transpose(1, 2))
        return feats


class FrameDecoder(nn.Module):
    """Frame-local convolutional decoder: ``[h^1_t, z^1_t]`` (``[B, S, Dh + Dz]``) -> DMoL parameters of the ``s1``
    samples of each step, ``[B, 3M, S s1]``.

    A linear map to ``Dh`` channels, then per upsampling factor (reverse of :func:`stride_factors`) a transposed
    convolution with kernel = stride followed by ``dec_blocks`` residual blocks that convolve within each step's frame
    only (zero padding at the frame's edges), then PReLU and a 1x1 convolution to the ``3M`` parameters.
    """

    def __init__(self, config: CWVAEConfig, num_params: int):
        super().__init__()
        C = config.Dh
        self.s1, self.num_params = config.s1, num_params
        self.inp = nn.Linear(config.Dh + config.Dz, C)
        self.stages = nn.ModuleList()
        for f in reversed(stride_factors(config.s1)):
            blocks = nn.ModuleList(ResidualBlock(C, config.kernel_size, 2 ** b) for b in range(config.dec_blocks))
            self.stages.append(nn.ModuleDict({"up": nn.ConvTranspose1d(C, C, f, stride=f), "blocks": blocks}))
        self.act = nn.PReLU()
        self.out = nn.Conv1d(C, num_params, 1)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        B, S, _ = u.shape
        y = self.inp(u).reshape(B * S, -1, 1)  # one frame per row: [B S, C, 1]
        for stage in self.stages:
            y = stage["up"](y)
            for blk in stage["blocks"]:
                y = blk(y)
        y = float32_head(self.out, self.act(y))  # [B S, 3M, s1], float32 also under autocast (exact DMoL)
        return y.reshape(B, S, self.num_params, self.s1).permute(0, 2, 1, 3).reshape(B, self.num_params, S * self.s1)


# --------------------------------------------------------------------------------------------------------------------
# RSSM cell


def precision_weighted(mu_1: torch.Tensor, sd_1: torch.Tensor, mu_2: torch.Tensor,
                       sd_2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The normalised product of two diagonal Gaussians: precision ``1/sd^2 = 1/sd_1^2 + 1/sd_2^2``, mean
    ``sd^2 (mu_1 / sd_1^2 + mu_2 / sd_2^2)`` (Sonderby et al. 2016, eq. 18-19).  Returns ``(mu, sd)``."""
    p1, p2 = sd_1.pow(-2), sd_2.pow(-2)
    var = 1.0 / (p1 + p2)
    return var * (mu_1 * p1 + mu_2 * p2), var.sqrt()


class RSSMCell(nn.Module):
    """One layer's recurrent state-space cell (Hafner et al. 2019; Saxena et al. 2021): GRU state ``h``, Gaussian
    prior ``p(z_t | h_t)`` and posterior ``q(z_t | h_t, e_t)``.  ``Dc`` is the size of the context from the layer
    above (0 for the top layer)."""

    def __init__(self, config: CWVAEConfig, Dc: int):
        super().__init__()
        Dz, Dh, n = config.Dz, config.Dh, config.mlp_layers
        self.z_in = nn.Linear(Dz, Dh)
        self.ctx_in = nn.Linear(Dc, Dh, bias=False) if Dc else None
        self.gru = nn.GRUCell(Dh, Dh)
        self.prior = mlp(Dh, Dh, 2 * Dz, n)
        self.posterior = mlp(2 * Dh, Dh, 2 * Dz, n)


@dataclass
class LayerStates:
    """What one layer computed over ``S`` steps (for layer ``l``, steps of ``s_l`` samples).

    Attributes:
        h: ``[B, S, Dh]`` deterministic states; z: ``[B, S, Dz]`` the latents (posterior or prior samples).
        mu_p, sd_p: prior ``[B, S, Dz]``; mu_q, sd_q: posterior ``[B, S, Dz]`` (``None`` when sampling the prior).
        eps: ``[B, S, Dz]`` the standard normal noise used.
        context: ``[B, S, Dh + Dz]`` the context vectors ``[h^(l+1), z^(l+1)]`` handed down (copied ``c`` times),
            ``None`` for the top layer.
    """

    h: torch.Tensor
    z: torch.Tensor
    mu_p: torch.Tensor
    sd_p: torch.Tensor
    mu_q: torch.Tensor | None
    sd_q: torch.Tensor | None
    eps: torch.Tensor
    context: torch.Tensor | None


# --------------------------------------------------------------------------------------------------------------------
# model


class CWVAE(WavelabModel):
    """Clockwork VAE over raw mu-law audio (see the module docstring).

    ``forward`` returns the negative ELBO with the KL of every layer; ``evaluate_long`` the same in segments with
    carried state; ``iw_bound`` the importance-weighted bound; ``sample`` rolls the prior hierarchy out top-down and
    decodes all samples in parallel; ``posterior_latents`` gives Monte Carlo averages of the latents for analysis.
    """

    name = "cwvae"
    is_bound = True
    has_iw_bound = True
    has_posterior_latents = True

    @property
    def latent_strides(self) -> list[int]:
        """``[s_1, ..., s_L]``, samples per step of each latent layer (``config.strides``)."""
        return list(self.config.strides)

    def __init__(self, config: CWVAEConfig | None = None):
        super().__init__()
        config = config if config is not None else CWVAEConfig()
        if not isinstance(config, CWVAEConfig):
            raise TypeError(f"CWVAE expects a CWVAEConfig, got {type(config).__name__}")
        self.config = config
        self.bits = config.bits
        self.strides = config.strides
        self.representation = get_representation(config.representation, config.bits)
        self.distribution = DiscretizedMixtureLogistics(config.num_components, config.bits,
                                                        representation=self.representation)
        self.encoder = LadderEncoder(config)
        ctx = config.Dh + config.Dz
        self.cells = nn.ModuleList(RSSMCell(config, ctx if l < config.L - 1 else 0) for l in range(config.L))
        self.decoder = FrameDecoder(config, self.distribution.num_params)
        sL = self.strides[-1]
        self.halo = -(-self.encoder.margin // sL) * sL  # encoder context per side, a multiple of s_L samples
        self.train_step: int | None = None

    # ---------------------------------------------------------------- small helpers

    def set_train_step(self, step: int | None) -> None:
        """Tell the model the optimizer step (the KL warm-up and free-nats schedules read it); ``None`` switches the
        schedules off (plain ELBO)."""
        self.train_step = None if step is None else int(step)

    def update_times(self, T: int) -> list[torch.Tensor]:
        """Sample indices at which each layer updates for a sequence of ``T`` samples: layer ``l`` (index ``l - 1``)
        at ``0, s_l, 2 s_l, ...`` below ``T`` (``ceil(T / s_l)`` int64 values).

        Raises:
            ValueError: negative ``T``.
        """
        if not isinstance(T, int) or T < 0:
            raise ValueError(f"CWVAE.update_times: T must be an integer >= 0, got {T!r}")
        return [torch.arange(0, T, s, dtype=torch.int64) for s in self.strides]

    def _param(self) -> torch.Tensor:
        return next(self.parameters())

    def _check(self, codes: torch.Tensor, lengths: torch.Tensor, caller: str) -> torch.Tensor:
        return check_batch(codes, lengths, self.bits, f"CWVAE.{caller}")

    def _check_eps(self, eps, B: int, T: int, caller: str) -> list[torch.Tensor] | None:
        if eps is None:
            return None
        shapes = [(B, -(-T // s), self.config.Dz) for s in self.strides]
        if not isinstance(eps, (list, tuple)) or len(eps) != self.config.L or any(
                not isinstance(e, torch.Tensor) or tuple(e.shape) != sh for e, sh in zip(eps, shapes)):
            got = [tuple(e.shape) if isinstance(e, torch.Tensor) else type(e).__name__ for e in eps] if isinstance(
                eps, (list, tuple)) else type(eps).__name__
            raise ValueError(f"CWVAE.{caller}: eps must be a list of L = {self.config.L} tensors of shapes {shapes} "
                             f"([B, ceil(T / s_l), Dz] for layer l), got {got}")
        return list(eps)

    # ---------------------------------------------------------------- the latent hierarchy

    def _run_layer(self, l: int, feats: torch.Tensor | None, ctx_proj: torch.Tensor | None, eps: torch.Tensor,
                   state: tuple[torch.Tensor, torch.Tensor], temperature: float = 1.0):
        """Steps of layer ``l`` (0-based) one by one.  ``feats [B, S, Dh]`` the encoder features (``None``: sample the
        prior with ``z = mu_p + temperature sd_p eps``), ``ctx_proj [B, S, Dh]`` the projected context (``None`` for
        the top layer), ``eps [B, S, Dz]``, ``state = (h, z)`` before the first step.  Returns ``(LayerStates without
        context, new state)``."""
        cell, min_sd = self.cells[l], self.config.min_sd
        dg = DeferredGrads(cell.z_in, cell.gru, cell.prior, cell.posterior)
        h, z, ctx_proj, feats = dg.enter(*state, ctx_proj, feats)
        ctx_proj, feats = dg.per_step(ctx_proj), dg.per_step(feats)
        hs, zs, mps, sps, mqs, sqs = [], [], [], [], [], []
        for t in range(eps.shape[1]):
            a = dg.linear(cell.z_in, z)
            if ctx_proj is not None:
                a = a + ctx_proj[t]
            h = dg.gru_cell(cell.gru, F.relu(a), h)
            mu_p, sd_p = gaussian_params(dg.mlp(cell.prior, h).float(), min_sd)
            if feats is None:
                z = mu_p + temperature * sd_p * eps[:, t]
            else:
                posterior = dg.mlp(cell.posterior, torch.cat([h, feats[t]], dim=-1))
                mu_q, sd_q = gaussian_params(posterior.float(), min_sd)
                if self.config.precision_posterior:
                    mu_q, sd_q = precision_weighted(mu_q, sd_q, mu_p, sd_p)
                z = mu_q + sd_q * eps[:, t]
                mqs.append(mu_q), sqs.append(sd_q)
            hs.append(h), zs.append(z), mps.append(mu_p), sps.append(sd_p)
        B = eps.shape[0]

        def stack(v, D):
            return torch.stack(v, 1) if v else eps.new_zeros(B, 0, D)

        Dz, Dh = self.config.Dz, self.config.Dh
        out = LayerStates(h=stack(hs, Dh), z=stack(zs, Dz), mu_p=stack(mps, Dz), sd_p=stack(sps, Dz),
                          mu_q=stack(mqs, Dz) if feats is not None else None,
                          sd_q=stack(sqs, Dz) if feats is not None else None, eps=eps, context=None)
        return out, (h, z)

    def _hierarchy(self, feats: list[torch.Tensor] | None, eps: list[torch.Tensor], states: list,
                   temperature: float = 1.0) -> list[LayerStates]:
        """Top-down pass over all layers for one segment (``eps[l]`` ``[B, S_l, Dz]`` with ``S_(l-1) = c S_l``);
        updates ``states`` in place.  ``feats`` ``None`` samples the prior."""
        L, c = self.config.L, self.config.c
        outs: list[LayerStates | None] = [None] * L
        ctx = ctx_proj = None
        for l in reversed(range(L)):
            out, states[l] = self._run_layer(l, None if feats is None else feats[l], ctx_proj, eps[l], states[l],
                                             temperature)
            out.context = ctx
            outs[l] = out
            if l > 0:
                up = torch.cat([out.h, out.z.to(out.h.dtype)], dim=-1)  # [B, S_l, Dh + Dz]
                ctx = up.repeat_interleave(c, dim=1)  # copied to the c lower steps under each upper step
                ctx_proj = self.cells[l - 1].ctx_in(up).repeat_interleave(c, dim=1)
        return outs

    def init_states(self, batch_size: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Zero ``(h, z)`` for every layer: ``[B, Dh]`` and ``[B, Dz]``."""
        p = self._param()
        return [(p.new_zeros(batch_size, self.config.Dh), p.new_zeros(batch_size, self.config.Dz, dtype=torch.float32))
                for _ in range(self.config.L)]

    def _segments(self, codes: torch.Tensor, lengths: torch.Tensor, eps, generator, segment_steps: int | None,
                  caller: str, repeat: int = 1):
        """Inference over a batch in segments of ``segment_steps`` top-layer steps, with every layer's state carried.
        Yields ``(a, b, outs)`` per segment: top-layer steps ``a .. b - 1`` (samples ``a s_L .. b s_L - 1``) and the
        :class:`LayerStates` of each layer (for the batch repeated ``repeat`` times along dim 0)."""
        lengths = self._check(codes, lengths, caller)
        B, T = codes.shape
        eps = self._check_eps(eps, B, T, caller)
        if segment_steps is not None and (not isinstance(segment_steps, int) or segment_steps < 1):
            raise ValueError(f"CWVAE.{caller}: segment_steps must be a positive integer or None, got {segment_steps!r}")
        p = self._param()
        sL = self.strides[-1]
        nL = -(-T // sL)
        Tp = nL * sL
        x = F.pad(self.representation.model_input(codes, dtype=p.dtype), (0, Tp - T))
        size = segment_steps or max(nL, 1)
        states = self.init_states(B * repeat)
        for a in range(0, nL, size):
            b = min(a + size, nL)
            start, end = a * sL, b * sL
            w0, w1 = max(0, start - self.halo), min(Tp, end + self.halo)
            feats = self.encoder(x[:, w0:w1], lengths - w0)
            feats = [f[:, (start - w0) // s:(end - w0) // s] for f, s in zip(feats, self.strides)]
            if repeat > 1:
                feats = [f.repeat(repeat, 1, 1) for f in feats]
            seg_eps = []
            for l, s in enumerate(self.strides):
                S = (end - start) // s
                if eps is not None:
                    e = eps[l][:, start // s:end // s].to(device=p.device, dtype=torch.float32)
                    seg_eps.append(F.pad(e, (0, 0, 0, S - e.shape[1])))  # steps beyond T: zeros (never valid)
                else:
                    seg_eps.append(torch.randn(B * repeat, S, self.config.Dz, device=p.device, generator=generator))
            yield a, b, self._hierarchy(feats, seg_eps, states)

    def infer(self, codes: torch.Tensor, lengths: torch.Tensor, eps: list[torch.Tensor] | None = None,
              generator: torch.Generator | None = None, segment_steps: int | None = None) -> list[LayerStates]:
        """Top-down inference for one posterior sample: the :class:`LayerStates` of every layer (index 0 = layer 1)
        over ``ceil(T / s_l)`` steps (steps beyond a row's ``ceil(lengths / s_l)`` are computed from zeros and carry no
        meaning).

        Args:
            codes: int64 ``[B, T]`` mu-law codes (right-padded); lengths: int64 ``[B]`` valid samples.
            eps: optional list (per layer) of standard normal noise ``[B, ceil(T / s_l), Dz]`` fixing the sample.
            generator: optional ``torch.Generator`` for the noise; segment_steps: as :meth:`evaluate_long`.
        Raises:
            ValueError: bad ``codes``, ``lengths``, ``eps`` or ``segment_steps``.
        """
        T = codes.shape[-1] if isinstance(codes, torch.Tensor) else 0
        parts = [outs for _, _, outs in self._segments(codes, lengths, eps, generator, segment_steps, "infer")]
        result = []
        for l, s in enumerate(self.strides):
            n = -(-T // s)
            fields = {}
            for name in ("h", "z", "mu_p", "sd_p", "mu_q", "sd_q", "eps", "context"):
                vals = [getattr(p[l], name) for p in parts]
                fields[name] = None if not vals or vals[0] is None else torch.cat(vals, dim=1)[:, :n]
            if not parts:
                B = codes.shape[0]
                z = torch.zeros(B, 0, self.config.Dz)
                fields.update(h=torch.zeros(B, 0, self.config.Dh), z=z, mu_p=z, sd_p=z, mu_q=z, sd_q=z, eps=z)
            result.append(LayerStates(**fields))
        return result

    # ---------------------------------------------------------------- the bound

    def _terms(self, codes, lengths, eps, generator, segment_steps, caller, repeat: int = 1) -> dict:
        """Per-row ELBO terms (nats) for one posterior sample per row, in segments with carried state."""
        lengths_c = self._check(codes, lengths, caller)
        B, T = codes.shape
        Bk = B * repeat
        L, strides, cfg = self.config.L, self.strides, self.config
        lengths_k = lengths_c.repeat(repeat)
        codes_k = codes.repeat(repeat, 1)
        sL = strides[-1]
        codes_p = F.pad(codes_k, (0, -(-T // sL) * sL - T))
        steps = [torch.div(lengths_k + s - 1, s, rounding_mode="floor") for s in strides]
        step = self.train_step if self.training else None
        beta = kl_weight(step, cfg.kl_warmup_steps)
        lam = free_nats_at(step, cfg.free_nats, cfg.free_nats_steps)
        dev = codes.device
        log_px = torch.zeros(Bk, device=dev)
        log_ratio = torch.zeros(Bk, device=dev)
        kl_obj = torch.zeros(Bk, device=dev)
        kl_steps: list[list[torch.Tensor]] = [[] for _ in range(L)]
        for a, b, outs in self._segments(codes, lengths, eps, generator, segment_steps, caller, repeat):
            params = self.decoder(torch.cat([outs[0].h, outs[0].z.to(outs[0].h.dtype)], dim=-1))
            seg = codes_p[:, a * sL:b * sL]
            lp = self.distribution.log_prob(params.float(), seg)  # [Bk, (b - a) s_L]
            pos = a * sL + torch.arange(seg.shape[1], device=dev)
            log_px = log_px + torch.where(pos[None, :] < lengths_k[:, None], lp, torch.zeros_like(lp)).sum(1)
            for l, (o, s) in enumerate(zip(outs, strides)):
                t = a * (sL // s) + torch.arange(o.z.shape[1], device=dev)
                m = t[None, :] < steps[l][:, None]  # [Bk, S]
                kl = gaussian_kl(o.mu_q, o.sd_q, o.mu_p, o.sd_p)  # [Bk, S, Dz]
                kl = torch.where(m[..., None], kl, torch.zeros_like(kl))
                kl_steps[l].append(kl.sum(-1))
                log_q = -0.5 * o.eps.pow(2) - torch.log(o.sd_q) - 0.5 * LOG_2PI
                log_p = gaussian_log_prob(o.z, o.mu_p, o.sd_p)
                log_ratio = log_ratio + ((log_p - log_q).sum(-1) * m).sum(1)
                if self.training:
                    fn = free_nats_kl(kl, lam * s / strides[0], cfg.free_nats_mode)
                    kl_obj = kl_obj + (fn * m).sum(1)
        kl_per_step = [torch.cat(v, dim=1)[:, :-(-T // s)] if v else torch.zeros(Bk, 0, device=dev)
                       for v, s in zip(kl_steps, strides)]
        kl = [v.sum(1) for v in kl_per_step]
        kl_total = sum(kl) if kl else torch.zeros(Bk, device=dev)
        return {"log_px": log_px, "kl": kl, "kl_per_step": kl_per_step, "log_ratio": log_ratio,
                "kl_objective": beta * kl_obj if self.training else kl_total, "lengths": lengths_k}

    def _output(self, terms: dict) -> ModelOutput:
        kl_total = sum(terms["kl"])
        nll = -terms["log_px"] + kl_total
        extras = {"log_px": terms["log_px"]}
        extras.update({f"kl_per_step_z{l + 1}": v for l, v in enumerate(terms["kl_per_step"])})
        return ModelOutput(nll=nll, frames=terms["lengths"], is_bound=True,
                           kl={f"kl_z{l + 1}": v for l, v in enumerate(terms["kl"])}, extras=extras,
                           objective=-terms["log_px"] + terms["kl_objective"] if self.training else None)

    def forward(self, codes: torch.Tensor, lengths: torch.Tensor, eps: list[torch.Tensor] | None = None,
                generator: torch.Generator | None = None) -> ModelOutput:
        """Negative ELBO of each row with one posterior sample, the whole utterance at once.

        Args:
            codes: int64 ``[B, T]`` mu-law codes, right-padded (padding values do not matter).
            lengths: int64 ``[B]`` valid samples per row.
            eps: optional list of ``L`` standard normal tensors ``[B, ceil(T / s_l), Dz]`` (index 0 = layer 1) that
                fix the posterior samples ``z = mu_q + sd_q eps``; by default drawn from ``generator``.
            generator: optional ``torch.Generator`` for the noise.
        Returns:
            :class:`ModelOutput`: ``nll [B]`` negative ELBO in nats (``-log p(x|z)`` over the valid samples plus the
            analytic KL of every layer over its valid steps), ``frames = lengths``, ``is_bound`` True,
            ``kl = {"kl_z1": [B], ..., "kl_zL": [B]}`` (nats), ``extras`` with ``log_px [B]`` and
            ``kl_per_step_z{l} [B, ceil(T / s_l)]``; in training mode ``objective [B]`` with KL warm-up and free nats
            (layer ``l``: ``free_nats * s_l / s1`` per step).
        Raises:
            ValueError: bad ``codes``, ``lengths`` or ``eps`` (the message names the argument).
        """
        return self._output(self._terms(codes, lengths, eps, generator, None, "forward"))

    def evaluate_long(self, codes: torch.Tensor, lengths: torch.Tensor, segment_steps: int | None = None,
                      eps: list[torch.Tensor] | None = None, generator: torch.Generator | None = None) -> ModelOutput:
        """As :meth:`forward`, in segments of ``segment_steps`` top-layer steps (``segment_steps s_L`` samples;
        default ``config.eval_segment_steps``), each layer's ``(h, z)`` carried across segments and the encoder run on
        the segment plus ``halo`` samples either side.  With the same ``eps`` it equals :meth:`forward` up to float
        rounding.  Used by :func:`wavelab.evaluate.evaluate`."""
        steps = segment_steps or self.config.eval_segment_steps
        return self._output(self._terms(codes, lengths, eps, generator, steps, "evaluate_long"))

    @torch.no_grad()
    def iw_bound(self, codes: torch.Tensor, lengths: torch.Tensor, K: int, generator: torch.Generator | None = None,
                 segment_steps: int | None = None, chunk: int | None = None) -> torch.Tensor:
        """Importance-weighted bound with ``K`` posterior samples (Burda et al. 2016), ``[B]`` nats:
        ``-log (1/K) sum_k p(x | z_k) p(z_k) / q(z_k | x)`` over all layers, evaluated like :meth:`evaluate_long`;
        ``chunk`` samples per pass (default ``K``).

        Raises:
            ValueError: ``K`` or ``chunk`` not a positive integer, or bad inputs.
        """
        steps = segment_steps or self.config.eval_segment_steps

        def log_weights(k: int) -> torch.Tensor:
            t = self._terms(codes, lengths, None, generator, steps, "iw_bound", repeat=k)
            return t["log_px"] + t["log_ratio"]

        return iw_bound_from(log_weights, K, chunk, codes.shape[0], "CWVAE.iw_bound")

    # ---------------------------------------------------------------- analysis

    @torch.no_grad()
    def posterior_latents(self, codes: torch.Tensor, lengths: torch.Tensor, num_samples: int = 100,
                          generator: torch.Generator | None = None, chunk: int = 25,
                          segment_steps: int | None = None) -> list[torch.Tensor]:
        """Monte Carlo average of the posterior latents (Havtorn et al. section 4: 100 samples per time step).

        Each of ``num_samples`` draws runs the top-down inference (a sample of ``z^l`` conditions layer ``l - 1``);
        the draws are batched (the batch repeated ``chunk`` times per pass, the encoder run once per segment), and
        nothing is decoded.

        Args:
            codes, lengths: as :meth:`forward`.
            num_samples: posterior samples to average, ``>= 1``.
            generator: optional ``torch.Generator``.
            chunk: samples per pass, ``>= 1`` (bounds memory).
            segment_steps: top-layer steps per segment (``None``: whole utterances).
        Returns:
            list over layers (index 0 = ``z^1``) of float32 ``[B, ceil(T / s_l), Dz]``: the average of ``z^l_t``; zero
            at steps beyond a row's ``ceil(lengths / s_l)``.
        Raises:
            ValueError: ``num_samples`` or ``chunk`` not a positive integer, or bad inputs.
        """
        for name, v in (("num_samples", num_samples), ("chunk", chunk)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"CWVAE.posterior_latents: {name} must be a positive integer, got {v!r}")
        lengths = self._check(codes, lengths, "posterior_latents")
        B, T = codes.shape
        sums = [torch.zeros(B, -(-T // s), self.config.Dz, device=codes.device) for s in self.strides]
        for k0 in range(0, num_samples, chunk):
            k = min(chunk, num_samples - k0)
            for a, b, outs in self._segments(codes, lengths, None, generator, segment_steps, "posterior_latents", k):
                for l, (o, s) in enumerate(zip(outs, self.strides)):
                    t0 = a * (self.strides[-1] // s)
                    z = o.z.float().view(k, B, -1, self.config.Dz).sum(0)
                    n = min(z.shape[1], sums[l].shape[1] - t0)
                    sums[l][:, t0:t0 + n] += z[:, :n]
        out = []
        for l, s in enumerate(self.strides):
            steps = torch.div(lengths + s - 1, s, rounding_mode="floor")
            m = torch.arange(sums[l].shape[1], device=codes.device)[None, :] < steps[:, None]
            out.append(sums[l] / num_samples * m[..., None])
        return out

    # ---------------------------------------------------------------- generation

    @torch.inference_mode()
    def sample(self, num_samples: int, batch_size: int = 1, temperature: float = 1.0,
               generator: torch.Generator | None = None, progress: Progress = False) -> torch.Tensor:
        """Unconditional generation: roll the prior hierarchy out top-down (layer ``L`` over ``ceil(num_samples /
        s_L)`` steps, then each lower layer with the upper states copied to the steps they cover), then decode all
        layer-1 steps in parallel (in chunks of 512 steps; the decoder is frame-local) and draw every sample from its
        DMoL.

        ``temperature`` ``T`` scales the prior noise of every latent (``z = mu_p + T sd_p eps``) and is passed to
        :meth:`DiscretizedMixtureLogistics.sample`; ``T = 0`` is deterministic (prior means, the mode of the most
        likely logistic).

        Args:
            num_samples: samples per sequence, ``>= 0``.  batch_size: sequences, ``>= 1``.
            temperature: ``>= 0``.  generator: optional ``torch.Generator`` (reproducible draws).
            progress: show a tqdm bar over the latent steps, or a callable ``progress(done, total)``
                (:func:`~wavelab.models.base.progress_bar`).
        Returns:
            int64 codes ``[batch_size, num_samples]`` in ``[0, 2^bits - 1]``.
        Raises:
            ValueError: negative or non-integer ``num_samples``, ``batch_size < 1``, negative ``temperature``.
        """
        if not isinstance(num_samples, int) or num_samples < 0:
            raise ValueError(f"CWVAE.sample: num_samples must be an integer >= 0, got {num_samples!r}")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"CWVAE.sample: batch_size must be an integer >= 1, got {batch_size!r}")
        if not temperature >= 0:
            raise ValueError(f"CWVAE.sample: temperature must be >= 0, got {temperature!r}")
        p = self._param()
        sL = self.strides[-1]
        nL = -(-num_samples // sL)
        eps = [torch.randn(batch_size, nL * (sL // s), self.config.Dz, device=p.device, generator=generator)
               for s in self.strides]
        bar = progress_bar(self.config.L, progress, "CW-VAE prior", unit="layer")
        states = self.init_states(batch_size)
        # the whole roll-out at once, layer by layer (the same top-down pass as inference, without features)
        outs = self._hierarchy(None, eps, states, temperature)
        if bar is not None:
            bar.update(self.config.L)
            bar.close()
        h, z = outs[0].h, outs[0].z.to(outs[0].h.dtype)
        codes = []
        for t0 in range(0, h.shape[1], 512):
            params = self.decoder(torch.cat([h[:, t0:t0 + 512], z[:, t0:t0 + 512]], dim=-1))
            codes.append(self.distribution.sample(params.float(), temperature, generator))
        if not codes:
            return torch.zeros(batch_size, 0, dtype=torch.int64, device=p.device)
        return torch.cat(codes, dim=1)[:, :num_samples]


__all__ = ["CWVAE", "CWVAEConfig", "FrameDecoder", "LadderEncoder", "LayerStates", "RSSMCell", "ResidualBlock",
           "precision_weighted", "stride_factors"]
