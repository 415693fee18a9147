"""The fixed train/test splits (``/work/shared/data/README.md``), so every number in the book is comparable.

TIMIT (NLTK sample, 16 speakers, 160 utterances):
    test = dr1-fvmh0, dr1-mcpm0, dr5-ftlg0, dr5-mbgt0 (2 female, 2 male; 40 utterances), train = the other 12
    speakers (120 utterances), phoneme_study = dr1-fvmh0 (one test speaker, as in the paper's latent study).
    With a full LDC TIMIT tree, train and test are the corpus's own TRAIN/ and TEST/ parts (the paper's TIMIT test
    set), and phoneme_study is still dr1-fvmh0 (a TRAIN speaker there).
LibriSpeech: train = train-clean-100, test = test-other (the sample's 251 and 100 utterances, or the full subsets).
"""

from __future__ import annotations

from pathlib import Path

from .librispeech import load_librispeech
from .roots import check_corpus, data_root
from .timit import load_timit
from .utterance import Utterance

TIMIT_TEST_SPEAKERS = ("dr1-fvmh0", "dr1-mcpm0", "dr5-ftlg0", "dr5-mbgt0")
TIMIT_PHONEME_STUDY_SPEAKER = "dr1-fvmh0"
LIBRISPEECH_SPLITS = {"train": "train-clean-100", "test": "test-other"}
SPLITS = {"timit": ("train", "test", "phoneme_study"), "librispeech": ("train", "test")}

_CACHE: dict[tuple[str, Path], list[Utterance]] = {}


def load_corpus(corpus: str, root: str | Path | None = None) -> list[Utterance]:
    """Every utterance of ``corpus``, sorted by id (TIMIT) or subset and id (LibriSpeech).

    The list is built once per (corpus, root) and process, so the utterances' in-memory audio caches are shared by
    later calls (each call returns a new list of the same :class:`Utterance` objects).

    Args:
        corpus: ``"timit"`` or ``"librispeech"``.
        root: corpus folder; default :func:`wavelab.data.roots.data_root` (``WAVELAB_DATA``, shared folder, cache,
            download).
    Raises:
        ValueError: unknown corpus.
        DataNotFoundError: no data root found (see :func:`data_root`).
        CorpusError: malformed corpus files.
    """
    check_corpus(corpus)
    root = Path(root).resolve() if root is not None else data_root(corpus).resolve()
    key = (corpus, root)
    if key not in _CACHE:
        _CACHE[key] = load_timit(root) if corpus == "timit" else load_librispeech(root)
    return list(_CACHE[key])


def load_split(corpus: str, split: str, root: str | Path | None = None) -> list[Utterance]:
    """The utterances of one fixed split (see the module docstring).

    Args:
        corpus: ``"timit"`` or ``"librispeech"``.
        split: ``"train"``, ``"test"``, or (TIMIT only) ``"phoneme_study"``.
        root: corpus folder (default :func:`data_root`).
    Returns:
        list of :class:`Utterance`, sorted as in :func:`load_corpus`.
    Raises:
        ValueError: unknown corpus or split, or a split that comes out empty (the folder is not the expected corpus).
    """
    check_corpus(corpus)
    if split not in SPLITS[corpus]:
        raise ValueError(f"{corpus} has splits {SPLITS[corpus]}, not {split!r}")
    utts = load_corpus(corpus, root)
    if corpus == "librispeech":
        chosen = [u for u in utts if u.subset == LIBRISPEECH_SPLITS[split]]
    elif split == "phoneme_study":
        chosen = [u for u in utts if u.speaker.id == TIMIT_PHONEME_STUDY_SPEAKER]
    elif any(u.subset is not None for u in utts):  # full LDC tree: its own TRAIN/TEST parts
        chosen = [u for u in utts if u.subset == split]
    else:
        is_test = split == "test"
        chosen = [u for u in utts if (u.speaker.id in TIMIT_TEST_SPEAKERS) == is_test]
    if not chosen:
        where = root if root is not None else "the data root"
        raise ValueError(f"split {corpus}/{split} is empty in {where}; is it the expected corpus layout? "
                         f"(see data/README.md)")
    return chosen
