"""Backward-adaptive prediction of 16-bit speech in integer arithmetic: the classical lossless codecs' predictor, as a
baseline for the codec's model and as a feature it can read.

Every strong lossless audio codec fits its predictor to the file as it codes, from the past only, so that the decoder
repeats the fit: Monkey's Audio runs a cascade of normalised LMS (NLMS) filters, MPEG-4 ALS adds recursive least
squares, SAC an OLS stage and NLMS cascades (see ``../shared/anchors/lossless_codecs.md``).  This module implements a
fixed first-order prefilter and a cascade of NLMS stages (Haykin, *Adaptive Filter Theory*, NLMS algorithm) over
integer samples, where stage ``k``
predicts its input ``u_k`` from that input's last ``order_k`` values and hands its prediction error on::

    u_0 = x,   u_{k+1}[n] = u_k[n] - round(sum_i w_k[i] u_k[n-1-i]),   residual r = u_K

    w_k[i] += mu_k * e[n] * u_k[n-1-i] / (eps + sum_i u_k[n-1-i]^2)        (after sample n is known)

The weights are fixed point with :data:`FRACTION_BITS` fractional bits and every operation is on 64-bit integers
(products, sums, arithmetic shifts, floor divisions), so encoder and decoder compute the same residual bit for bit on
any machine; nothing here touches floating point.  The residual is modelled by :func:`laplace_bits`, a discretised
Laplace density whose scale follows an integer running mean of ``|r|`` (also computed from the past only): the
classical "adaptive filter plus a fixed-shape residual coder" baseline of issue 22.  The loops are compiled with numba.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

#: fractional bits of the fixed-point weights (a weight of 1.0 is ``1 << FRACTION_BITS``)
FRACTION_BITS = 16
#: extra fractional bits of the NLMS gain before it multiplies a past sample (keeps small updates from rounding away)
GAIN_BITS = 16
#: ``eps`` of the NLMS normalisation, in squared sample units (keeps silence from dividing by zero)
ENERGY_FLOOR = 1 << 10
#: bounds that keep every product and sum inside 64 bits however a filter diverges (on noise, say): weights stay within
#: +-256.0, predictions within +-2**20, so a stage's error is at most its input plus 2**20
WEIGHT_LIMIT = 1 << (FRACTION_BITS + 8)
PREDICTION_LIMIT = 1 << 20
#: the most taps a stage may have, and the most stages (with the limits above: |u| < 2**24, sums < 2**62)
MAX_ORDER, MAX_STAGES = 1024, 8


@dataclass(frozen=True)
class Stage:
    """One NLMS stage of a cascade.

    Attributes:
        order: past values of the stage's input it predicts from (taps), ``>= 1``.
        mu_shift: its step size is ``mu = 2 ** -mu_shift`` (``0 <= mu_shift <= 16``).
    """

    order: int
    mu_shift: int

    def __post_init__(self):
        if not (isinstance(self.order, int) and 1 <= self.order <= MAX_ORDER):
            raise ValueError(f"Stage.order must be an integer in [1, {MAX_ORDER}], got {self.order!r}")
        if not (isinstance(self.mu_shift, int) and 0 <= self.mu_shift <= 16):
            raise ValueError(f"Stage.mu_shift must be an integer in [0, 16], got {self.mu_shift!r}")


#: a long slow stage, then shorter faster ones (the shape of Monkey's Audio's cascades); chosen on the validation
#: splits by ``benchmarks/adaptive_baseline.py``
DEFAULT_CASCADE = (Stage(256, 9), Stage(32, 7), Stage(16, 6), Stage(4, 5))
#: the prefilter's coefficient, in 32nds (:func:`prefilter`)
PREFILTER = 28
#: the memory of the residual coder's running mean of ``|r|``, as a power of two (:func:`adaptive_scale`)
RATE_SHIFT = 2


@numba.njit(cache=True)
def _nlms(v, order, mu_shift, inverse):  # pragma: no cover - compiled; tested through the public functions
    # forward: v is the stage's input u, the result its error e; inverse: v is e and the result the rebuilt u.  Both
    # directions update the weights from the same (u, e), so the decoder follows the encoder bit for bit.
    n_samples = v.shape[0]
    w = np.zeros(order, dtype=np.int64)
    out = np.empty(n_samples, dtype=np.int64)
    u = out if inverse else v
    energy = np.int64(0)
    half = np.int64(1) << (FRACTION_BITS - 1)
    shift = FRACTION_BITS + GAIN_BITS - mu_shift
    for n in range(n_samples):
        acc = np.int64(0)
        top = min(order, n)
        for i in range(top):
            acc += w[i] * u[n - 1 - i]
        prediction = min(max((acc + half) >> FRACTION_BITS, -PREDICTION_LIMIT), PREDICTION_LIMIT)
        if inverse:
            e = v[n]
            out[n] = e + prediction
        else:
            e = v[n] - prediction
            out[n] = e
        if top > 0:
            gain = (e << shift) // (energy + ENERGY_FLOOR)
            for i in range(top):
                w[i] = min(max(w[i] + ((gain * u[n - 1 - i]) >> GAIN_BITS), -WEIGHT_LIMIT), WEIGHT_LIMIT)
        energy += u[n] * u[n]
        if n >= order:
            energy -= u[n - order] * u[n - order]
    return out


def _check_samples(x: np.ndarray, what: str, limit_bits: int = 20) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 1 or not np.issubdtype(x.dtype, np.integer):
        raise ValueError(f"{what} needs a 1-D integer array, got {x.dtype} of shape {x.shape}")
    if x.size and int(np.abs(x.astype(np.int64)).max()) >= 1 << limit_bits:
        raise ValueError(f"{what}: values must stay below 2**{limit_bits} in magnitude (16-bit PCM does)")
    return x.astype(np.int64)


def _check_stages(stages, what: str) -> None:
    if not stages or len(stages) > MAX_STAGES:
        raise ValueError(f"{what} needs 1 to {MAX_STAGES} Stage s, got {len(stages)}")


def prefilter(x: np.ndarray, k: int = PREFILTER) -> np.ndarray:
    """The fixed first-order stage before the cascade: ``u[n] = x[n] - floor(k x[n-1] / 32)`` (``u[0] = x[0]``), which
    takes out most of speech's low-frequency tilt so that the NLMS stages converge faster.

    Args:
        x: ``[T]`` integer samples.
        k: the coefficient in 32nds, ``0 <= k <= 32`` (0: no prefilter).
    Returns:
        int64 ``[T]``.
    """
    x = _check_samples(x, "prefilter")
    u = x.copy()
    u[1:] -= (x[:-1] * k) >> 5
    return u


@numba.njit(cache=True)
def _unprefilter(u, k):  # pragma: no cover - compiled; tested through cascade_reconstruct
    x = np.empty_like(u)
    for n in range(u.shape[0]):
        x[n] = u[n] + ((x[n - 1] * k) >> 5) if n > 0 else u[n]
    return x


def cascade_residual(x: np.ndarray, stages=DEFAULT_CASCADE, k: int = PREFILTER) -> np.ndarray:
    """The prediction error of the :func:`prefilter` and a cascade of NLMS stages over integer samples (see the
    module).

    Args:
        x: ``[T]`` integer samples (int16 PCM, or any integers below 2**20 in magnitude).
        stages: the :class:`Stage` s, applied in order.
        k: the prefilter's coefficient in 32nds (0: none).
    Returns:
        int64 ``[T]``: the residual ``r``; ``x - r`` is the prediction, made from ``x[:n]`` only, and
        :func:`cascade_reconstruct` gives ``x`` back from ``r`` exactly.
    Raises:
        ValueError: ``x`` not one-dimensional, not integer, or too large; no stages.
    """
    _check_stages(stages, "cascade_residual")
    u = prefilter(x, k)
    for stage in stages:
        u = _nlms(u, stage.order, stage.mu_shift, False)
    return u


def cascade_reconstruct(r: np.ndarray, stages=DEFAULT_CASCADE, k: int = PREFILTER) -> np.ndarray:
    """The decoder's side of :func:`cascade_residual`: the samples back from the residual, stage by stage in reverse,
    each stage repeating the encoder's weight updates from the samples it has rebuilt.

    Args:
        r: ``[T]`` the residual of :func:`cascade_residual` with the same ``stages`` and ``k``.
    Returns:
        int64 ``[T]``: ``x``, bit for bit.
    Raises:
        ValueError: ``r`` not one-dimensional or not integer; no stages.
    """
    _check_stages(stages, "cascade_reconstruct")
    u = _check_samples(r, "cascade_reconstruct", limit_bits=24 + MAX_STAGES)
    for stage in reversed(stages):
        u = _nlms(u, stage.order, stage.mu_shift, True)
    return _unprefilter(u, np.int64(k))


@numba.njit(cache=True)
def _reconstruct_wrapped(rw, orders, mu_shifts, k):  # pragma: no cover - compiled; tested via its public function
    # every stage at once, sample by sample: the cascade's total prediction of x[n] is known before x[n] is, so the
    # wrapped residual gives x[n] back; the stages then update exactly as _nlms does from the same (u, e)
    K, T = orders.shape[0], rw.shape[0]
    U = np.zeros((K + 1, T), dtype=np.int64)
    W = np.zeros((K, MAX_ORDER), dtype=np.int64)
    energy = np.zeros(K, dtype=np.int64)
    pred = np.zeros(K, dtype=np.int64)
    x = np.empty(T, dtype=np.int64)
    half = np.int64(1) << (FRACTION_BITS - 1)
    for n in range(T):
        total = ((x[n - 1] * k) >> 5) if n > 0 else np.int64(0)
        for s in range(K):
            acc = np.int64(0)
            for i in range(min(orders[s], n)):
                acc += W[s, i] * U[s, n - 1 - i]
            pred[s] = min(max((acc + half) >> FRACTION_BITS, -PREDICTION_LIMIT), PREDICTION_LIMIT)
            total += pred[s]
        x[n] = ((rw[n] + total + 32768) & 0xFFFF) - 32768
        U[0, n] = x[n] - (((x[n - 1] * k) >> 5) if n > 0 else np.int64(0))
        for s in range(K):
            U[s + 1, n] = U[s, n] - pred[s]
        for s in range(K):
            top = min(orders[s], n)
            if top > 0:
                gain = (U[s + 1, n] << (FRACTION_BITS + GAIN_BITS - mu_shifts[s])) // (energy[s] + ENERGY_FLOOR)
                for i in range(top):
                    W[s, i] = min(max(W[s, i] + ((gain * U[s, n - 1 - i]) >> GAIN_BITS), -WEIGHT_LIMIT),
                                  WEIGHT_LIMIT)
            energy[s] += U[s, n] * U[s, n]
            if n >= orders[s]:
                energy[s] -= U[s, n - orders[s]] * U[s, n - orders[s]]
    return x


def reconstruct_from_wrapped(rw: np.ndarray, stages=DEFAULT_CASCADE, k: int = PREFILTER) -> np.ndarray:
    """The decoder's side of :func:`wrapped_residual`: int16 samples back from the wrapped residual, bit for bit, also
    where the cascade's residual left int16's range (there :func:`cascade_reconstruct` of the wrapped values would
    not give ``x``).  At each sample the cascade's whole prediction ``P`` is made from the past, ``x = wrap(rw + P)``,
    and every stage then updates from the rebuilt values.

    Args:
        rw: ``[T]`` integers in ``[-32768, 32767]`` (:func:`wrapped_residual` of ``x`` with the same settings).
    Returns:
        int64 ``[T]`` in int16's range.
    Raises:
        ValueError: ``rw`` not one-dimensional, not integer or outside int16's range; no stages.
    """
    _check_stages(stages, "reconstruct_from_wrapped")
    rw = _check_samples(rw, "reconstruct_from_wrapped", limit_bits=16)
    if rw.size and int(rw.max()) > 32767:
        raise ValueError("reconstruct_from_wrapped: a wrapped residual is at most 32767")
    orders = np.array([s.order for s in stages], dtype=np.int64)
    mu_shifts = np.array([s.mu_shift for s in stages], dtype=np.int64)
    return _reconstruct_wrapped(rw, orders, mu_shifts, np.int64(k))


def wrap_int16(r: np.ndarray) -> np.ndarray:
    """Integers wrapped into int16's range: ``((r + 32768) mod 65536) - 32768``, int64.  For int16 samples ``x`` and
    an integer prediction ``P`` made from the past, ``x = wrap_int16(wrap_int16(x - P) + P)``: the wrapped residual
    is a bijection of ``x`` given the past, so a pmf over its 65,536 values codes ``x`` at the same length (a residual
    beyond int16, possible when a filter diverges, is coded as its wrapped value)."""
    r = np.asarray(r, dtype=np.int64)
    return ((r + 32768) & 0xFFFF) - 32768


def wrapped_residual(x: np.ndarray, stages=DEFAULT_CASCADE, k: int = PREFILTER) -> np.ndarray:
    """:func:`cascade_residual` of int16 samples ``x [T]``, wrapped into int16 (:func:`wrap_int16`): the signal a
    model of the adaptive filter's residual codes, int64 ``[T]`` in ``[-32768, 32767]``."""
    return wrap_int16(cascade_residual(x, stages, k))


