"""The papers' figures, keyed as the tables and findings look them up: ``(label, dataset)``, where ``label`` is a
record's :attr:`~wavelab.report.records.ResultRecord.label` (:func:`wavelab.models.run_label`).

A model's figures come from its config class (``ModelConfig.paper_figures``, read through the registry); the
baselines' figures (no model, a fitted marginal, FLAC) are here.
"""

from __future__ import annotations

from ..models import REGISTRY
from ..models.papers import PaperFigure, table_1, table_2, thesis

#: the baselines' figures in Havtorn et al.'s Tables 1 and 2 and in the thesis, keyed by baseline name
BASELINE_FIGURES: dict[str, tuple[PaperFigure, ...]] = {
    "uniform": (table_1(16.00, setting="uninformed"), table_2(16.00, setting="uninformed")),
    "dmol": (table_1(15.60, setting="2-component DMoL fitted to the training set"),
             table_2(15.71, setting="2-component DMoL fitted to the training set")),
    "flac": (table_1(8.582), table_2(9.272), thesis(8.582)),
    "flac+padding": (table_1(8.582, setting="the paper's FLAC figure"),
                     table_2(9.272, setting="the paper's FLAC figure")),
}


def _figures(representation: str) -> dict[tuple[str, str], PaperFigure]:
    named = [(name, config_cls.paper_figures) for name, (config_cls, _) in REGISTRY.items()]
    named += list(BASELINE_FIGURES.items())
    return {(name + f.label_suffix, f.dataset): f for name, figures in named for f in figures
            if f.representation == representation}


#: Havtorn et al.'s figures on 16-bit mu-law (Table 1: TIMIT; Table 2: LibriSpeech test-other)
PAPER_BPF: dict[tuple[str, str], PaperFigure] = _figures("mulaw")
#: the DMoL models' figures on linear 16-bit PCM TIMIT from Havtorn's thesis; the latent models' figures are bounds
THESIS_LINEAR_BPF: dict[tuple[str, str], PaperFigure] = _figures("linear")

__all__ = ["BASELINE_FIGURES", "PAPER_BPF", "PaperFigure", "THESIS_LINEAR_BPF"]
