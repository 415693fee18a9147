"""LibriSpeech reader (Panayotov et al. 2015, openslr resource 12).

Audio is FLAC, 16 kHz 16-bit mono, named ``<speaker>-<chapter>-<utterance>.flac``, found anywhere under a subset
folder: flat ``<subset>/<file>.flac`` (the sample's ``train-clean-100``), ``<subset>/<speaker>/<file>.flac`` (the
sample's ``test-other``) or the original ``<subset>/<speaker>/<chapter>/<file>.flac``.  Speaker sex comes from
``SPEAKERS.TXT`` (``ID | SEX | SUBSET | MINUTES | NAME``, comments start with ``;``; a reader name may itself contain
``|``, so lines are split at the first four pipes only).  The sample has no transcripts.
"""

from __future__ import annotations

from pathlib import Path

from .roots import LIBRISPEECH_SUBSETS, CorpusError, child_ci
from .utterance import Speaker, Utterance


def read_speakers(path: Path) -> dict[str, Speaker]:
    """Parse LibriSpeech's ``SPEAKERS.TXT`` into ``{reader id: Speaker}``.

    Raises:
        CorpusError: a line without 5 fields or with a sex other than F/M (names the file and line).
    """
    speakers: dict[str, Speaker] = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith(";"):
            continue
        cols = [c.strip() for c in line.split("|", maxsplit=4)]
        if len(cols) != 5 or not cols[0].isdigit() or cols[1] not in ("F", "M"):
            raise CorpusError(f"{path} line {n} is not 'ID | SEX | SUBSET | MINUTES | NAME': {line!r}")
        speakers[cols[0]] = Speaker(id=cols[0], corpus="librispeech", sex=cols[1])
    return speakers


def load_librispeech(root: str | Path, subsets: tuple[str, ...] | None = None) -> list[Utterance]:
    """Read every utterance of a LibriSpeech folder, sorted by subset and id.

    Args:
        root: folder holding ``SPEAKERS.TXT`` and subset folders (``train-clean-100/``, ``test-other/``, ...).
        subsets: subsets to read (default: every subset folder present).
    Returns:
        list of :class:`Utterance` with ``corpus="librispeech"``, ``subset`` set, no phones, words or text.
    Raises:
        CorpusError: no ``SPEAKERS.TXT``, a requested subset missing, or a file whose reader is not in
            ``SPEAKERS.TXT``.
    """
    root = Path(root)
    speakers_file = child_ci(root, "SPEAKERS.TXT")
    if speakers_file is None:
        raise CorpusError(f"{root} has no SPEAKERS.TXT (reader sexes); copy it from the LibriSpeech archive")
    speakers = read_speakers(speakers_file)
    wanted = subsets if subsets is not None else LIBRISPEECH_SUBSETS
    utterances = []
    for subset in wanted:
        folder = child_ci(root, subset)
        if folder is None or not folder.is_dir():
            if subsets is not None:
                raise CorpusError(f"{root} has no {subset}/ folder; available: "
                                  f"{sorted(p.name for p in root.iterdir() if p.is_dir())}")
            continue
        for path in sorted(folder.rglob("*.flac")):
            reader = path.stem.split("-")[0]
            if reader not in speakers:
                raise CorpusError(f"{path}: reader {reader} is not listed in {speakers_file}; add its line there")
            utterances.append(Utterance(id=path.stem, corpus="librispeech", path=path, speaker=speakers[reader],
                                        subset=subset))
    return utterances
