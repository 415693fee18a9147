"""Integer inference of the codec's WaveNet and of its DMoL's discretisation: pmfs every machine computes bit for bit.

A range decoder must rebuild, for every sample, exactly the pmf the encoder used; floating point does not promise that
across CPUs (summation order, fused multiply-adds, vectorised ``exp`` all differ in the last bits).  Following
Balle, Johnston and Minnen ("Integer networks for data compression with latent-variable models", ICLR 2019), the
network here runs in fixed point, every quantity an integer:

* **activations** carry :data:`ACT_BITS` fractional bits (``Q16``: ``1.0`` is ``65536``), clamped to
  ``+-2**(ACT_BITS + 8)``;
* **weights** are rounded to integers with a per-tensor number of fractional bits (at most 16, fewer for a tensor
  with large weights) so that ``|w| < 2**17``; biases carry ``ACT_BITS +`` those bits;
* **matrix products** are computed by BLAS in float64 on these integer values.  Every product is below ``2**41`` and
  every partial sum of at most 64 products below ``2**47 < 2**53``, so each is an exact integer and the result does
  not depend on the order or the instructions BLAS uses (the same bits on AVX2, AVX-512, AMX or no SIMD at all);
* **rescaling** is an arithmetic shift with rounding on int64;
* **nonlinearities** (the gate's ``tanh`` and ``sigmoid``, the softmax's ``exp``, the logistic CDF, ``exp(-log s)``,
  the network's companded input and the pcm16 bin edges) are read from integer tables with linear interpolation in
  integers.  The tables were computed once in float64 and are shipped with the package (:data:`TABLES_PATH`), so no
  machine evaluates a transcendental function while coding.

The pmf of a sample is defined by an integer CDF over the 65,536 int16 codes (:func:`cdf_points`)::

    C(v) = sum_k w_k S((E[v] - mu_k) / s_k) + FLOOR * v,   C(0) = 0,   C(65536) = 2**30 sum_k w_k + FLOOR * 65536

with ``w_k`` the softmax weights (``Q16``), ``S`` the logistic CDF table (``Q30``), ``E[v]`` the lower edge of code
``v``'s bin on the companded axis (``Q24``; the DMoL's open edge bins are ``C(0)`` and ``C(65536)``) and ``FLOOR``
the mass every code gets whatever the model says, so that no sample is ever impossible (at most
``log2(C(65536) / FLOOR)``, about 33 bits).  ``C`` is strictly increasing; all values stay below ``2**50``.

What this costs in rate against the float model is measured by ``benchmarks/portable_codec.py`` (the float model's
record beside the integer model's code length on the same files: about +0.0001% for the shipped model on TIMIT).

:data:`ARITHMETIC_VERSION` names this arithmetic; a ``.wlc`` file records it, and a change that alters a single
integer must bump it.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

import numba
import numpy as np

#: the version of the integer arithmetic (tables, formats, rounding); files written with another cannot be decoded
ARITHMETIC_VERSION = 1
#: fractional bits of activations and network outputs
ACT_BITS = 16
#: activations are clamped to +-2**ACT_CLAMP_BITS (256.0), which bounds every partial sum (see the module)
ACT_CLAMP_BITS = ACT_BITS + 8
#: weights are rounded to at most this many fractional bits, and to fewer where needed to keep |w| < 2**WEIGHT_BITS
MAX_WEIGHT_FRACTION, WEIGHT_BITS = 16, 17
#: gate and softmax tables: inputs on a grid of 2**-8 over [-GATE_RANGE, GATE_RANGE] (Q16 outputs)
GRID_BITS, GATE_RANGE, SOFTMAX_RANGE = 8, 8, 16
#: the logistic CDF table: z on a grid of 2**-8 over [-CDF_RANGE, CDF_RANGE], Q30 outputs; z itself is Q24
CDF_RANGE, CDF_BITS, Z_BITS = 16, 30, 24
#: the table of exp(-log s): log s on a grid of 2**-8 over [LOG_SCALE_LOW, LOG_SCALE_HIGH], Q24 outputs
LOG_SCALE_LOW, LOG_SCALE_HIGH, INV_SCALE_BITS = -16, 8, 24
#: fractional bits of the bin edges on the companded axis
EDGE_BITS = 24
#: the mass every code gets in C (see the module)
FLOOR = 1 << 14
#: number of int16 codes
CODES = 1 << 16
TABLES_PATH = Path(__file__).resolve().parent / "codec_model" / "fixedpoint_tables.npz"
TABLE_NAMES = ("gate_tanh", "gate_sigmoid", "softmax_exp", "inv_scale", "cdf", "model_input", "edges",
               "log_scale_min")


def build_tables() -> dict[str, np.ndarray]:
    """The integer tables of :data:`TABLE_NAMES`, computed in float64 (int64 arrays).  Run once to make
    :data:`TABLES_PATH` (``scripts/make_codec_model.py``); coding reads the shipped file, never this function, since
    ``exp`` and ``log1p`` may differ in their last bit between machines."""
    from .distributions import DiscretizedMixtureLogistics
    from .representations import get_representation

    step = 2.0 ** -GRID_BITS
    gate = np.arange(-GATE_RANGE, GATE_RANGE + step, step)
    soft = np.arange(-SOFTMAX_RANGE, step, step)
    log_s = np.arange(LOG_SCALE_LOW, LOG_SCALE_HIGH + step, step)
    z = np.arange(-CDF_RANGE, CDF_RANGE + step, step)
    rep = get_representation("pcm16", 16)
    one = 2.0 ** ACT_BITS
    return {
        "gate_tanh": np.round(np.tanh(gate) * one).astype(np.int64),
        "gate_sigmoid": np.round(one / (1.0 + np.exp(-gate))).astype(np.int64),
        "softmax_exp": np.round(np.exp(soft) * one).astype(np.int64),
        "inv_scale": np.round(np.exp(-log_s) * 2.0 ** INV_SCALE_BITS).astype(np.int64),
        "cdf": np.round(2.0 ** CDF_BITS / (1.0 + np.exp(-z))).astype(np.int64),
        "model_input": np.round(rep.model_input(_all_codes()).double().numpy() * one).astype(np.int64),
        "edges": np.round(rep.bin_edges().numpy() * 2.0 ** EDGE_BITS).astype(np.int64),
        # the DMoL's lower clamp of the log-scales (Q16)
        "log_scale_min": np.array([math.floor(DiscretizedMixtureLogistics(1, 16, representation=rep).log_scale_min
                                              * one)], dtype=np.int64),
    }


def _all_codes():
    import torch

    return torch.arange(CODES)


@dataclass(frozen=True)
class Tables:
    """The shipped integer tables (int64 arrays, see :func:`build_tables`) and their SHA-256 (part of every model's
    fingerprint)."""

    gate_tanh: np.ndarray
    gate_sigmoid: np.ndarray
    softmax_exp: np.ndarray
    inv_scale: np.ndarray
    cdf: np.ndarray
    model_input: np.ndarray
    edges: np.ndarray
    log_scale_min: np.ndarray
    sha256: bytes


def load_tables(path: str | Path = TABLES_PATH) -> Tables:
    """Read the integer tables.

    Raises:
        FileNotFoundError: no table file at ``path``.
        ValueError: a table is missing or has the wrong length (names the file).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the codec's integer tables are missing (run scripts/make_codec_model.py)")
    with np.load(path) as f:
        arrays = {name: np.ascontiguousarray(f[name], dtype=np.int64) for name in TABLE_NAMES if name in f}
    missing = [n for n in TABLE_NAMES if n not in arrays]
    if missing:
        raise ValueError(f"{path}: integer tables {', '.join(missing)} are missing")
    if len(arrays["model_input"]) != CODES or len(arrays["edges"]) != CODES + 1:
        raise ValueError(f"{path}: the input and edge tables must have {CODES} and {CODES + 1} entries")
    h = hashlib.sha256()
    for name in TABLE_NAMES:
        h.update(name.encode() + arrays[name].astype("<i8").tobytes())
    return Tables(**arrays, sha256=h.digest())


