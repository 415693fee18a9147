"""The contract every wavelab model follows, so that training, evaluation, tables and the listening room never
special-case a model.

A model subclasses :class:`WavelabModel` (an ``nn.Module``) and is built from a config that subclasses
:class:`ModelConfig`.  Required:

* ``config``: a dataclass whose field names and defaults are the paper's configuration, with
  :meth:`ModelConfig.quick_overrides` (a tiny configuration for smoke tests and the book's quick mode);
* ``forward(codes, lengths) -> ModelOutput``: ``codes`` is an int64 tensor ``[B, T]`` of mu-law codes in
  ``[0, 2**bits - 1]`` (right-padded), ``lengths`` an int64 tensor ``[B]`` of valid samples per row;
* ``sample(num_samples, batch_size=1, temperature=1.0, generator=None, progress=False) -> codes [B, num_samples]``,
  unconditional generation through the model's fast path (for a model with an incremental step, the default runs
  that step: see below);
* ``bits``: the mu-law bit depth of its inputs and outputs;
* ``representation``: its :class:`~wavelab.representations.Representation` (from the config field
  ``representation``, ``"mulaw"`` by default): which codes ``forward`` takes and ``sample`` returns, the network's
  input values and the output bins (see :mod:`wavelab.representations`).

Optional capabilities are methods of :class:`WavelabModel` with documented defaults, so call sites never probe with
``hasattr``: :meth:`~WavelabModel.evaluate_long` (default: ``forward``), :meth:`~WavelabModel.fit_to_data` (default:
nothing fitted before training), :meth:`~WavelabModel.set_train_step` (default: nothing to schedule),
:meth:`~WavelabModel.estimator` (default: from :attr:`~WavelabModel.is_bound`), :meth:`~WavelabModel.iw_bound` and :meth:`~WavelabModel.posterior_latents` (default: :class:`CapabilityError`, with
:attr:`~WavelabModel.has_iw_bound` / :attr:`~WavelabModel.has_posterior_latents` saying which models have them) and
:attr:`~WavelabModel.latent_strides` (default ``None``: no latent hierarchy).

**The incremental interface** (as state-spaces gives every sequence block ``forward``, ``step`` and
``default_state``): an autoregressive model with an exact likelihood predicts its codes in blocks of
:attr:`~WavelabModel.step_size` samples (1 for WaveNet and SaShiMi, the stack size ``s`` for the LSTM).
:meth:`~WavelabModel.default_state` gives the state before the first block, and :meth:`~WavelabModel.step` consumes
the codes of the last block (a block of :attr:`~WavelabModel.silence_code` before the first) and returns the output
distribution's parameters for the next block.  The block's samples are conditionally independent given the state,
so a block is drawn (``sample``), coded (:mod:`wavelab.coding`) or scored from those parameters alone.  One loop,
:meth:`~WavelabModel.generate`, serves every such model; ``tests/test_contract.py`` checks each step against the
full pass.  It draws a few hundred samples per call of :meth:`~WavelabModel.steps` (``n`` rounds of step and draw),
which a model may run as one compiled loop (:mod:`wavelab.models.fused`).  Models without one (latent variable
models, flows) keep ``step_size = None`` and raise :class:`CapabilityError` from the two methods.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar

import torch
from torch import nn


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


#: what a long loop reports its progress to: ``True`` (a tqdm bar), ``False`` (nothing) or ``progress(done, total)``
Progress = bool | Callable[[int, int], None]


def progress_bar(total: int, progress: Progress, desc: str, unit: str = "sample"):
    """What a long loop reports its progress to: a tqdm bar of ``total`` ``unit`` (``progress=True``; it shows the
    rate and the time left), ``progress`` itself called as ``progress(done, total)`` after every update (a
    callable, e.g. a widget's progress bar), or ``None`` (``False``).  The result has ``update(n)`` and ``close()``."""
    if not progress:
        return None
    if callable(progress):
        return _Callback(progress, total)
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, unit_scale=unit == "sample")


class _Callback:
    """:func:`progress_bar`'s adapter of a callable ``progress(done, total)`` to tqdm's ``update`` / ``close``."""

    def __init__(self, fn: Callable[[int, int], None], total: int):
        self.fn, self.total, self.n = fn, int(total), 0

    def update(self, n: int = 1) -> None:
        self.n += n
        self.fn(self.n, self.total)

    def close(self) -> None:
        pass


