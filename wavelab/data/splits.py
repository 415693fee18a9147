"""The fixed train/valid/test splits (``../shared/data/README.md``, ``data/README.md``), so every number in the book is
comparable.  Training curves, early stopping and every choice made while developing read ``valid``; ``test`` is read
only by :func:`wavelab.evaluate.evaluate` for results records.

TIMIT (NLTK sample, 16 speakers, 160 utterances):
    test = dr1-fvmh0, dr1-mcpm0, dr5-ftlg0, dr5-mbgt0 (2 female, 2 male; 40 utterances),
    valid = dr3-falk0, dr3-madc0 (1 female, 1 male; 20 utterances),
    train = the other 10 speakers (5 female, 5 male; 100 utterances),
    phoneme_study = dr1-fvmh0 (one test speaker, as in the paper's latent study).
    With a full LDC TIMIT tree, test is the corpus's own TEST/ part (the paper's TIMIT test set), valid the two
    validation speakers above (both in TRAIN/) and train the rest of TRAIN/; phoneme_study is still dr1-fvmh0.
LibriSpeech: test = test-other; valid = the train-clean-100 utterances of the 25 numerically smallest reader ids (25
    utterances in the sample, one per reader); train = the rest of train-clean-100 (226 in the sample).
(Records made before the valid split existed trained on train + valid; a record's ``train_config`` says so.)
"""

from __future__ import annotations

from pathlib import Path

from .librispeech import load_librispeech
from .locate import data_root
from .roots import check_corpus
from .timit import load_timit
from .utterance import Utterance

TIMIT_TEST_SPEAKERS = ("dr1-fvmh0", "dr1-mcpm0", "dr5-ftlg0", "dr5-mbgt0")
TIMIT_VALID_SPEAKERS = ("dr3-falk0", "dr3-madc0")
TIMIT_PHONEME_STUDY_SPEAKER = "dr1-fvmh0"
LIBRISPEECH_SPLITS = {"train": "train-clean-100", "valid": "train-clean-100", "test": "test-other"}
LIBRISPEECH_VALID_READERS = 25  # the 25 numerically smallest reader ids of train-clean-100
SPLITS = {"timit": ("train", "valid", "test", "phoneme_study"), "librispeech": ("train", "valid", "test")}
#: corpora joined into one data set: its split is the union of theirs (the codec's model trains on all the speech
#: there is: about 52 minutes and 236 speakers in the samples' train splits)
JOINED_CORPORA = {"timit+librispeech": ("timit", "librispeech")}
#: every name :func:`load_split` reads: the corpora and the joined data sets
DATASETS = ("timit", "librispeech", *JOINED_CORPORA)
JOINED_SPLITS = ("train", "valid", "test")

_CACHE: dict[tuple[str, Path], list[Utterance]] = {}


def load_corpus(corpus: str, root: str | Path | None = None) -> list[Utterance]:
    """Every utterance of ``corpus``, sorted by id (TIMIT) or subset and id (LibriSpeech).

    The list is built once per (corpus, root) and process, so the utterances' in-memory audio caches are shared by
    later calls (each call returns a new list of the same :class:`Utterance` objects).

    Args:
        corpus: ``"timit"`` or ``"librispeech"``.
        root: corpus folder; default :func:`wavelab.data.locate.data_root` (``WAVELAB_DATA``, shared folder, cache,
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
        corpus: ``"timit"``, ``"librispeech"`` or a joined data set of :data:`JOINED_CORPORA`
            (``"timit+librispeech"``: the union of both corpora's split, interleaved).
        split: ``"train"``, ``"valid"``, ``"test"``, or (TIMIT only) ``"phoneme_study"``.
        root: corpus folder (default :func:`data_root`; a joined data set reads each corpus from its default).
    Returns:
        list of :class:`Utterance`, sorted as in :func:`load_corpus`.
    Raises:
        ValueError: unknown corpus or split, a ``root`` for a joined data set, or a split that comes out empty (the
            folder is not the expected corpus).
    """
    if corpus in JOINED_CORPORA:
        return _load_joined(corpus, split, root)
    check_corpus(corpus)
    if split not in SPLITS[corpus]:
        raise ValueError(f"{corpus} has splits {SPLITS[corpus]}, not {split!r}")
    utts = load_corpus(corpus, root)
    if corpus == "librispeech":
        chosen = [u for u in utts if u.subset == LIBRISPEECH_SPLITS[split]]
        if split != "test":
            readers = sorted({u.speaker.id for u in chosen}, key=_reader_number)[:LIBRISPEECH_VALID_READERS]
            chosen = [u for u in chosen if (u.speaker.id in readers) == (split == "valid")]
    elif split == "phoneme_study":
        chosen = [u for u in utts if u.speaker.id == TIMIT_PHONEME_STUDY_SPEAKER]
    else:
        full_tree = any(u.subset is not None for u in utts)  # full LDC tree: its own TRAIN/TEST parts

        def part(u: Utterance) -> str:
            is_test = u.subset == "test" if full_tree else u.speaker.id in TIMIT_TEST_SPEAKERS
            return "test" if is_test else "valid" if u.speaker.id in TIMIT_VALID_SPEAKERS else "train"

        chosen = [u for u in utts if part(u) == split]
    if not chosen:
        where = root if root is not None else "the data root"
        raise ValueError(f"split {corpus}/{split} is empty in {where}; is it the expected corpus layout? "
                         f"(see data/README.md)")
    return chosen


def _load_joined(name: str, split: str, root) -> list[Utterance]:
    """The union of the joined corpora's ``split``, interleaved (one utterance of each corpus in turn, then the rest
    of the longer list), so that a validation subset taken round-robin over speakers draws on every corpus."""
    if split not in JOINED_SPLITS:
        raise ValueError(f"{name} has splits {JOINED_SPLITS}, not {split!r}")
    if root is not None:
        raise ValueError(f"{name} joins several corpora, each read from its own data root (WAVELAB_DATA, the shared "
                         f"folder or the cache); load_split takes no root for it, got {root!r}")
    return round_robin([load_split(corpus, split) for corpus in JOINED_CORPORA[name]])


def round_robin(lists: list[list]) -> list:
    """The items of ``lists`` taken in turn: the first of each list, then the second of each, ... (a list that runs
    out is skipped)."""
    longest = max((len(x) for x in lists), default=0)
    return [x[i] for i in range(longest) for x in lists if i < len(x)]


def _reader_number(reader_id: str) -> tuple[int, str]:
    """Sort key of a LibriSpeech reader id: numerically (``"19" < "103"``), non-numeric ids last."""
    return (int(reader_id), "") if reader_id.isdigit() else (2**63, reader_id)