# ----------------------------------------------------------------------------------------------------------------------
# the integer WaveNet


def _fraction_bits(w: np.ndarray) -> int:
    """Fractional bits for a weight tensor: :data:`MAX_WEIGHT_FRACTION`, fewer if its largest magnitude needs it."""
    top = float(np.abs(w).max()) if w.size else 0.0
    bits = MAX_WEIGHT_FRACTION
    while bits > 0 and top * 2.0 ** bits >= 2.0 ** WEIGHT_BITS - 1:
        bits -= 1
    if top * 2.0 ** bits >= 2.0 ** WEIGHT_BITS:
        raise ValueError(f"a weight of magnitude {top:.3g} is too large for the integer network")
    return bits


def _quantise(w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """``(w_q, b_q, bits)``: float weights ``[in, out]`` and bias ``[out]`` as integers (float64 holding integers for
    BLAS, int64 bias at ``ACT_BITS + bits`` fractional bits).  Multiplying by a power of two and rounding is exact, so
    every machine quantises a float32 model to the same integers."""
    bits = _fraction_bits(w)
    wq = np.round(w.astype(np.float64) * 2.0 ** bits)
    bq = np.round(b.astype(np.float64) * 2.0 ** (bits + ACT_BITS)).astype(np.int64)
    return np.ascontiguousarray(wq), bq, bits


@dataclass
class IntegerWaveNet:
    """A pcm16 WaveNet (:class:`wavelab.models.WaveNet`, ``kernel_size = 2``) in integer arithmetic.

    Attributes:
        config: the float model's config as a dict (``Dc``, ``skip_channels``, ``num_components``, ``dilations``,
            ``adaptive_residual``).
        arrays: name -> array of the integer weights (see :meth:`from_wavenet`).
        tables: the shipped :class:`Tables`.
    """

    config: dict
    arrays: dict
    tables: Tables

    @classmethod
    def from_wavenet(cls, model, tables: Tables | None = None) -> IntegerWaveNet:
        """Quantise a float WaveNet.

        Raises:
            ValueError: not a pcm16 WaveNet with kernel size 2 and no linear-prediction path, or a weight too large.
        """
        cfg = model.config
        if (type(model).__name__ != "WaveNet" or cfg.representation != "pcm16" or cfg.kernel_size != 2
                or cfg.lpc_order):
            raise ValueError("the integer codec needs a pcm16 WaveNet with kernel_size 2 and no lpc_order")
        sd = {k: v.detach().cpu().double().numpy() for k, v in model.state_dict().items()}
        Dc, S, M = cfg.Dc, cfg.skip_channels, cfg.num_components
        L = len(cfg.dilations)
        a = {}
        a["w_in"], a["b_in"], s_in = _quantise(sd["input_conv.weight"][:, 0, :].T, sd["input_conv.bias"])
        wd, bd, sd_bits, wrs, brs, srs = [], [], [], [], [], []
        for i in range(L):
            w = sd[f"layers.{i}.dilated.weight"]  # [2Dc, Dc, 2]: tap 0 reads h[t - d], tap 1 reads h[t]
            q = _quantise(np.concatenate([w[:, :, 0].T, w[:, :, 1].T]), sd[f"layers.{i}.dilated.bias"])
            wd.append(q[0]), bd.append(q[1]), sd_bits.append(q[2])
            res_w = sd.get(f"layers.{i}.residual.weight", np.zeros((Dc, Dc, 1)))[:, :, 0]
            res_b = sd.get(f"layers.{i}.residual.bias", np.zeros(Dc))
            q = _quantise(np.concatenate([res_w, sd[f"layers.{i}.skip.weight"][:, :, 0]]).T,
                          np.concatenate([res_b, sd[f"layers.{i}.skip.bias"]]))
            wrs.append(q[0]), brs.append(q[1]), srs.append(q[2])
        a["w_dil"], a["b_dil"], a["w_rs"], a["b_rs"] = np.stack(wd), np.stack(bd), np.stack(wrs), np.stack(brs)
        a["w_h1"], a["b_h1"], s_h1 = _quantise(sd["head.1.weight"][:, :, 0].T, sd["head.1.bias"])
        a["w_h2"], a["b_h2"], s_h2 = _quantise(sd["head.3.weight"][:, :, 0].T, sd["head.3.bias"])
        a["shifts"] = np.array([s_in, s_h1, s_h2] + sd_bits + srs, dtype=np.int64)
        config = {"Dc": Dc, "skip_channels": S, "num_components": M, "dilations": list(cfg.dilations),
                  "adaptive_residual": bool(cfg.adaptive_residual)}
        return cls(config, a, tables or load_tables())

    def fingerprint(self) -> bytes:
        """SHA-256 of the config, the integer weights, the tables and :data:`ARITHMETIC_VERSION` (32 bytes)."""
        h = hashlib.sha256(f"{ARITHMETIC_VERSION}|{sorted(self.config.items())}".encode())
        for name in sorted(self.arrays):
            h.update(name.encode() + np.asarray(self.arrays[name]).astype("<i8").tobytes())
        h.update(self.tables.sha256)
        return h.digest()

    def save(self, path: str | Path) -> None:
        """Write the integer model to an ``.npz`` (weights as int32/int64, the config as JSON)."""
        import json

        arrays = {k: (v.astype(np.int32) if k.startswith("w_") else v) for k, v in self.arrays.items()}
        with open(path, "wb") as f:
            np.savez_compressed(f, config=np.frombuffer(json.dumps(self.config).encode(), dtype=np.uint8),
                                arithmetic=np.array([ARITHMETIC_VERSION]), **arrays)

    @classmethod
    def load(cls, path: str | Path, tables: Tables | None = None) -> IntegerWaveNet:
        """Read a model written by :meth:`save`.

        Raises:
            FileNotFoundError: no file; ValueError: not such a model, or written for another arithmetic version.
        """
        import json

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no integer codec model there")
        try:
            with np.load(path) as f:
                version = int(f["arithmetic"][0])
                config = json.loads(bytes(f["config"]).decode())
                arrays = {k: f[k] for k in f.files if k not in ("config", "arithmetic")}
        except (KeyError, ValueError, OSError) as e:
            raise ValueError(f"{path} is not an integer codec model ({e})") from e
        if version != ARITHMETIC_VERSION:
            raise ValueError(f"{path} is for integer arithmetic version {version}; this wavelab uses "
                             f"{ARITHMETIC_VERSION}")
        arrays = {k: (np.ascontiguousarray(v, dtype=np.float64) if k.startswith("w_")
                      else np.ascontiguousarray(v, dtype=np.int64)) for k, v in arrays.items()}
        return cls(config, arrays, tables or load_tables())

    @property
    def num_params(self) -> int:
        """``3 M``: logits, means and log-scales of the mixture, each ``Q16``."""
        return 3 * self.config["num_components"]

    def new_state(self, batch: int) -> IntegerState:
        """The state before the first sample of ``batch`` streams: silence in every queue."""
        Dc = self.config["Dc"]
        dil = np.array(self.config["dilations"], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(dil)[:-1]]).astype(np.int64)
        return IntegerState(np.zeros((batch, int(dil.sum()), Dc)), np.zeros(batch), dil, offsets, 0)

    def step(self, codes_prev: np.ndarray, state: IntegerState) -> np.ndarray:
        """One sample of every stream: the mixture parameters of sample ``t`` from code ``t - 1``.

        Args:
            codes_prev: int64 ``[B]`` the codes (0 .. 65535) of the previous samples (at ``t = 0``: the silence code
                32768); streams may be dropped from the end of the batch between steps (``B`` shrinks).
            state: from :meth:`new_state`, advanced in place.
        Returns:
            int64 ``[B, 3M]``: logits, means, log-scales in ``Q16``.
        """
        a, t = self.arrays, self.tables
        B = len(codes_prev)
        out = _network_step(np.ascontiguousarray(codes_prev, dtype=np.int64), state.time, state.queue[:B],
                            state.input_queue[:B], state.dilations, state.offsets, t.model_input, a["w_in"],
                            a["b_in"], a["w_dil"], a["b_dil"], a["w_rs"], a["b_rs"], a["w_h1"], a["b_h1"],
                            a["w_h2"], a["b_h2"], a["shifts"], t.gate_tanh, t.gate_sigmoid)
        state.time += 1
        return out