def progress_steps(n: int, progress: Progress, desc: str, samples_per_step: int = 1):
    """``range(n)``, reporting ``samples_per_step`` samples per step to :func:`progress_bar` (a tqdm bar with
    samples per second and the time left, or a callable ``progress(done, total)``)."""
    bar = progress_bar(n * samples_per_step, progress, desc)
    return range(n) if bar is None else _counted(n, bar, samples_per_step)


def _counted(n: int, bar, samples_per_step: int):
    try:
        for i in range(n):
            yield i
            bar.update(samples_per_step)
    finally:
        bar.close()


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


class CapabilityError(ValueError):
    """A model was asked for an optional capability it does not have (e.g. the importance-weighted bound of a model
    without latent variables).  A ``ValueError``, so the command line reports it as a user error."""


class ModelConfig:
    """Base of every registered model's config dataclass: its fields are the paper's configuration, and its class
    attributes the facts tables, records and findings need about the model, so that they name no model themselves.

    Class attributes:
        display_name: how tables and findings name the model (``"WaveNet"``, ``"CW-VAE"``).
        key_fields: the config fields a table shows beside the name (paper symbols, in this order); the rest is in
            the folded provenance.
        paper_figures: the figures the papers report for the model (:class:`wavelab.models.papers.PaperFigure`),
            which tables and findings show beside a run with the same label.
    """

    display_name: ClassVar[str] = ""
    key_fields: ClassVar[tuple[str, ...]] = ()
    paper_figures: ClassVar[tuple] = ()

    @classmethod
    def label_suffix(cls, config: dict[str, Any]) -> str:
        """What a run's label (:func:`wavelab.models.run_label`) adds to the registry name for the settings that
        tell the paper's rows apart, e.g. ``" s=64"``, from a config dict (a record's ``config``).  Default: ``""``."""
        return ""

    @classmethod
    def quick_overrides(cls) -> dict[str, Any]:
        """Field overrides for a tiny configuration (smoke tests, ``python -m wavelab train --quick``, the book's quick
        mode).  Every registered config overrides this; the default, ``{}``, is the paper's configuration itself."""
        return {}


