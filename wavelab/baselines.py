"""The benchmark's three reference points (Havtorn et al., section 3, Tables 1 and 2).

* **Uniform**: every one of the 2^b codes equally likely, exactly ``b`` bits per frame (16.00 bpf for 16-bit audio).
* **2-component DMoL**: one discretized mixture of two logistics, the same for every sample, fitted by maximum
  likelihood to the training split's marginal distribution of mu-law codes ("DMoL, Optimal": 15.60 bpf on TIMIT).
  It ignores all context, so it measures how much of the 16 bits the amplitude histogram alone explains.
* **FLAC**: the size of each utterance's 16-bit linear PCM compressed losslessly by libFLAC (through soundfile /
  libsndfile at its highest compression level), in bits over samples, summed over the set as eq. 11 does (8.582 bpf on
  TIMIT's test set).  FLAC codes linear PCM, not mu-law; a lossless code of the linear signal is also one of its mu-law
  image only up to the companding's loss, which is why the paper calls it an approximate lower bound.

Per representation (:mod:`wavelab.representations`; ``run_baselines(..., representation=)``, each record names its
representation):

* **Histogram**: a context-free pmf over the 65,536 codes, the training split's code counts with add-1/2 smoothing
  (Krichevsky-Trofimov: ``P(k) = (n_k + 1/2) / (N + 65536/2)``, so every code, seen or not, gets mass), the best any
  context-free model can do up to the smoothing.  It is the same for ``"linear"`` and ``"pcm16"`` (same codes) and
  close to it for ``"mulaw"``, where distinct int16 values share a code only at high amplitude.
* **2-component DMoL** in the representation's bins: for ``"mulaw"`` the paper's baseline; for ``"linear"`` the bins
  are uniform in the linear domain, for ``"pcm16"`` the compander's images of the int16 cells.  On mu-law codes the
  DMoL is smooth over codes that never occur (near zero one int16 step is thousands of codes apart), so it stays
  far above the histogram; on linear or pcm16 codes it comes close to it.
* **FLAC of the codes** (``"flac-codes"``, mu-law only): the mu-law codes written as 16-bit PCM (``code - 32768``)
  and compressed by the same encoder as ``"flac"``: what a lossless codec makes of the mu-law signal itself.  For
  ``"linear"`` and ``"pcm16"`` the codes are the linear PCM, so ``"flac"`` is that figure.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import soundfile as sf
import torch

from .audio import num_bins
from .distributions import DiscretizedMixtureLogistics
from .likelihood import BitsPerFrame, bits_per_frame
from .representations import get_representation

#: the add-alpha smoothing of :func:`histogram_log_pmf` (1/2: Krichevsky-Trofimov)
HISTOGRAM_ALPHA = 0.5


def uniform_nll(lengths: Sequence[int], bits: int = 16) -> torch.Tensor:
    """Per-utterance NLL in nats of the uniform distribution over ``2**bits`` codes: ``T_i * bits * ln 2``, ``[N]``."""
    return torch.as_tensor(lengths, dtype=torch.float64) * (bits * math.log(2.0))


def code_histogram(code_arrays, bits: int = 16) -> torch.Tensor:
    """Counts of each code over many utterances: iterable of int64 code tensors -> ``[2**bits]`` float64 counts."""
    counts = torch.zeros(num_bins(bits), dtype=torch.float64)
    for codes in code_arrays:
        counts += torch.bincount(torch.as_tensor(codes).reshape(-1), minlength=num_bins(bits)).double()
    return counts


def histogram_log_pmf(counts: torch.Tensor, alpha: float = HISTOGRAM_ALPHA) -> torch.Tensor:
    """The smoothed context-free pmf of a code histogram, ``log P(k) = log((n_k + alpha) / (N + alpha K))``.

    Args:
        counts: ``[K]`` non-negative code counts (e.g. :func:`code_histogram` of the training split).
        alpha: pseudo-count added to every code, > 0 (default 1/2, Krichevsky-Trofimov), so unseen codes keep mass.
    Returns:
        ``[K]`` float64 log-probabilities in nats, summing (in probability) to one.
    Raises:
        ValueError: counts not 1-D, negative counts, or ``alpha <= 0``.
    """
    counts = torch.as_tensor(counts, dtype=torch.float64)
    if counts.dim() != 1 or counts.numel() == 0:
        raise ValueError(f"histogram_log_pmf expects a 1-D histogram [K], got shape {tuple(counts.shape)}")
    if bool((counts < 0).any()):
        raise ValueError("histogram_log_pmf: counts must be >= 0")
    if not alpha > 0:
        raise ValueError(f"histogram_log_pmf: alpha must be > 0 (every code needs mass), got {alpha!r}")
    return torch.log(counts + alpha) - math.log(float(counts.sum()) + alpha * counts.numel())


@dataclass
class FittedDMoL:
    """A context-free DMoL fitted to a code histogram.

    Attributes:
        params: ``[3M]`` float64 parameters ``[logits | means | log_scales]``.
        distribution: the :class:`DiscretizedMixtureLogistics` they belong to.
        train_bpf: bits per frame on the histogram it was fitted to.
    """

    params: torch.Tensor
    distribution: DiscretizedMixtureLogistics
    train_bpf: float

    def log_pmf(self) -> torch.Tensor:
        """``[2**bits]`` float64 log-probabilities (nats) of every code."""
        K = self.distribution.num_bins
        p = self.params.reshape(1, -1, 1).expand(1, self.params.numel(), K)
        return self.distribution.log_prob(p, torch.arange(K).reshape(1, K))[0]

    def nll(self, codes: torch.Tensor) -> torch.Tensor:
        """Total NLL in nats (float64 scalar) of an int64 code tensor of any shape."""
        return -self.log_pmf()[torch.as_tensor(codes).reshape(-1)].sum()


def fit_dmol(counts: torch.Tensor, num_components: int = 2, bits: int = 16, steps: int = 400,
             seed: int = 0, representation="mulaw") -> FittedDMoL:
    """Maximum-likelihood fit of a ``num_components``-component DMoL to a histogram of codes.

    The objective is ``-sum_k counts[k] log P(k) / sum_k counts[k]`` (nats per frame), minimised with L-BFGS in
    float64 from a moment-matched start (components at the mean, with scales spread around the data's spread).

    Args:
        counts: ``[2**bits]`` code counts (e.g. from :func:`code_histogram` of the training split).
        num_components: ``M`` (2 for the paper's baseline).
        steps: L-BFGS iterations.
        representation: whose bins the DMoL uses (``"mulaw"``, ``"linear"``, ``"pcm16"``), see
            :class:`~wavelab.distributions.DiscretizedMixtureLogistics`; ``counts`` are of that representation's codes.
    Returns:
        :class:`FittedDMoL`.
    Raises:
        ValueError: wrong histogram size, an empty histogram or an unknown representation.
    """
    rep = get_representation(representation, bits)
    dist = DiscretizedMixtureLogistics(num_components=num_components, bits=bits, representation=rep)
    K = dist.num_bins
    counts = torch.as_tensor(counts, dtype=torch.float64)
    if counts.shape != (K,):
        raise ValueError(f"histogram must have {K} bins for {bits}-bit codes, got shape {tuple(counts.shape)}")
    total = float(counts.sum())
    if total <= 0:
        raise ValueError("cannot fit a DMoL to an empty histogram")
    y = (torch.linspace(-1.0, 1.0, K, dtype=torch.float64) if rep.name == "mulaw"
         else rep.model_input(torch.arange(K), torch.float64))  # each code's value in the model's domain
    mean = float((counts * y).sum() / total)
    std = math.sqrt(max(float((counts * (y - mean) ** 2).sum() / total), 1e-8))
    g = torch.Generator().manual_seed(seed)
    logits = torch.zeros(num_components, dtype=torch.float64)
    means = mean + 0.01 * std * torch.randn(num_components, generator=g, dtype=torch.float64)
    log_scales = math.log(std * math.sqrt(3) / math.pi) + torch.linspace(-1.5, 1.5, num_components, dtype=torch.float64)
    params = torch.cat([logits, means, log_scales]).requires_grad_(True)
    codes = torch.arange(K).reshape(1, K)
    weights = counts / total

    def objective():
        p = params.reshape(1, -1, 1).expand(1, 3 * num_components, K)
        return -(weights * dist.log_prob(p, codes)[0]).sum()

    opt = torch.optim.LBFGS([params], lr=1.0, max_iter=steps, line_search_fn="strong_wolfe",
                            tolerance_grad=1e-10, tolerance_change=1e-12)

    def closure():
        opt.zero_grad()
        loss = objective()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        train_bpf = float(objective()) / math.log(2.0)
    return FittedDMoL(params=params.detach(), distribution=dist, train_bpf=train_bpf)


def flac_encode(audio: np.ndarray, sample_rate: int = 16000, compression_level: float = 1.0) -> bytes:
    """Encode int16 mono ``audio [T]`` as a FLAC file (stream headers, no padding) with libFLAC via soundfile.

    Args:
        audio: int16 array ``[T]``.
        sample_rate: Hz, written into the stream header.
        compression_level: 0 (fastest) to 1 (libFLAC's strongest preset, as ``flac -8``).
    Raises:
        TypeError: if ``audio`` is not int16 (FLAC must see the original 16-bit samples to be lossless).
    """
    audio = np.asarray(audio)
    if audio.dtype != np.int16:
        raise TypeError(f"FLAC encoding expects int16 PCM, got {audio.dtype}")
    buf = io.BytesIO()
    sf.write(buf, audio, sample_rate, format="FLAC", subtype="PCM_16", compression_level=compression_level)
    return buf.getvalue()


def flac_bits(audio: np.ndarray, sample_rate: int = 16000, compression_level: float = 1.0) -> int:
    """Size in bits of :func:`flac_encode`'s file for int16 ``audio [T]`` (same arguments and errors)."""
    return 8 * len(flac_encode(audio, sample_rate, compression_level))


def flac_tool_overhead_bytes(num_samples: int, sample_rate: int = 16000) -> int:
    """Bytes the ``flac`` command-line tool adds to a file by default on top of the stream libFLAC writes here.

    ``flac`` (1.3/1.4) writes an 8,192-byte PADDING block and a SEEKTABLE with one 18-byte point per started 10 s of
    audio, each block with a 4-byte header.  Verified against ``flac -8`` versus ``flac -8 --no-padding
    --no-seektable`` on TIMIT and LibriSpeech files while building this project.  The shared data's reference figure
    for ``flac -8`` (8.69 bpf on the TIMIT sample) includes these bytes; the stream alone gives 7.34 bpf there.

    Args:
        num_samples: length of the utterance in samples.
        sample_rate: Hz.
    """
    seek_points = max(1, math.ceil(num_samples / (10 * sample_rate)))
    return (4 + 8192) + (4 + 18 * seek_points)


@dataclass
class BaselineResult:
    """One baseline on one test set: its name, the bpf figures, and how it was obtained."""

    name: str
    bpf: BitsPerFrame
    details: dict


def run_baselines(train_utterances, test_utterances, bits: int = 16, dmol_components: int = 2,
                  progress: bool = False, representation="mulaw") -> list[BaselineResult]:
    """Uniform, fitted 2-component DMoL, fitted histogram and FLAC on a test set, in one representation.

    Args:
        train_utterances: the training split (the DMoL and the histogram are fitted to its code histogram), objects
            with ``.codes(bits, representation)`` (``.codes(bits)`` suffices for mu-law).
        test_utterances: the test split, objects with ``.audio()`` (int16), ``.num_samples`` and ``.codes(...)``.
        bits: code bit depth (16; 8 for 8-bit mu-law).
        dmol_components: ``M`` of the DMoL baseline (2, the paper's).
        representation: ``"mulaw"`` (default, the paper's), ``"linear"`` or ``"pcm16"`` (see the module docstring).
    Returns:
        list of :class:`BaselineResult`, bpf over whole test utterances (eq. 11 and mean): ``uniform``, ``dmol``,
        ``flac``, ``flac+padding`` (FLAC of the linear PCM, the paper's reference, in every representation),
        ``histogram``, and for mu-law ``flac-codes`` (the mu-law codes as 16-bit PCM).  The ``details`` of a
        representation other than mu-law name it (mu-law details are as before representations existed).
    Raises:
        ValueError: an unknown representation or one without a ``bits``-bit form.
    """
    from tqdm.auto import tqdm

    rep = get_representation(representation, bits)

    def codes(u):
        return u.codes(bits) if rep.name == "mulaw" else u.codes(bits, rep.name)

    lengths = [u.num_samples for u in test_utterances]
    tag = {} if rep.name == "mulaw" else {"representation": rep.name}  # mu-law details as before
    results = [BaselineResult("uniform", bits_per_frame(uniform_nll(lengths, bits), lengths), {"bits": bits, **tag})]

    counts = code_histogram((codes(u) for u in tqdm(train_utterances, desc="histogram", disable=not progress)), bits)
    test_codes = [codes(u) for u in test_utterances]
    fitted = fit_dmol(counts, num_components=dmol_components, bits=bits, representation=rep)
    log_pmf = fitted.log_pmf()
    nll = torch.stack([-log_pmf[c].sum() for c in test_codes])
    results.append(BaselineResult("dmol", bits_per_frame(nll, lengths), {
        "components": dmol_components, "params": fitted.params.tolist(), "train_bpf": fitted.train_bpf,
        "train_frames": int(counts.sum()), **tag}))

    flac = torch.tensor([flac_bits(u.audio()) for u in tqdm(test_utterances, desc="flac", disable=not progress)],
                        dtype=torch.float64)
    encoder = f"libFLAC via {sf.__libsndfile_version__}, compression_level=1.0 (as flac -8)"
    results.append(BaselineResult("flac", bits_per_frame(flac * math.log(2.0), lengths), {
        "encoder": encoder, "linear_pcm_bits": 16, "container": "FLAC stream without padding",
        **({} if rep.name == "mulaw" else {"input": "the linear 16-bit PCM"}), **tag}))
    padded = flac + 8.0 * torch.tensor([flac_tool_overhead_bytes(T) for T in lengths], dtype=torch.float64)
    results.append(BaselineResult("flac+padding", bits_per_frame(padded * math.log(2.0), lengths), {
        "encoder": encoder, "linear_pcm_bits": 16,
        "container": "FLAC stream + the flac tool's default 8 KiB PADDING and SEEKTABLE blocks",
        **({} if rep.name == "mulaw" else {"input": "the linear 16-bit PCM"}), **tag}))

    hist = histogram_log_pmf(counts, HISTOGRAM_ALPHA)
    nll = torch.stack([-hist[c].sum() for c in test_codes])
    results.append(BaselineResult("histogram", bits_per_frame(nll, lengths), {
        "smoothing": f"add-{HISTOGRAM_ALPHA:g} (Krichevsky-Trofimov) over all {rep.num_codes} codes",
        "alpha": HISTOGRAM_ALPHA, "train_frames": int(counts.sum()),
        "train_bpf": float(-(counts * hist).sum() / counts.sum()) / math.log(2.0), **tag}))

    if rep.name == "mulaw" and bits == 16:
        as_pcm = [(c - 32768).numpy().astype(np.int16) for c in test_codes]
        fc = torch.tensor([flac_bits(x) for x in tqdm(as_pcm, desc="flac (codes)", disable=not progress)],
                          dtype=torch.float64)
        results.append(BaselineResult("flac-codes", bits_per_frame(fc * math.log(2.0), lengths), {
            "encoder": encoder, "input": "the 16-bit mu-law codes written as 16-bit PCM (code - 32768)",
            "container": "FLAC stream without padding", **tag}))
    return results
