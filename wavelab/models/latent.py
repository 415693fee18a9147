"""Diagonal Gaussian latents: KL divergences, free nats, KL annealing, and the base of the temporal latent variable
models over stacked frames (VRNN, SRNN): ELBO, segment-wise evaluation with carried state, importance-weighted bound.

Sources: Kingma & Welling 2014 (reparameterisation, analytic Gaussian KL); Havtorn et al. 2022, eqs. 2 and 5 (the
ELBO of a temporal VAE, ``log p(x) >= E_q[sum_t log p(x_t | z_<=t, x_<t) - KL(q(z_t | ...) || p(z_t | ...))]``);
Kingma et al. 2016 ("free bits", here free nats); Bowman et al. 2016 and Sonderby et al. 2016 (KL annealing / warm-up);
Burda et al. 2016 (importance-weighted bound ``L_K = E[log (1/K) sum_k p(x, z_k) / q(z_k | x)]``, ``L_1 = ELBO <= L_K
<= L_{K+1} <= log p(x)``).

A temporal latent model has, per step ``t`` of ``n``, a diagonal Gaussian posterior ``q(z_t | ...) = N(mu_q, sd_q^2)``,
a prior ``p(z_t | ...) = N(mu_p, sd_p^2)`` (``Dz`` dimensions each) and a decoder giving the DMoL over the ``s``
samples of frame ``t``.  For one posterior sample ``z ~ q`` (``z_t = mu_q + sd_q eps_t``, ``eps_t ~ N(0, I)``):

* the reported bound is the negative ELBO with the analytic KL,
  ``-L = -sum_t log p(x_t | z_<=t, x_<t) + sum_t sum_d KL_{t,d}`` (nats, ``ModelOutput.nll``, ``is_bound`` True);
* the training objective (``ModelOutput.objective``) replaces the KL by ``beta(step) * sum_t FN(KL_t)`` where ``beta``
  rises linearly from 0 to 1 over ``kl_warmup_steps`` and FN applies free nats ``lambda(step)``:
  ``"per_dim"`` (the authors' choice): ``sum_d max(KL_{t,d}, lambda / Dz)``; ``"per_step"``: ``max(sum_d KL_{t,d},
  lambda)``.  Neither changes the reported ELBO;
* the importance weight of the sample is ``log w = log p(x | z) + sum_t [log p(z_t | ...) - log q(z_t | ...)]``
  (Monte Carlo, not analytic), and :meth:`LatentFrameModel.iw_bound` returns ``-log (1/K) sum_k w_k``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .base import ModelOutput
from .stacking import Prepared, StackedFrameConfig, StackedFrameModel, segments

LOG_2PI = math.log(2.0 * math.pi)
FREE_NATS_MODES = ("per_dim", "per_step")


# --------------------------------------------------------------------------------------------------------------------
# diagonal Gaussians


def gaussian_params(out: torch.Tensor, min_sd: float = 1e-4) -> tuple[torch.Tensor, torch.Tensor]:
    """Split a network output ``[..., 2 Dz]`` into ``(mu, sd)``, each ``[..., Dz]``, with
    ``sd = softplus(raw) + min_sd`` (positive, bounded away from 0)."""
    mu, raw = out.chunk(2, dim=-1)
    return mu, F.softplus(raw) + min_sd


def gaussian_kl(mu_q: torch.Tensor, sd_q: torch.Tensor, mu_p: torch.Tensor, sd_p: torch.Tensor) -> torch.Tensor:
    """Elementwise ``KL(N(mu_q, sd_q^2) || N(mu_p, sd_p^2))`` in nats (no reduction; shapes broadcast).

    Computed as ``0.5 (expm1(u) - u) + (mu_q - mu_p)^2 / (2 sd_p^2)`` with ``u = 2 log(sd_q / sd_p)``: both terms are
    non-negative in floating point as well (``expm1(u) >= u``), and there is no cancellation when ``q`` is close to
    ``p``.
    """
    u = 2.0 * (torch.log(sd_q) - torch.log(sd_p))
    return 0.5 * (torch.expm1(u) - u) + 0.5 * ((mu_q - mu_p) / sd_p).pow(2)


def gaussian_log_prob(z: torch.Tensor, mu: torch.Tensor, sd: torch.Tensor) -> torch.Tensor:
    """Elementwise log-density of ``N(mu, sd^2)`` at ``z``, in nats."""
    return -0.5 * ((z - mu) / sd).pow(2) - torch.log(sd) - 0.5 * LOG_2PI


def free_nats_kl(kl: torch.Tensor, free_nats: float, mode: str = "per_dim") -> torch.Tensor:
    """Free nats (Kingma et al. 2016's free bits in nats) applied to a KL ``[..., Dz]`` (elementwise per dimension);
    returns the per-step KL ``[...]`` used by the training objective.

    ``"per_dim"``: ``sum_d max(KL_d, free_nats / Dz)`` (the budget of ``free_nats`` per step shared equally by the
    ``Dz`` dimensions, as in the benchmark's public code); ``"per_step"``: ``max(sum_d KL_d, free_nats)``.  Where a
    floor is active the KL gets no gradient, so the posterior may use that much information for free.

    Raises:
        ValueError: unknown ``mode`` or negative ``free_nats``.
    """
    if mode not in FREE_NATS_MODES:
        raise ValueError(f"free nats mode must be one of {FREE_NATS_MODES}, got {mode!r}")
    if free_nats < 0:
        raise ValueError(f"free_nats must be >= 0, got {free_nats!r}")
    if free_nats == 0:
        return kl.sum(-1)
    if mode == "per_dim":
        return kl.clamp_min(free_nats / kl.shape[-1]).sum(-1)
    return kl.sum(-1).clamp_min(free_nats)


def kl_weight(step: int | None, warmup_steps: int) -> float:
    """KL weight ``beta`` at optimizer step ``step``: ``min(1, step / warmup_steps)`` (linear warm-up from 0); 1 when
    ``warmup_steps`` is 0 or the step is unknown (``None``)."""
    if step is None or warmup_steps <= 0:
        return 1.0
    return min(1.0, step / warmup_steps)


def free_nats_at(step: int | None, free_nats: float, anneal_steps: int | None) -> float:
    """Free nats at optimizer step ``step``: ``free_nats`` for the first half of ``anneal_steps``, then a cosine decay
    to 0 over the second half (the shape of the authors' schedule), 0 afterwards; constant when ``anneal_steps`` is
    ``None``; 0 when the step is unknown (``None``: the plain ELBO)."""
    if step is None:
        return 0.0
    if anneal_steps is None:
        return float(free_nats)
    half = anneal_steps / 2
    if step <= half:
        return float(free_nats)
    if step >= anneal_steps:
        return 0.0
    return float(free_nats) * 0.5 * (1.0 + math.cos(math.pi * (step - half) / half))


def iw_bound_from(log_weights, K: int, chunk: int | None, B: int, where: str) -> torch.Tensor:
    """The importance-weighted bound ``-log (1/K) sum_k w_k`` (Burda et al. 2016), ``[B]`` float32 nats, from
    ``log_weights(k) -> [k * B]``: the log importance weights ``log p(x, z) - log q(z | x)`` of ``k`` posterior samples
    of each of the ``B`` rows (sample-major), drawn ``chunk`` at a time (default ``K``) to bound memory.

    Raises:
        ValueError: ``K`` or ``chunk`` not a positive integer (``where`` names the caller).
    """
    if not isinstance(K, int) or K < 1:
        raise ValueError(f"{where}: K must be a positive integer, got {K!r}")
    chunk = K if chunk is None else chunk
    if not isinstance(chunk, int) or chunk < 1:
        raise ValueError(f"{where}: chunk must be a positive integer, got {chunk!r}")
    log_w = torch.cat([log_weights(min(chunk, K - k0)).view(-1, B) for k0 in range(0, K, chunk)], dim=0)  # [K, B]
    return -(torch.logsumexp(log_w.double(), dim=0) - math.log(K)).float()


# --------------------------------------------------------------------------------------------------------------------
# base of the latent models


@dataclass
class LatentFrameConfig(StackedFrameConfig):
    """Fields shared by VRNN and SRNN (defaults: Havtorn et al., section 3, and the authors' public settings).

    Attributes:
        Dz: latent size per step, 256 (= Dd).
        min_sd: lower bound added to every Gaussian standard deviation, 1e-4.
        free_nats: free nats per step at the start of training, 2 (``experiments/benchmarks.txt`` of the authors'
            code: ``--free_nats_start_value 2``).
        free_nats_mode: ``"per_dim"`` (floor ``free_nats / Dz`` per dimension, the authors' code) or ``"per_step"``
            (floor on the step's total KL).  See :func:`free_nats_kl`.
        free_nats_steps: optimizer steps over which the free nats go to 0 (constant for the first half, cosine decay
            over the second); 100,000 for s = 64 and 256, 200,000 for s = 1 in the authors' settings; ``None`` keeps
            them constant.
        kl_warmup_steps: steps of linear KL warm-up from 0 to 1 (0: off, the default here; the authors' scripts
            default to a 50,000-step cosine warm-up).
        (s, Dd, mlp_layers, num_components, bits, eval_segment_steps: see :class:`StackedFrameConfig`.)
    Raises:
        ValueError: non-positive sizes, negative free nats or warm-up, unknown ``free_nats_mode``.
    """

    Dz: int = 256
    min_sd: float = 1e-4
    free_nats: float = 2.0
    free_nats_mode: str = "per_dim"
    free_nats_steps: int | None = 100_000
    kl_warmup_steps: int = 0

    def __post_init__(self):
        super().__post_init__()
        name = type(self).__name__
        if not isinstance(self.Dz, int) or self.Dz < 1:
            raise ValueError(f"{name}.Dz must be a positive integer, got {self.Dz!r}")
        if not self.min_sd > 0:
            raise ValueError(f"{name}.min_sd must be > 0, got {self.min_sd!r}")
        if not self.free_nats >= 0:
            raise ValueError(f"{name}.free_nats must be >= 0 (0 turns free nats off), got {self.free_nats!r}")
        if self.free_nats_mode not in FREE_NATS_MODES:
            raise ValueError(f"{name}.free_nats_mode must be one of {FREE_NATS_MODES}, got {self.free_nats_mode!r}")
        if self.free_nats_steps is not None and (not isinstance(self.free_nats_steps, int) or self.free_nats_steps < 1):
            raise ValueError(f"{name}.free_nats_steps must be a positive integer or None, got {self.free_nats_steps!r}")
        if not isinstance(self.kl_warmup_steps, int) or self.kl_warmup_steps < 0:
            raise ValueError(f"{name}.kl_warmup_steps must be an integer >= 0, got {self.kl_warmup_steps!r}")

    @classmethod
    def quick_overrides(cls) -> dict:
        """A small configuration for smoke tests: ``Dd = 32``, ``Dz = 16``, 2-layer MLPs."""
        return {**super().quick_overrides(), "Dz": 16}


@dataclass
class SegmentOutput:
    """What a latent model computes for the steps ``t0 .. t1 - 1`` of a batch (``S = t1 - t0``).

    Attributes:
        params: DMoL parameters ``[B, 3M, S s]`` of the frames' samples.
        mu_q, sd_q: posterior ``[B, S, Dz]``; mu_p, sd_p: prior ``[B, S, Dz]``.
        z: the posterior sample ``[B, S, Dz]`` (``mu_q + sd_q eps``).
        state: the recurrent state after step ``t1 - 1``, to carry into the next segment.
    """

    params: torch.Tensor
    mu_q: torch.Tensor
    sd_q: torch.Tensor
    mu_p: torch.Tensor
    sd_p: torch.Tensor
    z: torch.Tensor
    state: object


@dataclass
class LatentTerms:
    """Per-row sums over the valid steps and samples of a batch, for one posterior sample (nats).

    Attributes:
        log_px: ``[B]`` ``sum_t log p(x_t | z_<=t, x_<t)``.
        kl: ``[B]`` analytic KL summed over steps and dimensions.
        kl_per_step: ``[B, n]`` analytic KL of each step (0 beyond a row's steps).
        kl_per_dim: ``[B, Dz]`` analytic KL of each latent dimension summed over steps.
        log_ratio: ``[B]`` ``sum_t [log p(z_t | ...) - log q(z_t | ...)]`` at the sample (Monte Carlo).
        kl_objective: ``[B]`` the KL term of the training objective (weighted, with free nats).
    """

    log_px: torch.Tensor
    kl: torch.Tensor
    kl_per_step: torch.Tensor
    kl_per_dim: torch.Tensor
    log_ratio: torch.Tensor
    kl_objective: torch.Tensor


class LatentFrameModel(StackedFrameModel):
    """Base of VRNN and SRNN: turns the per-segment computation of a subclass into the ELBO, the training objective,
    the segment-wise evaluation and the importance-weighted bound.

    A subclass implements ``init_state(batch_size)``, ``run_segment(prep, t0, t1, eps, state, context) ->
    SegmentOutput`` and optionally ``context(prep, segment_steps)`` (whole-sequence precomputation, e.g. SRNN's
    backward pass), and ``sample``.
    """

    config: LatentFrameConfig
    is_bound = True
    has_iw_bound = True

    def init_state(self, batch_size: int):  # pragma: no cover - abstract
        raise NotImplementedError

    def run_segment(self, prep: Prepared, t0: int, t1: int, eps: torch.Tensor, state, context) -> SegmentOutput:
        raise NotImplementedError  # pragma: no cover - abstract

    def context(self, prep: Prepared, segment_steps: int):
        """Whole-sequence precomputation shared by all segments (``None`` by default)."""
        return None

    # ---------------------------------------------------------------- the terms of the bound

    def terms(self, codes: torch.Tensor, lengths: torch.Tensor, eps: torch.Tensor | None = None,
              generator: torch.Generator | None = None, segment_steps: int | None = None,
              caller: str = "forward") -> LatentTerms:
        """Per-row ELBO terms for one posterior sample, computed in segments of ``segment_steps`` steps (``None``:
        all steps at once) with the recurrent state and ``z_{t-1}`` carried from one segment to the next.

        Args:
            codes: int64 ``[B, T]`` mu-law codes (right-padded; padding values do not matter).
            lengths: int64 ``[B]`` valid samples per row.
            eps: optional standard normal noise ``[B, n, Dz]`` (``n = ceil(T / s)``) that fixes the posterior sample
                ``z_t = mu_q + sd_q eps_t``; by default it is drawn per segment from ``generator`` (or the global RNG).
            generator: optional ``torch.Generator`` for the noise.
            segment_steps: steps per segment (``None``: one segment).
        Returns:
            :class:`LatentTerms`.
        Raises:
            ValueError: bad inputs (see :meth:`prepare`) or ``eps`` of the wrong shape.
        """
        prep = self.prepare(codes, lengths, caller)
        B, n, Dz = codes.shape[0], prep.n, self.config.Dz
        if eps is not None and tuple(eps.shape) != (B, n, Dz):
            raise ValueError(f"{type(self).__name__}.{caller}: eps must have shape [B, n, Dz] = [{B}, {n}, {Dz}] "
                             f"(n = ceil(T / s) steps), got {tuple(eps.shape)}")
        size = segment_steps or max(n, 1)
        context = self.context(prep, size)
        state = self.init_state(B)
        device, dtype = prep.x.device, prep.x.dtype
        valid = torch.arange(n, device=device)[None, :] < prep.steps[:, None]  # [B, n]
        step = self.train_step if self.training else None
        beta = kl_weight(step, self.config.kl_warmup_steps)
        lam = free_nats_at(step, self.config.free_nats, self.config.free_nats_steps)
        zero = torch.zeros(B, device=device, dtype=torch.float32)
        log_px, log_ratio, kl_obj = zero, zero, zero
        kl_steps, kl_dim = [], torch.zeros(B, Dz, device=device, dtype=torch.float32)
        for t0, t1 in segments(n, size):
            if eps is not None:
                e = eps[:, t0:t1].to(device=device, dtype=dtype)
            else:
                e = torch.randn(B, t1 - t0, Dz, device=device, dtype=dtype, generator=generator)
            out = self.run_segment(prep, t0, t1, e, state, context)
            state = out.state
            m = valid[:, t0:t1]
            mf = m.to(torch.float32)
            log_px = log_px + self.log_px(out.params, prep.codes[:, t0 * self.s:t1 * self.s], prep.lengths, t0)
            mu_q, sd_q, mu_p, sd_p = (v.float() for v in (out.mu_q, out.sd_q, out.mu_p, out.sd_p))  # AMP: fp32
            kl = gaussian_kl(mu_q, sd_q, mu_p, sd_p)  # [B, S, Dz]
            kl = torch.where(m[..., None], kl, torch.zeros_like(kl))
            kl_steps.append(kl.sum(-1))
            kl_dim = kl_dim + kl.sum(1)
            log_q = -0.5 * e.float().pow(2) - torch.log(sd_q) - 0.5 * LOG_2PI
            log_p = gaussian_log_prob(out.z.float(), mu_p, sd_p)
            log_ratio = log_ratio + ((log_p - log_q).sum(-1) * mf).sum(1)
            if self.training:
                kl_obj = kl_obj + (free_nats_kl(kl, lam, self.config.free_nats_mode) * mf).sum(1)
        kl_per_step = torch.cat(kl_steps, dim=1)
        kl_total = kl_per_step.sum(1)
        kl_objective = beta * kl_obj if self.training else kl_total
        return LatentTerms(log_px=log_px, kl=kl_total, kl_per_step=kl_per_step, kl_per_dim=kl_dim,
                           log_ratio=log_ratio, kl_objective=kl_objective)

    def _output(self, terms: LatentTerms, lengths: torch.Tensor) -> ModelOutput:
        nll = -terms.log_px + terms.kl
        objective = -terms.log_px + terms.kl_objective if self.training else None
        return ModelOutput(
            nll=nll, frames=lengths.to(torch.int64), is_bound=True, kl={"kl": terms.kl},
            extras={"kl_per_step": terms.kl_per_step, "kl_per_dim": terms.kl_per_dim, "log_px": terms.log_px},
            objective=objective,
        )

    def forward(self, codes: torch.Tensor, lengths: torch.Tensor, eps: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> ModelOutput:
        """Negative ELBO of each row with one posterior sample, all steps at once (Havtorn et al., eq. 5).

        Args:
            codes: int64 ``[B, T]`` mu-law codes, right-padded (padding values do not matter).
            lengths: int64 ``[B]`` valid samples per row.
            eps: optional noise ``[B, ceil(T / s), Dz]`` fixing the posterior sample (see :meth:`terms`).
            generator: optional ``torch.Generator`` for the noise.
        Returns:
            :class:`ModelOutput`: ``nll [B]`` the negative ELBO in nats (analytic KL), ``frames = lengths``,
            ``is_bound`` True, ``kl = {"kl": [B]}`` (nats), ``extras`` with ``kl_per_step [B, n]``,
            ``kl_per_dim [B, Dz]`` and ``log_px [B]``; in training mode also ``objective [B]`` (KL warm-up and free
            nats applied, see the module docstring), which :meth:`ModelOutput.loss` minimises.
        Raises:
            ValueError: bad inputs (see :meth:`prepare`).
        """
        return self._output(self.terms(codes, lengths, eps, generator, None, "forward"), lengths)

    def evaluate_long(self, codes: torch.Tensor, lengths: torch.Tensor, segment_steps: int | None = None,
                      eps: torch.Tensor | None = None, generator: torch.Generator | None = None) -> ModelOutput:
        """As :meth:`forward`, in segments of ``segment_steps`` steps (default ``config.eval_segment_steps``) with the
        recurrent state and ``z_{t-1}`` carried across segments; with the same ``eps`` it equals :meth:`forward` up to
        float rounding.  Used by :func:`wavelab.evaluate.evaluate`."""
        steps = segment_steps or self.config.eval_segment_steps
        return self._output(self.terms(codes, lengths, eps, generator, steps, "evaluate_long"), lengths)

    @torch.no_grad()
    def iw_bound(self, codes: torch.Tensor, lengths: torch.Tensor, K: int, generator: torch.Generator | None = None,
                 segment_steps: int | None = None, chunk: int | None = None) -> torch.Tensor:
        """Importance-weighted bound with ``K`` posterior samples (Burda et al. 2016), per utterance, as an upper bound
        on the negative log-likelihood: ``-L_K = -log (1/K) sum_k p(x, z_k) / q(z_k | x)``, ``z_k ~ q(z | x)``.

        ``-L_1`` is a one-sample estimate of the negative ELBO (with a Monte Carlo instead of an analytic KL);
        ``E[-L_K]`` decreases with ``K`` towards ``-log p(x)``.  Evaluated in segments with carried state like
        :meth:`evaluate_long`.

        Args:
            codes, lengths: as :meth:`forward`.
            K: number of importance samples, ``>= 1``.
            generator: optional ``torch.Generator`` for the posterior noise.
            segment_steps: steps per segment (default ``config.eval_segment_steps``).
            chunk: samples per pass (the batch is repeated ``chunk`` times; default ``K``); lower it to save memory.
        Returns:
            ``[B]`` float32 nats (compare with ``ModelOutput.nll``; divide by ``ln 2`` and the lengths for bpf).
        Raises:
            ValueError: ``K < 1`` or ``chunk < 1``, or bad inputs.
        """
        steps = segment_steps or self.config.eval_segment_steps

        def log_weights(k: int) -> torch.Tensor:
            t = self.terms(codes.repeat(k, 1), lengths.repeat(k), None, generator, steps, "iw_bound")
            return t.log_px + t.log_ratio

        return iw_bound_from(log_weights, K, chunk, codes.shape[0], f"{type(self).__name__}.iw_bound")


__all__ = ["FREE_NATS_MODES", "LatentFrameConfig", "LatentFrameModel", "LatentTerms", "SegmentOutput",
           "free_nats_at", "free_nats_kl", "gaussian_kl", "gaussian_log_prob", "gaussian_params", "iw_bound_from",
           "kl_weight"]
