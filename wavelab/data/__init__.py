"""Speech data: where the corpora live, readers for TIMIT and LibriSpeech, the fixed splits, and batching.

A waveform's path from disk to a model: :func:`data_root` finds the corpus folder, :func:`load_split` reads its
utterances (metadata only; audio is decoded on first use and cached in memory), and :func:`random_segments` (training)
or :func:`bucket_batches` (evaluation) turn them into int64 codes ``[B, T]`` with lengths ``[B]``: mu-law codes by
default, or those of another representation (``representation="linear"`` / ``"pcm16"``, see
:mod:`wavelab.representations`).
"""

from .batching import Batch, bucket_batches, bucket_indices, random_segments, silence_code
from .download import DownloadError, download_corpus
from .librispeech import load_librispeech
from .locate import data_root
from .roots import CORPORA, CorpusError, DataNotFoundError, cache_dir
from .splits import (
    DATASETS,
    JOINED_CORPORA,
    SPLITS,
    TIMIT_PHONEME_STUDY_SPEAKER,
    TIMIT_TEST_SPEAKERS,
    load_corpus,
    load_split,
)
from .timit import TIMIT_PHONES, load_timit
from .utterance import Recording, Segment, Speaker, Utterance, codes_of

__all__ = [
    "CORPORA", "DATASETS", "JOINED_CORPORA", "SPLITS", "TIMIT_PHONES", "TIMIT_PHONEME_STUDY_SPEAKER", "TIMIT_TEST_SPEAKERS",
    "Batch", "CorpusError", "DataNotFoundError", "DownloadError", "Recording", "Segment", "Speaker", "Utterance",
    "bucket_batches", "bucket_indices", "cache_dir", "codes_of", "data_root", "download_corpus", "load_corpus",
    "load_librispeech", "load_split", "load_timit", "random_segments", "silence_code",
]
