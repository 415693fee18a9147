"""Where each corpus lives: the data-root search and the user cache.

:func:`wavelab.data.locate.data_root` looks, in order, at

1. the folder named by the environment variable ``WAVELAB_DATA``: a folder holding ``timit_sample/`` and/or
   ``librispeech_sample/``, a folder that *is* a corpus (the NLTK TIMIT sample, a full LDC TIMIT tree with
   ``TRAIN/`` and ``TEST/``, a LibriSpeech folder with ``SPEAKERS.TXT``), or one holding ``timit/``, ``TIMIT/`` or
   ``LibriSpeech/``;
2. ``<project root>/../shared/data``, where the project root is the folder above the ``wavelab`` package;
3. the user cache (``WAVELAB_CACHE``, else ``$XDG_CACHE_HOME/wavelab``, else ``~/.cache/wavelab``), where
   :mod:`wavelab.data.download` puts a verified download;
4. a fresh download into that cache (unless ``download=False``).

Nothing is ever written under a data root found in steps 1-2.
"""

from __future__ import annotations

import os
from pathlib import Path

CORPORA = ("timit", "librispeech")
SAMPLE_DIRS = {"timit": "timit_sample", "librispeech": "librispeech_sample"}
LIBRISPEECH_SUBSETS = ("dev-clean", "dev-other", "test-clean", "test-other", "train-clean-100", "train-clean-360",
                       "train-other-500")


class DataNotFoundError(FileNotFoundError):
    """No copy of a corpus could be found or downloaded; the message lists every place looked and how to fix it."""


class CorpusError(ValueError):
    """A corpus file with malformed content (bad label, unparsable line, unknown speaker); names the file."""


def check_corpus(corpus: str) -> str:
    """Return ``corpus`` if it is one of :data:`CORPORA`, else raise ``ValueError`` listing the known names."""
    if corpus not in CORPORA:
        raise ValueError(f"unknown corpus {corpus!r}; choose one of {CORPORA}")
    return corpus


def project_root() -> Path:
    """The project root: the folder that holds the ``wavelab`` package (and ``data/``, ``book/``, ``tests/``)."""
    return Path(__file__).resolve().parent.parent.parent


def shared_data_dir() -> Path:
    """``<project root>/../shared/data``, the shared read-only copy of the samples."""
    return project_root().parent / "shared" / "data"


def cache_dir() -> Path:
    """The user cache for downloads: ``$WAVELAB_CACHE``, else ``$XDG_CACHE_HOME/wavelab``, else ``~/.cache/wavelab``.

    Not created here.
    """
    if os.environ.get("WAVELAB_CACHE"):
        return Path(os.environ["WAVELAB_CACHE"]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "wavelab"
    return Path.home() / ".cache" / "wavelab"


def child_ci(folder: Path, name: str) -> Path | None:
    """The entry of ``folder`` whose name equals ``name`` ignoring case (exact match preferred), or None."""
    exact = folder / name
    if exact.exists():
        return exact
    try:
        for entry in folder.iterdir():
            if entry.name.lower() == name.lower():
                return entry
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        pass
    return None


def is_timit_ldc_root(path: Path) -> bool:
    """True for a full LDC TIMIT tree: ``TRAIN/`` or ``TEST/`` (any case) holding ``DR<n>/`` folders."""
    for part in ("train", "test"):
        sub = child_ci(path, part)
        if sub is not None and sub.is_dir() and any(c.is_dir() and c.name.lower().startswith("dr")
                                                    for c in sub.iterdir()):
            return True
    return False


def is_timit_sample_root(path: Path) -> bool:
    """True for the NLTK TIMIT sample layout: ``spkrinfo.txt`` next to ``dr<n>-<speaker>/`` folders."""
    return (child_ci(path, "spkrinfo.txt") is not None
            and any(c.is_dir() and c.name.lower().startswith("dr") and "-" in c.name for c in path.iterdir()))


def is_corpus_root(corpus: str, path: Path) -> bool:
    """True when ``path`` is itself a root of ``corpus`` (see the module docstring for the accepted layouts)."""
    check_corpus(corpus)
    if not path.is_dir():
        return False
    if corpus == "timit":
        return is_timit_sample_root(path) or is_timit_ldc_root(path)
    return child_ci(path, "SPEAKERS.TXT") is not None or any(
        child_ci(path, s) is not None for s in LIBRISPEECH_SUBSETS)


def find_in(corpus: str, folder: Path) -> Path | None:
    """The root of ``corpus`` at or directly under ``folder`` (``timit_sample``, ``timit``, ``LibriSpeech``...)."""
    names = {"timit": (SAMPLE_DIRS["timit"], "timit", "data"),
             "librispeech": (SAMPLE_DIRS["librispeech"], "librispeech")}[corpus]
    candidates = [folder] + [c for c in (child_ci(folder, n) for n in names) if c is not None]
    if corpus == "timit":  # the LDC DVD nests TIMIT/TIMIT/TRAIN
        candidates += [c for c in (child_ci(x, "timit") for x in list(candidates[1:])) if c is not None]
    for c in candidates:
        if is_corpus_root(corpus, c):
            return c
    return None