@numba.njit(cache=True)
def _running_scale(r, rate_shift):  # pragma: no cover - compiled; tested through adaptive_scale
    out = np.empty(r.shape[0], dtype=np.int64)
    level = np.int64(16) << 8  # |r| ~ 16 before any sample: a quiet start
    for n in range(r.shape[0]):
        out[n] = level
        level += ((abs(r[n]) << 8) - level) >> rate_shift
    return out


def adaptive_scale(r: np.ndarray, rate_shift: int = RATE_SHIFT) -> np.ndarray:
    """The running mean of ``|r|`` before each sample, from the past only: ``m[n] = m[n-1] + (|r[n-1]| - m[n-1]) /
    2**rate_shift``, in integers with 8 fractional bits.

    Args:
        r: ``[T]`` integer residuals.
        rate_shift: the mean's memory is about ``2**rate_shift`` samples.
    Returns:
        float64 ``[T]``: the mean in sample units (exact: a multiple of 1/256).
    """
    return _running_scale(np.asarray(r, dtype=np.int64), int(rate_shift)).astype(np.float64) / 256.0


def laplace_log2_pmf(r: np.ndarray, scale: np.ndarray, floor: float = 0.3) -> np.ndarray:
    """``log2 P(r)`` of integer residuals under discretised Laplace densities, ``P(r) = F(r + 1/2) - F(r - 1/2)`` with
    ``F`` the Laplace CDF of scale ``b = max(scale, floor)`` (mean absolute value ``b``).

    Args:
        r: ``[T]`` integer residuals.
        scale: ``[T]`` the scale used for each sample (e.g. :func:`adaptive_scale`, from the past only).
        floor: the least scale, in sample units.
    Returns:
        float64 ``[T]``, bits (<= 0).  Measurement only: a decoder would need the pmf in integers (issue 23).
    """
    r = np.asarray(r, dtype=np.float64)
    b = np.maximum(np.asarray(scale, dtype=np.float64), floor)
    # P(r) in closed form: the two half-bin tails of the density, computed on the side of the mode r lies on
    tail = 0.5 * np.exp(-(np.abs(r) - 0.5) / b)
    p = np.where(r == 0, 1.0 - np.exp(-0.5 / b), tail * (1.0 - np.exp(-1.0 / b)))
    return np.log2(np.maximum(p, 1e-300))


