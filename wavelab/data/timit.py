"""TIMIT reader: the NLTK "TIMIT Corpus Sample" layout and the full LDC93S1 layout.

* NLTK sample: ``<root>/spkrinfo.txt`` and ``<root>/dr1-fvmh0/sa1.wav|.phn|.wrd|.txt``.
* LDC: ``<root>/TRAIN/DR1/FCJF0/SA1.WAV`` (+ ``.PHN .WRD .TXT``), ``<root>/TEST/...`` and ``<root>/DOC/SPKRINFO.TXT``;
  names in any case.  Audio is NIST SPHERE or RIFF, whatever the extension (soundfile reads the header).

Label files give segments in samples at 16 kHz (``begin end label``, end exclusive: one phone ends where the next
begins).  Speaker ids follow the sample's convention, ``dr<DR>-<sex><ID>`` lower-case: ``spkrinfo.txt``'s line
``VMH0  F  1 ...`` is speaker ``dr1-fvmh0``.  Heights (``5'6"``, ``6'02"``) become cm with 1 in = 2.54 cm.
"""

from __future__ import annotations

import re
from pathlib import Path

from .roots import CorpusError, child_ci, is_timit_ldc_root
from .utterance import Segment, Speaker, Utterance

# The 61 phone labels of the TIMIT transcriptions (TIMIT documentation, phoncode.doc).
TIMIT_PHONES: tuple[str, ...] = (
    # stops and closures
    "b", "d", "g", "p", "t", "k", "dx", "q", "bcl", "dcl", "gcl", "pcl", "tcl", "kcl",
    # affricates
    "jh", "ch",
    # fricatives
    "s", "sh", "z", "zh", "f", "th", "v", "dh",
    # nasals
    "m", "n", "ng", "em", "en", "eng", "nx",
    # semivowels and glides
    "l", "r", "w", "y", "hh", "hv", "el",
    # vowels
    "iy", "ih", "eh", "ey", "ae", "aa", "aw", "ay", "ah", "ao", "oy", "ow", "uh", "uw", "ux", "er", "ax", "ix", "axr",
    "ax-h",
    # others: pause, epenthetic silence, begin/end marker
    "pau", "epi", "h#",
)
_PHONE_SET = frozenset(TIMIT_PHONES)
_UTT_RE = re.compile(r"^(s[aix]\d+)\.wav$", re.IGNORECASE)
_HEIGHT_RE = re.compile(r"^(\d+)'(\d+)\"?$")


def parse_height_cm(text: str) -> float | None:
    """``5'6"`` or ``6'02"`` (feet, inches) -> cm (1 in = 2.54 cm); None for anything else (``?``)."""
    m = _HEIGHT_RE.match(text.strip())
    if not m:
        return None
    return round((int(m.group(1)) * 12 + int(m.group(2))) * 2.54, 2)


def read_spkrinfo(path: Path) -> dict[str, Speaker]:
    """Parse TIMIT's ``spkrinfo.txt`` into ``{speaker id: Speaker}`` (ids ``dr<DR>-<sex><ID>`` lower-case).

    Columns: ID Sex DR Use RecDate BirthDate Ht Race Edu [Comments]; lines starting with ``;`` are comments.

    Raises:
        CorpusError: a line with too few columns or a bad sex / dialect region (names the file and line).
    """
    speakers: dict[str, Speaker] = {}
    for n, line in enumerate(path.read_text(encoding="latin-1").splitlines(), 1):
        if not line.strip() or line.startswith(";"):
            continue
        cols = line.split()
        if len(cols) < 7 or cols[1].upper() not in ("F", "M") or not cols[2].isdigit():
            raise CorpusError(f"{path} line {n} is not 'ID Sex DR Use RecDate BirthDate Ht ...': {line!r}")
        sex, dr = cols[1].upper(), int(cols[2])
        sid = f"dr{dr}-{sex}{cols[0]}".lower()
        speakers[sid] = Speaker(id=sid, corpus="timit", sex=sex, height_cm=parse_height_cm(cols[6]),
                                dialect_region=dr)
    return speakers


