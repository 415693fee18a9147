"""SaShiMi: a multi-scale autoregressive waveform model built from S4 layers, trained in convolution mode and sampled
in recurrent mode at a constant cost per sample.

Sources: Goel, Gu, Donahue, Re 2022, "It's Raw! Audio generation with state-space models" (section 3: the S4 block,
pooling, the multi-scale architecture; section 4: d_model 64, 8 layers per stage, pooling [4, 4], expand 2, feed-forward
expand 2, state size 64; 8-bit mu-law, 256-way softmax, NLL in bits per byte).  Public reference code read for
understanding (nothing copied): github.com/state-spaces/s4, ``models/sashimi/sashimi.py`` (the non-U-Net variant is
the one built here).  The S4 layers are :class:`wavelab.models.s4.S4Layer`.

Network, for codes ``x [B, T]`` (channels last, ``H_l = d_model * expand^l`` at level ``l``, level ``l`` runs at
``1 / (pool_0 ... pool_{l-1})`` of the sample rate)::

    u_t = embed(x_{t-1})                    x_{-1} = the code of silence; 8-bit: an embedding table, 16-bit: an MLP
                                            on the companded value
    h_0 = u; h_{l+1} = DownPool_l(h_l)      reshape p consecutive steps into one, linear p H_l -> expand H_l
    h = Center(h_S) + h_S                   n_layers x (S4 block, FF block) at the coarsest level S
    for l = S-1 .. 0:
        g = UpPool_l(h) + h_l               linear expand H_l -> p H_l, reshape into p steps, delayed by one
                                            coarse step (the first p fine steps get zeros)
        h = Blocks_l(g) + g                 n_layers x (S4 block, FF block) at level l
    params = Linear(LayerNorm(h))           -> 256 logits (categorical) or 3M DMoL parameters

    S4 block: x + GLU(Linear(GELU(S4(LayerNorm(x)))))    (H -> 2H -> H, pre-norm residual)
    FF block: x + Linear(GELU(Linear(LayerNorm(x))))     (H -> ff_expand H -> H)

Causality.  The down-pooled step ``j`` at a level summarises the inputs of window ``j`` (steps ``jp .. jp+p-1``); the
up-pool's one-step delay hands it to the next window's fine steps ``(j+1)p ..``, all later than its inputs; S4 layers
are causal and the skip ``h_l`` is the same step.  So ``params_t`` depends on ``u_{<=t}``, i.e. on ``x_{<t}`` only.

Recurrent generation (:meth:`SaShiMi.step`): each level keeps the inputs of its current down-pool window and a queue
of the up-pool's ``p`` pending outputs; a level runs only when its window completes (every 4, 16 samples), so the cost
per sample is constant (amortised): every S4 layer steps in its recurrent mode (O(N) per channel).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numba
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..audio import num_bins
from ..distributions import Categorical, DiscretizedMixtureLogistics, float32_head
from ..representations import check_representation, get_representation
from . import fused
from .base import ModelConfig, ModelOutput, Progress, WavelabModel, check_batch, length_mask, progress_steps
from .s4 import LAYERS, S4Layer, S4State

HEADS = {"categorical": 8, "dmol": 16}  # head -> the mu-law bit depth it goes with


@dataclass
class SaShiMiConfig(ModelConfig):
    """SaShiMi hyper-parameters; defaults are the paper's (Goel et al. 2022, section 4 and the public configs).

    Attributes:
        d_model: channels at the finest level, 64.
        n_layers: (S4 block, FF block) pairs at each level, 8.
        pool: down-pooling factor of each level, ``(4, 4)``; the coarsest level runs at 1/16 of the sample rate.
        expand: channel expansion at each down-pool, 2 (64 -> 128 -> 256 channels).
        d_state: ``N``, S4 state size, 64.
        ff_expand: expansion of the feed-forward blocks, 2.
        layer: ``"s4"`` (DPLR with the Hurwitz fix, the paper's) or ``"s4d"`` (diagonal).
        head: ``"categorical"`` (8-bit mu-law, 256-way softmax, the paper's) or ``"dmol"`` (16-bit mu-law, a
            discretized mixture of logistics as in the benchmark of Havtorn et al.).
        bits: mu-law bit depth; ``None`` (default) picks the head's: 8 for categorical, 16 for dmol.
        num_components: DMoL components ``M`` (dmol head only), 10.
        dropout: dropout in the residual branches, 0.0 (the paper's).
        l_max: training sequence length in samples, 16,000; each level's S4 layers are set up for
            ``l_max / (pool_0 ... pool_{l-1})`` steps (longer inputs work too, slower).  Must be divisible by
            ``prod(pool)``.
        dt_min, dt_max: range of the initial S4 step sizes, 0.001 and 0.1.
        representation: the waveform representation (:mod:`wavelab.representations`): ``"mulaw"`` (default; the
            only one of the categorical head, SaShiMi's own 8-bit mu-law setting), or with the dmol head also
            ``"linear"`` and ``"pcm16"`` (input values and DMoL bins).

    Raises:
        ValueError: a non-positive size, odd ``d_state``, empty or non-positive ``pool``, unknown ``layer`` / ``head``,
            ``bits`` that do not match the head, ``l_max`` not divisible by ``prod(pool)``, dropout outside [0, 1),
            an unknown representation or one other than ``"mulaw"`` with the categorical head.
    """

    display_name: ClassVar[str] = "SaShiMi"
    key_fields: ClassVar[tuple[str, ...]] = ("n_layers", "d_model", "head")

    d_model: int = 64
    n_layers: int = 8
    pool: tuple[int, ...] = (4, 4)
    expand: int = 2
    d_state: int = 64
    ff_expand: int = 2
    layer: str = "s4"
    head: str = "categorical"
    bits: int | None = None
    num_components: int = 10
    dropout: float = 0.0
    l_max: int = 16_000
    dt_min: float = 1e-3
    dt_max: float = 1e-1
    representation: str = "mulaw"

    def __post_init__(self):
        for name in ("d_model", "n_layers", "expand", "d_state", "ff_expand", "num_components", "l_max"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"SaShiMiConfig.{name} must be a positive integer, got {value!r}")
        if self.d_state % 2:
            raise ValueError(f"SaShiMiConfig.d_state must be even (S4 states come in conjugate pairs), "
                             f"got {self.d_state}")
        if isinstance(self.pool, int) or not all(isinstance(p, int) and p >= 1 for p in self.pool):
            raise ValueError(f"SaShiMiConfig.pool must be a tuple of positive integers (e.g. (4, 4)), "
                             f"got {self.pool!r}")
        self.pool = tuple(self.pool)
        if self.layer not in LAYERS:
            raise ValueError(f"SaShiMiConfig.layer must be one of {LAYERS}, got {self.layer!r}")
        if self.head not in HEADS:
            raise ValueError(f"SaShiMiConfig.head must be one of {tuple(HEADS)}, got {self.head!r}")
        if self.bits is None:
            self.bits = HEADS[self.head]
        if self.bits != HEADS[self.head]:
            raise ValueError(f"SaShiMiConfig.bits must be {HEADS[self.head]} for head={self.head!r} "
                             f"(categorical: 8-bit mu-law; dmol: 16-bit), got {self.bits!r}; change bits or head")
        if self.head == "categorical" and self.representation != "mulaw":
            raise ValueError(f"SaShiMiConfig.representation: the categorical head is SaShiMi's 8-bit mu-law "
                             f"setting and supports only 'mulaw', got {self.representation!r}; use head='dmol' for "
                             f"16-bit 'linear' or 'pcm16'")
        check_representation("SaShiMiConfig", self.representation, self.bits)
        if self.l_max % self.total_pool:
            raise ValueError(f"SaShiMiConfig.l_max must be divisible by prod(pool) = {self.total_pool}, "
                             f"got {self.l_max}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"SaShiMiConfig.dropout must lie in [0, 1), got {self.dropout!r}")
        if not 0 < self.dt_min <= self.dt_max:
            raise ValueError(f"SaShiMiConfig: need 0 < dt_min <= dt_max, got {self.dt_min}, {self.dt_max}")

    @property
    def total_pool(self) -> int:
        """``prod(pool)``: samples per step of the coarsest level (16 for the paper)."""
        return math.prod(self.pool)

    @classmethod
    def quick_overrides(cls) -> dict:
        """A tiny configuration for smoke tests: 16 channels, 1 layer per level, state 8, 2,000-sample segments."""
        return {"d_model": 16, "n_layers": 1, "d_state": 8, "l_max": 2000}


class S4Block(nn.Module):
    """Pre-norm residual S4 block: ``x + GLU(Linear_{H -> 2H}(GELU(S4(LayerNorm(x)))))`` on ``[B, T, H]``."""

    def __init__(self, H: int, config: SaShiMiConfig, l_max: int):
        super().__init__()
        self.norm = nn.LayerNorm(H)
        self.s4 = S4Layer(H, config.d_state, l_max, config.layer, config.dt_min, config.dt_max)
        self.out = nn.Linear(H, 2 * H)
        self.dropout = nn.Dropout(config.dropout)

    def _post(self, z: torch.Tensor) -> torch.Tensor:
        return self.dropout(F.glu(self.out(F.gelu(z)), dim=-1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self._post(self.s4(self.norm(x)))

    def default_state(self, batch_size: int) -> S4State:
        return self.s4.default_state(batch_size)

    def step(self, x: torch.Tensor, state: S4State) -> tuple[torch.Tensor, S4State]:
        """``x [B, H]`` one step, recurrent mode."""
        z, state = self.s4.step(self.norm(x), state)
        return x + self._post(z.to(x.dtype)), state


class FFBlock(nn.Module):
    """Pre-norm residual feed-forward block: ``x + Linear(GELU(Linear(LayerNorm(x))))``, pointwise in time."""

    def __init__(self, H: int, expand: int, dropout: float):
        super().__init__()
        self.net = nn.Sequential(nn.LayerNorm(H), nn.Linear(H, expand * H), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(expand * H, H), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.net(x)


class Stage(nn.Module):
    """``n_layers`` pairs of (S4 block, FF block) at one level; conv mode on ``[B, T, H]``, recurrent mode on
    ``[B, H]``."""

    def __init__(self, H: int, config: SaShiMiConfig, l_max: int):
        super().__init__()
        self.s4_blocks = nn.ModuleList(S4Block(H, config, l_max) for _ in range(config.n_layers))
        self.ff_blocks = nn.ModuleList(FFBlock(H, config.ff_expand, config.dropout) for _ in range(config.n_layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for s4, ff in zip(self.s4_blocks, self.ff_blocks):
            x = ff(s4(x))
        return x

    def default_state(self, batch_size: int) -> list[S4State]:
        return [block.default_state(batch_size) for block in self.s4_blocks]

    def step(self, x: torch.Tensor, states: list[S4State]) -> torch.Tensor:
        """One step; ``states`` is updated in place."""
        for i, (s4, ff) in enumerate(zip(self.s4_blocks, self.ff_blocks)):
            x, states[i] = s4.step(x, states[i])
            x = ff(x)
        return x


class DownPool(nn.Module):
    """``[B, T, H] -> [B, T/p, expand H]``: each window of ``p`` steps, flattened step-major, through a linear map."""

    def __init__(self, H: int, expand: int, p: int):
        super().__init__()
        self.p = p
        self.linear = nn.Linear(p * H, expand * H)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, H = x.shape
        return self.linear(x.reshape(B, T // self.p, self.p * H))

    def pool_window(self, window: list[torch.Tensor]) -> torch.Tensor:
        """Recurrent mode: ``p`` steps ``[B, H]`` -> one coarse step ``[B, expand H]``."""
        return self.linear(torch.cat(window, dim=-1))


class UpPool(nn.Module):
    """``[B, T/p, expand H] -> [B, T, H]``: linear to ``p H``, split into ``p`` fine steps, delayed by one coarse step
    (window ``j`` receives the output of coarse step ``j - 1``; window 0 receives zeros), which keeps the network
    causal."""

    def __init__(self, H: int, expand: int, p: int):
        super().__init__()
        self.p, self.H = p, H
        self.linear = nn.Linear(expand * H, p * H)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, Tc, _ = x.shape
        y = F.pad(self.linear(x)[:, :-1], (0, 0, 1, 0))  # delay by one coarse step
        return y.reshape(B, Tc * self.p, self.H)

    def unpool_step(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Recurrent mode: one coarse step ``[B, expand H]`` -> the next window's ``p`` fine steps ``[B, H]``."""
        return list(self.linear(x).reshape(x.shape[0], self.p, self.H).unbind(1))


@dataclass
class SaShiMiState:
    """Recurrent generation state of :class:`SaShiMi` for a batch of ``B`` sequences.

    Attributes:
        batch_size: ``B``.
        t: samples consumed so far (the next :meth:`SaShiMi.step` predicts sample ``t``).
        windows: per down-pool ``l``, the level-``l`` steps ``[B, H_l]`` of the current (incomplete) window.
        queues: per up-pool ``l``, the pending level-``l`` outputs ``[B, H_l]`` for the next steps of the window.
        up_states: per level ``l < S``, the S4 states of its stage; center: the S4 states of the coarsest stage.
        fused: the weights and discrete systems packed for the compiled loop of :meth:`SaShiMi.steps`, made on its
            first call.
    """

    batch_size: int
    t: int
    windows: list[list[torch.Tensor]]
    queues: list[list[torch.Tensor]]
    up_states: list[list[S4State]]
    center: list[S4State]
    fused: dict | None = None


class SaShiMi(WavelabModel):
    """SaShiMi (see the module docstring): exact autoregressive likelihood over mu-law codes, conv-mode training,
    recurrent-mode generation.

    Attributes:
        config: the :class:`SaShiMiConfig`; bits: mu-law bit depth; distribution: the output
        :class:`~wavelab.distributions.Categorical` or :class:`~wavelab.distributions.DiscretizedMixtureLogistics`;
        silence_code: the code of amplitude 0.0 (the input before the first sample).
    """

    def __init__(self, config: SaShiMiConfig | None = None):
        super().__init__()
        config = config if config is not None else SaShiMiConfig()
        if not isinstance(config, SaShiMiConfig):
            raise TypeError(f"SaShiMi expects a SaShiMiConfig, got {type(config).__name__}")
        self.config = config
        self.bits = config.bits
        self.representation = get_representation(config.representation, config.bits)
        self.silence_code = self.representation.silence_code
        if config.head == "categorical":
            self.distribution = Categorical(config.bits)
        else:
            self.distribution = DiscretizedMixtureLogistics(config.num_components, config.bits,
                                                            representation=self.representation)
        H = config.d_model
        if config.head == "categorical":
            self.embed = nn.Embedding(num_bins(config.bits), H)
        else:
            self.embed = nn.Sequential(nn.Linear(1, H), nn.GELU(), nn.Linear(H, H))
        widths = [H * config.expand**level for level in range(len(config.pool) + 1)]
        lengths = [config.l_max // math.prod(config.pool[:level]) for level in range(len(config.pool) + 1)]
        self.down = nn.ModuleList(DownPool(widths[i], config.expand, p) for i, p in enumerate(config.pool))
        self.center = Stage(widths[-1], config, lengths[-1])
        self.up = nn.ModuleList(UpPool(widths[i], config.expand, p) for i, p in enumerate(config.pool))
        self.up_stages = nn.ModuleList(Stage(widths[i], config, lengths[i]) for i in range(len(config.pool)))
        self.norm = nn.LayerNorm(H)
        self.head = nn.Linear(H, self.distribution.num_params)

    # ------------------------------------------------------------------ convolution mode (training, likelihood)

    def _check_codes(self, codes: torch.Tensor, name: str = "codes") -> None:
        if not isinstance(codes, torch.Tensor) or codes.dtype != torch.int64 or codes.dim() != 2:
            desc = f"{codes.dtype} tensor of shape {tuple(codes.shape)}" if isinstance(codes, torch.Tensor) \
                else type(codes).__name__
            raise ValueError(f"SaShiMi: {name} must be an int64 tensor [B, T] of mu-law codes, got {desc}")
        if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= num_bins(self.bits)):
            raise ValueError(f"SaShiMi: {name} must lie in [0, {num_bins(self.bits) - 1}] for {self.bits}-bit mu-law, "
                             f"got [{int(codes.min())}, {int(codes.max())}]")

    def embed_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """Input features of codes: ``[B, ...]`` int64 -> ``[B, ..., d_model]``."""
        if self.config.head == "categorical":
            return self.embed(codes)
        y = self.representation.model_input(codes, dtype=self.head.weight.dtype)
        return self.embed(y.unsqueeze(-1))

    def network(self, u: torch.Tensor) -> torch.Tensor:
        """The U-Net on input features ``u [B, T, d_model]`` (``T`` a multiple of ``prod(pool)``) -> ``[B, T, d_model]``
        features before the final norm and head."""
        skips = [u]
        h = u
        for down in self.down:
            h = down(h)
            skips.append(h)
        h = self.center(h) + skips.pop()
        for level in reversed(range(len(self.down))):
            g = self.up[level](h) + skips.pop()
            h = self.up_stages[level](g) + g
        return h

    def logits(self, codes: torch.Tensor) -> torch.Tensor:
        """Output-distribution parameters of the next-sample predictions: ``params[:, :, t]`` for ``p(x_t | x_{<t})``.

        Args:
            codes: int64 ``[B, T]``.
        Returns:
            ``[B, num_params, T]`` (256 logits, or ``[logits M | means M | log_scales M]`` for the DMoL).
        Raises:
            ValueError: ``codes`` not an int64 ``[B, T]`` tensor of valid codes.
        """
        self._check_codes(codes)
        B, T = codes.shape
        P = self.config.total_pool
        Tp = -(-T // P) * P  # right-pad to whole coarse steps; causality keeps the first T outputs unchanged
        first = torch.full_like(codes[:, :1], self.silence_code)
        shifted = torch.cat([first, codes[:, :-1]], dim=1)
        shifted = F.pad(shifted, (0, Tp - T), value=self.silence_code)
        h = self.network(self.embed_codes(shifted))[:, :T]
        return float32_head((self.norm, self.head), h).transpose(1, 2)  # float32 also under autocast

    def forward(self, codes: torch.Tensor, lengths: torch.Tensor) -> ModelOutput:
        """Exact negative log-likelihood ``-sum_{t < T_b} log p(x_t | x_{<t})`` per row, in nats.

        Args:
            codes: int64 ``[B, T]`` mu-law codes, right-padded (padding values do not affect the result).
            lengths: int64 ``[B]``, valid samples per row, in ``[0, T]``.
        Returns:
            :class:`ModelOutput` with ``nll [B]`` (nats), ``frames = lengths``, ``is_bound = False``.  For the
            categorical head, ``nll / ln 2 / frames`` is the paper's bits per byte.
        Raises:
            ValueError: bad shapes or dtypes, lengths out of range, codes out of range.
        """
        lengths = check_batch(codes, lengths, self.bits, "SaShiMi.forward")
        log_p = self.distribution.log_prob(self.logits(codes), codes)
        mask = length_mask(lengths, codes.shape[1])
        nll = -torch.where(mask, log_p, torch.zeros_like(log_p)).sum(dim=1)
        return ModelOutput(nll=nll, frames=lengths, is_bound=False)

    # ------------------------------------------------------------------ recurrent mode (generation)

    @property
    def step_size(self) -> int:
        """One sample per step."""
        return 1

    @torch.no_grad()
    def default_state(self, batch_size: int = 1) -> SaShiMiState:
        """A fresh recurrent state: empty pooling windows, up-pool queues of ``p`` zeros (the delayed first window),
        zero S4 states with the discrete systems set up from the current weights.

        Raises:
            ValueError: ``batch_size < 1``.
        """
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"SaShiMi.default_state: batch_size must be a positive integer, got {batch_size!r}")
        w = self.head.weight
        queues = [[torch.zeros(batch_size, up.H, dtype=w.dtype, device=w.device) for _ in range(up.p)]
                  for up in self.up]
        return SaShiMiState(
            batch_size=batch_size,
            t=0,
            windows=[[] for _ in self.down],
            queues=queues,
            up_states=[stage.default_state(batch_size) for stage in self.up_stages],
            center=self.center.default_state(batch_size),
        )

    @torch.no_grad()
    def step(self, codes_prev: torch.Tensor, state: SaShiMiState) -> tuple[torch.Tensor, SaShiMiState]:
        """One recurrent step: consume ``x_{t-1}`` and return the parameters of ``p(x_t | x_{<t})``.

        Equals ``logits(x)[:, :, t]`` of the convolution mode up to float rounding when ``codes_prev`` is
        ``x_{t-1}`` (``silence_code`` for ``t = 0``).  Level ``l`` runs only when its pooling window completes.

        Args:
            codes_prev: int64 ``[B, 1]``.
            state: from :meth:`default_state`; updated in place and returned.
        Returns:
            ``(params [B, num_params, 1], state)``.
        Raises:
            ValueError: ``codes_prev`` of the wrong shape, dtype or range.
        """
        B = state.batch_size
        if not isinstance(codes_prev, torch.Tensor) or codes_prev.dtype != torch.int64 or codes_prev.shape != (B, 1):
            if isinstance(codes_prev, torch.Tensor):
                desc = f"{codes_prev.dtype} tensor of shape {tuple(codes_prev.shape)}"
            else:
                desc = type(codes_prev).__name__
            raise ValueError(f"SaShiMi.step: codes_prev must be an int64 tensor [{B}, 1] (the state's batch), got "
                             f"{desc}")
        self._check_codes(codes_prev, "codes_prev")
        S = len(self.down)
        inputs = [self.embed_codes(codes_prev[:, 0])]  # level-l value produced at this step, l = 0 .. top
        for level, down in enumerate(self.down):
            window = state.windows[level]
            window.append(inputs[-1])
            if len(window) < down.p:
                break
            inputs.append(down.pool_window(window))
            state.windows[level] = []
        top = len(inputs) - 1
        h = None
        if top == S:
            h = self.center.step(inputs[S], state.center) + inputs[S]
        for level in range(min(top, S - 1), -1, -1):
            queue = state.queues[level]
            g = queue.pop(0) + inputs[level]
            if not queue:  # window complete: the coarse output of this step fills the next window
                state.queues[level] = self.up[level].unpool_step(h)
            h = self.up_stages[level].step(g, state.up_states[level]) + g
        state.t += 1
        return float32_head((self.norm, self.head), h).unsqueeze(-1), state

    @torch.no_grad()
    def steps(self, codes_prev: torch.Tensor, state: SaShiMiState, n: int, temperature: float = 1.0,
              generator: torch.Generator | None = None) -> tuple[torch.Tensor, SaShiMiState]:
        """``n`` recurrent steps, each followed by a draw (:meth:`WavelabModel.steps`), as one compiled loop
        (:func:`wavelab.models.fused.sashimi_steps`) for a float32 model with S4 (DPLR) layers and pooling on the
        CPU; otherwise the eager loop.  Same draws and result as the eager loop (codes equal up to float
        rounding); the state can continue in either.

        Raises:
            ValueError: ``codes_prev`` of the wrong shape, dtype or range.
        """
        c = self.config
        if (c.layer != "s4" or not c.pool or self.head.weight.dtype != torch.float32
                or self.head.weight.device.type != "cpu"):
            return super().steps(codes_prev, state, n, temperature, generator)
        B = state.batch_size
        if not isinstance(codes_prev, torch.Tensor) or codes_prev.dtype != torch.int64 or codes_prev.shape != (B, 1):
            return super().steps(codes_prev, state, n, temperature, generator)  # the eager step raises the error
        self._check_codes(codes_prev, "codes_prev")
        if state.fused is None:
            state.fused = self._fused_weights(state)
        stages = [*state.up_states, state.center]
        states = numba.typed.List([np.stack([s4.x.numpy() for s4 in stage]) for stage in stages])
        windows, filled = self._window_arrays(state.windows, B, from_end=False)
        queues, taken = self._window_arrays(state.queues, B, from_end=True)
        if c.head == "categorical":
            noise = fused.draw_categorical_uniforms(n, B, num_bins(self.bits), generator, temperature)
        else:
            noise = fused.draw_uniforms(n, B, self.distribution.num_components, generator, temperature)
        out = np.empty((B, n), dtype=np.int64)
        x_prev = codes_prev[:, 0].numpy().astype(np.int64, copy=True)
        fused.sashimi_steps(n, x_prev, states=states, windows=windows, filled=filled, queues=queues, taken=taken,
                            noise=noise, temperature=float(temperature), out=out, **state.fused)
        for stage, x in zip(stages, states):
            for i, s4 in enumerate(stage):
                stage[i] = S4State(x=torch.from_numpy(x[i]), params=s4.params)
        state.windows = [[torch.from_numpy(w[:, j].copy()) for j in range(k)] for w, k in zip(windows, filled)]
        state.queues = [[torch.from_numpy(q[:, j].copy()) for j in range(k, q.shape[1])] for q, k in zip(queues, taken)]
        state.t += n
        return torch.from_numpy(out), state

    def _window_arrays(self, lists: list[list[torch.Tensor]], batch_size: int, from_end: bool):
        """Pooling windows (or up-pool queues) as float32 ``[B, p, H_l]`` arrays and the count of rows used: a
        window's steps fill its first rows; a queue's pending outputs sit in its last rows, the rows before them
        counted as used."""
        arrays, counts = numba.typed.List(), np.zeros(len(lists), dtype=np.int64)
        for level, (pending, p) in enumerate(zip(lists, self.config.pool)):
            a = np.zeros((batch_size, p, self.config.d_model * self.config.expand**level), dtype=np.float32)
            start = p - len(pending) if from_end else 0
            for j, x in enumerate(pending):
                a[:, start + j] = x.numpy()
            arrays.append(a)
            counts[level] = start if from_end else len(pending)
        return arrays, counts

    def _fused_weights(self, state: SaShiMiState) -> dict:
        """The weights, and the discrete S4 systems the state was made with, as the arrays of
        :func:`fused.sashimi_steps`."""
        array = fused.array

        def flat(tensors) -> np.ndarray:
            return np.concatenate([array(x).ravel() for x in tensors]).astype(np.float32)

        f1, f2, f3, c3 = (numba.typed.List() for _ in range(4))
        for stage, s4_states in zip([*self.up_stages, self.center], [*state.up_states, state.center]):
            rows, vectors, matrices, systems = [], [], [], []
            for s4, ff, s4_state in zip(stage.s4_blocks, stage.ff_blocks, s4_states):
                p = s4_state.params
                H = s4.out.weight.shape[1]
                rows += [s4.norm.weight, s4.norm.bias, p["D"], p["denom"].expand(H), ff.net[0].weight, ff.net[0].bias,
                         ff.net[4].bias]
                vectors += [s4.out.bias, ff.net[1].bias]
                matrices += [s4.out.weight.t(), ff.net[1].weight.t(), ff.net[4].weight.t()]
                systems += [p[name].expand(H, -1) for name in ("E", "Dinv", "P")] + [
                    (2.0 * p["B"]).expand(H, -1), p["C"].expand(H, -1)]
            f1.append(array(torch.stack(rows).float()))
            f2.append(flat(vectors))
            f3.append(flat(matrices))
            c3.append(array(torch.stack(systems).to(torch.complex64)))
        categorical = self.config.head == "categorical"
        return {
            "embedding": array(self.embed_codes(torch.arange(num_bins(self.bits)))),
            "categorical": categorical,
            "f1": f1, "f2": f2, "f3": f3, "c3": c3, "e": int(self.config.ff_expand),
            "down_w": numba.typed.List([array(d.linear.weight.t()) for d in self.down]),
            "down_b": numba.typed.List([array(d.linear.bias) for d in self.down]),
            "up_w": numba.typed.List([array(u.linear.weight.t()) for u in self.up]),
            "up_b": numba.typed.List([array(u.linear.bias) for u in self.up]),
            "pools": np.array(self.config.pool, dtype=np.int64),
            "norm_w": array(self.norm.weight), "norm_b": array(self.norm.bias),
            "head_w": array(self.head.weight.t()), "head_b": array(self.head.bias),
            "edges": fused.interior_edges(self.representation),
            "log_scale_min": 0.0 if categorical else float(self.distribution.log_scale_min),
        }

    @torch.no_grad()
    def sample_recompute(self, num_samples: int, batch_size: int = 1, temperature: float = 1.0,
                         generator: torch.Generator | None = None, progress: Progress = False) -> torch.Tensor:
        """Reference generation in convolution mode: every step reruns :meth:`logits` on the whole prefix (O(t log t)
        per sample, slow; for the speed benchmark and as a check of :meth:`sample`).  Draws from ``generator`` in the
        same order as :meth:`sample`, so both give the same codes up to float rounding.  Same arguments and return
        value as :meth:`sample`."""
        self._check_sample_args(num_samples, batch_size, temperature)
        device = self.head.weight.device
        seq = torch.full((batch_size, num_samples + 1), self.silence_code, dtype=torch.int64, device=device)
        for i in progress_steps(num_samples, progress, "SaShiMi (recompute)"):
            params = self.logits(seq[:, : i + 1])[:, :, i:]  # position i only sees seq[:, :i]
            seq[:, i] = self.distribution.sample(params, temperature, generator).squeeze(-1)
        return seq[:, :num_samples]


__all__ = ["DownPool", "FFBlock", "S4Block", "SaShiMi", "SaShiMiConfig", "SaShiMiState", "Stage", "UpPool"]