@dataclass
class IntegerState:
    """The queues of :meth:`IntegerWaveNet.step`: every dilated layer's past inputs ``[B, sum(d), Dc]`` (ring buffers
    at ``offsets``, integer values in float64), the previous network input ``[B]`` and the time index."""

    queue: np.ndarray
    input_queue: np.ndarray
    dilations: np.ndarray
    offsets: np.ndarray
    time: int


@numba.njit(cache=True, inline="always")
def _round_shift(x, bits):  # pragma: no cover - compiled
    if bits == 0:
        return x
    return (x + (np.int64(1) << (bits - 1))) >> bits


@numba.njit(cache=True, inline="always")
def _clamp_act(x):  # pragma: no cover - compiled
    lim = np.int64(1) << ACT_CLAMP_BITS
    return min(max(x, -lim), lim)


@numba.njit(cache=True, inline="always")
def _lut(table, x, low, frac_bits):  # pragma: no cover - compiled
    # table on a grid of 2**-GRID_BITS from ``low``; x carries GRID_BITS + frac_bits fractional bits
    top = (np.int64(len(table) - 1) << frac_bits)
    u = min(max(x - np.int64(low) * (np.int64(1) << (GRID_BITS + frac_bits)), np.int64(0)), top)
    i = u >> frac_bits
    f = u & ((np.int64(1) << frac_bits) - 1)
    if i >= len(table) - 1:
        return table[len(table) - 1]
    return table[i] + (((table[i + 1] - table[i]) * f) >> frac_bits)