def laplace_bits(r: np.ndarray, scale: np.ndarray, floor: float = 0.3) -> float:
    """The code length ``-sum log2 P(r)`` of :func:`laplace_log2_pmf`, bits (the ideal length; a range coder adds a
    few bytes)."""
    return float(-laplace_log2_pmf(r, scale, floor).sum())


def bits_per_sample(x: np.ndarray, stages=DEFAULT_CASCADE, k: int = PREFILTER,
                    rate_shift: int = RATE_SHIFT) -> float:
    """Bits per sample of the classical baseline on one recording: the NLMS cascade's residual under the adaptive
    discretised Laplace (:func:`cascade_residual`, :func:`adaptive_scale`, :func:`laplace_bits`).

    Raises:
        ValueError: as :func:`cascade_residual`; an empty recording.
    """
    if len(x) == 0:
        raise ValueError("bits_per_sample: an empty recording has no bits per sample")
    r = cascade_residual(x, stages, k)
    return laplace_bits(r, adaptive_scale(r, rate_shift)) / len(x)


__all__ = ["DEFAULT_CASCADE", "ENERGY_FLOOR", "FRACTION_BITS", "GAIN_BITS", "MAX_ORDER", "MAX_STAGES",
           "PREDICTION_LIMIT", "PREFILTER", "RATE_SHIFT", "WEIGHT_LIMIT", "Stage", "adaptive_scale", "bits_per_sample",
           "cascade_reconstruct", "cascade_residual", "laplace_bits", "laplace_log2_pmf", "prefilter",
           "reconstruct_from_wrapped", "wrap_int16", "wrapped_residual"]
