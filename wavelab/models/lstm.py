"""LSTM over stacked frames: the deterministic autoregressive baseline of Havtorn et al. 2022 (section 3, appendix B).

Source: Havtorn et al. 2022, appendix B ("The LSTM baseline uses an MLP encoder to embed the waveform subsegment
x_{t:t+s-1} to a feature vector before feeding it to the LSTM cell ... the decoder outputs the waveform predictions
x_{t+s:t+2s-1} from the hidden state d_t"); Hochreiter & Schmidhuber 1997 for the cell.  TIMIT: 11.11 bpf (s = 1),
13.34 (s = 64), 14.20 (s = 256) with Dd = 256 and one layer.

For frames ``x_0 .. x_{n-1}`` of ``s`` samples (see :mod:`wavelab.models.stacking`)::

    e_t = MLP_enc(x_{t-1})                      x_{-1} = a frame of silence; s -> Dd
    d_t, c_t = LSTM(e_t, (d_{t-1}, c_{t-1}))    Dd units, num_layers layers, zero initial state
    rho_t = MLP_dec(d_t)                        Dd -> s * 3M
    p(x_t | x_{<t}) = prod_{i < s} DMoL(x_{t s + i}; rho_{t, i})

The likelihood is exact: ``-log p(x) = -sum_t log p(x_t | x_{<t})`` in nats (``is_bound`` False).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numba
import numpy as np
import torch
from torch import nn

from . import fused
from .base import ModelOutput
from .papers import PaperFigure, table_1, table_2, thesis
from .stacking import StackedFrameConfig, StackedFrameModel, frame_params, mlp, segments


@dataclass
class LSTMConfig(StackedFrameConfig):
    """LSTM hyper-parameters (defaults: Havtorn et al., section 3: Dd = 256, one layer, s = 64).

    Attributes:
        num_layers: stacked LSTM layers, 1 (1 to 3 are useful).
        (s, Dd, mlp_layers, num_components, bits, eval_segment_steps: see :class:`StackedFrameConfig`.)
    Raises:
        ValueError: a non-positive size or unsupported ``bits``.
    """

    display_name: ClassVar[str] = "LSTM"
    key_fields: ClassVar[tuple[str, ...]] = ("Dd",)
    paper_figures: ClassVar[tuple[PaperFigure, ...]] = (
        table_1(11.11, setting="Dd=256"), table_1(13.34, setting="Dd=256", suffix=" s=64"),
        table_1(14.20, setting="Dd=256", suffix=" s=256"),
        table_2(13.65, setting="Dd=256; 13.49 with 100 h", suffix=" s=64"), thesis(7.295))

    num_layers: int = 1

    def __post_init__(self):
        super().__post_init__()
        if not isinstance(self.num_layers, int) or self.num_layers < 1:
            raise ValueError(f"LSTMConfig.num_layers must be a positive integer, got {self.num_layers!r}")


class LSTMModel(StackedFrameModel):
    """LSTM over stacked frames with a per-sample DMoL output (see the module docstring).

    ``forward(codes, lengths)`` gives the exact NLL, ``evaluate_long`` the same in segments with the state ``(d, c)``
    carried, ``sample`` generates frame by frame.
    """

    def __init__(self, config: LSTMConfig | None = None):
        config = config if config is not None else LSTMConfig()
        if not isinstance(config, LSTMConfig):
            raise TypeError(f"LSTMModel expects an LSTMConfig, got {type(config).__name__}")
        super().__init__(config)
        Dd = config.Dd
        self.encoder = mlp(config.s, Dd, Dd, config.mlp_layers, final_activation=True)
        self.lstm = nn.LSTM(Dd, Dd, num_layers=config.num_layers, batch_first=True)
        self.decoder = mlp(Dd, Dd, self.frame_out_features, config.mlp_layers, float32_output=True)

    @property
    def step_size(self) -> int:
        """One step per frame of ``s`` samples."""
        return self.s

    def default_state(self, batch_size: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        """Zero state ``(d, c)``, each ``[num_layers, B, Dd]``."""
        shape = (self.config.num_layers, batch_size, self.config.Dd)
        zeros = torch.zeros(shape, device=self._device(), dtype=self._dtype())
        return zeros, zeros.clone()

    @torch.inference_mode()
    def step(self, codes_prev: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]):
        """One recurrent step: consume frame ``x_{t-1}`` and predict the ``s`` samples of frame ``x_t``.

        Args:
            codes_prev: int64 ``[B, s]``, the previous frame's codes (a frame of silence for ``t = 0``).
            state: ``(d, c)`` from :meth:`default_state` or the previous step.
        Returns:
            ``(params [B, 3M, s], state)``: equal to columns ``t s .. t s + s - 1`` of :meth:`logits` up to float
            rounding.
        """
        d, state = self.lstm(self.encoder(self.companded(codes_prev)).unsqueeze(1), state)
        return frame_params(self.decoder(d), self.s, self.distribution.num_params), state

    @torch.inference_mode()
    def steps(self, codes_prev: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor], n: int,
              temperature: float = 1.0, generator: torch.Generator | None = None):
        """``n`` steps, each followed by the draw of a frame (:meth:`WavelabModel.steps`), as one compiled loop
        (:func:`wavelab.models.fused.lstm_steps`) for a float32 model on the CPU; otherwise the eager loop.  Same
        draws and result as the eager loop (codes equal up to float rounding); ``state`` is updated in place.

        Raises:
            ValueError: ``codes_prev`` is not int64 ``[B, s]`` for the state's batch.
        """
        d, c = state
        if d.dtype != torch.float32 or d.device.type != "cpu":
            return super().steps(codes_prev, state, n, temperature, generator)
        B = d.shape[1]
        if not isinstance(codes_prev, torch.Tensor) or codes_prev.dtype != torch.int64 or \
                codes_prev.shape != (B, self.s):
            raise ValueError(f"LSTMModel.steps: codes_prev must be an int64 tensor [{B}, {self.s}] (the state's "
                             f"batch, one frame), got {getattr(codes_prev, 'dtype', type(codes_prev).__name__)} of "
                             f"shape {tuple(getattr(codes_prev, 'shape', ()))}")
        weights = self.__dict__.get("_fused")
        key = fused.weights_key(self)
        if weights is None or weights[0] != key:
            weights = self.__dict__["_fused"] = (key, self._fused_weights())
        d, c = d.contiguous(), c.contiguous()
        noise = fused.draw_uniforms(n, B, self.distribution.num_components, generator, temperature, self.s)
        out = np.empty((B, n * self.s), dtype=np.int64)
        fused.lstm_steps(n, codes_prev.numpy().astype(np.int64, copy=True), d=d.numpy(), c=c.numpy(), noise=noise,
                         temperature=float(temperature), out=out, **weights[1])
        return torch.from_numpy(out), (d, c)

    def _fused_weights(self) -> dict:
        """The weights as the float32 arrays of :func:`fused.lstm_steps`."""
        array = fused.array

        def linears(net) -> tuple[numba.typed.List, numba.typed.List]:
            layers = [m for m in net if isinstance(m, nn.Linear)]
            return (numba.typed.List([array(m.weight.t()) for m in layers]),
                    numba.typed.List([array(m.bias) for m in layers]))

        L = self.config.num_layers
        enc_w, enc_b = linears(self.encoder)
        dec_w, dec_b = linears(self.decoder)
        return {
            "inputs": fused.input_values(self.representation),
            "enc_w": enc_w, "enc_b": enc_b, "dec_w": dec_w, "dec_b": dec_b,
            "w_ih": array(torch.stack([getattr(self.lstm, f"weight_ih_l{k}").t() for k in range(L)])),
            "w_hh": array(torch.stack([getattr(self.lstm, f"weight_hh_l{k}").t() for k in range(L)])),
            "b_lstm": array(torch.stack([getattr(self.lstm, f"bias_ih_l{k}") + getattr(self.lstm, f"bias_hh_l{k}")
                                         for k in range(L)])),
            "edges": fused.interior_edges(self.representation),
            "log_scale_min": float(self.distribution.log_scale_min),
        }

    def step_params(self, x_prev: torch.Tensor, state=None):
        """DMoL parameters of steps ``0 .. S-1`` from their input frames.

        Args:
            x_prev: companded input frames ``[B, S, s]`` (``x_{t-1}`` for step ``t``).
            state: ``(d, c)`` carried from the previous segment (``None``: zeros).
        Returns:
            ``(params [B, 3M, S s], state)``.
        """
        if state is None:
            state = self.default_state(x_prev.shape[0])
        d, state = self.lstm(self.encoder(x_prev), state)
        return frame_params(self.decoder(d), self.s, self.distribution.num_params), state

    def logits(self, codes: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """DMoL parameters ``[B, 3M, n s]`` of every sample (``n = ceil(T / s)``); column ``i`` parametrises
        ``p(x_i | x_{< s floor(i / s)})``, so predictions of frame ``t`` see only frames ``< t``."""
        if lengths is None:
            lengths = torch.full((codes.shape[0],), codes.shape[1], dtype=torch.int64, device=codes.device)
        prep = self.prepare(codes, lengths, "logits")
        return self.step_params(prep.x_prev)[0]

    def forward(self, codes: torch.Tensor, lengths: torch.Tensor) -> ModelOutput:
        """Exact negative log-likelihood ``-sum_t log p(x_t | x_{<t})`` of each row, in nats.

        Args:
            codes: int64 ``[B, T]`` mu-law codes, right-padded (padding values do not matter).
            lengths: int64 ``[B]`` valid samples per row.
        Returns:
            :class:`ModelOutput` with ``nll [B]`` (nats), ``frames = lengths``, ``is_bound`` False.
        Raises:
            ValueError: bad shapes, dtypes or ranges (see :meth:`prepare`).
        """
        return self._nll(codes, lengths, segment_steps=None, caller="forward")

    def evaluate_long(self, codes: torch.Tensor, lengths: torch.Tensor,
                      segment_steps: int | None = None) -> ModelOutput:
        """As :meth:`forward`, in segments of ``segment_steps`` steps (default ``config.eval_segment_steps``) with
        the LSTM state carried across segments: equal to :meth:`forward` up to float rounding, with memory bounded by
        the segment length (used by :func:`wavelab.evaluate.evaluate`)."""
        return self._nll(codes, lengths, segment_steps or self.config.eval_segment_steps, caller="evaluate_long")

    def _nll(self, codes, lengths, segment_steps, caller) -> ModelOutput:
        prep = self.prepare(codes, lengths, caller)
        n, s = prep.n, self.s
        state = None
        log_p = torch.zeros(codes.shape[0], device=codes.device)
        for t0, t1 in segments(n, segment_steps or max(n, 1)):
            params, state = self.step_params(prep.x_prev[:, t0:t1], state)
            log_p = log_p + self.log_px(params, prep.codes[:, t0 * s:t1 * s], prep.lengths, t0)
        return ModelOutput(nll=-log_p, frames=prep.lengths, is_bound=False)


__all__ = ["LSTMConfig", "LSTMModel"]
