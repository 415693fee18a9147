"""VRNN: the variational recurrent neural network over stacked frames, with a DMoL output.

Sources: Chung et al. 2015 ("A recurrent latent variable model for sequential data"); Havtorn et al. 2022, section 2.3,
eqs. 3-8, and appendix B (the original VRNN with the Gaussian output replaced by the DMoL), configuration of section 3:
``Dz = Dd = 256``, stacks ``s`` in {1, 64, 256}.  TIMIT, s = 64: <= 12.54 bpf.

For frames ``x_0 .. x_{n-1}`` of ``s`` samples (``x_{-1}`` a frame of silence, ``z_{-1} = 0``, ``d_{-1} = 0``)::

    d_t = GRU([phi_x(x_{t-1}), phi_z(z_{t-1})], d_{t-1})        transition f, Dd units
    q(z_t | x_<=t, z_<t) = N(mu_q, diag(sd_q^2)),  [mu_q, sd_q] = phi_enc([phi_x(x_t), d_t])      (eq. 6)
    p(z_t | x_<t, z_<t)  = N(mu_p, diag(sd_p^2)),  [mu_p, sd_p] = phi_prior(d_t)                   (eq. 7)
    p(x_t | z_<=t, x_<t) = prod_{i < s} DMoL(x_{t s + i}; rho_{t,i}),  rho_t = phi_dec([phi_z(z_t), d_t])   (eq. 8)

``phi_x`` and ``phi_z`` are feature MLPs (Chung et al.), all ``phi`` are MLPs with ``mlp_layers`` linear layers and
``Dd`` hidden units.  The reported figure is the negative ELBO (eq. 5) with one posterior sample and the analytic KL;
see :mod:`wavelab.models.latent` for the training objective (free nats, KL warm-up), segment-wise evaluation and the
importance-weighted bound.
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
from .stacking import Prepared, frame_params, mlp


@dataclass
class VRNNConfig(LatentFrameConfig):
    """VRNN hyper-parameters; see :class:`~wavelab.models.latent.LatentFrameConfig` and
    :class:`~wavelab.models.stacking.StackedFrameConfig` for the fields (defaults: Havtorn et al., ``Dz = Dd = 256``,
    ``s = 64``, DMoL with 10 components over 16-bit mu-law, free nats 2 annealed over 100k steps)."""

    display_name: ClassVar[str] = "VRNN"
    key_fields: ClassVar[tuple[str, ...]] = ("Dd", "Dz")
    paper_figures: ClassVar[tuple[PaperFigure, ...]] = (
        table_1(11.09, True, "Dz=256"), table_1(12.54, True, "Dz=256", " s=64"),
        table_1(13.27, True, "Dz=256", " s=256"), thesis(7.316, True))


@dataclass
class VRNNState:
    """Recurrent state between steps: ``d [B, Dd]`` (the GRU state ``d_{t-1}``) and ``phi_z [B, Dd]``, the features
    of the last latent sample ``phi_z(z_{t-1})``."""

    d: torch.Tensor
    phi_z: torch.Tensor


class VRNN(LatentFrameModel):
    """Variational RNN over stacked frames (see the module docstring).

    ``forward`` returns the negative ELBO (``is_bound`` True) with the KL per step and per dimension; ``evaluate_long``
    the same in segments with the state carried; ``iw_bound`` the importance-weighted bound; ``sample`` generates by
    ancestral sampling from the prior.
    """

    def __init__(self, config: VRNNConfig | None = None):
        config = config if config is not None else VRNNConfig()
        if not isinstance(config, VRNNConfig):
            raise TypeError(f"VRNN expects a VRNNConfig, got {type(config).__name__}")
        super().__init__(config)
        Dd, Dz, L = config.Dd, config.Dz, config.mlp_layers
        self.phi_x = mlp(config.s, Dd, Dd, L, final_activation=True)
        self.phi_z = mlp(Dz, Dd, Dd, L, final_activation=True)
        self.transition = nn.GRUCell(2 * Dd, Dd)
        self.phi_enc = mlp(2 * Dd, Dd, 2 * Dz, L)
        self.phi_prior = mlp(Dd, Dd, 2 * Dz, L)
        self.phi_dec = mlp(2 * Dd, Dd, self.frame_out_features, L, float32_output=True)

    def init_state(self, batch_size: int) -> VRNNState:
        """``d_{-1} = 0`` and ``phi_z(z_{-1} = 0)``."""
        zeros = torch.zeros(batch_size, self.config.Dd, device=self._device(), dtype=self._dtype())
        z0 = torch.zeros(batch_size, self.config.Dz, device=self._device(), dtype=self._dtype())
        return VRNNState(d=zeros, phi_z=self.phi_z(z0))

    def run_segment(self, prep: Prepared, t0: int, t1: int, eps: torch.Tensor, state: VRNNState,
                    context=None) -> SegmentOutput:
        """Steps ``t0 .. t1 - 1``: the transition and posterior step by step (``z_t`` feeds ``d_{t+1}``), then prior
        and decoder for all steps at once.  ``eps [B, S, Dz]`` is the posterior noise."""
        fx = self.phi_x(prep.x[:, t0:t1])
        fx_prev = self.phi_x(prep.x_prev[:, t0:t1])
        dg = DeferredGrads(self.transition, self.phi_enc, self.phi_z)
        d, fz, fx, fx_prev = dg.enter(state.d, state.phi_z, fx, fx_prev)
        fx, fx_prev = dg.per_step(fx), dg.per_step(fx_prev)
        ds, zs, fzs, mus, sds = [], [], [], [], []
        for i in range(t1 - t0):
            d = dg.gru_cell(self.transition, torch.cat([fx_prev[i], fz], dim=-1), d)
            mu_q, sd_q = gaussian_params(dg.mlp(self.phi_enc, torch.cat([fx[i], d], dim=-1)), self.config.min_sd)
            z = mu_q + sd_q * eps[:, i]
            fz = dg.mlp(self.phi_z, z)
            ds.append(d), zs.append(z), fzs.append(fz), mus.append(mu_q), sds.append(sd_q)
        D, FZ = torch.stack(ds, 1), torch.stack(fzs, 1)
        mu_p, sd_p = gaussian_params(self.phi_prior(D), self.config.min_sd)
        params = frame_params(self.phi_dec(torch.cat([FZ, D], dim=-1)), self.s, self.distribution.num_params)
        return SegmentOutput(params=params, mu_q=torch.stack(mus, 1), sd_q=torch.stack(sds, 1), mu_p=mu_p,
                             sd_p=sd_p, z=torch.stack(zs, 1), state=VRNNState(d=d, phi_z=fz))

    @torch.inference_mode()
    def sample(self, num_samples: int, batch_size: int = 1, temperature: float = 1.0,
               generator: torch.Generator | None = None, progress: Progress = False) -> torch.Tensor:
        """Ancestral sampling from the prior, frame by frame: ``d_t`` from the previous frame and latent,
        ``z_t ~ p(z_t | d_t)``, then the frame's ``s`` samples from the DMoL ``phi_dec([phi_z(z_t), d_t])``, fed back.

        Args:
            num_samples: samples to generate (rounded up to whole frames, then cut).
            batch_size: independent sequences.
            temperature: DMoL sampling temperature (the latent is always drawn from the prior itself).
            generator: optional ``torch.Generator`` on the model's device (latent noise and DMoL draws).
            progress: tqdm bar over frames, or a callable ``progress(done, total)``
                (:func:`~wavelab.models.base.progress_bar`).
        Returns:
            int64 codes ``[batch_size, num_samples]``.
        Raises:
            ValueError: negative ``num_samples`` or temperature, ``batch_size < 1``.
        """
        n = self._sample_frames(num_samples, batch_size, temperature)
        state = self.init_state(batch_size)
        d, fz = state.d, state.phi_z
        x_prev = self.silence_frame(batch_size)
        out = torch.empty(batch_size, n * self.s, dtype=torch.int64, device=d.device)
        for t in progress_steps(n, progress, "VRNN", self.s):
            d = self.transition(torch.cat([self.phi_x(x_prev), fz], dim=-1), d)
            mu_p, sd_p = gaussian_params(self.phi_prior(d), self.config.min_sd)
            z = mu_p + sd_p * torch.randn(mu_p.shape, generator=generator, device=d.device, dtype=d.dtype)
            fz = self.phi_z(z)
            codes = self.sample_frame(self.phi_dec(torch.cat([fz, d], dim=-1)), temperature, generator)
            out[:, t * self.s:(t + 1) * self.s] = codes
            x_prev = self.companded(codes)
        return out[:, :num_samples]


__all__ = ["VRNN", "VRNNConfig", "VRNNState"]
