"""Per-utterance feature sequences for the latent study: CW-VAE posterior latents, the log-Mel baseline, and the
averaging of a feature sequence over labelled spans (phones) or a whole utterance.

Every feature sequence here is a matrix ``[n, D]`` of *steps* on a regular sample grid: step ``i`` stands for the
samples ``[offset + i * step, offset + (i + 1) * step)``.

* CW-VAE latent layer ``l`` (stride ``s_l`` samples): step ``i`` is inferred from ``x[i s_l : (i + 1) s_l]``, so
  ``step = s_l`` and ``offset = 0`` (``n_l = ceil(T / s_l)``).
* log-Mel frames (``center=True``, hop ``H``): frame ``i`` is centred on sample ``i H``, so ``step = H`` and
  ``offset = -H / 2`` (:func:`mel_offset`).

Source: Havtorn et al. 2022 (lvm_speech_benchmark_havtorn2022), section 3.2: latents of a two-layer CW-VAE
(``s1 = 64``, ``s2 = 512``) averaged over 100 posterior samples per step and then over each phone's span; baseline: a
Mel spectrogram with hop 64 (``= s1``), window 256 and 80 Mel bins treated the same way.
"""

from __future__ import annotations

import math
from typing import Iterable, Sequence

import numpy as np
import torch

SAMPLE_RATE = 16000
MEL_HOP = 64
MEL_WINDOW = 256
MEL_BINS = 80


def mel_offset(hop_length: int = MEL_HOP) -> float:
    """The ``offset`` (samples) that places :func:`mel_features` frames on the step grid: ``-hop_length / 2``
    (frame ``i`` is centred on sample ``i * hop_length`` and stands for ``[i H - H/2, i H + H/2)``)."""
    return -hop_length / 2.0


def step_centres(n: int, step: float, offset: float = 0.0) -> np.ndarray:
    """Centres in samples of ``n`` steps of ``step`` samples starting at ``offset``: ``offset + (i + 0.5) step``,
    float64 ``[n]``."""
    return offset + (np.arange(n) + 0.5) * step


def mel_features(audio: np.ndarray, sample_rate: int = SAMPLE_RATE, hop_length: int = MEL_HOP,
                 win_length: int = MEL_WINDOW, n_mels: int = MEL_BINS) -> np.ndarray:
    """Log-Mel spectrogram of one utterance, the paper's baseline representation (section 3.2).

    Power spectrogram with a Hann window of ``win_length`` samples (FFT size ``win_length``), hop ``hop_length``,
    ``center=True`` (reflect padding), ``n_mels`` triangular Slaney-normalised Mel filters from 0 Hz to
    ``sample_rate / 2`` (``librosa.feature.melspectrogram``), then ``10 log10(max(S, 1e-10))`` in dB
    (``librosa.power_to_db`` with ``ref=1``, no ``top_db`` clipping).

    Frame ``i`` is centred on sample ``i * hop_length``: span-average it with ``step=hop_length`` and
    ``offset=mel_offset(hop_length)``; :func:`step_centres` gives the centres.

    Args:
        audio: one waveform ``[T]``: int16 PCM (scaled by 1/32768) or float in [-1, 1].
        sample_rate: Hz.
        hop_length, win_length: samples.
        n_mels: number of Mel bins.
    Returns:
        float32 ``[1 + T // hop_length, n_mels]`` in dB.
    Raises:
        ValueError: audio not 1-D or shorter than one window; non-positive sizes; ``win_length < hop_length``.
    """
    import librosa

    audio = np.asarray(audio)
    if audio.ndim != 1:
        raise ValueError(f"audio must be one waveform [T], got shape {audio.shape}")
    if min(sample_rate, hop_length, win_length, n_mels) <= 0:
        raise ValueError(f"sample_rate, hop_length, win_length, n_mels must be positive, got "
                         f"{(sample_rate, hop_length, win_length, n_mels)}")
    if win_length < hop_length:
        raise ValueError(f"win_length ({win_length}) must be >= hop_length ({hop_length})")
    if len(audio) < win_length:
        raise ValueError(f"audio has {len(audio)} samples, fewer than one window (win_length={win_length})")
    x = audio.astype(np.float32) / 32768.0 if audio.dtype == np.int16 else audio.astype(np.float32)
    power = librosa.feature.melspectrogram(y=x, sr=sample_rate, n_fft=win_length, hop_length=hop_length,
                                           win_length=win_length, n_mels=n_mels, center=True, power=2.0)
    return librosa.power_to_db(power, ref=1.0, amin=1e-10, top_db=None).T.astype(np.float32)