def read_segments(path: Path, phones: bool = False) -> tuple[Segment, ...]:
    """Read a ``.phn`` or ``.wrd`` file (``begin end label`` per line, samples) into segments.

    Args:
        path: the label file.
        phones: check every label is one of :data:`TIMIT_PHONES`.
    Raises:
        CorpusError: malformed line, ``end < begin``, negative sample or unknown phone (names the file and line).
    """
    segments = []
    for n, line in enumerate(path.read_text(encoding="latin-1").splitlines(), 1):
        if not line.strip():
            continue
        cols = line.split()
        if len(cols) != 3 or not cols[0].isdigit() or not cols[1].isdigit():
            raise CorpusError(f"{path} line {n} is not 'begin end label': {line!r}")
        start, end, label = int(cols[0]), int(cols[1]), cols[2]
        if end < start:
            raise CorpusError(f"{path} line {n}: segment ends ({end}) before it begins ({start})")
        if phones and label not in _PHONE_SET:
            raise CorpusError(f"{path} line {n}: {label!r} is not one of the 61 TIMIT phones (TIMIT_PHONES)")
        segments.append(Segment(start, end, label))
    return tuple(segments)


def read_text(path: Path) -> str:
    """The prompt of a TIMIT ``.txt`` file (``begin end text``), without the sample numbers."""
    cols = path.read_text(encoding="latin-1").strip().split(maxsplit=2)
    if len(cols) < 3 or not cols[0].isdigit():
        raise CorpusError(f"{path} is not 'begin end text': {path.read_text(encoding='latin-1')[:80]!r}")
    return cols[2].strip()


def _find_spkrinfo(root: Path) -> Path | None:
    for folder in (root, child_ci(root, "doc"), child_ci(root.parent, "doc")):
        if folder is not None and folder.is_dir():
            found = child_ci(folder, "spkrinfo.txt")
            if found is not None:
                return found
    return None


def _speaker_folders(root: Path) -> list[tuple[Path, str, str | None]]:
    """``(folder, speaker id, LDC part or None)`` for every speaker folder under ``root``."""
    out = []
    if is_timit_ldc_root(root):
        for part in sorted(p for p in root.iterdir() if p.is_dir() and p.name.lower() in ("train", "test")):
            for dr in sorted(p for p in part.iterdir() if p.is_dir() and re.fullmatch(r"dr\d", p.name.lower())):
                for spk in sorted(p for p in dr.iterdir() if p.is_dir()):
                    out.append((spk, f"{dr.name}-{spk.name}".lower(), part.name.lower()))
    else:
        for spk in sorted(p for p in root.iterdir() if p.is_dir() and re.fullmatch(r"dr\d-[fm]\w+", p.name.lower())):
            out.append((spk, spk.name.lower(), None))
    return out


def load_timit(root: str | Path) -> list[Utterance]:
    """Read every utterance of a TIMIT tree (NLTK sample or LDC layout), sorted by id.

    Reads label files and ``spkrinfo.txt`` only; audio and its length are read lazily by :class:`Utterance`.
    Speakers missing from ``spkrinfo.txt`` (or all, if it is absent) get sex and dialect region from the folder
    name and no height.

    Returns:
        list of :class:`Utterance` with ``corpus="timit"``, phones, words and text.
    Raises:
        CorpusError: no speaker folders, a recording without its ``.phn``/``.wrd``/``.txt`` file, or malformed labels.
    """
    root = Path(root)
    info = _find_spkrinfo(root)
    speakers = read_spkrinfo(info) if info is not None else {}
    utterances = []
    folders = _speaker_folders(root)
    if not folders:
        raise CorpusError(f"{root} holds no TIMIT speaker folders (dr1-fvmh0/ or TRAIN/DR1/FCJF0/); point WAVELAB_DATA "
                          f"at the TIMIT root")
    for folder, sid, part in folders:
        m = re.fullmatch(r"dr(\d)-([fm])\w+", sid)
        if m is None:
            raise CorpusError(f"speaker folder {folder} is not named like dr1-fvmh0 or DR1/FCJF0")
        speaker = speakers.get(sid) or Speaker(id=sid, corpus="timit", sex=m.group(2).upper(),
                                               dialect_region=int(m.group(1)))
        files = {p.name.lower(): p for p in folder.iterdir()}
        for name, wav in sorted(files.items()):
            um = _UTT_RE.match(name)
            if um is None:
                continue
            stem = um.group(1).lower()
            labels = {}
            for ext in ("phn", "wrd", "txt"):
                labels[ext] = files.get(f"{stem}.{ext}")
                if labels[ext] is None:
                    raise CorpusError(f"{wav} has no .{ext} file next to it; the TIMIT tree is incomplete")
            utterances.append(Utterance(
                id=f"{sid}/{stem}", corpus="timit", path=wav, speaker=speaker,
                phones=read_segments(labels["phn"], phones=True), words=read_segments(labels["wrd"]),
                text=read_text(labels["txt"]), subset=part))
    return sorted(utterances, key=lambda u: u.id)
