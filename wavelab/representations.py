"""Waveform representations: which integer codes a model predicts, what it reads as input, and where its output
distribution's bins lie.

Every 16-bit model of wavelab predicts one of 65,536 integer codes per sample with a discretized mixture of logistics
(DMoL, :mod:`wavelab.distributions.dmol`) and reads a real value per past sample.  A *representation* fixes the three
choices behind that sentence, one object each (:func:`get_representation`):

``"mulaw"`` (the default; Havtorn et al., section 3)
    code ``k`` = the 16-bit mu-law code of the sample (:func:`wavelab.audio.pcm16_to_codes`), model input and bin
    centre ``y_k = -1 + 2k / 65535``, bins ``[y_k - delta, y_k + delta]`` with ``delta = 1 / 65535`` (uniform in the
    companded domain).  Lossy: only about 20k of the 65,536 codes are images of an int16 sample, and near zero one
    int16 step is thousands of codes apart, so the DMoL spreads mass over codes that never occur.  8-bit mu-law
    (SaShiMi's categorical setting) is this representation with ``bits = 8``.
``"linear"``
    code = ``v + 32768`` for the int16 sample ``v`` (lossless), model input the linear value ``x_v = v / 32768``,
    bins ``[x_v - 1/65536, x_v + 1/65536]`` (uniform in the linear domain).
``"pcm16"``
    the same codes as ``"linear"`` (lossless: the pmf is over the 65,536 int16 values of the original file), but the
    model reads the mu-law companded value ``c(x_v)`` of each sample (continuous, not re-quantized to a mu-law code)
    and its DMoL lives in the companded domain with non-uniform bins, the compander's images of the int16 rounding
    cells.

The ``pcm16`` pmf (derivation; the book's chapter reuses this paragraph).  Let ``v`` in ``{-32768, ..., 32767}`` be
an int16 sample, ``x_v = v / 32768`` its amplitude and ``c(x) = sign(x) ln(1 + mu |x|) / ln(1 + mu)``, ``mu = 65535``,
the mu-law compander (strictly increasing and continuous on the reals; the formula is used unclamped beyond
``|x| = 1``).  Every amplitude in the cell ``[x_v - 1/65536, x_v + 1/65536)`` rounds to ``v``, and these cells tile
the line.  Their images under ``c`` are the intervals ``[e_v, e_{v+1})`` with edges

    e_v = c((v - 0.5) / 32768),      v = -32768, ..., 32768,

which tile the companded axis in the same order, because ``c`` is increasing.  A density ``f`` on the companded axis
(the mixture of logistics, CDF ``F``) therefore defines the pmf

    P(v) = F(e_{v+1}) - F(e_v),      with e_{-32768} := -inf and e_{32768} := +inf (open edge bins),

and ``sum_v P(v) = F(+inf) - F(-inf) = 1`` exactly (a telescoping sum), with ``P(v) > 0`` for every int16 value: no
mass falls on unreachable codes, and nothing is lost at high amplitude, where a mu-law code covers several int16
values.  Since ``v -> code = v + 32768`` is a bijection, ``-log2 P(v)`` summed over an utterance is a code length of
the original file's samples: the bits per frame (bpf) are bits per sample of the 16-bit file, directly comparable
with FLAC on the linear PCM.  Equivalently ``P(v) = G(x_v + 1/65536) - G(x_v - 1/65536)`` for the distribution
``G = F o c`` in the linear domain, whose density ``f(c(x)) c'(x)`` is a mixture of "companded logistics": the DMoL
keeps mu-law's resolution where speech lives (small amplitudes) without quantizing it.  The bin widths in the
companded domain are ``w_v = e_{v+1} - e_v ~ c'(x_v) / 32768 = mu / ((1 + mu |x_v|) ln(1 + mu) 32768)``: 0.125 at
``v = 0`` (one int16 step near zero spans about 4,000 mu-law codes of width 2/65535), 0.0625 at ``v = 1`` and about
2.75e-6 at full scale.  Each component's log-mass is computed as in :mod:`wavelab.distributions.dmol`,
``log P_m(v) = logsigmoid(a) + logsigmoid(-b) + log(1 - exp(-(a - b)))`` with ``a = (e_{v+1} - mu_m) / s_m``,
``b = (e_v - mu_m) / s_m`` and ``a - b = w_v / s_m`` taken from a float64 table of widths (never as a difference of
two float32 edges), so that no bin, however narrow or far in a tail, cancels or underflows.

Continuous flows (WaveFlow, WaveGlow) dequantize instead: with ``u`` uniform on the bin ``[e_v, e_{v+1})`` of finite
width ``w_v`` (the edge bins are taken at their finite edges ``e_{-32768}``, ``e_{32768}``, a part of the open bin),
``log P(v) >= log w_v + E_u[log p_cont(u)]`` (Jensen), so the bound adds each bin's own log-width (Theis et al. 2016,
section 3.1, with per-bin widths).

Use :func:`get_representation` (``name``, ``bits``) for the objects; models take the name through their config
field ``representation``; data readers through ``representation=``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from .audio import (SUPPORTED_BITS, codes_to_companded, companded_to_codes, mu_law_decode, num_bins,
                    pcm16_to_codes)

#: the representations a model, a recipe or a baseline can name; ``"mulaw"`` is the default everywhere.
REPRESENTATIONS = ("mulaw", "linear", "pcm16")
DEFAULT_REPRESENTATION = "mulaw"

_PCM_OFFSET = 32768  # code = int16 + 32768 for the lossless representations
_MU16 = 65535.0


def _compand_unclamped(x: torch.Tensor) -> torch.Tensor:
    """``c(x) = sign(x) ln(1 + mu|x|) / ln(1 + mu)``, ``mu = 65535``, float64, without clipping ``x`` to [-1, 1]."""
    return torch.sign(x) * torch.log1p(_MU16 * x.abs()) / math.log1p(_MU16)


def _expand_unclamped(y: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`_compand_unclamped`: ``x = sign(y) ((1 + mu)^|y| - 1) / mu``, float64."""
    return torch.sign(y) * torch.expm1(y.abs() * math.log1p(_MU16)) / _MU16