def model_strides(model) -> list[int]:
    """``[s_1, ..., s_L]``, samples per latent step of each layer: the model's
    :attr:`~wavelab.models.base.WavelabModel.latent_strides`.

    Raises:
        ValueError: the model has no latent hierarchy (it is not a hierarchical latent model such as the CW-VAE).
    """
    strides = model.latent_strides
    if strides is None:
        raise ValueError(f"{type(model).__name__} has no latent hierarchy (latent_strides is None); the latent study "
                         f"needs a hierarchical latent model such as the CW-VAE")
    return [int(s) for s in strides]


def extract_latents(model, utterances: Iterable, num_samples: int = 100, seed: int | None = 0,
                    generator: torch.Generator | None = None, progress: bool = False) -> list[dict[str, np.ndarray]]:
    """Posterior-mean latents of every utterance, one utterance at a time (memory), in inference mode.

    For each utterance, ``model.posterior_latents(codes [1, T], lengths [1], num_samples=num_samples)`` returns one
    tensor ``[1, n_l, Dz]`` per layer ``l``: the average of ``num_samples`` posterior samples per step (the paper's
    100 Monte Carlo samples, section 3.2). The model is put in eval mode for the extraction and its mode restored.

    Args:
        model: a hierarchical latent model (CW-VAE) with ``posterior_latents``, ``bits`` and strides
            (:func:`model_strides`).
        utterances: objects with ``codes(bits)`` (int64 ``[T]``) and ``id``.
        num_samples: posterior samples averaged per step.
        seed: seeds one generator on the model's device for the whole call (ignored when ``generator`` is given;
            ``None``: the global RNG).
        generator: a ``torch.Generator`` to draw the posterior samples with.
        progress: show a tqdm bar.
    Returns:
        one dict per utterance ``{"z1": float32 [n_1, Dz_1], "z2": [n_2, Dz_2], ...}`` with ``n_l = ceil(T / s_l)``
        (extra steps a model returns beyond the utterance are trimmed).
    Raises:
        ValueError: ``num_samples < 1``; the model lacks ``posterior_latents`` or strides; a layer with fewer
            than ``ceil(T / s_l)`` steps or a number of layers different from the strides.
    """
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    if not model.has_posterior_latents:
        raise ValueError(f"{type(model).__name__} has no posterior_latents(codes, lengths, num_samples); use a CW-VAE")
    strides = model_strides(model)
    params = list(model.parameters()) if isinstance(model, torch.nn.Module) else []
    device = params[0].device if params else torch.device("cpu")
    if generator is None and seed is not None:
        generator = torch.Generator(device=device).manual_seed(int(seed))
    utterances = list(utterances)
    if progress:
        from tqdm.auto import tqdm

        utterances = tqdm(utterances, desc="latents", unit="utt")
    was_training = getattr(model, "training", False)
    if isinstance(model, torch.nn.Module):
        model.eval()
    out = []
    try:
        with torch.inference_mode():
            for utt in utterances:
                codes = utt.codes(model.bits, model.representation).reshape(1, -1).to(device)
                T = codes.shape[1]
                lengths = torch.tensor([T], dtype=torch.long, device=device)
                zs = model.posterior_latents(codes, lengths, num_samples=num_samples, generator=generator)
                if len(zs) != len(strides):
                    raise ValueError(f"posterior_latents gave {len(zs)} layers but the model has strides {strides}")
                feats = {}
                for level, (z, s) in enumerate(zip(zs, strides), start=1):
                    n = math.ceil(T / s)
                    if z.dim() != 3 or z.shape[0] != 1 or z.shape[1] < n:
                        raise ValueError(f"layer z{level} of utterance {getattr(utt, 'id', '?')}: expected "
                                         f"[1, >= {n}, Dz] for T={T}, s={s}, got {tuple(z.shape)}")
                    feats[f"z{level}"] = z[0, :n].float().cpu().numpy()
                out.append(feats)
    finally:
        if isinstance(model, torch.nn.Module):
            model.train(was_training)
    return out


