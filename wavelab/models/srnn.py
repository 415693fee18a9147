"""SRNN: the stochastic recurrent neural network over stacked frames (smoothing configuration), with a DMoL output.

Sources: Fraccaro et al. 2016 ("Sequential neural models with stochastic layers"); Havtorn et al. 2022, section 2.4 and
appendix B (the original SRNN with the Gaussian output replaced by the DMoL), configuration of section 3:
``Dz = Dd = 256``, stacks ``s`` in {1, 64, 256}, smoothing posterior.  TIMIT, s = 64: <= 12.42 bpf.

For frames ``x_0 .. x_{n-1}`` of ``s`` samples (``x_{-1}`` a frame of silence, ``z_{-1} = 0``, ``d_{-1} = 0``,
``a_n = 0``)::

    d_t = GRU_fwd(phi_x(x_{t-1}), d_{t-1})                    deterministic, runs forward over x
    a_t = GRU_bwd([phi_x(x_t), d_t], a_{t+1})                 backward in time: the smoothing inference network
    p(z_t | z_{t-1}, d_t)    = N(mu_p, diag(sd_p^2)),  [mu_p, sd_p] = phi_prior([z_{t-1}, d_t])
    q(z_t | z_{t-1}, a_t)    = N(mu_q, diag(sd_q^2)),  [mu_q', sd_q] = phi_enc([z_{t-1}, a_t]),
                                                       mu_q = mu_p + mu_q' (residual posterior, Fraccaro et al.
                                                       section 4) or mu_q'
    p(x_t | z_t, d_t)        = prod_{i < s} DMoL(x_{t s + i}; rho_{t,i}),  rho_t = phi_dec([z_t, d_t])

Segments.  The backward GRU needs each utterance's whole future, so :meth:`SRNN.context` first runs the two
deterministic recurrences over the whole utterance (each in segments of ``segment_steps`` steps with its state
carried; the backward one over each row reversed within its own length, so that ``a`` starts from zero at the last
valid frame of every row whatever the padding), keeping only ``d`` and ``a`` (``[B, n, Dd]`` each).  The latent chain,
the decoder and the DMoL (the costly part, ``O(n s)``) then run forward segment by segment with ``z_{t-1}`` carried.
The result equals the whole-utterance pass exactly (up to float rounding).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from .base import Progress, progress_steps
from .deferred import DeferredGrads
from .latent import LatentFrameConfig, LatentFrameModel, SegmentOutput, gaussian_params
from .papers import PaperFigure, table_1, thesis
from .stacking import Prepared, frame_params, mlp, segments


@dataclass
class SRNNConfig(LatentFrameConfig):
    """SRNN hyper-parameters (defaults: Havtorn et al. and the authors' public settings).

    Attributes:
        residual_posterior: parametrise the posterior mean as the prior mean plus a correction (Fraccaro et al.,
            section 4; the default of the authors' SRNN script), True.
        (Dz, free nats, KL warm-up: see :class:`~wavelab.models.latent.LatentFrameConfig`; s, Dd, mlp_layers,
        num_components, bits, eval_segment_steps: see :class:`~wavelab.models.stacking.StackedFrameConfig`.)
    """

    display_name: ClassVar[str] = "SRNN"
    key_fields: ClassVar[tuple[str, ...]] = ("Dd", "Dz")
    paper_figures: ClassVar[tuple[PaperFigure, ...]] = (
        table_1(11.19, True, "Dz=256"), table_1(12.42, True, "Dz=256", " s=64"),
        table_1(13.14, True, "Dz=256", " s=256"), thesis(7.501, True))

    residual_posterior: bool = True


class SRNN(LatentFrameModel):
    """Stochastic RNN over stacked frames in the smoothing configuration (see the module docstring).

    ``forward`` returns the negative ELBO (``is_bound`` True) with the KL per step and per dimension; ``evaluate_long``
    the same in segments (the deterministic passes over the whole utterance first, see the module docstring);
    ``iw_bound`` the importance-weighted bound; ``sample`` generates by ancestral sampling from the prior.
    """

    def __init__(self, config: SRNNConfig | None = None):
        config = config if config is not None else SRNNConfig()
        if not isinstance(config, SRNNConfig):
            raise TypeError(f"SRNN expects an SRNNConfig, got {type(config).__name__}")
        super().__init__(config)
        Dd, Dz, L = config.Dd, config.Dz, config.mlp_layers
        self.phi_x = mlp(config.s, Dd, Dd, L, final_activation=True)
        self.forward_rnn = nn.GRU(Dd, Dd, batch_first=True)
        self.backward_rnn = nn.GRU(2 * Dd, Dd, batch_first=True)
        self.phi_prior = mlp(Dz + Dd, Dd, 2 * Dz, L)
        self.phi_enc = mlp(Dz + Dd, Dd, 2 * Dz, L)
        self.phi_dec = mlp(Dz + Dd, Dd, self.frame_out_features, L, float32_output=True)

    def init_state(self, batch_size: int) -> torch.Tensor:
        """The latent carried between steps, ``z_{-1} = 0``, ``[B, Dz]``."""
        return torch.zeros(batch_size, self.config.Dz, device=self._device(), dtype=self._dtype())

    def context(self, prep: Prepared, segment_steps: int) -> dict[str, torch.Tensor]:
        """The deterministic states of all steps: ``{"d": [B, n, Dd], "a": [B, n, Dd]}`` (see the module docstring).

        Both GRUs run in segments of ``segment_steps`` steps with their state carried.  The backward GRU runs
        forward over each row's frames reversed within the row's valid steps (padding steps stay at the end, where
        they cannot reach a valid step), and its outputs are put back in time order.
        """
        B, n = prep.x.shape[:2]
        ds, h = [], None
        for t0, t1 in segments(n, segment_steps):
            d, h = self.forward_rnn(self.phi_x(prep.x_prev[:, t0:t1]), h)
            ds.append(d)
        d = torch.cat(ds, dim=1)
        t = torch.arange(n, device=d.device)[None, :]
        rev = torch.where(t < prep.steps[:, None], prep.steps[:, None] - 1 - t, t)  # an involution per row
        rev = rev[..., None].expand(B, n, d.shape[-1])
        feats_rev = torch.cat([self.phi_x(prep.x).gather(1, rev), d.gather(1, rev)], dim=-1)
        a_rev, h = [], None
        for t0, t1 in segments(n, segment_steps):
            a, h = self.backward_rnn(feats_rev[:, t0:t1], h)
            a_rev.append(a)
        return {"d": d, "a": torch.cat(a_rev, dim=1).gather(1, rev)}

    def run_segment(self, prep: Prepared, t0: int, t1: int, eps: torch.Tensor, state: torch.Tensor,
                    context: dict[str, torch.Tensor]) -> SegmentOutput:
        """Steps ``t0 .. t1 - 1`` of the latent chain (prior and posterior step by step, since both read
        ``z_{t-1}``), then the decoder for all steps at once.  ``eps [B, S, Dz]`` is the posterior noise, ``state``
        is ``z_{t0-1}``."""
        dg = DeferredGrads(self.phi_prior, self.phi_enc)
        z, d, a = dg.enter(state, context["d"][:, t0:t1], context["a"][:, t0:t1])
        d_steps, a_steps = dg.per_step(d), dg.per_step(a)
        min_sd = self.config.min_sd
        zs, mqs, sqs, mps, sps = [], [], [], [], []
        for i in range(t1 - t0):
            mu_p, sd_p = gaussian_params(dg.mlp(self.phi_prior, torch.cat([z, d_steps[i]], dim=-1)), min_sd)
            mu_q, sd_q = gaussian_params(dg.mlp(self.phi_enc, torch.cat([z, a_steps[i]], dim=-1)), min_sd)
            if self.config.residual_posterior:
                mu_q = mu_p + mu_q
            z = mu_q + sd_q * eps[:, i]
            zs.append(z), mqs.append(mu_q), sqs.append(sd_q), mps.append(mu_p), sps.append(sd_p)
        Z = torch.stack(zs, 1)
        params = frame_params(self.phi_dec(torch.cat([Z, d], dim=-1)), self.s, self.distribution.num_params)
        return SegmentOutput(params=params, mu_q=torch.stack(mqs, 1), sd_q=torch.stack(sqs, 1),
                             mu_p=torch.stack(mps, 1), sd_p=torch.stack(sps, 1), z=Z, state=z)

    @torch.inference_mode()
    def sample(self, num_samples: int, batch_size: int = 1, temperature: float = 1.0,
               generator: torch.Generator | None = None, progress: Progress = False) -> torch.Tensor:
        """Ancestral sampling from the prior, frame by frame: ``d_t`` from the previous frame,
        ``z_t ~ p(z_t | z_{t-1}, d_t)``, then the frame's ``s`` samples from the DMoL ``phi_dec([z_t, d_t])``, fed
        back.  Same arguments and return value as :meth:`VRNN.sample <wavelab.models.vrnn.VRNN.sample>`."""
        n = self._sample_frames(num_samples, batch_size, temperature)
        z = self.init_state(batch_size)
        h = None
        x_prev = self.silence_frame(batch_size)
        out = torch.empty(batch_size, n * self.s, dtype=torch.int64, device=z.device)
        for t in progress_steps(n, progress, "SRNN", self.s):
            d, h = self.forward_rnn(self.phi_x(x_prev).unsqueeze(1), h)
            d = d[:, 0]
            mu_p, sd_p = gaussian_params(self.phi_prior(torch.cat([z, d], dim=-1)), self.config.min_sd)
            z = mu_p + sd_p * torch.randn(mu_p.shape, generator=generator, device=z.device, dtype=z.dtype)
            codes = self.sample_frame(self.phi_dec(torch.cat([z, d], dim=-1)), temperature, generator)
            out[:, t * self.s:(t + 1) * self.s] = codes
            x_prev = self.companded(codes)
        return out[:, :num_samples]


__all__ = ["SRNN", "SRNNConfig"]