@numba.njit(cache=True)
def _network_step(codes, t, queue, input_queue, dil, offsets, table_in, w_in, b_in, w_dil, b_dil, w_rs, b_rs,
                  w_h1, b_h1, w_h2, b_h2, shifts, tanh_t, sig_t):  # pragma: no cover - compiled; tested via step
    B, Dc = codes.shape[0], w_in.shape[1]
    L, S = w_dil.shape[0], w_h1.shape[0]
    fb = ACT_BITS - GRID_BITS
    h = np.empty((B, Dc), dtype=np.int64)
    skip = np.zeros((B, S), dtype=np.int64)
    x = np.empty((B, 2 * Dc))
    z = np.empty((B, Dc))
    for b in range(B):
        u = np.float64(table_in[codes[b]])
        for c in range(Dc):
            acc = np.int64(w_in[0, c] * input_queue[b] + w_in[1, c] * u) + b_in[c]
            h[b, c] = _clamp_act(_round_shift(acc, shifts[0]))
        input_queue[b] = u
    for layer in range(L):
        slot = offsets[layer] + t % dil[layer]
        for b in range(B):
            for c in range(Dc):
                x[b, c] = queue[b, slot, c]
                x[b, Dc + c] = np.float64(h[b, c])
                queue[b, slot, c] = np.float64(h[b, c])
        pre = np.dot(x, w_dil[layer])
        sh = shifts[3 + layer]
        for b in range(B):
            for c in range(Dc):
                ta = _round_shift(np.int64(pre[b, c]) + b_dil[layer, c], sh)
                sg = _round_shift(np.int64(pre[b, Dc + c]) + b_dil[layer, Dc + c], sh)
                g = (_lut(tanh_t, ta, -GATE_RANGE, fb) * _lut(sig_t, sg, -GATE_RANGE, fb)) >> ACT_BITS
                z[b, c] = np.float64(g)
        rs = np.dot(z, w_rs[layer])
        sh = shifts[3 + L + layer]
        for b in range(B):
            for c in range(Dc):
                h[b, c] = _clamp_act(h[b, c] + _round_shift(np.int64(rs[b, c]) + b_rs[layer, c], sh))
            for c in range(S):
                skip[b, c] = _clamp_act(skip[b, c] + _round_shift(np.int64(rs[b, Dc + c]) + b_rs[layer, Dc + c], sh))
    y = np.empty((B, S))
    for b in range(B):
        for c in range(S):
            y[b, c] = np.float64(max(skip[b, c], 0))
    y1 = np.dot(y, w_h1)
    for b in range(B):
        for c in range(S):
            y[b, c] = np.float64(max(_clamp_act(_round_shift(np.int64(y1[b, c]) + b_h1[c], shifts[1])), 0))
    y2 = np.dot(y, w_h2)
    P = w_h2.shape[1]
    out = np.empty((B, P), dtype=np.int64)
    for b in range(B):
        for c in range(P):
            out[b, c] = _clamp_act(_round_shift(np.int64(y2[b, c]) + b_h2[c], shifts[2]))
    return out