def span_weights(n: int, step: float, start: float, end: float, offset: float = 0.0) -> np.ndarray:
    """How many samples of the span ``[start, end)`` each of ``n`` steps covers, float64 ``[n]``.

    Step ``i`` stands for ``[offset + i step, offset + (i + 1) step)``, except that the first step extends to
    ``-inf`` and the last to ``+inf`` (samples outside the grid belong to the nearest step). An empty span
    (``end <= start``) gives weight 1 to the step holding ``start`` (clamped to the grid).
    """
    if n < 1:
        raise ValueError(f"need at least one feature step, got n={n}")
    lo = float(offset) + np.arange(n, dtype=np.float64) * float(step)
    hi = lo + step
    lo[0], hi[-1] = -np.inf, np.inf
    w = np.clip(np.minimum(end, hi) - np.maximum(start, lo), 0.0, None)
    if w.sum() <= 0:
        w = np.zeros(n)
        w[int(np.clip(math.floor((start - offset) / step), 0, n - 1))] = 1.0
    return w


def span_average(features: np.ndarray, step: float, segments: Sequence, offset: float = 0.0,
                 weighted: bool = True) -> tuple[np.ndarray, list[str]]:
    """Average a feature sequence over each labelled span (e.g. TIMIT phones), as in section 3.2 of the paper.

    Rule: step ``i`` stands for samples ``[offset + i step, offset + (i + 1) step)`` (the first and last steps are
    extended to cover samples before/after the grid). A segment ``[start, end)`` takes the steps whose interval
    overlaps it:

    * ``weighted=True`` (default): each step weighted by the number of the segment's samples it covers, i.e. the
      exact mean over the segment's samples of the piecewise-constant feature signal (a 10-sample phone inside one
      64-sample step gets that step; a phone straddling two steps gets their duration-weighted mean);
    * ``weighted=False``: the plain mean of the overlapping steps.

    A segment that covers no sample (``end <= start``) gets the nearest step (the one holding ``start``, clamped).

    Args:
        features: ``[n, D]`` feature steps.
        step: samples per feature step (``s_l`` for latent layer ``l``, the hop for Mel frames).
        segments: objects with ``start``, ``end`` (samples, end exclusive) and ``label`` (e.g. ``Segment``).
        offset: sample position of the start of step 0 (0 for latents, :func:`mel_offset` for Mel frames).
        weighted: duration weighting as above.
    Returns:
        ``(X [m, D] float64, labels list[str] of length m)``, one row per segment, in order.
    Raises:
        ValueError: features not 2-D or empty; ``step <= 0``.
    """
    features = np.asarray(features)
    if features.ndim != 2 or features.shape[0] == 0:
        raise ValueError(f"features must be [n >= 1, D], got shape {features.shape}")
    if step <= 0:
        raise ValueError(f"step must be positive (samples per feature step), got {step}")
    n = features.shape[0]
    rows, labels = [], []
    for seg in segments:
        w = span_weights(n, step, seg.start, seg.end, offset)
        if not weighted:
            w = (w > 0).astype(np.float64)
        rows.append(w @ features / w.sum())
        labels.append(seg.label)
    X = np.stack(rows) if rows else np.zeros((0, features.shape[1]))
    return X, labels


def time_average(features: np.ndarray) -> np.ndarray:
    """Mean over all steps of one utterance's features ``[n, D]`` -> ``[D]`` float64 (the paper's time-averaged
    representation for the speaker attributes, section 3.2).

    Raises:
        ValueError: features not 2-D or empty.
    """
    features = np.asarray(features)
    if features.ndim != 2 or features.shape[0] == 0:
        raise ValueError(f"features must be [n >= 1, D], got shape {features.shape}")
    return features.astype(np.float64).mean(axis=0)
