"""WaveNet: an autoregressive stack of dilated causal convolutions over raw mu-law audio, with fast cached generation.

Sources: van den Oord et al. 2016 ("WaveNet: A generative model for raw audio", sections 2.1-2.4) for the architecture;
Havtorn et al. 2022 (section 3 and appendix B) for the benchmark configuration: unconditional, one input channel (the
companded value ``y_k`` of each 16-bit mu-law code), 5 blocks x 10 layers with dilations 1, 2, ..., 512 in every
block, ``Dc = 96`` channels, a discretized mixture of 10 logistics (DMoL) as output distribution, receptive field
5,117 samples; Paine et al. 2016 ("Fast WaveNet generation algorithm") for generation with per-layer queues.

Network, for input ``u [B, 1, T]`` (companded codes shifted right by one sample, see :meth:`WaveNet.network_input`)::

    h = CausalConv(u)                                    initial causal conv, 1 -> Dc channels, kernel k
    for each of the blocks * layers_per_block layers (dilation d = 2^i, i = 0 .. layers_per_block - 1):
        a, b = split(DilatedCausalConv_d(h))             Dc -> 2 Dc channels, kernel k, dilation d
        z = tanh(a) * sigmoid(b)                         gated activation unit (eq. 2 of van den Oord et al.)
        skip += Conv1x1(z)                               Dc -> skip_channels
        h = h + Conv1x1(z)                               residual, Dc -> Dc (absent on the last layer: unused)
    params = Conv1x1(ReLU(Conv1x1(ReLU(skip))))          skip_channels -> skip_channels -> 3 M DMoL parameters

With ``lpc_order = p > 0`` (LPCNet's idea, :mod:`wavelab.models.lpc`) a linear predictor
``x_hat_t = sum_j a_j x_{t-j}`` of the linear amplitudes runs beside the stack and every component's mean becomes
``mu_m = net_m + g(x_hat_t)`` (``g`` the representation's map into the DMoL's domain), so the network models the
residual around the prediction; ``a`` is fitted on the training split before the first step
(:meth:`WaveNet.fit_to_data`).

With ``adaptive_residual`` (``pcm16`` only; issue 22's hybrid, the classical codecs' predictor in front of a learned
coder) the stack models, instead of the samples, the residual of the backward-adaptive integer NLMS cascade of
:mod:`wavelab.adaptive` run over each row from its first sample, wrapped into int16: the residual is a bijection of
the samples given their past, so its negative log-likelihood is a code length of the samples
(:func:`wavelab.adaptive.wrap_int16`).  Training segments start the cascade afresh at the segment's first sample;
an evaluated utterance starts it at the utterance's, as a codec does.

Receptive field: the initial conv sees ``k`` inputs and every dilated layer adds ``(k - 1) d``, so
``R = k + blocks (k - 1) (2^layers_per_block - 1)``; for the paper config ``R = 2 + 5 * 1023 = 5117`` samples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..audio import SUPPORTED_BITS, num_bins
from ..distributions import DiscretizedMixtureLogistics, float32_head
from ..representations import check_representation, get_representation
from . import fused
from .base import ModelConfig, ModelOutput, Progress, WavelabModel, check_batch, length_mask, progress_steps
from .lpc import LinearPrediction
from .papers import PaperFigure, table_1, table_2, thesis


@dataclass
class WaveNetConfig(ModelConfig):
    """WaveNet hyper-parameters; the defaults are the configuration of Havtorn et al. (section 3, appendix B).

    Attributes:
        Dc: residual (and dilated-conv) channels, 96 in the paper (16 .. 160 in its appendix).
        blocks: number of dilation cycles, 5.
        layers_per_block: dilated layers per block, 10, with dilations ``1, 2, ..., 2^(layers_per_block - 1)``.
        kernel_size: kernel of the initial causal conv and of every dilated conv, 2.
        skip_channels: channels of the skip path and the output head. ``None`` (the default) means "equal to Dc":
            the paper names a single channel count ``Dc`` "throughout the model"; it is filled in at construction.
        num_components: ``M``, logistic components of the DMoL output, 10.
        bits: mu-law bit depth of inputs and outputs, 16.
        representation: the waveform representation (:mod:`wavelab.representations`): ``"mulaw"`` (the paper's
            16-bit mu-law codes, default), ``"linear"`` (16-bit linear PCM) or ``"pcm16"`` (companded int16 input, pmf
            over the int16 values); it sets the network's input values and the DMoL's bins.
        lpc_order: order ``p`` of the linear-prediction path (see the module docstring); 0 (the default, the
            paper's model) means none.  Needs a lossless representation (``"linear"`` or ``"pcm16"``).
        adaptive_residual: model the wrapped residual of the adaptive NLMS cascade (see the module docstring);
            ``False`` (the paper's model) by default.  Needs ``"pcm16"`` and no ``lpc_order``; no generation.

    Raises:
        ValueError: a non-positive size, ``kernel_size < 2``, unsupported ``bits``, an unknown representation, or a
            negative ``lpc_order`` or one with ``"mulaw"``, ``adaptive_residual`` without ``"pcm16"`` or with
            ``lpc_order``.
    """

    display_name: ClassVar[str] = "WaveNet"
    key_fields: ClassVar[tuple[str, ...]] = ("Dc", "blocks")
    paper_figures: ClassVar[tuple[PaperFigure, ...]] = (
        table_1(10.88, setting="Dc=96"), table_1(13.30, setting="Dc=96", suffix=" s=64"),
        table_1(14.11, setting="Dc=96", suffix=" s=256"), table_2(11.05, setting="Dc=96; 10.85 with 100 h"),
        thesis(7.246))

    Dc: int = 96
    blocks: int = 5
    layers_per_block: int = 10
    kernel_size: int = 2
    skip_channels: int | None = None
    num_components: int = 10
    bits: int = 16
    representation: str = "mulaw"
    lpc_order: int = 0
    adaptive_residual: bool = False

    def __post_init__(self):
        if self.skip_channels is None:
            self.skip_channels = self.Dc
        for name in ("Dc", "blocks", "layers_per_block", "skip_channels", "num_components"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"WaveNetConfig.{name} must be a positive integer, got {value!r}")
        if not isinstance(self.kernel_size, int) or self.kernel_size < 2:
            raise ValueError(f"WaveNetConfig.kernel_size must be an integer >= 2, got {self.kernel_size!r}")
        if self.bits not in SUPPORTED_BITS:
            raise ValueError(f"WaveNetConfig.bits must be one of {SUPPORTED_BITS}, got {self.bits!r}")
        check_representation("WaveNetConfig", self.representation, self.bits)
        if not isinstance(self.lpc_order, int) or self.lpc_order < 0:
            raise ValueError(f"WaveNetConfig.lpc_order must be an integer >= 0, got {self.lpc_order!r}")
        if self.lpc_order and self.representation == "mulaw":
            raise ValueError("WaveNetConfig.lpc_order needs a lossless representation ('linear' or 'pcm16'): a linear "
                             "predictor of mu-law codes' amplitudes is not defined by the paper's setting")
        if not isinstance(self.adaptive_residual, bool):
            raise ValueError(f"WaveNetConfig.adaptive_residual must be true or false, got {self.adaptive_residual!r}")
        if self.adaptive_residual and (self.representation != "pcm16" or self.lpc_order):
            raise ValueError("WaveNetConfig.adaptive_residual needs representation 'pcm16' (the cascade runs on the "
                             "int16 samples) and lpc_order 0 (one predictor at a time)")

    @property
    def dilations(self) -> tuple[int, ...]:
        """Dilation of every dilated layer in order: ``(1, 2, ..., 512) * blocks`` for the paper config (50 layers)."""
        return tuple(2**i for i in range(self.layers_per_block)) * self.blocks

    @classmethod
    def quick_overrides(cls) -> dict:
        """A small configuration for smoke tests and the book's quick mode: ``Dc = 16``, one block of 6 layers."""
        return {"Dc": 16, "blocks": 1, "layers_per_block": 6}

    @property
    def receptive_field(self) -> int:
        """Samples of network input that one output sees: ``k + (k - 1) * sum(dilations)`` (5117 for the paper)."""
        return self.kernel_size + (self.kernel_size - 1) * sum(self.dilations)

    def num_parameters(self) -> int:
        """Number of trainable parameters, counted from the architecture (2,787,198 for the paper config)."""
        k, dc, s, p = self.kernel_size, self.Dc, self.skip_channels, 3 * self.num_components
        n_layers = len(self.dilations)
        initial = k * dc + dc
        dilated = n_layers * (dc * 2 * dc * k + 2 * dc)
        skip = n_layers * (dc * s + s)
        residual = (n_layers - 1) * (dc * dc + dc)  # the last layer has no residual 1x1 conv
        head = (s * s + s) + (s * p + p)
        return initial + dilated + skip + residual + head + self.lpc_order


class ResidualLayer(nn.Module):
    """One gated dilated causal layer with residual and skip 1x1 convs (van den Oord et al. 2016, fig. 4).

    Args:
        Dc: residual channels; skip_channels: skip channels; kernel_size, dilation: of the dilated conv.
        residual: whether the layer has a residual 1x1 conv (False for the last layer, whose residual is unused).
    """

    def __init__(self, Dc: int, skip_channels: int, kernel_size: int, dilation: int, residual: bool = True):
        super().__init__()
        self.Dc, self.kernel_size, self.dilation = Dc, kernel_size, dilation
        self.dilated = nn.Conv1d(Dc, 2 * Dc, kernel_size, dilation=dilation)
        self.skip = nn.Conv1d(Dc, skip_channels, 1)
        self.residual = nn.Conv1d(Dc, Dc, 1) if residual else None

    @property
    def queue_length(self) -> int:
        """Past inputs the layer needs at generation time: ``(kernel_size - 1) * dilation``."""
        return (self.kernel_size - 1) * self.dilation

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``h [B, Dc, T] -> (h_next [B, Dc, T], skip [B, skip_channels, T])``, causal (left zero padding)."""
        a, b = self.dilated(F.pad(h, (self.queue_length, 0))).chunk(2, dim=1)
        z = torch.tanh(a) * torch.sigmoid(b)
        h_next = h + self.residual(z) if self.residual is not None else h
        return h_next, self.skip(z)


@dataclass
class WaveNetState:
    """Generation state of the fast (queue) method of Paine et al. 2016 for a batch of ``B`` sequences.

    Attributes:
        t: number of network inputs consumed so far (the next :meth:`WaveNet.step` predicts sample ``t``).
        input_queue: ``[k - 1, B, 1]`` ring buffer of the last network inputs (companded values).
        queues: per dilated layer, ``[(k - 1) d, B, Dc]`` ring buffer of its last inputs; the input of time ``s`` sits
            at row ``s mod ((k - 1) d)``.  Times before 0 hold zeros, as the zero padding of the causal convs.
        x_prev: int64 ``[B]``, the code the first :meth:`WaveNet.step` consumes: the code of silence for a fresh
            state, the last prompt code after a prompt.
        weights: the model's weights laid out as matrices for single-step matmuls, taken when the state was made
            (a state made before an optimizer step keeps the old weights).
        lpc_history: ``[B, p]`` the last ``p`` linear amplitudes (oldest first, zeros before the first sample) for
            the linear-prediction path; ``None`` without one.
        buffer: the one flat tensor every queue is a view of (what the compiled loop of :meth:`WaveNet.steps`
            writes to).
        fused: the weights packed as float32 arrays for that loop, made on its first call.
    """

    t: int
    input_queue: torch.Tensor
    queues: list[torch.Tensor]
    x_prev: torch.Tensor
    weights: tuple
    lpc_history: torch.Tensor | None = None
    buffer: torch.Tensor | None = None
    fused: dict | None = None


class WaveNet(WavelabModel):
    """Unconditional WaveNet with a DMoL head over ``2**bits`` mu-law codes (see the module docstring).

    Attributes:
        config: the :class:`WaveNetConfig`.
        bits: mu-law bit depth.
        distribution: the output :class:`~wavelab.distributions.DiscretizedMixtureLogistics`.
        receptive_field: samples of context one prediction sees (5117 for the paper config).
        silence_code: the mu-law code of amplitude 0.0, the network input before the first sample.
    """

    def __init__(self, config: WaveNetConfig | None = None):
        super().__init__()
        config = config if config is not None else WaveNetConfig()
        if not isinstance(config, WaveNetConfig):
            raise TypeError(f"WaveNet expects a WaveNetConfig, got {type(config).__name__}")
        self.config = config
        self.bits = config.bits
        self.representation = get_representation(config.representation, config.bits)
        self.distribution = DiscretizedMixtureLogistics(config.num_components, config.bits,
                                                        representation=self.representation)
        self.receptive_field = config.receptive_field
        self.silence_code = self.representation.silence_code
        k, dc, s = config.kernel_size, config.Dc, config.skip_channels
        self.input_conv = nn.Conv1d(1, dc, k)
        n = len(config.dilations)
        self.layers = nn.ModuleList(
            ResidualLayer(dc, s, k, d, residual=i < n - 1) for i, d in enumerate(config.dilations)
        )
        self.head = nn.Sequential(
            nn.ReLU(), nn.Conv1d(s, s, 1), nn.ReLU(), nn.Conv1d(s, self.distribution.num_params, 1)
        )
        self.lpc = LinearPrediction(config.lpc_order) if config.lpc_order else None

    def fit_to_data(self, utterances) -> None:
        """Before the first training step: fit the linear-prediction path's coefficients on ``utterances`` (their
        ``audio()``, or int16 arrays; :func:`wavelab.models.lpc.fit_lpc`, whose errors it raises); nothing without
        ``lpc_order``."""
        if self.lpc is not None:
            self.lpc.fit(u.audio() if hasattr(u, "audio") else u for u in utterances)

    def _mean_offset(self, codes: torch.Tensor) -> torch.Tensor:
        """``g(x_hat_t)`` ``[B, T]``: the linear prediction of each sample from the codes before it, on the DMoL's
        axis (float32)."""
        return self.representation.model_value(self.lpc(self.representation.to_linear(codes)))

    def _add_offset(self, params: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
        """``params`` (``[B, 3M, ...]``) with ``offset`` (``[B, ...]``) added to the M means."""
        M = self.distribution.num_components
        return torch.cat([params[:, :M], params[:, M:2 * M] + offset.unsqueeze(1).to(params.dtype),
                          params[:, 2 * M:]], dim=1)

    # ------------------------------------------------------------------ training / likelihood

    def _check_codes(self, codes: torch.Tensor, name: str = "codes") -> None:
        if not isinstance(codes, torch.Tensor) or codes.dtype != torch.int64 or codes.dim() != 2:
            if isinstance(codes, torch.Tensor):
                desc = f"{codes.dtype} tensor of shape {tuple(codes.shape)}"
            else:
                desc = type(codes).__name__
            raise ValueError(f"WaveNet: {name} must be an int64 tensor [B, T] of mu-law codes, got {desc}")

    def network_input(self, codes: torch.Tensor) -> torch.Tensor:
        """The input sequence ``u`` for predicting ``codes``: companded codes shifted right by one sample.

        ``u_0`` is the companded value of the silence code (amplitude 0.0) and ``u_t = y(x_{t-1})``, so the first
        sample is predicted from silence and each ``x_t`` only from ``x_{<t}``.

        Args:
            codes: int64 ``[B, T]``.
        Returns:
            float ``[B, 1, T]`` in the dtype of the model's weights.
        """
        first = torch.full_like(codes[:, :1], self.silence_code)
        shifted = torch.cat([first, codes[:, :-1]], dim=1)
        return self.representation.model_input(shifted, dtype=self.input_conv.weight.dtype).unsqueeze(1)

    def network(self, u: torch.Tensor, keep: bool = False):
        """Run the convolution stack on a float network input ``u [B, 1, T]`` (see :meth:`network_input`; any real
        signal works, which lets a caller differentiate with respect to the input) and return DMoL params
        ``[B, 3M, T]``.

        With ``keep=True`` also return, for the input conv and every dilated layer, the last ``(k-1) d`` columns of
        its input (``[B, C, <= (k-1) d]``), which :meth:`default_state` puts in the generation queues.
        """
        k = self.config.kernel_size
        tails = [u[:, :, -(k - 1):]] if keep else None
        h = self.input_conv(F.pad(u, (k - 1, 0)))
        skip = 0
        for layer in self.layers:
            if keep:
                tails.append(h[:, :, -layer.queue_length:])
            h, s = layer(h)
            skip = skip + s
        params = float32_head(self.head, skip)  # float32 also under autocast (exact DMoL likelihood)
        return (params, tails) if keep else params

    def logits(self, codes: torch.Tensor) -> torch.Tensor:
        """DMoL parameters of the next-sample predictions: ``params[:, :, t]`` parametrises ``p(x_t | x_{<t})``.

        Args:
            codes: int64 ``[B, T]`` mu-law codes.
        Returns:
            ``[B, 3M, T]`` in the layout ``[logits M | means M | log_scales M]`` of
            :class:`~wavelab.distributions.DiscretizedMixtureLogistics` (with ``adaptive_residual``: a pmf of
            :meth:`residual_codes` at ``t``).
        Raises:
            ValueError: ``codes`` is not an int64 ``[B, T]`` tensor.
        """
        self._check_codes(codes)
        return self._params_and_targets(codes, None)[0]

    def residual_codes(self, codes: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """With ``adaptive_residual``: the ``pcm16`` codes of each row's wrapped cascade residual
        (:func:`wavelab.adaptive.wrapped_residual` of its first ``lengths[b]`` samples; the padding after them stays
        as it is), the sequence the network models.  Without it: ``codes`` themselves.

        Args:
            codes: int64 ``[B, T]`` pcm16 codes; lengths: int64 ``[B]`` (default: every row full).
        Returns:
            int64 ``[B, T]`` on ``codes``' device.
        """
        if not self.config.adaptive_residual:
            return codes
        from ..adaptive import wrapped_residual

        rep = self.representation
        out = rep.pcm16_from_codes(codes)
        ends = [codes.shape[1]] * codes.shape[0] if lengths is None else [int(n) for n in lengths]
        for b, n in enumerate(ends):
            out[b, :n] = wrapped_residual(out[b, :n])
        return rep.codes_from_pcm16(out).to(codes.device)

    def _params_and_targets(self, codes: torch.Tensor, lengths: torch.Tensor | None):
        """``(DMoL params [B, 3M, T], the codes they are a pmf of [B, T])``: the samples' codes, or with
        ``adaptive_residual`` the residual's (:meth:`residual_codes`)."""
        targets = self.residual_codes(codes, lengths)
        params = self.network(self.network_input(targets))
        return (params if self.lpc is None else self._add_offset(params, self._mean_offset(codes))), targets

    def forward(self, codes: torch.Tensor, lengths: torch.Tensor) -> ModelOutput:
        """Exact negative log-likelihood of each sequence, ``-sum_{t < T_b} log p(x_t | x_{<t})`` in nats.

        Args:
            codes: int64 ``[B, T]`` mu-law codes in ``[0, 2**bits - 1]``, right-padded (padding must be valid codes;
                its values do not affect the result).
            lengths: int64 ``[B]``, valid samples per row, ``0 <= lengths <= T``.
        Returns:
            :class:`ModelOutput` with ``nll [B]`` (nats, float32), ``frames = lengths``, ``is_bound = False``.
        Raises:
            ValueError: bad shapes or dtypes, lengths out of range, codes out of range.
        """
        lengths = check_batch(codes, lengths, self.bits, "WaveNet.forward")
        self._check_codes(codes)
        params, targets = self._params_and_targets(codes, lengths)
        log_p = self.distribution.log_prob(params, targets)  # [B, T] nats
        mask = length_mask(lengths, codes.shape[1])
        nll = -torch.where(mask, log_p, torch.zeros_like(log_p)).sum(dim=1)
        return ModelOutput(nll=nll, frames=lengths, is_bound=False)

    # ------------------------------------------------------------------ fast generation (Paine et al. 2016)

    def _step_weights(self) -> tuple:
        """Weights as matrices for one time step: conv taps ``W_j^T`` and fused residual+skip 1x1 matrices."""

        def taps(conv: nn.Conv1d) -> tuple[torch.Tensor, ...]:
            # conv.weight [out, in, k]; tap j multiplies the input (k - 1 - j) * dilation steps back.
            return tuple(conv.weight[:, :, j].t().contiguous() for j in range(conv.kernel_size[0]))

        layers = []
        for layer in self.layers:
            if layer.residual is not None:
                w_rs = torch.cat([layer.residual.weight[:, :, 0], layer.skip.weight[:, :, 0]], dim=0)
                b_rs = torch.cat([layer.residual.bias, layer.skip.bias])
            else:
                w_rs, b_rs = layer.skip.weight[:, :, 0], layer.skip.bias
            layers.append((taps(layer.dilated), layer.dilated.bias, w_rs.t().contiguous(), b_rs,
                           layer.queue_length, layer.dilation, layer.residual is not None))
        head1, head2 = self.head[1], self.head[3]
        head = (head1.weight[:, :, 0].t().contiguous(), head1.bias, head2.weight[:, :, 0].t().contiguous(), head2.bias)
        return (taps(self.input_conv), self.input_conv.bias), tuple(layers), head

    @property
    def step_size(self) -> int:
        """One sample per step."""
        return 1

    @torch.inference_mode()
    def default_state(self, batch_size: int = 1, prompt: torch.Tensor | None = None) -> WaveNetState:
        """A fresh generation state, optionally primed with a prompt.

        Args:
            batch_size: ``B``.
            prompt: optional int64 codes ``[B, P]`` (or ``[P]``, shared by the batch), ``P >= 1``.  The prompt's
                network inputs (silence, ``x_0 .. x_{P-2}``) are run through the full forward pass at once and the
                queues are filled from it; ``state.x_prev`` is then ``x_{P-1}``, the code the next :meth:`step`
                consumes to predict sample ``P``.
        Returns:
            :class:`WaveNetState` on the model's device and dtype, with ``t = P`` (0 without a prompt).
        Raises:
            ValueError: ``batch_size < 1`` or a prompt of the wrong shape, dtype or batch size.
            NotImplementedError: a model with ``adaptive_residual`` (no incremental cascade yet).
        """
        if batch_size < 1:
            raise ValueError(f"WaveNet.default_state: batch_size must be >= 1, got {batch_size}")
        if self.config.adaptive_residual:
            raise NotImplementedError("WaveNet with adaptive_residual has no generation or codec step yet: its "
                                      "likelihood is evaluated in full passes (forward)")
        weight = self.input_conv.weight
        device, dtype = weight.device, weight.dtype
        k = self.config.kernel_size
        input_queue = torch.zeros(k - 1, batch_size, 1, device=device, dtype=dtype)
        shapes = [(layer.queue_length, batch_size, self.config.Dc) for layer in self.layers]
        buffer = torch.zeros(sum(math.prod(shape) for shape in shapes), device=device, dtype=dtype)
        queues = list(_views(buffer, shapes))
        x_prev = torch.full((batch_size,), self.silence_code, dtype=torch.int64, device=device)
        history = None if self.lpc is None else torch.zeros(batch_size, self.lpc.order, device=device,
                                                             dtype=self.lpc.a.dtype)
        state = WaveNetState(0, input_queue, queues, x_prev, self._step_weights(), history, buffer)
        if prompt is None:
            return state
        prompt = torch.as_tensor(prompt, device=device)
        if prompt.dim() == 1:
            prompt = prompt.unsqueeze(0).expand(batch_size, -1)
        if prompt.dim() != 2 or prompt.dtype != torch.int64 or prompt.shape[0] != batch_size or prompt.shape[1] < 1:
            raise ValueError(f"WaveNet: prompt must be int64 codes [{batch_size}, P] or [P] with P >= 1, got "
                             f"{prompt.dtype} tensor of shape {tuple(prompt.shape)}")
        if int(prompt.min()) < 0 or int(prompt.max()) >= num_bins(self.bits):
            raise ValueError(f"WaveNet: prompt codes must lie in [0, {num_bins(self.bits) - 1}]")
        P = prompt.shape[1]
        _, tails = self.network(self.network_input(prompt), keep=True)
        for buffer, tail in zip([input_queue, *queues], tails):
            n = tail.shape[-1]
            rows = torch.arange(P - n, P, device=device) % buffer.shape[0]
            buffer[rows] = tail.permute(2, 0, 1)
        state.t, state.x_prev = P, prompt[:, -1].clone()
        if history is not None:  # the last p - 1 prompt samples; step() shifts x_{P-1} in
            n = min(history.shape[1] - 1, P - 1)
            if n:
                history[:, -n:] = self.representation.to_linear(prompt[:, P - 1 - n:P - 1], dtype=history.dtype)
        return state

    @torch.inference_mode()
    def step(self, codes_prev: torch.Tensor, state: WaveNetState) -> tuple[torch.Tensor, WaveNetState]:
        """One generation step with the queues: consume ``x_{t-1}`` and return the params of sample ``t``.

        Costs ``k`` matmuls for each dilated layer plus one fused residual+skip matmul, independent of the
        receptive field (Paine et al. 2016).  Equals ``logits(x)[:, :, t]`` of the full forward pass up to float
        rounding, when ``codes_prev`` is ``x_{t-1}`` (the silence code for ``t = 0``).

        Args:
            codes_prev: int64 ``[B, 1]``, the code of the previous sample.
            state: from :meth:`default_state`; updated in place (queues pushed, ``t`` incremented) and returned.
        Returns:
            ``(params [B, 3M, 1], state)``: the DMoL parameters of ``p(x_t | x_{<t})``.
        Raises:
            ValueError: ``codes_prev`` does not have shape ``[B, 1]``.
        """
        B = state.x_prev.shape[0]
        if codes_prev.shape != (B, 1):
            raise ValueError(f"WaveNet.step: codes_prev must have shape [{B}, 1] (the state's batch), got "
                             f"{tuple(codes_prev.shape)}")
        x_prev = codes_prev[:, 0]
        t = state.t
        (in_taps, in_bias), layers, (w1, b1, w2, b2) = state.weights
        dtype = state.input_queue.dtype
        k = len(in_taps)
        # initial causal conv on one input channel
        u = self.representation.model_input(x_prev, dtype=dtype).unsqueeze(1)  # [B, 1]
        h = torch.addmm(in_bias, u, in_taps[-1])
        q_in = state.input_queue
        for j in range(1, k):
            h.addmm_(q_in[(t - j) % (k - 1)], in_taps[k - 1 - j])
        q_in[t % (k - 1)] = u
        Dc = self.config.Dc
        skip = None
        for (taps, bias, w_rs, b_rs, q_len, d, has_res), queue in zip(layers, state.queues):
            a = torch.addmm(bias, h, taps[-1])
            for j in range(1, k):
                a.addmm_(queue[(t - j * d) % q_len], taps[k - 1 - j])
            queue[t % q_len] = h
            z = torch.tanh(a[:, :Dc]).mul_(torch.sigmoid(a[:, Dc:]))
            rs = torch.addmm(b_rs, z, w_rs)
            if has_res:
                h = h + rs[:, :Dc]
                s = rs[:, Dc:]
            else:
                s = rs
            skip = s.clone() if skip is None else skip.add_(s)
        out = torch.addmm(b2, torch.addmm(b1, skip.relu_(), w1).relu_(), w2)
        if state.lpc_history is not None:  # shift x_{t-1} in, predict x_t
            x_lin = self.representation.to_linear(x_prev, dtype=state.lpc_history.dtype).unsqueeze(1)
            state.lpc_history = torch.cat([state.lpc_history[:, 1:], x_lin], dim=1)  # x_prev is silence at t = 0
            out = self._add_offset(out, self.representation.model_value(self.lpc.step(state.lpc_history)))
        state.t = t + 1
        return out.unsqueeze(-1), state

    @torch.inference_mode()
    def steps(self, codes_prev: torch.Tensor, state: WaveNetState, n: int, temperature: float = 1.0,
              generator: torch.Generator | None = None) -> tuple[torch.Tensor, WaveNetState]:
        """``n`` steps, each followed by a DMoL draw (:meth:`WavelabModel.steps`), as one compiled loop
        (:func:`wavelab.models.fused.wavenet_steps`) for a float32 model on the CPU without the linear-prediction
        path; otherwise the eager loop.  Same arguments, draws and result as the eager loop (codes equal up to float
        rounding).

        Raises:
            ValueError: ``codes_prev`` does not have shape ``[B, 1]``.
        """
        B = state.x_prev.shape[0]
        weight = self.input_conv.weight
        if (state.lpc_history is not None or state.buffer is None or weight.device.type != "cpu"
                or weight.dtype != torch.float32):
            return super().steps(codes_prev, state, n, temperature, generator)
        if codes_prev.shape != (B, 1):
            raise ValueError(f"WaveNet.steps: codes_prev must have shape [{B}, 1] (the state's batch), got "
                             f"{tuple(codes_prev.shape)}")
        if state.fused is None:
            state.fused = self._fused_weights(state.weights)
        noise = fused.draw_uniforms(n, B, self.distribution.num_components, generator, temperature)
        out = np.empty((B, n), dtype=np.int64)
        x_prev = codes_prev[:, 0].numpy().astype(np.int64, copy=True)
        offsets = np.array([q.storage_offset() - state.buffer.storage_offset() for q in state.queues], dtype=np.int64)
        fused.wavenet_steps(n, state.t, x_prev, queues=state.buffer.numpy(), offsets=offsets,
                            in_queue=state.input_queue[:, :, 0].numpy(), noise=noise,
                            temperature=float(temperature), out=out, **state.fused)
        state.t += n
        return torch.from_numpy(out), state

    def _fused_weights(self, weights: tuple) -> dict:
        """The step weights (:meth:`_step_weights`) as the float32 arrays of :func:`fused.wavenet_steps`."""
        (in_taps, in_bias), layers, (w1, b1, w2, b2) = weights
        Dc, S = self.config.Dc, self.config.skip_channels
        array = fused.array
        w_rs = torch.zeros(len(layers), Dc, Dc + S)
        b_rs = torch.zeros(len(layers), Dc + S)
        for i, (_, _, w, b, _, _, _) in enumerate(layers):
            w_rs[i, :, Dc + S - w.shape[1]:] = w  # the last layer has the skip part only
            b_rs[i, Dc + S - b.shape[0]:] = b
        return {
            "inputs": fused.input_values(self.representation),
            "in_taps": array(torch.cat(in_taps, dim=0)), "in_bias": array(in_bias),
            "taps": array(torch.stack([torch.stack(layer[0]) for layer in layers])),
            "bias": array(torch.stack([layer[1] for layer in layers])),
            "w_rs": array(w_rs), "b_rs": array(b_rs),
            "has_res": np.array([layer[6] for layer in layers], dtype=np.bool_),
            "dilations": np.array([layer[5] for layer in layers], dtype=np.int64),
            "w1": array(w1), "b1": array(b1), "w2": array(w2), "b2": array(b2),
            "edges": fused.interior_edges(self.representation),
            "log_scale_min": float(self.distribution.log_scale_min),
        }

    @torch.inference_mode()
    def sample(
        self,
        num_samples: int,
        batch_size: int = 1,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
        progress: Progress = False,
        prompt: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Generate audio with the fast queue method (Paine et al. 2016): O(layers) work per sample, through
        :meth:`step` and the one generation loop (:meth:`~wavelab.models.base.WavelabModel.generate`).

        Args:
            num_samples: samples to generate (16,000 = 1 s at 16 kHz).
            batch_size: ``B`` independent sequences.
            temperature: passed to :meth:`DiscretizedMixtureLogistics.sample` (1.0 = the model's distribution).
            generator: optional ``torch.Generator`` (on the model's device) for reproducible draws.
            progress: show a tqdm progress bar, or a callable ``progress(done, total)``
                (:func:`~wavelab.models.base.progress_bar`).
            prompt: optional int64 codes ``[B, P]`` or ``[P]`` to continue (see :meth:`default_state`).
        Returns:
            int64 codes ``[B, num_samples]``: the generated samples only (without the prompt).
        Raises:
            ValueError: ``num_samples < 0``, ``batch_size < 1``, ``temperature < 0`` or a bad prompt.
        """
        self._check_sample_args(num_samples, batch_size, temperature)
        state = self.default_state(batch_size, prompt)
        return self.generate(num_samples, state, state.x_prev[:, None], temperature, generator, progress)

    @torch.inference_mode()
    def sample_naive(
        self,
        num_samples: int,
        batch_size: int = 1,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
        progress: Progress = False,
    ) -> torch.Tensor:
        """Reference generation that recomputes the full convolution stack at every step (slow).

        Each step runs the forward pass over the last ``receptive_field`` network inputs (all an output can see, so
        the result equals the forward pass over the whole history) and keeps its last column: O(R * layers) work
        per sample.  Draws from the generator in the same order as :meth:`sample`, so both give the same codes up
        to float rounding.  Same arguments and return value as :meth:`sample` (no prompt).
        """
        self._check_sample_args(num_samples, batch_size, temperature)
        device, dtype = self.input_conv.weight.device, self.input_conv.weight.dtype
        u = torch.empty(batch_size, 1, num_samples + 1, device=device, dtype=dtype)
        u[:, 0, 0] = float(self.representation.model_input(torch.tensor(self.silence_code), torch.float32))
        out = torch.empty(batch_size, num_samples, dtype=torch.int64, device=device)
        R = self.receptive_field
        for i in progress_steps(num_samples, progress, "WaveNet (naive)"):
            params = self.network(u[:, :, max(0, i + 1 - R): i + 1])[:, :, -1:]
            if self.lpc is not None:  # the prediction of sample i from the codes before it
                so_far = torch.cat([out[:, :i], torch.full_like(out[:, :1], self.silence_code)], dim=1)
                offset = self._mean_offset(so_far)[:, -1:]
                params = self._add_offset(params, offset)
            x = self.distribution.sample(params, temperature, generator).squeeze(-1)
            out[:, i] = x
            u[:, 0, i + 1] = self.representation.model_input(x, dtype=dtype)
        return out


def _views(buffer: torch.Tensor, shapes: list[tuple[int, ...]]):
    """Consecutive views of the flat ``buffer`` with the given shapes."""
    start = 0
    for shape in shapes:
        size = math.prod(shape)
        yield buffer[start:start + size].view(shape)
        start += size


__all__ = ["ResidualLayer", "WaveNet", "WaveNetConfig", "WaveNetState"]