# ----------------------------------------------------------------------------------------------------------------------
# the integer pmf


@numba.njit(cache=True)
def _cdf_points(params, points, log_scale_min_q, soft_t, inv_t, cdf_t, edges):  # pragma: no cover - compiled
    B, P = points.shape
    M = params.shape[1] // 3
    out = np.empty((B, P), dtype=np.int64)
    w = np.empty(M, dtype=np.int64)
    inv = np.empty(M, dtype=np.int64)
    lim = np.empty(M, dtype=np.int64)
    mu = np.empty(M, dtype=np.int64)
    fb = ACT_BITS - GRID_BITS
    zf = Z_BITS - GRID_BITS
    zlim = np.int64(CDF_RANGE) << Z_BITS
    for b in range(B):
        top = params[b, 0]
        for k in range(1, M):
            top = max(top, params[b, k])
        total_w = np.int64(0)
        for k in range(M):
            w[k] = _lut(soft_t, params[b, k] - top, -SOFTMAX_RANGE, fb)
            total_w += w[k]
            mu[k] = params[b, M + k] << (EDGE_BITS - ACT_BITS)
            inv[k] = max(_lut(inv_t, max(params[b, 2 * M + k], log_scale_min_q), LOG_SCALE_LOW, fb), np.int64(1))
            lim[k] = (np.int64(1) << 52) // inv[k]
        for p in range(P):
            v = points[b, p]
            if v <= 0:
                out[b, p] = 0
            elif v >= CODES:
                out[b, p] = (total_w << CDF_BITS) + FLOOR * CODES
            else:
                e = edges[v]
                acc = np.int64(0)
                for k in range(M):
                    d = min(max(e - mu[k], -lim[k]), lim[k])
                    zz = min(max((d * inv[k]) >> INV_SCALE_BITS, -zlim), zlim)
                    acc += w[k] * _lut(cdf_t, zz, -CDF_RANGE, zf)
                out[b, p] = acc + FLOOR * v
    return out


