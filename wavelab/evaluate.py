"""Full-utterance evaluation: the test-set likelihood in bits per frame (Havtorn et al., appendix D, eq. 11).

Whole utterances go through the model in length buckets (:func:`wavelab.data.bucket_batches`), in inference mode, and
the per-utterance negative log-likelihoods (nats; the negative ELBO for latent variable models) become a
:class:`wavelab.likelihood.BitsPerFrame`: the length-weighted figure of eq. 11 and the mean of per-utterance values
(Table 3's caption).

Long utterances: :func:`evaluate` calls the model's
:meth:`~wavelab.models.base.WavelabModel.evaluate_long` (``forward`` by default; models that cannot take a whole
utterance in one pass evaluate it in segments with their state carried).

Reproducibility: latent variable models (posterior noise) and flows (dequantization noise) give stochastic figures.
:func:`evaluate` seeds the random number generators with ``seed`` for the call (and restores the caller's streams
afterwards), so the same model, utterances, seed and machine give bit-for-bit the same figures.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .likelihood import BitsPerFrame, bits_per_frame

DEFAULT_MAX_FRAMES = 200_000
DEFAULT_SEED = 0


@dataclass
class Evaluation:
    """Result of :func:`evaluate`, in the order of the input utterances.

    Attributes:
        ids: ``N`` utterance ids.
        nll: ``[N]`` float64, per-utterance negative log-likelihood (or negative ELBO) in nats.
        lengths: ``[N]`` int64, frames (samples) each ``nll`` covers, as the model reports them.
        bpf: :class:`~wavelab.likelihood.BitsPerFrame` over the set (weighted, eq. 11, and per-utterance mean;
            ``is_bound`` when the model reports a bound).
        kl: per-term KL divergences in nats, each ``[N]`` float64 (empty for exact-likelihood models).
    """

    ids: list[str]
    nll: torch.Tensor
    lengths: torch.Tensor
    bpf: BitsPerFrame
    kl: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def is_bound(self) -> bool:
        """True when the figures are upper bounds (negative ELBO)."""
        return self.bpf.is_bound

    def per_utterance_bpf(self) -> torch.Tensor:
        """``[N]`` float64 bits per frame of each utterance, ``nll / ln 2 / lengths``."""
        return self.nll / torch.log(torch.tensor(2.0, dtype=torch.float64)) / self.lengths


def evaluate(model, utterances, max_frames: int = DEFAULT_MAX_FRAMES, device=None,
             progress: bool = False, iw_samples: int | None = None, seed: int = DEFAULT_SEED) -> Evaluation:
    """Likelihood of whole utterances under ``model``.

    Args:
        model: a :class:`~wavelab.models.base.WavelabModel`; it is put in eval mode for the call and its previous
            mode is restored afterwards.  Its ``evaluate_long`` computes the figures.
        utterances: :class:`wavelab.data.Utterance` objects (anything :func:`wavelab.data.bucket_batches` accepts).
        max_frames: at most this many frames (batch size x padded length) per forward pass.
        device: where to run (default: the device of the model's parameters).
        progress: show a tqdm progress bar over batches.
        iw_samples: for a latent variable model with ``iw_bound(codes, lengths, K)``, report the importance-weighted
            bound with ``K = iw_samples`` posterior samples (Burda et al. 2016; tighter than the one-sample ELBO, still
            a bound) instead of the ELBO; ``None`` (default): the model's own figure.
        seed: seeds torch's global generators (CPU, and the device's on CUDA) for the call, so stochastic figures
            (ELBO, importance-weighted and dequantization bounds) are reproducible; the caller's RNG state is
            restored afterwards (default 0, written into results records by ``python -m wavelab evaluate``).
    Returns:
        :class:`Evaluation`.
    Raises:
        ValueError: no utterances, the model reports an utterance with no frames.
        CapabilityError: ``iw_samples`` for a model without latent variables (a ``ValueError``).
    """
    from tqdm.auto import tqdm

    from .data import bucket_batches

    utterances = list(utterances)
    if not utterances:
        raise ValueError("evaluate needs at least one utterance (got an empty list)")
    if device is None:
        p = next(iter(model.parameters()), None)
        device = p.device if p is not None else torch.device("cpu")
    device = torch.device(device)
    forward = _figure(model, iw_samples)
    results: dict[str, tuple[float, int, dict[str, float]]] = {}
    is_bound = False
    was_training = model.training
    model.eval()
    rng_devices = [device] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=rng_devices), torch.inference_mode():
            torch.manual_seed(int(seed))
            batches = bucket_batches(utterances, max_frames=max_frames, bits=model.bits,
                                     representation=model.representation)
            total = sum(u.num_samples for u in utterances)
            bar = tqdm(total=total, unit="frame", unit_scale=True, disable=not progress, desc="evaluate",
                       mininterval=1.0)
            for batch in batches:
                out = forward(batch.codes.to(device), batch.lengths.to(device))
                is_bound = is_bound or bool(out.is_bound)
                nll = out.nll.double().cpu()
                frames = out.frames.cpu()
                kl = {k: v.double().cpu() for k, v in out.kl.items()}
                for i, uid in enumerate(batch.ids):
                    results[uid] = (float(nll[i]), int(frames[i]), {k: float(v[i]) for k, v in kl.items()})
                bar.update(int(batch.lengths.sum()))
            bar.close()
    finally:
        model.train(was_training)

    ids = [u.id for u in utterances]
    missing = [uid for uid in ids if uid not in results]
    if missing:
        raise RuntimeError(f"bucket_batches did not return utterance(s) {missing[:5]}")
    nll = torch.tensor([results[i][0] for i in ids], dtype=torch.float64)
    lengths = torch.tensor([results[i][1] for i in ids], dtype=torch.int64)
    if bool((lengths <= 0).any()):
        bad = [i for i, n in zip(ids, lengths.tolist()) if n <= 0]
        raise ValueError(f"the model reports no frames for utterance(s) {bad[:5]}; are they empty or too short?")
    kl_names = sorted(results[ids[0]][2])
    kl = {k: torch.tensor([results[i][2][k] for i in ids], dtype=torch.float64) for k in kl_names}
    return Evaluation(ids=ids, nll=nll, lengths=lengths, bpf=bits_per_frame(nll, lengths, is_bound=is_bound), kl=kl)


def _figure(model, iw_samples: int | None):
    """What :func:`evaluate` computes per batch: ``model.evaluate_long``, or with ``iw_samples`` the importance-weighted
    bound with that many posterior samples, as a :class:`~wavelab.models.base.ModelOutput`.

    Raises:
        CapabilityError: ``iw_samples`` for a model without :meth:`~wavelab.models.base.WavelabModel.iw_bound`.
    """
    if iw_samples is None:
        return model.evaluate_long
    from .models.base import CapabilityError, ModelOutput

    if not model.has_iw_bound:
        raise CapabilityError(f"iw_samples={iw_samples} needs a latent variable model with iw_bound; "
                              f"{type(model).__name__} has none (leave iw_samples=None)")

    def iw(codes, lengths):
        return ModelOutput(nll=model.iw_bound(codes, lengths, iw_samples), frames=lengths, is_bound=True)

    return iw


__all__ = ["DEFAULT_MAX_FRAMES", "DEFAULT_SEED", "Evaluation", "evaluate"]
