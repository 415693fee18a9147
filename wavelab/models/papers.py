"""The figures the papers report for a model, held by the model's config class (``ModelConfig.paper_figures``) so
that the report layer finds them through the registry and names no model itself.

Havtorn et al., *Benchmarking generative latent variable models for speech*: Table 1 (TIMIT test) and Table 2
(LibriSpeech test-other, 10 h of training; the 100 h figure is in the setting text, as the 10 h one is closer to the
size of the LibriSpeech sample here), in bits per frame (bpf) of 16-bit mu-law audio.  Havtorn's PhD thesis gives the
same models' DMoL figures on linear 16-bit PCM TIMIT (a supplementary table, as quoted to the project: the thesis is
not among ``../shared/papers``, whose Table 4 on linear PCM uses Gaussian outputs in nats).
"""

from __future__ import annotations

from dataclasses import dataclass

TABLE_1 = "Table 1 (TIMIT test)"
TABLE_2 = "Table 2 (LibriSpeech test-other, 10 h training)"
THESIS = "Havtorn's thesis (TIMIT test, linear 16-bit PCM, DMoL)"


@dataclass(frozen=True)
class PaperFigure:
    """One figure of a paper.

    Attributes:
        bpf: bits per frame (eq. 11 of Havtorn et al.).
        is_bound: True for a negative ELBO (an upper bound, printed with "<=").
        source: the table it comes from (:data:`TABLE_1`, :data:`TABLE_2`, :data:`THESIS`).
        setting: the paper's configuration in words (``"Dc=96"``).
        label_suffix: what the row adds to the model's name, as ``ModelConfig.label_suffix`` writes it
            (``" s=64"``, ``" s=64 L=2"``; ``""`` for ``s = 1``).
        dataset: ``"timit"`` or ``"librispeech"``.
        representation: ``"mulaw"`` (the papers' tables) or ``"linear"`` (the thesis).
    """

    bpf: float
    is_bound: bool
    source: str
    setting: str = ""
    label_suffix: str = ""
    dataset: str = "timit"
    representation: str = "mulaw"

    def __str__(self) -> str:
        digits = f"{self.bpf:.3f}"
        digits = digits[:-1] if digits.endswith("0") else digits  # as printed in the paper: 15.60, 8.582
        return f"{'<= ' if self.is_bound else ''}{digits}"


def table_1(bpf: float, bound: bool = False, setting: str = "", suffix: str = "") -> PaperFigure:
    """A figure of Havtorn et al.'s Table 1 (TIMIT test, 16-bit mu-law)."""
    return PaperFigure(bpf, bound, TABLE_1, setting, suffix)


def table_2(bpf: float, bound: bool = False, setting: str = "", suffix: str = "") -> PaperFigure:
    """A figure of Havtorn et al.'s Table 2 (LibriSpeech test-other, 10 h of training, 16-bit mu-law)."""
    return PaperFigure(bpf, bound, TABLE_2, setting, suffix, dataset="librispeech")


def thesis(bpf: float, bound: bool = False, setting: str = "", suffix: str = "") -> PaperFigure:
    """A figure of Havtorn's thesis (TIMIT test, linear 16-bit PCM, DMoL output)."""
    return PaperFigure(bpf, bound, THESIS, setting, suffix, representation="linear")