def cdf_points(model: IntegerWaveNet, params: np.ndarray, points: np.ndarray) -> np.ndarray:
    """The integer CDF ``C`` of the module at code boundaries.

    Args:
        model: supplies the tables.
        params: int64 ``[B, 3M]`` from :meth:`IntegerWaveNet.step`.
        points: int64 ``[B, P]`` boundaries ``v`` in ``0 .. 65536`` (``C(v)`` is the mass of codes below ``v``).
    Returns:
        int64 ``[B, P]``, non-decreasing in ``v``, strictly increasing by at least :data:`FLOOR` per code.
    """
    t = model.tables
    return _cdf_points(np.ascontiguousarray(params, dtype=np.int64), np.ascontiguousarray(points, dtype=np.int64),
                       int(t.log_scale_min[0]), t.softmax_exp, t.inv_scale, t.cdf, t.edges)


def log2_pmf(model: IntegerWaveNet, params: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """``log2 P(code)`` of each row's code under the integer pmf (float64 ``[B]``, bits; measurement only).

    ``params`` int64 ``[B, 3M]``, ``codes`` int64 ``[B]``."""
    codes = np.asarray(codes, dtype=np.int64)
    pts = np.stack([codes, codes + 1, np.zeros_like(codes), np.full_like(codes, CODES)], axis=1)
    c = cdf_points(model, params, pts)
    return np.log2((c[:, 1] - c[:, 0]).astype(np.float64)) - np.log2((c[:, 3] - c[:, 2]).astype(np.float64))


__all__ = ["ACT_BITS", "ARITHMETIC_VERSION", "FLOOR", "TABLES_PATH", "IntegerState", "IntegerWaveNet", "Tables",
           "build_tables", "cdf_points", "load_tables", "log2_pmf"]
