"""The latent study of Havtorn et al. 2022, section 3.2: are phones, speaker sex and height linearly readable from
the CW-VAE's latents (z1, z2), compared with a log-Mel baseline?

* :mod:`.features`: posterior-mean latents (:func:`extract_latents`), log-Mel frames (:func:`mel_features`),
  span and time averaging (:func:`span_average`, :func:`time_average`).
* :mod:`.datasets`: phone spans of one speaker (:func:`phone_dataset`), time-averaged utterances with speaker labels
  (:func:`utterance_dataset`), :func:`height_class`.
* :mod:`.knn`: LDA embeddings (:func:`lda_embed`), kNN accuracy under leave-one-out / leave-one-speaker-out
  (:func:`knn_accuracy`), chance level (:func:`chance_accuracy`).
* :mod:`.study`: :func:`run_latent_study`; the study on disk and as tables (:func:`save_study`, :func:`load_study`,
  :func:`accuracy_table`, :func:`protocol_table`: the LDA fitted inside each fold or once to all rows, side by side)
  are in :mod:`wavelab.report.studies`.
* :mod:`.explorer`: :class:`LatentExplorer` (ipywidgets).
"""

from ..report.studies import PROTOCOL_KEYS, accuracy_table, load_study, protocol_table, save_study
from .datasets import HEIGHT_CLASSES, NON_SPEECH, UtteranceSet, height_class, phone_dataset, utterance_dataset
from .explorer import LatentExplorer
from .features import (extract_latents, mel_features, mel_offset, model_strides, span_average, span_weights,
                       step_centres, time_average)
from .knn import LDA_FITS, chance_accuracy, knn_accuracy, lda_embed, make_knn_pipeline, make_reducer
from .study import DEFAULT_KS, run_latent_study

__all__ = [
    "HEIGHT_CLASSES", "NON_SPEECH", "UtteranceSet", "height_class", "phone_dataset", "utterance_dataset",
    "LatentExplorer", "extract_latents", "mel_features", "mel_offset", "model_strides", "span_average",
    "span_weights", "step_centres", "time_average", "LDA_FITS", "chance_accuracy", "knn_accuracy", "lda_embed",
    "make_knn_pipeline", "make_reducer", "DEFAULT_KS", "PROTOCOL_KEYS", "accuracy_table", "load_study",
    "protocol_table", "run_latent_study", "save_study",
]
