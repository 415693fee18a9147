"""Stacked frames: the waveform cut into frames of ``s`` samples, the unit of time of the recurrent models (LSTM, VRNN,
SRNN).

Source: Havtorn et al. 2022, section 3 ("waveform stacks of size s") and appendix B (LSTM: "an MLP encoder embeds
x_{t:t+s-1} ... the decoder outputs the waveform predictions x_{t+s:t+2s-1}").

A sequence of ``T`` mu-law codes becomes ``n = ceil(T / s)`` frames ``x_0 .. x_{n-1}``, frame ``t`` holding samples
``t s .. t s + s - 1``; the last frame is completed with the code of silence (linear 0.0).  Every model step ``t``

* reads the previous frame ``x_{t-1}`` (``x_{-1}`` is a frame of silence), embedded by an MLP encoder,
* updates its recurrent state (and, for the latent models, draws ``z_t``), and
* predicts the ``s`` samples of frame ``x_t`` with a DMoL per sample (10 logistics over 2^16 bins), the ``s`` samples
  being conditionally independent given the step's state.

With ``s = 1`` this is an ordinary sample-level recurrent model.  This module holds the pieces the three models share:
stacking and unstacking, the MLPs, the base config and a base module with input checks, the per-sample DMoL likelihood
and frame-by-frame sampling helpers.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..audio import SUPPORTED_BITS
from ..distributions import DiscretizedMixtureLogistics, Float32Linear
from ..representations import check_representation, get_representation
from .base import ModelConfig, WavelabModel, check_batch, length_mask


# --------------------------------------------------------------------------------------------------------------------
# stacking


def num_steps(lengths: torch.Tensor, s: int) -> torch.Tensor:
    """Frames (model steps) that cover ``lengths`` samples: ``ceil(lengths / s)``, int64 ``[B]``.

    Raises:
        ValueError: ``s < 1``.
    """
    if not isinstance(s, int) or s < 1:
        raise ValueError(f"the stack size s must be a positive integer, got {s!r}")
    return torch.div(lengths.to(torch.int64) + s - 1, s, rounding_mode="floor")


def stack_frames(codes: torch.Tensor, lengths: torch.Tensor, s: int, pad_code: int) -> torch.Tensor:
    """Cut right-padded codes into frames of ``s`` samples.

    ``T`` is padded up to ``n s`` with ``n = ceil(T / s)``, and every position at or beyond a row's length (padding
    inside the last partial frame included) is set to ``pad_code``, so that whatever the caller padded with never
    reaches a model.

    Args:
        codes: ``[B, T]`` (any dtype; int64 mu-law codes for the models).
        lengths: int64 ``[B]``, valid samples per row, in ``[0, T]``.
        s: stack size (samples per frame), ``>= 1``.
        pad_code: value written at every position ``>= lengths[b]`` (the code of silence for the models).
    Returns:
        ``[B, n, s]``, frame ``t`` of row ``b`` holding ``codes[b, t s : t s + s]``.
    Raises:
        ValueError: ``s < 1``, ``codes`` not 2-D, or ``lengths`` of the wrong shape or out of range.
    """
    if not isinstance(s, int) or s < 1:
        raise ValueError(f"stack_frames: the stack size s must be a positive integer, got {s!r}")
    if codes.dim() != 2:
        raise ValueError(f"stack_frames: codes must be [B, T], got shape {tuple(codes.shape)}")
    B, T = codes.shape
    if lengths.shape != (B,):
        raise ValueError(f"stack_frames: lengths must have shape [{B}], got {tuple(lengths.shape)}")
    if B and (int(lengths.min()) < 0 or int(lengths.max()) > T):
        raise ValueError(f"stack_frames: lengths must lie in [0, {T}], got {lengths.tolist()}")
    n = -(-T // s)
    padded = codes.new_full((B, n * s), pad_code)
    valid = length_mask(lengths.to(codes.device), T)
    padded[:, :T] = torch.where(valid, codes, padded[:, :T])
    return padded.view(B, n, s)


def unstack_frames(frames: torch.Tensor, length: int | None = None) -> torch.Tensor:
    """Inverse of :func:`stack_frames`: ``[B, n, s] -> [B, n s]``, cut to the first ``length`` samples if given.

    Raises:
        ValueError: ``frames`` not 3-D, or ``length`` outside ``[0, n s]``.
    """
    if frames.dim() != 3:
        raise ValueError(f"unstack_frames: frames must be [B, n, s], got shape {tuple(frames.shape)}")
    B, n, s = frames.shape
    flat = frames.reshape(B, n * s)
    if length is None:
        return flat
    if not 0 <= length <= n * s:
        raise ValueError(f"unstack_frames: length must lie in [0, {n * s}], got {length}")
    return flat[:, :length]


def previous_frames(frames: torch.Tensor, first: torch.Tensor) -> torch.Tensor:
    """The input frame of every step: ``[first, x_0, ..., x_{n-2}]`` for frames ``[B, n, s]``; ``first`` is ``[s]``
    or ``[B, s]`` (a frame of silence for a fresh sequence).  Returns ``[B, n, s]``."""
    B, n, s = frames.shape
    first = first.to(frames.dtype).expand(B, s).unsqueeze(1)
    return torch.cat([first, frames[:, :-1]], dim=1)


def frame_params(out: torch.Tensor, s: int, num_params: int) -> torch.Tensor:
    """Reshape a decoder output ``[B, S, s * P]`` (per step, ``s`` blocks of ``P`` DMoL parameters, one per sample of
    the frame) into the channel-first layout of the distributions, ``[B, P, S s]``."""
    B, S, _ = out.shape
    return out.reshape(B, S, s, num_params).permute(0, 3, 1, 2).reshape(B, num_params, S * s)


# --------------------------------------------------------------------------------------------------------------------
# MLPs


def mlp(in_features: int, hidden: int, out_features: int, layers: int, final_activation: bool = False,
        float32_output: bool = False) -> nn.Sequential:
    """A multilayer perceptron of ``layers`` linear maps ``in -> hidden -> ... -> hidden -> out`` with LeakyReLU
    between them (and after the last one when ``final_activation``), the parametrisation the benchmark's public code
    uses for the encoders, decoders, priors and posteriors of the VRNN, SRNN and LSTM (the paper's phi networks).

    With ``float32_output`` the last linear map is a :class:`~wavelab.distributions.Float32Linear`: it runs in float32
    also under autocast (for decoders whose outputs are DMoL parameters; same parameters and state-dict keys).

    Raises:
        ValueError: ``layers < 1``.
    """
    if layers < 1:
        raise ValueError(f"mlp needs at least one layer, got layers={layers}")
    sizes = [in_features] + [hidden] * (layers - 1) + [out_features]
    modules: list[nn.Module] = []
    for i in range(layers):
        linear = Float32Linear if float32_output and i == layers - 1 else nn.Linear
        modules.append(linear(sizes[i], sizes[i + 1]))
        if i < layers - 1 or final_activation:
            modules.append(nn.LeakyReLU())
    return nn.Sequential(*modules)


# --------------------------------------------------------------------------------------------------------------------
# config and base module


@dataclass
class StackedFrameConfig(ModelConfig):
    """Fields shared by the recurrent models over stacked frames (defaults: Havtorn et al., section 3).

    Attributes:
        s: stack size, samples per frame and model step (1, 64 or 256 in the paper; 64 by default).
        Dd: size of the deterministic recurrent state ``d_t`` and of the MLPs' hidden layers, 256.
        mlp_layers: linear layers of every MLP (encoder of ``x``, decoder, prior, posterior), 3 as in the authors'
            public code.
        num_components: logistic components of the per-sample DMoL output, 10.
        bits: mu-law bit depth, 16.
        eval_segment_steps: steps per segment in :meth:`evaluate_long` (the recurrent state is carried from one
            segment to the next; 1024 steps = 65,536 samples at ``s = 64``).
        representation: the waveform representation (:mod:`wavelab.representations`), ``"mulaw"`` (default),
            ``"linear"`` or ``"pcm16"``: the frames' input values and the DMoL's bins.
    Raises:
        ValueError: a non-positive size, unsupported ``bits`` or an unknown representation.
    """

    @classmethod
    def label_suffix(cls, config: dict) -> str:
        """``" s=<s>"`` when the stack size is not 1 (the rows of Havtorn et al.'s Table 1, e.g. ``"lstm s=64"``)."""
        s = config.get("s", 1)
        return f" s={s}" if s not in (None, 1) else ""

    s: int = 64
    Dd: int = 256
    mlp_layers: int = 3
    num_components: int = 10
    bits: int = 16
    eval_segment_steps: int = 1024
    representation: str = "mulaw"

    def __post_init__(self):
        name = type(self).__name__
        for field_name in ("s", "Dd", "mlp_layers", "num_components", "eval_segment_steps"):
            value = getattr(self, field_name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name}.{field_name} must be a positive integer, got {value!r}")
        if self.bits not in SUPPORTED_BITS:
            raise ValueError(f"{name}.bits must be one of {SUPPORTED_BITS}, got {self.bits!r}")
        check_representation(name, self.representation, self.bits)

    @classmethod
    def quick_overrides(cls) -> dict:
        """A small configuration for smoke tests (``python -m wavelab train --quick``): ``Dd = 32``, 2-layer MLPs."""
        return {"Dd": 32, "mlp_layers": 2}


@dataclass
class Prepared:
    """Checked model input, see :meth:`StackedFrameModel.prepare`.

    Attributes:
        codes: int64 ``[B, n s]``, the input with every position ``>= lengths`` set to the silence code.
        x: float ``[B, n, s]``, the companded frames ``x_t``.
        x_prev: float ``[B, n, s]``, each step's input frame ``x_{t-1}`` (silence for ``t = 0``).
        lengths: int64 ``[B]`` samples; steps: int64 ``[B]`` valid steps ``ceil(lengths / s)``.
    """

    codes: torch.Tensor
    x: torch.Tensor
    x_prev: torch.Tensor
    lengths: torch.Tensor
    steps: torch.Tensor

    @property
    def n(self) -> int:
        """Number of steps (frames) of the padded batch."""
        return self.x.shape[1]


class StackedFrameModel(WavelabModel):
    """Base of the models over stacked frames: input checks, the DMoL over ``s`` samples per step, sampling helpers.

    Attributes:
        config: the model's config (a :class:`StackedFrameConfig`).
        bits, s: mu-law bit depth and stack size.
        distribution: the :class:`~wavelab.distributions.DiscretizedMixtureLogistics` output.
        silence_code: the code of linear 0.0, used for the frame before the first and for padding.
    """

    name = "stacked"

    def __init__(self, config: StackedFrameConfig):
        super().__init__()
        self.config = config
        self.bits = config.bits
        self.s = config.s
        self.representation = get_representation(config.representation, config.bits)
        self.distribution = DiscretizedMixtureLogistics(config.num_components, config.bits,
                                                        representation=self.representation)
        self.silence_code = self.representation.silence_code
        self.train_step: int | None = None

    @property
    def frame_out_features(self) -> int:
        """Decoder outputs per step: ``s * 3M`` DMoL parameters."""
        return self.s * self.distribution.num_params

    def set_train_step(self, step: int | None) -> None:
        """Tell the model the number of optimizer steps done so far (called by :func:`wavelab.train.train` before
        every step); the KL annealing and free-nats schedules of the latent models read it.  ``None`` switches the
        schedules off (the plain ELBO is trained)."""
        self.train_step = None if step is None else int(step)

    def _dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    def _device(self) -> torch.device:
        return next(self.parameters()).device

    def prepare(self, codes: torch.Tensor, lengths: torch.Tensor, caller: str = "forward") -> Prepared:
        """Check ``codes [B, T]`` (int64 mu-law codes) and ``lengths [B]`` and stack them into frames.

        Raises:
            ValueError: wrong shapes or dtypes, lengths outside ``[0, T]``, codes outside ``[0, 2**bits - 1]``; the
                message names the argument.
        """
        lengths = check_batch(codes, lengths, self.bits, f"{type(self).__name__}.{caller}")
        B = codes.shape[0]
        frames = stack_frames(codes, lengths, self.s, self.silence_code)
        dtype = self._dtype()
        x = self.representation.model_input(frames, dtype=dtype)
        first = self.representation.model_input(torch.tensor(self.silence_code, device=codes.device), dtype=dtype)
        return Prepared(codes=frames.reshape(B, -1), x=x, x_prev=previous_frames(x, first), lengths=lengths,
                        steps=num_steps(lengths, self.s))

    def log_px(self, params: torch.Tensor, codes: torch.Tensor, lengths: torch.Tensor, t0: int = 0) -> torch.Tensor:
        """Log-likelihood of the samples of steps ``t0 .. t0 + S - 1``, summed per row over valid samples.

        Args:
            params: DMoL parameters ``[B, 3M, S s]`` (see :func:`frame_params`).
            codes: int64 ``[B, S s]``, the samples of those frames.
            lengths: int64 ``[B]`` valid samples of the whole rows (positions ``>= lengths`` count zero).
            t0: first step of the segment.
        Returns:
            ``[B]`` float32 nats.
        """
        log_p = self.distribution.log_prob(params, codes)  # [B, S s]
        pos = t0 * self.s + torch.arange(codes.shape[1], device=codes.device)
        mask = pos[None, :] < lengths[:, None]
        return torch.where(mask, log_p, torch.zeros_like(log_p)).sum(dim=1)

    def sample_frame(self, out: torch.Tensor, temperature: float, generator: torch.Generator | None) -> torch.Tensor:
        """Draw the ``s`` samples of a frame from a decoder output ``[B, s * 3M]``; returns int64 codes ``[B, s]``."""
        params = frame_params(out.unsqueeze(1), self.s, self.distribution.num_params)  # [B, 3M, s]
        return self.distribution.sample(params, temperature, generator)

    def companded(self, codes: torch.Tensor) -> torch.Tensor:
        """Companded values ``y_k`` of int64 codes (any shape), in the model's dtype: the network input."""
        return self.representation.model_input(codes, dtype=self._dtype())

    def silence_frame(self, batch_size: int) -> torch.Tensor:
        """The companded frame of silence, ``[batch_size, s]`` in the model's dtype and device."""
        y = self.representation.model_input(torch.tensor(self.silence_code, device=self._device()), dtype=self._dtype())
        return y.expand(batch_size, self.s).clone()

    def _sample_frames(self, num_samples: int, batch_size: int, temperature: float) -> int:
        """Frames that cover ``num_samples`` after the argument checks of :meth:`sample`."""
        self._check_sample_args(num_samples, batch_size, temperature)
        return -(-num_samples // self.s)


def segments(n: int, size: int) -> list[tuple[int, int]]:
    """``[(t0, t1), ...]`` covering ``0 .. n`` in consecutive pieces of at most ``size`` steps (one empty piece for
    ``n = 0``)."""
    if n == 0:
        return [(0, 0)]
    return [(t0, min(t0 + size, n)) for t0 in range(0, n, size)]


__all__ = ["Prepared", "StackedFrameConfig", "StackedFrameModel", "frame_params", "mlp", "num_steps",
           "previous_frames", "segments", "stack_frames", "unstack_frames"]
