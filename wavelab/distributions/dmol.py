"""Discretized mixture of logistics (DMoL) over the 2^b bins of a waveform representation (mu-law by default).

Source: Salimans et al. 2017 (PixelCNN++), section 2.1; used with 10 components on 16-bit mu-law audio by Havtorn et
al. (section 3) and by Parallel WaveNet (van den Oord et al. 2018).

The companded value of code ``k`` is ``y_k = -1 + 2k / (2^b - 1)`` (see :mod:`wavelab.audio`) and each bin is
``[y_k - delta, y_k + delta]`` with ``delta = 1 / (2^b - 1)``.  A mixture of ``M`` logistics with weights ``pi_m``,
means ``mu_m`` and scales ``s_m`` puts on bin ``k`` the mass

    P(k) = sum_m pi_m [ sigma((y_k + delta - mu_m) / s_m) - sigma((y_k - delta - mu_m) / s_m) ],

except that the edge bins are open-ended: bin 0 takes all mass below ``y_0 + delta`` and bin ``2^b - 1`` all mass above
``y_{2^b-1} - delta``, so the pmf sums to exactly one over the bins.

Numerics.  With 2^16 bins most bins hold little mass, so PixelCNN++'s fallback to the density at the bin centre for
masses below 1e-5 would be taken for ordinary bins.  Instead every bin's log-mass is computed exactly in log space with

    sigma(a) - sigma(b) = sigma(a) * sigma(-b) * (1 - exp(-(a - b))),      a > b,

so ``log P_m(k) = logsigmoid(a) + logsigmoid(-b) + log(-expm1(-(a - b)))``, where ``a - b = 2 delta / s_m > 0``.  Each
term is finite for any finite ``a, b``: no bin, however far in a tail, underflows to ``log 0`` unless its mass is below
float32's range, and there is no cancellation between two nearly equal CDF values.

Other representations (:mod:`wavelab.representations`).  With ``representation="linear"`` or ``"pcm16"`` bin ``k`` is
``[e_k, e_{k+1}]`` with the representation's own edges (uniform in the linear domain, or the compander's images of
the int16 rounding cells for ``pcm16``) and the same formula is used with ``a = (e_{k+1} - mu_m) / s_m``,
``b = (e_k - mu_m) / s_m`` and ``a - b = w_k / s_m``, the width ``w_k`` read from a float64 table (never formed as a
difference of two float32 edges); the edge bins stay open.  The default ``"mulaw"`` keeps the computation above
operation for operation, so its figures are bit-identical to those of the code before representations existed.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..audio import bin_half_width, codes_to_companded, companded_to_codes, num_bins
from ..representations import get_representation
from .runs import check_runs


def _log_one_minus_exp_neg(d: torch.Tensor) -> torch.Tensor:
    """``log(1 - exp(-d))`` for ``d > 0``, accurate for small and large ``d`` (Maechler 2012, "log1mexp")."""
    return torch.where(d < math.log(2.0), torch.log(-torch.expm1(-d)), torch.log1p(-torch.exp(-d)))


class DiscretizedMixtureLogistics:
    """DMoL output distribution over the ``2**bits`` codes of a representation (16-bit mu-law by default).

    Parameters come channel-first, as a 1x1 convolution produces them: ``params`` has shape ``[B, 3M, T]`` laid out as
    ``[logits (M) | means (M) | log_scales (M)]``.  Means are used as given (the grid spans [-1, 1]; values outside just
    put their mass in the open edge bins); log-scales are clamped below at ``log_scale_min``.

    Args:
        num_components: ``M``, 10 in the paper.
        bits: 8 or 16 (mu-law bit depth).
        log_scale_min: lower clamp of the log-scales.  Default: PixelCNN++'s -7 for 8 bits, shifted by
            ``log(delta / delta_8)`` with ``delta`` the narrowest bin's half-width, so that at the clamp a component
            still concentrates all of its mass in one bin at any bit depth (about -12.55 for 16-bit mu-law and
            linear, about -14.96 for pcm16, whose narrowest bins at full scale are 11 times narrower).
        representation: ``"mulaw"`` (default), ``"linear"`` or ``"pcm16"`` (or a
            :class:`~wavelab.representations.Representation`): where the bins lie (see the module docstring).
    Raises:
        ValueError: ``num_components < 1``, unsupported ``bits``, unknown representation or one that has no
            ``bits``-bit form.
    """

    def __init__(self, num_components: int = 10, bits: int = 16, log_scale_min: float | None = None,
                 representation="mulaw"):
        if num_components < 1:
            raise ValueError(f"num_components must be >= 1, got {num_components}")
        self.num_components = num_components
        self.bits = bits
        self.num_bins = num_bins(bits)
        self.representation = get_representation(representation, bits)
        self._mulaw = self.representation.name == "mulaw"
        self.delta = bin_half_width(bits) if self._mulaw else self.representation.min_half_width
        if log_scale_min is None:
            log_scale_min = -7.0 + math.log(self.delta / bin_half_width(8))
        self.log_scale_min = log_scale_min

    @property
    def num_params(self) -> int:
        """Channels the network must produce: ``3 * num_components``."""
        return 3 * self.num_components

    def __repr__(self) -> str:
        rep = "" if self._mulaw else f", representation={self.representation.name!r}"
        return f"DiscretizedMixtureLogistics(num_components={self.num_components}, bits={self.bits}{rep})"

    def split(self, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Split ``params [B, 3M, ...]`` into float32 ``(log_weights, means, log_scales)``, each ``[B, M, ...]``.

        ``log_weights`` are normalised (log-softmax over components); ``log_scales`` are clamped.

        Raises:
            ValueError: if ``params.shape[1] != 3M``.
        """
        if params.shape[1] != self.num_params:
            raise ValueError(
                f"DMoL with {self.num_components} components expects {self.num_params} parameter channels in dim 1, "
                f"got shape {tuple(params.shape)}"
            )
        if params.dtype != torch.float64:
            params = params.float()  # evaluated in float32 (also under autocast); float64 stays float64
        logits, means, log_scales = params.split(self.num_components, dim=1)
        return F.log_softmax(logits, dim=1), means, log_scales.clamp(min=self.log_scale_min)

    def component_log_prob(self, means: torch.Tensor, log_scales: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """Log-mass in nats that each logistic component puts on bin ``codes``.

        Args:
            means, log_scales: ``[B, M, ...]``.
            codes: int64 ``[B, ...]`` in ``[0, 2**bits - 1]``.
        Returns:
            ``[B, M, ...]`` float32 log-probabilities (nats).
        """
        inv_s = torch.exp(-log_scales)
        if self._mulaw:
            y = codes_to_companded(codes, self.bits, dtype=means.dtype).unsqueeze(1)
            a = (y + self.delta - means) * inv_s  # standardised upper bin edge
            b = (y - self.delta - means) * inv_s  # standardised lower bin edge
            width = 2.0 * self.delta * inv_s
        else:
            rep = self.representation
            edges = rep.bin_edges(means.dtype, means.device)
            a = (edges[codes + 1].unsqueeze(1) - means) * inv_s
            b = (edges[codes].unsqueeze(1) - means) * inv_s
            width = rep.bin_widths(means.dtype, means.device)[codes].unsqueeze(1) * inv_s
        interior = F.logsigmoid(a) + F.logsigmoid(-b) + _log_one_minus_exp_neg(width)
        first = codes.unsqueeze(1) == 0
        last = codes.unsqueeze(1) == self.num_bins - 1
        return torch.where(first, F.logsigmoid(a), torch.where(last, F.logsigmoid(-b), interior))

    def log_prob(self, params: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """Log-probability of each code.

        Args:
            params: ``[B, 3M, T]`` (any float dtype; computed in float32, or float64 when given float64).
            codes: int64 ``[B, T]`` in ``[0, 2**bits - 1]``.
        Returns:
            ``[B, T]`` log-probabilities in nats (float32; float64 for float64 ``params``).
        Raises:
            ValueError: wrong parameter channels, or codes outside the range.
        """
        if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= self.num_bins):
            raise ValueError(
                f"codes must lie in [0, {self.num_bins - 1}] for {self.bits}-bit {self.representation.name}, got range "
                f"[{int(codes.min())}, {int(codes.max())}]"
            )
        with torch.autocast(device_type=params.device.type, enabled=False):  # float32 also under mixed precision
            log_w, means, log_scales = self.split(params)
            return torch.logsumexp(log_w + self.component_log_prob(means, log_scales, codes), dim=1)

    def lower_edges(self, codes: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Lower bin edge of each code in the model's domain (``k`` may be ``2**bits``: the upper edge of the top
        bin): ``y_k - delta = -1 + (2k - 1) delta`` on mu-law's uniform grid, else the representation's own edges
        (:meth:`wavelab.representations.Representation.bin_edges`).  ``codes`` int64, any shape; returns ``dtype``."""
        if self._mulaw:
            return (2 * codes - 1).to(dtype) * self.delta - 1.0
        return self.representation.bin_edges(torch.float64, codes.device)[codes].to(dtype)

    def runs_log_prob(self, params: torch.Tensor, start: torch.Tensor, width: int, count: int) -> torch.Tensor:
        """Log-masses of ``count`` consecutive runs of ``width`` codes each, from the mixture's CDF.

        Run ``j`` of row ``(b, n)`` holds the codes ``start + j width .. start + (j + 1) width - 1`` and covers the
        companded interval from its first code's lower bin edge to its last code's upper bin edge (open-ended below
        code 0 and above code ``2**bits - 1``, as the edge bins).  Its mass per component uses the log-space identity
        of the module docstring with ``a - b`` = the run's width over ``s_m`` (``2 delta width`` on mu-law's grid,
        the representation's edges otherwise), each of the ``count + 1`` run boundaries
        evaluated once and shared by the two runs it separates.  With ``width = 1`` the runs are single bins (the masses
        of :meth:`log_prob`, up to float rounding); runs that partition the codes have masses summing to one.  Used by
        :mod:`wavelab.coding` to code a 2^16-symbol pmf as a coarse run of 256 codes, then the code within it, without
        a 65,536-entry table per sample.

        Args:
            params: ``[B, 3M, N]``.
            start: int64 ``[B, N]``, the first code of run 0.
            width, count: codes per run (``>= 1``) and number of runs (``>= 1``); every run must lie in the codes.
        Returns:
            ``[B, N, count]`` log-masses in nats (float32; float64 for float64 ``params``).
        Raises:
            ValueError: wrong parameter channels, ``width`` or ``count`` below 1, or runs outside the codes.
        """
        check_runs(start, width, count, self.num_bins)
        with torch.autocast(device_type=params.device.type, enabled=False):
            log_w, means, log_scales = self.split(params)  # [B, M, N]
            inv_s = torch.exp(-log_scales).unsqueeze(-1)  # [B, M, N, 1]
            bounds = start.unsqueeze(-1) + width * torch.arange(count + 1, device=start.device)  # [B, N, count + 1]
            edge = self.lower_edges(bounds, means.dtype)
            z = (edge.unsqueeze(1) - means.unsqueeze(-1)).mul_(inv_s)  # [B, M, N, count + 1]
            upper = F.logsigmoid(z[..., 1:])  # log sigma(a) of each run
            lower = F.logsigmoid(z[..., :-1].neg())  # log sigma(-b) of each run
            if self._mulaw:
                run_width = 2.0 * self.delta * width
            else:  # each run's width from float64 edges (pcm16 bins near full scale are ~3e-6 wide)
                e64 = self.representation.bin_edges(torch.float64, start.device)[bounds]
                run_width = (e64[..., 1:] - e64[..., :-1]).to(means.dtype).unsqueeze(1)  # [B, 1, N, count]
            comp = upper.add_(lower).add_(_log_one_minus_exp_neg(run_width * inv_s))
            first = (start == 0).unsqueeze(1)  # run 0 starts at code 0: open below, mass sigma(a)
            last = (bounds[..., -1] == self.num_bins).unsqueeze(1)  # the last run ends at the top code: sigma(-b)
            up0, low_end = F.logsigmoid(z[..., 1]), F.logsigmoid(-z[..., -2])
            comp[..., 0] = torch.where(first, up0, comp[..., 0])
            if count == 1:
                comp[..., 0] = torch.where(first & last, torch.zeros_like(up0),
                                           torch.where(last, low_end, comp[..., 0]))
            else:
                comp[..., -1] = torch.where(last, low_end, comp[..., -1])
            return torch.logsumexp(comp.add_(log_w.unsqueeze(-1)), dim=1)

    def sample(
        self, params: torch.Tensor, temperature: float = 1.0, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Draw codes from the mixture.

        A component is drawn from the weights, a continuous value ``mu + s * T * logit(u)`` with ``u ~ U(0, 1)`` from
        it, and the value is quantised to the nearest code (so draws land in the bins with exactly the mass
        :meth:`log_prob` gives them when ``T = 1``).  The temperature ``T`` also sharpens the weights
        (``softmax(logits / T)``); ``T -> 0`` gives the mode of the most likely component.

        Args:
            params: ``[B, 3M, ...]``.
            temperature: ``T >= 0``.
            generator: optional ``torch.Generator`` for reproducible draws.
        Returns:
            int64 codes ``[B, ...]``.
        Raises:
            ValueError: negative temperature.
        """
        if temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {temperature}")
        log_w, means, log_scales = self.split(params)
        if temperature == 0:
            component = log_w.argmax(dim=1, keepdim=True)
            noise = torch.zeros_like(means[:, :1])
        else:
            gumbel = -torch.log(-torch.log(_uniform_like(log_w, generator)))
            component = (log_w / temperature + gumbel).argmax(dim=1, keepdim=True)
            u = _uniform_like(means[:, :1], generator)
            noise = temperature * (torch.log(u) - torch.log1p(-u))
        mu = means.gather(1, component)
        s = log_scales.gather(1, component).exp()
        value = (mu + s * noise).squeeze(1)
        return companded_to_codes(value, self.bits) if self._mulaw else self.representation.codes_from_values(value)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        """Mixture mean in the model's domain (companded, or linear for ``"linear"``; ignoring edge clipping),
        ``[B, ...]`` float32."""
        log_w, means, _ = self.split(params)
        return (log_w.exp() * means).sum(dim=1)


def _uniform_like(ref: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Uniform draws in the open interval (eps, 1 - eps) with the shape, dtype and device of ``ref``."""
    eps = 1e-6
    u = torch.rand(ref.shape, generator=generator, device=ref.device, dtype=ref.dtype)
    return u.clamp(eps, 1.0 - eps)