@dataclass(frozen=True, eq=False)
class Representation:
    """One waveform representation (see the module docstring): codes, model input and output bins.

    Attributes:
        name: ``"mulaw"``, ``"linear"`` or ``"pcm16"``.
        bits: code bit depth (16; 8 only for ``"mulaw"``).
        num_codes: ``2**bits`` codes ``0 .. num_codes - 1``.
        lossless: True when every int16 sample has its own code, so :meth:`pcm16_from_codes` inverts
            :meth:`codes_from_pcm16` exactly (``"linear"``, ``"pcm16"``).
        uniform_bins: True when every bin has the same width in the model's domain (``"mulaw"``, ``"linear"``).
        domain: the model's domain in words (``"mu-law companded"`` or ``"linear"``).
    """

    name: str
    bits: int = 16
    _cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self):
        if self.name not in REPRESENTATIONS:
            raise ValueError(f"unknown representation {self.name!r}; known: {', '.join(REPRESENTATIONS)}")
        if self.bits not in SUPPORTED_BITS:
            raise ValueError(f"representation bits must be one of {SUPPORTED_BITS}, got {self.bits!r}")
        if self.name != "mulaw" and self.bits != 16:
            raise ValueError(f"representation {self.name!r} codes 16-bit PCM and needs bits = 16, got {self.bits}; "
                             f"only 'mulaw' has an 8-bit form")

    def __repr__(self) -> str:
        return f"Representation({self.name!r}, bits={self.bits})"

    def __eq__(self, other) -> bool:
        return isinstance(other, Representation) and (self.name, self.bits) == (other.name, other.bits)

    def __hash__(self) -> int:
        return hash((self.name, self.bits))

    @property
    def num_codes(self) -> int:
        return num_bins(self.bits)

    @property
    def lossless(self) -> bool:
        return self.name != "mulaw"

    @property
    def uniform_bins(self) -> bool:
        return self.name != "pcm16"

    @property
    def domain(self) -> str:
        return "linear" if self.name == "linear" else "mu-law companded"

    # ------------------------------------------------------------------ codes <-> int16 PCM

    def codes_from_pcm16(self, x: np.ndarray | torch.Tensor) -> torch.Tensor:
        """int16 PCM of any shape -> int64 codes ``[...]`` in ``[0, num_codes - 1]``.

        ``"mulaw"``: :func:`wavelab.audio.pcm16_to_codes` (the existing data path, unchanged); ``"linear"`` and
        ``"pcm16"``: ``v + 32768``.

        Raises:
            TypeError: ``x`` is not int16.
        """
        if self.name == "mulaw":
            return pcm16_to_codes(x, self.bits)
        x = x.numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
        if x.dtype != np.int16:
            raise TypeError(f"codes_from_pcm16 expects int16 PCM, got dtype {x.dtype}")
        return torch.from_numpy(x.astype(np.int64) + _PCM_OFFSET)

    def pcm16_from_codes(self, codes: torch.Tensor) -> np.ndarray:
        """int64 codes ``[...]`` -> int16 PCM ``[...]`` (numpy): exact for the lossless representations; for
        ``"mulaw"`` the nearest int16 of the code's decoded amplitude (:func:`wavelab.audio.mu_law_decode`), which
        is lossy.

        Raises:
            ValueError: codes outside ``[0, num_codes - 1]``.
        """
        codes = self._check_codes(torch.as_tensor(codes), "pcm16_from_codes")
        if self.name == "mulaw":  # float32, as `python -m wavelab sample` always wrote mu-law audio
            x = mu_law_decode(codes.cpu(), self.bits).numpy()
            return np.clip(np.round(x * 32768.0), -32768, 32767).astype(np.int16)
        return (codes.cpu().numpy().astype(np.int64) - _PCM_OFFSET).astype(np.int16)

    def to_linear(self, codes: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Linear amplitude in [-1, 1] of int64 codes (any shape), for listening and plots."""
        codes = torch.as_tensor(codes)
        if self.name == "mulaw":
            return mu_law_decode(codes, self.bits, dtype=dtype)
        return ((codes.to(torch.float64) - _PCM_OFFSET) / 32768.0).to(dtype)

    @property
    def silence_code(self) -> int:
        """The code of linear amplitude 0.0 (32768 for every 16-bit representation, 128 for 8-bit mu-law): the
        padding value and the input before the first sample."""
        return int(self.codes_from_pcm16(np.zeros(1, dtype=np.int16))[0])

    # ------------------------------------------------------------------ model input and bins

    def model_input(self, codes: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """The value a model reads for each code: float ``[...]`` in [-1, 1] of ``dtype``.

        ``"mulaw"``: ``y_k = -1 + 2k / (2**bits - 1)`` (:func:`wavelab.audio.codes_to_companded`, bit-identical to
        the models' input before representations existed); ``"linear"``: ``x_v = v / 32768``; ``"pcm16"``: the
        companded value ``c(v / 32768)`` (computed in float64, then cast).
        """
        if self.name == "mulaw":
            return codes_to_companded(codes, self.bits, dtype=dtype)
        return self._table("input", codes.device, dtype)[codes]

    def model_value(self, x: torch.Tensor) -> torch.Tensor:
        """The model-domain value of linear amplitudes ``x`` (float, any shape, clipped to [-1, 1]), in ``x``'s dtype:
        the mu-law compander ``c(x)`` (``mu = 2**bits - 1``) for ``"mulaw"`` and ``"pcm16"``, ``x`` itself for
        ``"linear"``.  It places a linear prediction on the axis of the DMoL (:mod:`wavelab.models.lpc`)."""
        x = x.clamp(-1.0, 1.0)
        if self.name == "linear":
            return x
        mu = float(self.num_codes - 1)
        return torch.sign(x) * torch.log1p(mu * x.abs()) / math.log1p(mu)

    def bin_edges(self, dtype: torch.dtype = torch.float64, device: torch.device | str | None = None) -> torch.Tensor:
        """The ``num_codes + 1`` finite bin edges in the model's domain: code ``k``'s bin is
        ``[edges[k], edges[k + 1]]``.  The DMoL leaves the first and last bins open (``edges[0]`` counts as ``-inf``,
        ``edges[-1]`` as ``+inf``); the flows dequantize on these finite edges.

        ``"mulaw"``: ``y_k -/+ 1/(2**bits - 1)``; ``"linear"``: ``(v -/+ 0.5) / 32768``; ``"pcm16"``:
        ``c((v -/+ 0.5) / 32768)``.
        """
        return self._table("edges", torch.device(device or "cpu"), dtype)

    def bin_widths(self, dtype: torch.dtype = torch.float64, device: torch.device | str | None = None) -> torch.Tensor:
        """``[num_codes]`` widths ``edges[k + 1] - edges[k]`` of the bins (finite edges), computed in float64."""
        return self._table("widths", torch.device(device or "cpu"), dtype)

    def log_bin_widths(self, dtype: torch.dtype = torch.float64,
                       device: torch.device | str | None = None) -> torch.Tensor:
        """``[num_codes]`` natural logs of :meth:`bin_widths` (computed in float64): the dequantization bound's
        per-bin term."""
        return self._table("log_widths", torch.device(device or "cpu"), dtype)

    @property
    def min_half_width(self) -> float:
        """Half the narrowest bin's width in the model's domain (``1 / (2**bits - 1)`` for mu-law, ``1 / 65536`` for
        linear, about 1.37e-6 for pcm16): sets the DMoL's lower clamp of the log-scales."""
        if self.name == "mulaw":
            return 1.0 / (self.num_codes - 1)
        return 0.5 * float(self.bin_widths().min())

    def codes_from_values(self, y: torch.Tensor) -> torch.Tensor:
        """Quantize values of the model's domain (any shape) to the code whose bin holds them, int64 (values beyond
        the outer edges go to the edge codes): how DMoL draws and flow outputs become codes.

        ``"mulaw"``: :func:`wavelab.audio.companded_to_codes`; ``"linear"``: ``round(32768 y) + 32768``; ``"pcm16"``:
        ``round(32768 c^{-1}(y)) + 32768``, in float64 (``c`` is increasing, so ``y`` lies in ``[e_v, e_{v+1}]`` iff
        ``32768 c^{-1}(y)`` lies in ``[v - 0.5, v + 0.5]``).
        """
        if self.name == "mulaw":
            return companded_to_codes(y, self.bits)
        y = y.to(torch.float64)
        x = y if self.name == "linear" else _expand_unclamped(y.clamp(-1.5, 1.5))
        return (torch.round(x * 32768.0).clamp_(-32768, 32767) + _PCM_OFFSET).long()

    # ------------------------------------------------------------------ helpers

    def _check_codes(self, codes: torch.Tensor, where: str) -> torch.Tensor:
        if codes.is_floating_point() or codes.dtype == torch.bool:
            raise ValueError(f"{where}: codes must be an integer tensor, got {codes.dtype}")
        if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= self.num_codes):
            raise ValueError(f"{where}: codes must lie in [0, {self.num_codes - 1}] for {self.bits}-bit {self.name}, "
                             f"got range [{int(codes.min())}, {int(codes.max())}]")
        return codes.long()

    def _float64_tables(self) -> dict[str, torch.Tensor]:
        if "float64" not in self._cache:
            K = self.num_codes
            k = torch.arange(K + 1, dtype=torch.float64)
            if self.name == "mulaw":
                delta = 1.0 / (K - 1)
                edges = -1.0 + 2.0 * k / (K - 1) - delta
                inputs = codes_to_companded(torch.arange(K), self.bits, dtype=torch.float64)
                widths = torch.full((K,), 2.0 * delta, dtype=torch.float64)
            else:
                v_edges = (k - _PCM_OFFSET - 0.5) / 32768.0
                x = (torch.arange(K, dtype=torch.float64) - _PCM_OFFSET) / 32768.0
                if self.name == "linear":
                    edges, inputs = v_edges, x
                    widths = torch.full((K,), 1.0 / 32768.0, dtype=torch.float64)
                else:
                    edges, inputs = _compand_unclamped(v_edges), _compand_unclamped(x)
                    widths = self._pcm16_widths()
            self._cache["float64"] = {"edges": edges, "input": inputs, "widths": widths,
                                      "log_widths": torch.log(widths)}
        return self._cache["float64"]

    @staticmethod
    def _pcm16_widths() -> torch.Tensor:
        """``c(hi) - c(lo)`` for every int16 cell without cancellation: within one sign, ``c(hi) - c(lo) =
        log1p(mu (hi - lo) / (1 + mu lo)) / ln(1 + mu)`` for ``0 <= lo < hi`` (mirror for negative cells); the cell
        around zero straddles the sign and is ``c(hi) - c(lo)`` directly (no cancellation there)."""
        v = torch.arange(-32768, 32768, dtype=torch.float64)
        lo, hi = (v - 0.5) / 32768.0, (v + 0.5) / 32768.0
        mu, L = _MU16, math.log1p(_MU16)
        pos = torch.log1p(mu * (hi - lo) / (1.0 + mu * lo.clamp(min=0))) / L
        neg = torch.log1p(mu * (hi - lo) / (1.0 + mu * (-hi).clamp(min=0))) / L
        mid = _compand_unclamped(hi) - _compand_unclamped(lo)
        return torch.where(lo >= 0, pos, torch.where(hi <= 0, neg, mid))

    def _table(self, name: str, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        key = (name, str(device), dtype)
        if key not in self._cache:
            self._cache[key] = self._float64_tables()[name].to(device=device, dtype=dtype)
        return self._cache[key]


_REPRESENTATIONS: dict[tuple[str, int], Representation] = {}


def get_representation(name: "str | Representation" = DEFAULT_REPRESENTATION, bits: int = 16) -> Representation:
    """The :class:`Representation` called ``name`` at ``bits`` (one shared object per pair; its tables are built
    once).  A :class:`Representation` passes through unchanged (its own ``bits`` win).

    Raises:
        ValueError: unknown name (the message lists :data:`REPRESENTATIONS`), unsupported ``bits``, or ``bits``
            other than 16 for ``"linear"`` / ``"pcm16"``.
    """
    if isinstance(name, Representation):
        return name
    if not isinstance(name, str):
        raise ValueError(f"representation must be one of {', '.join(REPRESENTATIONS)}, got {name!r}")
    key = (name, bits)
    if key not in _REPRESENTATIONS:
        _REPRESENTATIONS[key] = Representation(name, bits)
    return _REPRESENTATIONS[key]


def check_representation(owner: str, name, bits: int = 16) -> str:
    """Validate a config's ``representation`` field: returns ``name``.

    Raises:
        ValueError: as :func:`get_representation`, the message naming ``owner`` (e.g. ``"WaveNetConfig"``).
    """
    try:
        get_representation(name, bits)
    except ValueError as e:
        raise ValueError(f"{owner}.representation: {e}") from None
    return name


__all__ = ["DEFAULT_REPRESENTATION", "REPRESENTATIONS", "Representation", "check_representation",
           "get_representation"]
