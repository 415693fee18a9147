"""Compiled generation loops: many incremental steps, each followed by a draw from the output distribution, in one
call, for WaveNet, SaShiMi and the LSTM.

Why: at batch 1 a WaveNet, SaShiMi or LSTM step is a few hundred thousand FLOPs, spread over a hundred or more small
tensor operations.  Dispatching each through PyTorch costs microseconds, so eager generation runs at a few per cent of
what the CPU can do.  The functions here run ``n`` steps and draws as one numba-compiled loop over plain float32
arrays: the same maths as the models' :meth:`step` and the distributions' ``sample``, only the order of float
additions differs.  The models call them from :meth:`~wavelab.models.base.WavelabModel.steps` when they run float32
on the CPU; the uniform draws come from the caller's ``torch.Generator`` in the order the eager loop draws them
(:func:`draw_uniforms`), so the fused and the eager loop give the same codes up to float rounding
(``tests/test_fused.py``).  ``benchmarks/results/room_speed.md`` measures the result against the CPU's limits.

Every kernel is compiled on first use (a few seconds; cached on disk by numba) and releases the GIL.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import torch

#: LLVM may reorder float sums (so reductions vectorise) and fuse multiply-adds; no assumption that values are finite
FAST = {"reassoc", "contract", "nsz", "arcp"}

#: the clamp of the DMoL's uniform draws (:func:`wavelab.distributions.dmol._uniform_like`)
UNIFORM_EPS = 1e-6


def draw_uniforms(n: int, batch_size: int, num_components: int, generator: torch.Generator | None,
                  temperature: float, samples_per_step: int = 1) -> np.ndarray:
    """The uniforms ``n`` eager DMoL draws of ``s = samples_per_step`` samples each would take, float32
    ``[n, B (M + 1) s]``: per step ``B M s`` for the Gumbel choice of a component (``[B, M, s]`` row-major), then
    ``B s`` for the logistic noise (``[B, s]``), clamped to ``(eps, 1 - eps)``.  At ``temperature == 0`` the eager
    draw takes none (it returns the mode), so neither does this: zeros, the generator untouched.

    Torch's CPU generator gives the same stream whether it is asked for all these numbers at once or in the eager
    loop's pieces, so this reproduces :meth:`DiscretizedMixtureLogistics.sample`'s draws.
    """
    return _uniforms((n, batch_size * (num_components + 1) * samples_per_step), UNIFORM_EPS, generator, temperature)


def draw_categorical_uniforms(n: int, batch_size: int, num_classes: int, generator: torch.Generator | None,
                              temperature: float) -> np.ndarray:
    """The uniforms ``n`` eager categorical draws take (:meth:`wavelab.distributions.Categorical.sample`): float32
    ``[n, B K]``, clamped to ``(1e-10, 1 - 1e-10)``; zeros without touching the generator at ``temperature == 0``
    (the eager draw's argmax)."""
    return _uniforms((n, batch_size * num_classes), 1e-10, generator, temperature)


def _uniforms(shape: tuple[int, int], eps: float, generator: torch.Generator | None, temperature: float) -> np.ndarray:
    """float32 uniforms of ``shape`` clamped to ``(eps, 1 - eps)``, or zeros (no draw) at ``temperature == 0``."""
    if temperature == 0:
        return np.zeros(shape, dtype=np.float32)
    return torch.rand(shape, generator=generator, dtype=torch.float32).clamp_(eps, 1.0 - eps).numpy()


def array(x: torch.Tensor) -> np.ndarray:
    """A tensor's values as a C-contiguous numpy array (float tensors as float32, complex ones as they are), detached:
    what the kernels read weights from."""
    x = x.detach()
    if x.is_floating_point():
        x = x.float()
    return np.ascontiguousarray(x.numpy())


def input_values(representation) -> np.ndarray:
    """float32 ``[K]``: the network input of every code (:meth:`Representation.model_input`), looked up per step."""
    return array(representation.model_input(torch.arange(representation.num_codes)))


def weights_key(module: torch.nn.Module) -> tuple:
    """What identifies the current values of ``module``'s parameters: each one's storage, version counter and dtype
    (an optimizer step, ``load_state_dict`` or a move to another device or dtype changes it), for caches of values
    derived from the weights."""
    return tuple((p.data_ptr(), p._version, p.dtype) for p in module.parameters())


def interior_edges(representation) -> np.ndarray:
    """float64 ``[K - 1]``: the bin edges between neighbouring codes in the model's domain; the code of a value ``y``
    is the number of these edges ``<= y`` (what :meth:`Representation.codes_from_values` computes, up to values
    exactly on an edge)."""
    return representation.bin_edges(torch.float64)[1:-1].numpy().copy()


@numba.njit(cache=True, nogil=True, fastmath=FAST)
def dmol_draw(params, noise, temperature, edges, log_scale_min):  # pragma: no cover - compiled
    """One draw from a DMoL: ``params`` float32 ``[3M]`` (logits, means, log-scales), ``noise`` ``[M + 1]`` uniforms
    (Gumbel choice, then the logistic draw).  Returns the code (int).  As ``DiscretizedMixtureLogistics.sample``:
    ``argmax(logits / T + Gumbel)``, then ``mu + exp(log_s) T logit(u)`` quantised to its bin."""
    M = params.shape[0] // 3
    best = 0
    if temperature == 0.0:
        for m in range(1, M):
            if params[m] > params[best]:
                best = m
        z = 0.0
    else:
        score = -np.inf
        for m in range(M):
            s = params[m] / temperature - math.log(-math.log(noise[m]))
            if s > score:
                score, best = s, m
        u = noise[M]
        z = temperature * (math.log(u) - math.log1p(-u))
    log_s = max(params[2 * M + best], log_scale_min)
    y = params[M + best] + math.exp(log_s) * z
    return np.searchsorted(edges, y, side="right")


@numba.njit(cache=True, nogil=True, fastmath=False)
def categorical_draw(logits, noise, temperature):  # pragma: no cover - compiled
    """``argmax(logits / T + Gumbel(noise))`` (``argmax(logits)`` at ``T = 0``), the code drawn by
    :meth:`wavelab.distributions.Categorical.sample` from the same uniforms ``noise [K]``."""
    best = 0
    score = -np.inf
    for k in range(logits.shape[0]):
        s = logits[k] if temperature == 0.0 else logits[k] / temperature - math.log(-math.log(noise[k]))
        if s > score:
            score, best = s, k
    return best


@numba.njit(cache=True, nogil=True, fastmath=FAST)
def _matvec_add(out, x, W, b):  # pragma: no cover - compiled
    """``out = b + x @ W`` for ``x [I]``, ``W [I, O]``."""
    out[:] = b
    for i in range(W.shape[0]):
        xi = x[i]
        for o in range(W.shape[1]):
            out[o] += xi * W[i, o]


@numba.njit(cache=True, nogil=True, fastmath=FAST)
def _batch_matmul_add(out, x, W, b):  # pragma: no cover - compiled
    """``out = b + x @ W`` for ``x [B, I]``, ``W [I, O]``: each row of ``W`` is read once for the whole batch."""
    for r in range(x.shape[0]):
        out[r, :] = b
    for i in range(W.shape[0]):
        for r in range(x.shape[0]):
            xi = x[r, i]
            for o in range(W.shape[1]):
                out[r, o] += xi * W[i, o]


@numba.njit(cache=True, nogil=True, fastmath=FAST)
def _dilated_layer(h, skip, t, d, queue, taps, bias, w_rs, b_rs, has_res, a, z, rs):  # pragma: no cover - compiled
    """One gated dilated layer at time ``t`` for the batch: reads ``h [B, Dc]`` and the layer's ring buffer ``queue
    [(k - 1) d, B, Dc]``, pushes ``h``, adds the skip output to ``skip [B, S]`` and the residual output to ``h`` (in
    place); ``a [B, 2 Dc]``, ``z [B, Dc]``, ``rs [B, Dc + S]`` are scratch."""
    k, Dc = taps.shape[0], taps.shape[1]
    q_len = (k - 1) * d
    _batch_matmul_add(a, h, taps[k - 1], bias)
    for j in range(1, k):
        past = queue[(t - j * d) % q_len]
        for c in range(Dc):
            for r in range(h.shape[0]):
                qc = past[r, c]
                for o in range(2 * Dc):
                    a[r, o] += qc * taps[k - 1 - j, c, o]
    queue[t % q_len] = h
    for r in range(h.shape[0]):
        for c in range(Dc):
            z[r, c] = math.tanh(a[r, c]) * (1.0 / (1.0 + math.exp(-a[r, Dc + c])))
    _batch_matmul_add(rs, z, w_rs, b_rs)
    for r in range(h.shape[0]):
        if has_res:
            for c in range(Dc):
                h[r, c] += rs[r, c]
        for c in range(skip.shape[1]):
            skip[r, c] += rs[r, Dc + c]


@numba.njit(cache=True, nogil=True, fastmath=FAST)
def _draw(params, noise, b, B, categorical, temperature, edges, log_scale_min, pick):  # pragma: no cover - compiled
    """The code of sequence ``b`` of ``B`` drawn from its head's ``params``, with the step's uniforms ``noise`` laid
    out as the eager draw of the whole batch takes them (:func:`draw_categorical_uniforms`, :func:`draw_uniforms`);
    ``pick [M + 1]`` is scratch."""
    if categorical:
        K = params.shape[0]
        return categorical_draw(params, noise[b * K:(b + 1) * K], temperature)
    M = params.shape[0] // 3
    pick[:M] = noise[b * M:(b + 1) * M]
    pick[M] = noise[B * M + b]
    return dmol_draw(params, pick, temperature, edges, log_scale_min)


@numba.njit(cache=True, nogil=True, fastmath=FAST)
def wavenet_steps(n, t0, x_prev, inputs, in_taps, in_bias, in_queue, taps, bias, w_rs, b_rs, has_res, dilations,
                  offsets, queues, w1, b1, w2, b2, noise, temperature, edges, log_scale_min,
                  out):  # pragma: no cover - compiled
    """``n`` WaveNet queue steps (Paine et al. 2016) with a DMoL draw after each, for every sequence of the batch.

    Args:
        n, t0: steps to run; inputs consumed so far (``WaveNetState.t``).
        x_prev: int64 ``[B]`` codes the first step consumes (updated to the last drawn codes).
        inputs: float32 ``[K]``, the network input of each code.
        in_taps ``[k, Dc]``, in_bias ``[Dc]``, in_queue ``[k - 1, B]``: the input conv and its ring buffer.
        taps ``[L, k, Dc, 2 Dc]``, bias ``[L, 2 Dc]``: the dilated convs (tap ``j`` reads ``(k - 1 - j) d`` back).
        w_rs ``[L, Dc, Dc + S]``, b_rs ``[L, Dc + S]``: fused residual and skip 1x1 convs (the last layer's residual
            part is zero and ``has_res[L - 1]`` is False).
        dilations ``[L]``; offsets ``[L]``: where layer ``l``'s ring buffer ``[(k - 1) d, B, Dc]`` starts in the
            flat float32 ``queues``.
        w1 ``[S, S]``, b1, w2 ``[S, 3M]``, b2: the output head.
        noise: float32 ``[n, B (M + 1)]`` from :func:`draw_uniforms`; temperature; edges: :func:`interior_edges`.
        out: int64 ``[B, n]``, filled with the drawn codes.
    """
    B = x_prev.shape[0]
    k, Dc = in_taps.shape
    L = taps.shape[0]
    S = w1.shape[0]
    P = w2.shape[1]
    M = P // 3
    h = np.empty((B, Dc), np.float32)
    a = np.empty((B, 2 * Dc), np.float32)
    z = np.empty((B, Dc), np.float32)
    rs = np.empty((B, w_rs.shape[2]), np.float32)
    skip = np.empty((B, S), np.float32)
    hid = np.empty((B, S), np.float32)
    params = np.empty((B, P), np.float32)
    pick = np.empty(M + 1, np.float32)
    for i in range(n):
        t = t0 + i
        for r in range(B):
            u = inputs[x_prev[r]]
            for c in range(Dc):
                h[r, c] = in_bias[c] + u * in_taps[k - 1, c]
            for j in range(1, k):
                past = in_queue[(t - j) % (k - 1), r]
                for c in range(Dc):
                    h[r, c] += past * in_taps[k - 1 - j, c]
            in_queue[t % (k - 1), r] = u
        skip[:] = 0.0
        for layer in range(L):
            d = dilations[layer]
            size = (k - 1) * d * B * Dc
            queue = queues[offsets[layer]:offsets[layer] + size].reshape((k - 1) * d, B, Dc)
            _dilated_layer(h, skip, t, d, queue, taps[layer], bias[layer], w_rs[layer], b_rs[layer],
                           has_res[layer], a, z, rs)
        for r in range(B):
            for c in range(S):
                skip[r, c] = max(skip[r, c], 0.0)
        _batch_matmul_add(hid, skip, w1, b1)
        for r in range(B):
            for c in range(S):
                hid[r, c] = max(hid[r, c], 0.0)
        _batch_matmul_add(params, hid, w2, b2)
        for r in range(B):
            code = _draw(params[r], noise[i], r, B, False, temperature, edges, log_scale_min, pick)
            out[r, i] = code
            x_prev[r] = code


@numba.njit(cache=True, nogil=True, fastmath=FAST)
def _gelu(x):  # pragma: no cover - compiled
    """The exact GELU ``x Phi(x)`` of ``nn.GELU()``."""
    return 0.5 * x * (1.0 + math.erf(x * 0.7071067811865476))


@numba.njit(cache=True, nogil=True, fastmath=FAST)
def _layer_norm(out, x, w, b):  # pragma: no cover - compiled
    """``nn.LayerNorm`` (eps 1e-5, biased variance) of ``x [H]`` into ``out``."""
    H = x.shape[0]
    mean = 0.0
    for c in range(H):
        mean += x[c]
    mean /= H
    var = 0.0
    for c in range(H):
        var += (x[c] - mean) ** 2
    inv = 1.0 / math.sqrt(var / H + 1e-5)
    for c in range(H):
        out[c] = (x[c] - mean) * inv * w[c] + b[c]


@numba.njit(cache=True, nogil=True, fastmath=FAST)
def _stage_step(x, b, f1, f2, f3, c3, states, e, tmp, tmp2, tmp3):  # pragma: no cover - compiled
    """One recurrent step of a SaShiMi stage on ``x [H]`` (sequence ``b``), in place: ``n_layers`` pairs of an S4
    block ``x + GLU(W GELU(S4(LN x)))`` and a feed-forward block ``x + W2 GELU(W1 LN x)`` (expansion ``e``).

    ``f1`` float32 ``[7 n_layers, H]``, per layer the rows LN1 w, b, D, denom, LN2 w, b, FF2 bias; ``f2`` float32
    flat, per layer the out-bias ``[2H]`` and FF1 bias ``[eH]``; ``f3`` float32 flat, per layer the matrices (as
    ``x @ W``) out ``[H, 2H]``, FF1 ``[H, eH]``, FF2 ``[eH, H]``; ``c3`` complex64 ``[5 n_layers, H, N/2]``: E, Dinv,
    P, 2B, C of each layer's bilinear DPLR system (:meth:`wavelab.models.s4.DPLRKernel.step_params`); ``states``
    complex64 ``[n_layers, B, H, N/2]``.
    """
    H = x.shape[0]
    eH = e * H
    n_layers = states.shape[0]
    N2 = states.shape[3]
    for i in range(n_layers):
        o2 = i * (2 * H + eH)
        o3 = i * (2 * H * H + 2 * H * eH)
        W = f3[o3:o3 + 2 * H * H].reshape(H, 2 * H)
        W1 = f3[o3 + 2 * H * H:o3 + 2 * H * H + H * eH].reshape(H, eH)
        W2 = f3[o3 + 2 * H * H + H * eH:o3 + 2 * H * H + 2 * H * eH].reshape(eH, H)
        _layer_norm(tmp, x, f1[7 * i], f1[7 * i + 1])
        E, Dinv, P, B2, C = c3[5 * i], c3[5 * i + 1], c3[5 * i + 2], c3[5 * i + 3], c3[5 * i + 4]
        D, denom = f1[7 * i + 2], f1[7 * i + 3]
        xs = states[i, b]
        for h in range(H):
            u = tmp[h]
            s = np.float32(0.0)
            for m in range(N2):
                s += P[h, m].real * xs[h, m].real + P[h, m].imag * xs[h, m].imag
            s *= 2.0
            q = np.float32(0.0)
            for m in range(N2):
                dv = Dinv[h, m] * (E[h, m] * xs[h, m] - P[h, m] * s + B2[h, m] * u)
                xs[h, m] = dv
                q += P[h, m].real * dv.real + P[h, m].imag * dv.imag
            q = 2.0 * q / denom[h]
            y = np.float32(0.0)
            for m in range(N2):
                xn = xs[h, m] - Dinv[h, m] * P[h, m] * q
                xs[h, m] = xn
                y += C[h, m].real * xn.real - C[h, m].imag * xn.imag
            tmp[h] = _gelu(2.0 * y + D[h] * u)
        _matvec_add(tmp2[:2 * H], tmp[:H], W, f2[o2:o2 + 2 * H])
        for h in range(H):
            x[h] += tmp2[h] * (1.0 / (1.0 + math.exp(-tmp2[H + h])))
        _layer_norm(tmp, x, f1[7 * i + 4], f1[7 * i + 5])
        _matvec_add(tmp3[:eH], tmp[:H], W1, f2[o2 + 2 * H:o2 + 2 * H + eH])
        for h in range(eH):
            tmp3[h] = _gelu(tmp3[h])
        _matvec_add(tmp2[:H], tmp3[:eH], W2, f1[7 * i + 6])
        for h in range(H):
            x[h] += tmp2[h]


@numba.njit(cache=True, nogil=True, fastmath=FAST)
def sashimi_steps(n, x_prev, embedding, f1, f2, f3, c3, states, e, down_w, down_b, up_w, up_b, pools, windows,
                  filled, queues, taken, norm_w, norm_b, head_w, head_b, categorical, noise, temperature, edges,
                  log_scale_min, out):  # pragma: no cover - compiled
    """``n`` recurrent SaShiMi steps (:meth:`wavelab.models.sashimi.SaShiMi.step`) with a draw after each: from the
    categorical head (``categorical``; ``noise [n, B K]`` from :func:`draw_uniforms`) or the DMoL.

    ``embedding`` float32 ``[K, H_0]`` holds the input features of every code (the embedding, or the DMoL model's
    input MLP applied to every code's input value).

    Per level ``l`` (``0 .. S``, ``S`` the centre), typed lists hold the stage's arrays (see :func:`_stage_step`);
    per pooling ``l < S``: ``down_w [p H_l, e H_l]``, ``up_w [e H_l, p H_l]`` and biases, ``windows [B, p, H_l]``
    with ``filled[l]`` steps of the current window, ``queues [B, p, H_l]`` of which the first ``taken[l]`` are used.
    ``filled`` and ``taken`` are the same for every sequence of the batch and updated in place, as are the states
    and ``x_prev``; ``out`` int64 ``[B, n]`` receives the codes.
    """
    B = x_prev.shape[0]
    S = pools.shape[0]
    Hmax = 0
    for level in range(S + 1):
        Hmax = max(Hmax, f1[level].shape[1] * max(2, e))
    level_in = np.zeros((S + 1, B, Hmax), np.float32)
    h = np.empty(Hmax, np.float32)
    g = np.empty(Hmax, np.float32)
    tmp = np.empty(Hmax, np.float32)
    tmp2 = np.empty(Hmax, np.float32)
    tmp3 = np.empty(Hmax, np.float32)
    M = head_w.shape[1] // 3
    params = np.empty(head_w.shape[1], np.float32)
    pick = np.empty(M + 1, np.float32)
    H0 = embedding.shape[1]
    for i in range(n):
        top = 0
        for level in range(S):  # which levels complete a pooling window at this step (the same for the batch)
            if filled[level] + 1 < pools[level]:
                break
            top = level + 1
        for b in range(B):
            level_in[0, b, :H0] = embedding[x_prev[b]]
            for level in range(S):
                Hl = windows[level].shape[2]
                p = pools[level]
                windows[level][b, filled[level]] = level_in[level, b, :Hl]
                if level < top:
                    _matvec_add(level_in[level + 1, b, :down_w[level].shape[1]],
                                windows[level][b].reshape(p * Hl), down_w[level], down_b[level])
                else:
                    break
            if top == S:
                HS = f1[S].shape[1]
                h[:HS] = level_in[S, b, :HS]
                _stage_step(h[:HS], b, f1[S], f2[S], f3[S], c3[S], states[S], e, tmp, tmp2, tmp3)
                for c in range(HS):
                    h[c] += level_in[S, b, c]
            for level in range(min(top, S - 1), -1, -1):
                Hl = queues[level].shape[2]
                p = pools[level]
                for c in range(Hl):
                    g[c] = queues[level][b, taken[level], c] + level_in[level, b, c]
                if taken[level] + 1 == p:  # window complete: the coarse output fills the next window
                    Hc = up_w[level].shape[0]
                    _matvec_add(queues[level][b].reshape(p * Hl), h[:Hc], up_w[level], up_b[level])
                h[:Hl] = g[:Hl]
                _stage_step(h[:Hl], b, f1[level], f2[level], f3[level], c3[level], states[level], e, tmp, tmp2, tmp3)
                for c in range(Hl):
                    h[c] += g[c]
            _layer_norm(tmp[:H0], h[:H0], norm_w, norm_b)
            _matvec_add(params, tmp[:H0], head_w, head_b)
            code = _draw(params, noise[i], b, B, categorical, temperature, edges, log_scale_min, pick)
            out[b, i] = code
            x_prev[b] = code
        for level in range(S):  # advance the shared counters once per step, after the whole batch
            if level < top:
                filled[level] = 0
            elif level == top:
                filled[level] += 1
            if level <= min(top, S - 1):
                taken[level] = 0 if taken[level] + 1 == pools[level] else taken[level] + 1


@numba.njit(cache=True, nogil=True, fastmath=FAST)
def _mlp(x, weights, biases, final_activation, outs):  # pragma: no cover - compiled
    """:func:`wavelab.models.stacking.mlp` on ``x [B, I]``: linear maps (``weights[l]`` as ``x @ W``) with LeakyReLU
    (slope 0.01) between them and after the last when ``final_activation``.  Layer ``l`` writes ``outs[l] [B, O_l]``
    (contiguous, so the loops vectorise); returns the last."""
    cur = x
    for layer in range(len(weights)):
        out = outs[layer]
        _batch_matmul_add(out, cur, weights[layer], biases[layer])
        if layer < len(weights) - 1 or final_activation:
            for r in range(out.shape[0]):
                for o in range(out.shape[1]):
                    if out[r, o] < 0.0:
                        out[r, o] *= 0.01
        cur = out
    return cur


@numba.njit(cache=True, nogil=True, fastmath=FAST)
def lstm_steps(n, x_prev, inputs, enc_w, enc_b, w_ih, w_hh, b_lstm, d, c, dec_w, dec_b, noise, temperature, edges,
               log_scale_min, out):  # pragma: no cover - compiled
    """``n`` steps of the LSTM over stacked frames (:meth:`wavelab.models.lstm.LSTMModel.step`), each followed by the
    DMoL draw of the next frame's ``s`` samples.

    Args:
        x_prev: int64 ``[B, s]``, the frame the first step consumes (updated to the last drawn frame).
        inputs: float32 ``[K]``, each code's network input.
        enc_w, enc_b / dec_w, dec_b: the encoder's and decoder's linear maps (typed lists, ``x @ W`` layout).
        w_ih, w_hh ``[L, Dd, 4 Dd]``, b_lstm ``[L, 4 Dd]`` (``b_ih + b_hh``): the LSTM layers, gates in PyTorch's
            order (input, forget, cell, output).
        d, c: float32 ``[L, B, Dd]``, the state, updated in place.
        noise: ``[n, B (M + 1) s]`` from :func:`draw_uniforms`; out: int64 ``[B, n s]``.
    """
    B, s = x_prev.shape
    L, Dd = w_ih.shape[0], w_ih.shape[1]
    P = dec_w[len(dec_w) - 1].shape[1] // s
    M = P // 3
    enc_out = [np.empty((B, W.shape[1]), np.float32) for W in enc_w]
    dec_out = [np.empty((B, W.shape[1]), np.float32) for W in dec_w]
    frame = np.empty((B, s), np.float32)
    h = np.empty((B, Dd), np.float32)
    gates = np.empty((B, 4 * Dd), np.float32)
    hh = np.empty((B, 4 * Dd), np.float32)
    pick = np.empty(M + 1, np.float32)
    no_bias = np.zeros(4 * Dd, np.float32)
    for i in range(n):
        for r in range(B):
            for j in range(s):
                frame[r, j] = inputs[x_prev[r, j]]
        h[:, :] = _mlp(frame, enc_w, enc_b, True, enc_out)
        for layer in range(L):
            _batch_matmul_add(gates, h, w_ih[layer], b_lstm[layer])
            _batch_matmul_add(hh, d[layer], w_hh[layer], no_bias)
            for r in range(B):
                for k in range(Dd):
                    g_i = 1.0 / (1.0 + math.exp(-(gates[r, k] + hh[r, k])))
                    g_f = 1.0 / (1.0 + math.exp(-(gates[r, Dd + k] + hh[r, Dd + k])))
                    g_g = math.tanh(gates[r, 2 * Dd + k] + hh[r, 2 * Dd + k])
                    g_o = 1.0 / (1.0 + math.exp(-(gates[r, 3 * Dd + k] + hh[r, 3 * Dd + k])))
                    c[layer, r, k] = g_f * c[layer, r, k] + g_i * g_g
                    d[layer, r, k] = g_o * math.tanh(c[layer, r, k])
            h[:, :] = d[layer]
        params = _mlp(h, dec_w, dec_b, False, dec_out)
        for r in range(B):
            for j in range(s):
                for m in range(M):
                    pick[m] = noise[i, (r * M + m) * s + j]
                pick[M] = noise[i, B * M * s + r * s + j]
                code = dmol_draw(params[r, j * P:(j + 1) * P], pick, temperature, edges, log_scale_min)
                out[r, i * s + j] = code
                x_prev[r, j] = code
