"""Where a corpus is found: :func:`data_root` looks in ``WAVELAB_DATA``, then ``../shared/data``, then the user cache,
then downloads the sample (checksums checked) into that cache."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from .download import DownloadError, download_corpus
from . import roots
from .roots import SAMPLE_DIRS, DataNotFoundError, check_corpus, find_in, is_corpus_root


def data_root(corpus: str, download: bool = True, progress: bool = True) -> Path:
    """Find (or download) the root folder of ``corpus``.

    Args:
        corpus: ``"timit"`` or ``"librispeech"``.
        download: when no local copy exists, download the sample from its public source into the user cache
            (:func:`wavelab.data.download.download_corpus`); the download URL can be overridden with
            ``WAVELAB_DATA_URL_TIMIT`` / ``WAVELAB_DATA_URL_LIBRISPEECH``.
        progress: show a tqdm progress bar while downloading.
    Returns:
        the corpus root folder.
    Raises:
        ValueError: unknown corpus.
        DataNotFoundError: no copy found and none could be downloaded; the message names every place looked.
    """
    check_corpus(corpus)
    looked: list[str] = []
    env = os.environ.get("WAVELAB_DATA")
    if env:
        folder = Path(env).expanduser()
        found = find_in(corpus, folder)
        if found is not None:
            return found
        looked.append(f"$WAVELAB_DATA = {folder}" + ("" if folder.is_dir() else " (does not exist)"))
        warnings.warn(f"WAVELAB_DATA={folder} holds no {corpus} corpus; looking elsewhere", stacklevel=2)
    else:
        looked.append("$WAVELAB_DATA (not set)")
    shared = roots.shared_data_dir()
    found = find_in(corpus, shared)
    if found is not None:
        return found
    looked.append(f"{shared}" + ("" if shared.is_dir() else " (does not exist)"))
    cached = roots.cache_dir() / SAMPLE_DIRS[corpus]
    if is_corpus_root(corpus, cached):
        return cached
    looked.append(f"{cached} (user cache)")
    reason = "downloads disabled (download=False)"
    if download:
        try:
            return download_corpus(corpus, progress=progress)
        except (DownloadError, OSError) as e:
            reason = f"download failed: {e}"
    raise DataNotFoundError(
        f"cannot find the {corpus} corpus. Looked in: " + "; ".join(looked) + f". Then {reason}. To fix: set "
        f"WAVELAB_DATA to a folder holding {SAMPLE_DIRS[corpus]}/ (or to the corpus folder itself), or put the data at "
        f"{shared / SAMPLE_DIRS[corpus]}, or allow a download over the internet (see data/README.md)")