class WavelabModel(nn.Module):
    """Base class of every registered model: the required interface and the optional capabilities with defaults.

    Class attributes:
        is_bound: True when :meth:`forward` reports an upper bound on the NLL (negative ELBO, dequantization bound)
            rather than the exact NLL.
        has_iw_bound: True when :meth:`iw_bound` is implemented (latent variable models).
        has_posterior_latents: True when :meth:`posterior_latents` is implemented (the CW-VAE's latent study).
    Attributes:
        config: the model's :class:`ModelConfig` dataclass.
        bits: mu-law bit depth of the codes (8 or 16).
        representation: the :class:`~wavelab.representations.Representation` of the codes (mu-law by default).
    """

    is_bound: ClassVar[bool] = False
    has_iw_bound: ClassVar[bool] = False
    has_posterior_latents: ClassVar[bool] = False
    config: Any
    bits: int
    representation: Any

    def forward(self, codes: torch.Tensor, lengths: torch.Tensor) -> ModelOutput:  # pragma: no cover - abstract
        """Per-utterance NLL (or bound) of ``codes [B, T]`` (int64) with ``lengths [B]``, as :class:`ModelOutput`."""
        raise NotImplementedError(f"{type(self).__name__} must implement forward(codes, lengths)")

    def sample(self, num_samples: int, batch_size: int = 1, temperature: float = 1.0,
               generator: torch.Generator | None = None, progress: Progress = False) -> torch.Tensor:
        """Unconditional generation: int64 codes ``[batch_size, num_samples]`` in ``[0, 2**bits - 1]``.  Default:
        :meth:`generate` from :meth:`default_state` and :meth:`silence_block`; models without a step override it.

        Raises:
            ValueError: ``num_samples < 0``, ``batch_size < 1`` or ``temperature < 0``.
        """
        self._check_sample_args(num_samples, batch_size, temperature)
        return self.generate(num_samples, self.default_state(batch_size), self.silence_block(batch_size),
                             temperature, generator, progress)

    # ------------------------------------------------------------------ the incremental interface

    @property
    def step_size(self) -> int | None:
        """Samples each :meth:`step` consumes and predicts; ``None`` (default): no incremental interface."""
        return None

    @property
    def has_step(self) -> bool:
        """Whether the model has the incremental interface (:meth:`default_state`, :meth:`step`)."""
        return self.step_size is not None

    def silence_block(self, batch_size: int = 1) -> torch.Tensor:
        """The block :meth:`step` consumes before the first: int64 ``[batch_size, step_size]`` codes of silence
        (``silence_code``, linear amplitude 0.0) on the model's device.

        Raises:
            CapabilityError: the model has no incremental interface.
        """
        if not self.has_step:
            raise self._no_step()
        device = next(self.parameters()).device
        return torch.full((batch_size, self.step_size), self.silence_code, dtype=torch.int64, device=device)

    def default_state(self, batch_size: int = 1) -> Any:
        """The state before the first :meth:`step` of ``batch_size`` sequences.

        Raises:
            CapabilityError: the model has no incremental interface (default); see :attr:`has_step`.
        """
        raise self._no_step()

    def step(self, codes_prev: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        """Consume the last block of codes and predict the next block.

        Args:
            codes_prev: int64 ``[B, step_size]``, the codes of the previous block (:meth:`silence_block` first).
            state: from :meth:`default_state` or the previous step (it may be updated in place).
        Returns:
            ``(params [B, P, step_size], state)``: the output distribution's parameters of each sample of the next
            block (``model.distribution`` reads them: ``sample``, ``log_prob``), and the new state.
        Raises:
            CapabilityError: the model has no incremental interface (default); see :attr:`has_step`.
        """
        raise self._no_step()

    def _no_step(self) -> CapabilityError:
        return CapabilityError(f"{type(self).__name__} has no incremental step (default_state / step): generation "
                               f"and the codec need an autoregressive model with an exact likelihood")

    @torch.inference_mode()
    def generate(self, num_samples: int, state: Any, codes_prev: torch.Tensor, temperature: float = 1.0,
                 generator: torch.Generator | None = None, progress: Progress = False) -> torch.Tensor:
        """The one generation loop of every model with a step: draw a block from :meth:`step`'s parameters
        (``distribution.sample``), feed it back, until ``num_samples`` samples are drawn.

        Args:
            num_samples: samples to draw (a whole number of blocks is drawn, then cut).
            state, codes_prev: where to start: :meth:`default_state` and :meth:`silence_block` for unconditional
                generation, or the state after a prompt and the prompt's last block.
            temperature: the distribution's sampling temperature (1.0: the model's distribution).
            generator: optional ``torch.Generator`` on the model's device.
            progress: ``True`` for a tqdm bar over the samples, with samples per second and the time left, or a
                callable ``progress(done, total)`` (:func:`progress_bar`).
        Returns:
            int64 codes ``[B, num_samples]``.
        Raises:
            ValueError: ``num_samples < 0`` or ``temperature < 0``.
            CapabilityError: the model has no incremental interface.
        """
        self._check_sample_args(num_samples, codes_prev.shape[0], temperature)
        n = self.step_size
        blocks = -(-num_samples // n)
        out = torch.empty(codes_prev.shape[0], blocks * n, dtype=torch.int64, device=codes_prev.device)
        bar = progress_bar(blocks * n, progress, type(self).__name__)
        done = 0
        try:
            while done < blocks:
                m = min(max(1, self.samples_per_call // n), blocks - done)
                codes, state = self.steps(codes_prev, state, m, temperature, generator)
                out[:, done * n:(done + m) * n] = codes
                codes_prev = codes[:, -n:]
                done += m
                if bar is not None:
                    bar.update(m * n)
        finally:
            if bar is not None:
                bar.close()
        return out[:, :num_samples]

    #: samples :meth:`generate` asks :meth:`steps` for at a time (how often the progress bar moves)
    samples_per_call: ClassVar[int] = 512

    def steps(self, codes_prev: torch.Tensor, state: Any, n: int, temperature: float = 1.0,
              generator: torch.Generator | None = None) -> tuple[torch.Tensor, Any]:
        """``n`` rounds of :meth:`step` followed by a draw (``distribution.sample``), each block fed back.

        Default: that loop in Python.  A model may override it with a compiled loop (:mod:`wavelab.models.fused`)
        that draws the same uniforms from ``generator`` in the same order, so its codes equal this loop's up to float
        rounding.

        Args:
            codes_prev: int64 ``[B, step_size]``, the block the first step consumes.
            state: the model's state (updated in place and returned).
            n: blocks to draw, ``>= 1``.
            temperature, generator: as :meth:`generate`.
        Returns:
            ``(codes [B, n * step_size], state)``.
        """
        drawn = []
        for _ in range(n):
            params, state = self.step(codes_prev, state)
            codes_prev = self.distribution.sample(params, temperature, generator)
            drawn.append(codes_prev)
        return torch.cat(drawn, dim=1), state

    def _check_sample_args(self, num_samples: int, batch_size: int, temperature: float) -> None:
        """The checks of :meth:`sample`'s arguments.

        Raises:
            ValueError: ``num_samples`` not an integer ``>= 0``, ``batch_size`` not an integer ``>= 1``, or
                ``temperature < 0``; the message names the model.
        """
        where = f"{type(self).__name__}.sample"
        if not isinstance(num_samples, int) or num_samples < 0:
            raise ValueError(f"{where}: num_samples must be an integer >= 0, got {num_samples!r}")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"{where}: batch_size must be an integer >= 1, got {batch_size!r}")
        if temperature < 0:
            raise ValueError(f"{where}: temperature must be >= 0, got {temperature!r}")

    def evaluate_long(self, codes: torch.Tensor, lengths: torch.Tensor) -> ModelOutput:
        """As :meth:`forward`, for utterances too long for one pass (e.g. in segments with the recurrent state
        carried).  Default: :meth:`forward` itself.  :func:`wavelab.evaluate.evaluate` always calls this."""
        return self(codes, lengths)

    def fit_to_data(self, utterances) -> None:
        """Called by :func:`wavelab.train.train` once before the first step of a fresh run (not on resume) with the
        training utterances, for anything fitted to the data rather than learnt (the linear predictor of
        ``WaveNetConfig.lpc_order``).  Must not draw random numbers.  Default: nothing."""

    def set_train_step(self, step: int | None) -> None:
        """Tell the model the optimizer steps done so far (called by the training loop before every step), for
        schedules inside its objective (KL warm-up, free nats).  Default: nothing to schedule."""

    def estimator(self, iw_samples: int | None = None) -> str:
        """How :func:`wavelab.evaluate.evaluate` computes this model's figure, written into results records:
        ``"exact"``, ``"ELBO, 1 sample"`` (when :attr:`is_bound`) or ``"importance-weighted bound, K=<K>"`` when
        ``iw_samples`` is given.  Flows override it with their dequantization bound.

        Raises:
            CapabilityError: ``iw_samples`` for a model without :meth:`iw_bound` (see :attr:`has_iw_bound`).
        """
        if iw_samples is not None:
            if not self.has_iw_bound:
                self.iw_bound(None, None, iw_samples)  # the default raises CapabilityError with the standard message
            return f"importance-weighted bound, K={int(iw_samples)}"
        return "ELBO, 1 sample" if self.is_bound else "exact"

    def iw_bound(self, codes: torch.Tensor, lengths: torch.Tensor, K: int,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """Importance-weighted bound with ``K`` posterior samples (Burda et al. 2016), ``[B]`` nats.

        Raises:
            CapabilityError: the model has no latent variables (default); see :attr:`has_iw_bound`.
        """
        raise CapabilityError(f"{type(self).__name__} has no latent variables, so no importance-weighted bound "
                              f"(iw_bound; iw_samples needs a latent variable model: vrnn, srnn, cwvae)")

    def posterior_latents(self, codes: torch.Tensor, lengths: torch.Tensor, num_samples: int = 100,
                          generator: torch.Generator | None = None) -> list[torch.Tensor]:
        """Monte Carlo posterior-mean latents per layer (the latent study).

        Raises:
            CapabilityError: the model has no latent hierarchy (default); see :attr:`has_posterior_latents`.
        """
        raise CapabilityError(f"{type(self).__name__} has no posterior_latents; the latent study needs a "
                              f"hierarchical latent model such as the CW-VAE")

    @property
    def latent_strides(self) -> list[int] | None:
        """``[s_1, ..., s_L]`` samples per latent step of each layer of a latent hierarchy; ``None`` (default) for
        models without one."""
        return None
