"""The lossless codecs a model of raw speech has to beat, measured by the project on its own splits: bits per sample of
the Debian-packaged codecs on TIMIT's and LibriSpeech's test and valid splits, their encode and decode speeds on one
thread, every round trip checked sample for sample; and, beside them, the figures of the codecs that are not packaged
(Monkey's Audio, the MPEG-4 ALS reference encoder, SAC, paq8px), read from ``../shared/anchors/lossless_codecs.md``
and labelled as measured outside the project.

    .venv/bin/python benchmarks/lossless_codecs.py [--sets timit:test timit:valid librispeech:test librispeech:valid]
        [--codecs flac-8 ...] [--limit N] [--out benchmarks/results/lossless_codecs.json]
    .venv/bin/python benchmarks/lossless_codecs.py --quick   # the 2 shortest TIMIT test utterances; a temp dir

Codecs and settings (those of the anchor file; each option is looked up in the installed tool's help first, and a codec
whose options are absent is reported and left out): ``flac -8`` (flac's default 8 KiB padding and seek table),
``flac -8 --no-padding --no-seektable``, ``flac -8 -e -p -b 1024`` (exhaustive model and coefficient-precision search;
without padding or seek table, as the anchor file's figure), flake ``-12 -p 0`` (Debian's flake 0.11; ``-p 0`` drops
its default 4 KiB of padding, as the anchor file's figure does; decoded with ``flac -d``), TTA and ALAC (``.m4a``)
through ffmpeg's encoders with ``-threads 1`` and ffmpeg's default tags, and WavPack ``-hhx6`` (decoded with
``wvunpack``).  A codec whose programs are missing is named, with the Debian package to
install (``bash scripts/system_deps.sh --optional`` installs them as root), and the others go on.

For every utterance of a set (``wavelab.data.load_split``; int16 16 kHz mono) the samples are written to a 16-bit mono
WAV (soundfile, 44-byte header), encoded, decoded back, and the decoded samples compared with the input bit for bit;
a difference (or a failing codec process) is recorded naming the codec and the file, and makes the script exit with
status 1.  Bits per sample over a set = 8 x (sum of compressed file sizes, bytes) / (sum of samples): Havtorn et
al.'s eq. 11 over the whole set, whole files with their headers.  Speeds = samples / CPU seconds (user + sys) of the
codec's processes (``getrusage(RUSAGE_CHILDREN)`` around each run, one process at a time, one thread), start-up of
each process included (which dominates ffmpeg's figures on 3-second files); CPU time is less sensitive than wall
time to other work on the machine but not immune to it, so the load average before and after is recorded with the
hardware, the commit and every tool's version.

Committed outputs: ``benchmarks/results/lossless_codecs.json`` (per codec and set: bits per sample, samples, bytes,
files, CPU seconds, samples/s, round-trip status; tool versions; the anchor file's rows and the differences from
them) and ``benchmarks/results/lossless_codecs.md`` (one table), made with

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/lossless_codecs.py

while two training runs used both cores (the load average in the outputs says how busy the machine was).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from wavelab.data import load_split
from wavelab.data.roots import shared_data_dir
from wavelab.report.records import utc_now
from wavelab.runs import atomic_write_bytes, git_commit, hardware_info
from wavelab.settings import PROJECT_ROOT

SAMPLE_RATE = 16000
DEFAULT_SETS = ("timit:test", "timit:valid", "librispeech:test", "librispeech:valid")
SET_TITLES = {"timit:test": "TIMIT test", "timit:valid": "TIMIT valid", "librispeech:test": "LibriSpeech test-other",
              "librispeech:valid": "LibriSpeech valid"}
SPEED_SET = "timit:test"  # the anchor file's speeds are on this set, so the table's are too
DEFAULT_OUT = PROJECT_ROOT / "benchmarks" / "results" / "lossless_codecs.json"
ANCHOR_PATH = shared_data_dir().parent / "anchors" / "lossless_codecs.md"
OUTSIDE_LABEL = "measured outside the project"
# The anchor rows of codecs with no Debian or PyPI package, by the start of their label (the anchor file's last
# paragraph names them); the project cannot measure these without building them, which it never does.
OUTSIDE_PREFIXES = ("Monkey's Audio", "MPEG-4 ALS", "SAC", "paq8px")

SRC, DST = "{src}", "{dst}"
FLAC_DECODE = ("flac", "-d", "-s", "-f", "-o", DST, SRC)
_FF = ("ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-threads", "1", "-i", SRC, "-threads", "1")
FFMPEG_DECODE = (*_FF, "-c:a", "pcm_s16le", "-f", "wav", "-y", DST)
FLAC_HELP = ("flac", "--help")
# The command whose output names each program's version; a program not listed answers ``--version``.
VERSION_ARGS = {"flac": ("--version",), "flake": (), "wavpack": ("--version",), "wvunpack": ("--version",),
                "ffmpeg": ("-version",)}
PACKAGES = {"flac": "flac", "flake": "flake", "wavpack": "wavpack", "wvunpack": "wavpack", "ffmpeg": "ffmpeg"}


@dataclass(frozen=True)
class Codec:
    """A lossless codec as two command lines.

    Attributes:
        name: the id ``--codecs`` takes.
        label: the table's row label (markdown).
        anchor_key: the anchor file's row label for the same settings, as :func:`anchor_key` normalises it ("" when
            the anchor file has none).
        ext: the compressed file's extension (ffmpeg picks its container by it).
        encode, decode: argv with ``"{src}"`` and ``"{dst}"`` standing for the input and output files; decode must
            write a 16-bit WAV.
        options: ``(help argv, strings that must appear in its output)`` pairs: the options the commands use, as the
            installed version's help prints them.
    """

    name: str
    label: str
    anchor_key: str
    ext: str
    encode: tuple[str, ...]
    decode: tuple[str, ...]
    options: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = field(default=())

    @property
    def programs(self) -> tuple[str, ...]:
        """The executables the codec runs (encoder first)."""
        return tuple(dict.fromkeys((self.encode[0], self.decode[0])))


CODECS = (
    Codec("flac-8", "`flac -8` (default padding and seek table)", "flac -8", "flac",
          ("flac", "-8", "-s", "-f", "-o", DST, SRC), FLAC_DECODE, ((FLAC_HELP, ("-8,", "--decode")),)),
    Codec("flac-8-nopad", "`flac -8 --no-padding --no-seektable`", "flac -8 --no-padding --no-seektable", "flac",
          ("flac", "-8", "--no-padding", "--no-seektable", "-s", "-f", "-o", DST, SRC), FLAC_DECODE,
          ((FLAC_HELP, ("-8,", "--no-padding", "--no-seektable")),)),
    # without padding, as the anchor's figure (with flac's 8 KiB it would be 8.494 on TIMIT test, not 7.13)
    Codec("flac-8-exhaustive", "`flac -8 -e -p -b 1024 --no-padding --no-seektable` (exhaustive)",
          "flac -8 -e -p -b 1024", "flac",
          ("flac", "-8", "-e", "-p", "-b", "1024", "--no-padding", "--no-seektable", "-s", "-f", "-o", DST, SRC),
          FLAC_DECODE, ((FLAC_HELP, ("-e, --exhaustive-model-search", "-p, --qlp-coeff-precision-search",
                                     "-b, --blocksize", "--no-padding", "--no-seektable")),)),
    Codec("flake-12", "flake `-12 -p 0` (no padding; decoded by flac)", "flake -12", "flac",
          ("flake", "-12", "-p", "0", "-q", SRC, "-o", DST), FLAC_DECODE,
          ((("flake", "-h"), ("-0 ... -12]", "[-p #]")),)),
    # ffmpeg's defaults, its encoder tag ("Lavf59...", about 20 bytes a file) included, as the anchor file measured
    # TTA (7.127 bits per sample on TIMIT test with the tag, 7.112 with -fflags +bitexact -map_metadata -1)
    Codec("tta", "TTA (ffmpeg)", "TTA", "tta", (*_FF, "-c:a", "tta", "-y", DST), FFMPEG_DECODE,
          ((("ffmpeg", "-hide_banner", "-h", "encoder=tta"), ("Encoder tta",)),
           (("ffmpeg", "-hide_banner", "-h", "decoder=tta"), ("Decoder tta",)))),
    Codec("alac", "ALAC (ffmpeg, .m4a)", "ALAC", "m4a", (*_FF, "-c:a", "alac", "-y", DST), FFMPEG_DECODE,
          ((("ffmpeg", "-hide_banner", "-h", "encoder=alac"), ("Encoder alac",)),
           (("ffmpeg", "-hide_banner", "-h", "decoder=alac"), ("Decoder alac",)))),
    Codec("wavpack-hhx6", "WavPack `-hhx6`", "WavPack -hhx6", "wv", ("wavpack", "-hhx6", "-q", "-y", SRC, "-o", DST),
          ("wvunpack", "-q", "-y", SRC, "-o", DST),
          ((("wavpack", "--help"), ("-hh ", "-x[n]", "-x4 to -x6")), (("wvunpack", "--help"), ("-o FILENAME",)))),
)


class CodecError(RuntimeError):
    """A codec's round trip went wrong on one file: a process failed, or (:class:`RoundTripError`) the decoded samples
    differ from the input.  ``codec`` and ``file`` name where; the message says what."""

    def __init__(self, codec: str, file: str, detail: str):
        super().__init__(f"{codec} on {file}: {detail}")
        self.codec, self.file, self.detail = codec, file, detail


class RoundTripError(CodecError):
    """The decoded samples are not the input's, bit for bit."""


# --------------------------------------------------------------------------------------------------------------------
# the tools


def missing_programs(codec: Codec) -> list[str]:
    """The programs of ``codec`` not found on ``PATH`` (empty when it can run)."""
    return [p for p in codec.programs if shutil.which(p) is None]


def _output(argv: Sequence[str]) -> str:
    """stdout and stderr of ``argv`` (help and version commands; their exit status varies by tool and is ignored)."""
    try:
        r = subprocess.run(list(argv), check=False, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"<{e}>"
    return r.stdout + r.stderr


def check_options(codec: Codec) -> dict:
    """Which of the options ``codec`` uses the installed tools' help lists.

    Returns:
        ``{"checked": [[help command, option], ...], "absent": [[help command, option], ...]}``.
    """
    checked, absent = [], []
    for argv, wanted in codec.options:
        text = _output(argv)
        for option in wanted:
            checked.append([" ".join(argv), option])
            if option not in text:
                absent.append([" ".join(argv), option])
    return {"checked": checked, "absent": absent}


def tool_version(program: str) -> str:
    """The first line of ``program``'s version output that carries a version number (``"flac 1.4.2"``), prefixed
    with the program's name when the line lacks it; the output's first line when none does."""
    text = _output([program, *VERSION_ARGS.get(Path(program).name, ("--version",))])
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    line = next((ln for ln in lines if re.search(r"\d+\.\d+", ln)), lines[0] if lines else "unknown")
    line = line.split(" Copyright")[0]
    name = Path(program).name
    return line if name.lower() in line.lower() else f"{name} {line}"


def run_cpu(argv: Sequence[str], codec: str, file: str) -> float:
    """Run ``argv`` to completion; returns its CPU seconds (user + sys, the child's own, children included).

    Relies on this process running one child at a time: ``RUSAGE_CHILDREN`` sums every waited-for child.

    Raises:
        CodecError: the program cannot start or exits with a non-zero status (its stderr's tail in the message).
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        r = subprocess.run(list(argv), check=False, stdin=subprocess.DEVNULL, capture_output=True)
    except OSError as e:
        raise CodecError(codec, file, f"cannot run {argv[0]}: {e}") from e
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode != 0:
        tail = r.stderr.decode(errors="replace").strip()[-300:]
        raise CodecError(codec, file, f"{Path(argv[0]).name} exited with status {r.returncode}: {tail}")
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


# --------------------------------------------------------------------------------------------------------------------
# round trips


def check_round_trip(codec: str, file: str, expected: np.ndarray, decoded: Path) -> None:
    """Check that the WAV ``decoded`` holds exactly the int16 samples ``expected``, mono at 16 kHz.

    Raises:
        RoundTripError: naming ``codec`` and ``file``: unreadable output, another rate or channel count, another
            length, or samples that differ (how many, and the first index).
    """
    try:
        back, rate = sf.read(decoded, dtype="int16", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError) as e:
        raise RoundTripError(codec, file, f"decoded file unreadable: {e}") from e
    if rate != SAMPLE_RATE or back.shape[1] != 1:
        raise RoundTripError(codec, file, f"decoded {back.shape[1]} channel(s) at {rate} Hz, not mono {SAMPLE_RATE}")
    back = back[:, 0]
    if len(back) != len(expected):
        raise RoundTripError(codec, file, f"decoded {len(back)} samples, not {len(expected)}")
    diff = np.flatnonzero(back != expected)
    if len(diff):
        raise RoundTripError(codec, file, f"{len(diff)} of {len(expected)} decoded samples differ from the input "
                                          f"(first at sample {diff[0]}: {back[diff[0]]} for {expected[diff[0]]})")


def _fill(argv: Sequence[str], src: str, dst: str) -> list[str]:
    return [src if a == SRC else dst if a == DST else a for a in argv]


def round_trip(codec: Codec, wav: Path, pcm: np.ndarray, workdir: Path, file: str) -> dict:
    """Encode the WAV ``wav`` (holding ``pcm``) with ``codec``, decode it, and check the samples.

    Returns:
        ``{"bytes": compressed file size, "encode_cpu_s": ..., "decode_cpu_s": ...}`` (CPU seconds of the processes).
    Raises:
        CodecError: a process failed or wrote no file; RoundTripError: the samples differ (both name codec and file).
    """
    enc, dec = workdir / f"{codec.name}.{codec.ext}", workdir / f"{codec.name}.decoded.wav"
    for p in (enc, dec):
        p.unlink(missing_ok=True)
    encode_s = run_cpu(_fill(codec.encode, str(wav), str(enc)), codec.name, file)
    if not enc.is_file():
        raise CodecError(codec.name, file, f"the encoder wrote no {enc.name}")
    size = enc.stat().st_size
    decode_s = run_cpu(_fill(codec.decode, str(enc), str(dec)), codec.name, file)
    check_round_trip(codec.name, file, pcm, dec)
    return {"bytes": size, "encode_cpu_s": encode_s, "decode_cpu_s": decode_s}


def bits_per_sample(total_bytes: int, total_samples: int) -> float:
    """8 x bytes / samples: bits per sample of a set whose compressed files total ``total_bytes`` over
    ``total_samples`` samples (Havtorn et al., eq. 11, over the whole set: a ratio of sums, not a mean of ratios).

    Raises:
        ValueError: no samples.
    """
    if total_samples <= 0:
        raise ValueError(f"bits per sample needs samples, got {total_samples}")
    return 8 * total_bytes / total_samples


def summarise(rows: list[dict], failures: list[dict], planned: int) -> dict:
    """A codec's figures on one set from its per-file ``rows`` (files that round-tripped) and ``failures``.

    Returns:
        ``bits_per_sample`` (over the files that round-tripped; ``None`` when a file failed, as the set's figure would
        be of other files), ``samples``, ``bytes``, ``files``, ``encode_cpu_s``/``decode_cpu_s`` (seconds),
        ``encode_samples_per_s``/``decode_samples_per_s`` (samples per CPU second), ``round_trip_ok``, ``failures``.
    """
    samples, nbytes = sum(r["samples"] for r in rows), sum(r["bytes"] for r in rows)
    enc, dec = sum(r["encode_cpu_s"] for r in rows), sum(r["decode_cpu_s"] for r in rows)
    ok = not failures and len(rows) == planned
    return {"bits_per_sample": bits_per_sample(nbytes, samples) if ok and samples else None,
            "samples": samples, "bytes": nbytes, "files": len(rows), "files_planned": planned,
            "encode_cpu_s": enc, "decode_cpu_s": dec,
            "encode_samples_per_s": samples / enc if enc > 0 else None,
            "decode_samples_per_s": samples / dec if dec > 0 else None,
            "round_trip_ok": ok, "failures": failures}


def bench_set(codecs: Sequence[Codec], utterances: Sequence, set_name: str, log: Callable[[str], None]) -> dict:
    """Round trips of every utterance of one set with every codec (each utterance's WAV written once).

    ``utterances``: objects with ``id``, ``audio()`` (int16 ``[T]`` at 16 kHz) and optionally ``path``
    (:class:`wavelab.data.Utterance`, :class:`wavelab.data.Recording`).

    Returns:
        ``{codec name: summarise(...)}``; failures are recorded there (codec, set, file, what), never raised.
    """
    rows = {c.name: [] for c in codecs}
    failures = {c.name: [] for c in codecs}
    with tempfile.TemporaryDirectory(prefix="lossless_codecs_") as d:
        workdir = Path(d)
        for i, u in enumerate(utterances):
            pcm = np.ascontiguousarray(u.audio(), dtype=np.int16)
            file = f"{u.id} ({u.path})" if getattr(u, "path", None) else str(u.id)
            wav = workdir / "input.wav"
            sf.write(wav, pcm, SAMPLE_RATE, subtype="PCM_16", format="WAV")
            for c in codecs:
                try:
                    rows[c.name].append({"samples": len(pcm), **round_trip(c, wav, pcm, workdir, file)})
                except CodecError as e:
                    failures[c.name].append({"codec": c.name, "set": set_name, "file": file, "error": e.detail,
                                             "kind": "mismatch" if isinstance(e, RoundTripError) else "process"})
                    log(f"  FAILED {e}")
            if (i + 1) % 10 == 0 or i + 1 == len(utterances):
                log(f"  {set_name}: {i + 1}/{len(utterances)} utterances")
    return {c.name: summarise(rows[c.name], failures[c.name], len(utterances)) for c in codecs}


# --------------------------------------------------------------------------------------------------------------------
# the anchor file


def anchor_key(label: str) -> str:
    """A table label without markdown emphasis, backticks or parenthetical remarks, spaces collapsed:
    ``"`flac -8` (flac 1.4.2, default 8 KiB padding)"`` -> ``"flac -8"``."""
    text = re.sub(r"[`*]", "", label)
    text = re.sub(r"\s*\([^)]*\)", "", text)
    return " ".join(text.split())


def _set_of_header(cell: str) -> str | None:
    low = cell.lower()
    corpus = "timit" if "timit" in low else "librispeech" if "librispeech" in low else None
    split = "test" if "test" in low else "valid" if "valid" in low else None
    return f"{corpus}:{split}" if corpus and split else None


def _number(cell: str) -> float | None:
    text = cell.replace("*", "").replace(",", "").strip()
    try:
        return float(text)
    except ValueError:
        return None  # "not measured", empty


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip("|").split("|")]


def parse_anchor_table(text: str) -> dict:
    """The first markdown table of an anchor file: columns of bits per sample per set and one of speeds.

    Column headers are recognised by content: a corpus name (TIMIT, LibriSpeech) with a split (test, valid) gives a
    set (``"timit:test"``); "encode / decode" gives the speeds; the first column is the label.  A header's
    ``(N utt., S samples)`` gives the set's size.  Cells in bold count as their number; "not measured" as ``None``.

    Returns:
        ``{"sets": {set: {"header", "utterances", "samples"}}, "rows": [{"label", "key" (:func:`anchor_key`),
        "bits_per_sample": {set: float | None}, "encode_samples_per_s", "decode_samples_per_s"}]}``.
    Raises:
        ValueError: no table, or no column naming a set.
    """
    lines = [ln.strip() for ln in text.splitlines()]
    start = next((i for i, ln in enumerate(lines) if ln.startswith("|")), None)
    if start is None or start + 1 >= len(lines) or not re.fullmatch(r"\|[\s:|-]+\|", lines[start + 1]):
        raise ValueError("no markdown table found")
    header = _cells(lines[start])
    columns = {j: _set_of_header(h) for j, h in enumerate(header) if j > 0 and _set_of_header(h)}
    if not columns:
        raise ValueError(f"no column of the table names a corpus and split: {header}")
    speed_col = next((j for j, h in enumerate(header) if re.search(r"encode\s*/\s*decode", h, re.IGNORECASE)), None)
    sets = {}
    for j, name in columns.items():
        m = re.search(r"\((\d+)\s*utt\.?,\s*([\d,]+)", header[j])
        sets[name] = {"header": header[j], "utterances": int(m[1]) if m else None,
                      "samples": int(m[2].replace(",", "")) if m else None}
    rows = []
    for ln in lines[start + 2:]:
        if not ln.startswith("|"):
            break
        row = _cells(ln)
        speeds = row[speed_col].split("/") if speed_col is not None and speed_col < len(row) else []
        enc, dec = (_number(s) for s in speeds) if len(speeds) == 2 else (None, None)
        rows.append({"label": row[0], "key": anchor_key(row[0]),
                     "bits_per_sample": {name: _number(row[j]) if j < len(row) else None
                                         for j, name in columns.items()},
                     "encode_samples_per_s": enc, "decode_samples_per_s": dec})
    return {"sets": sets, "rows": rows}


def display_path(path: Path) -> str:
    """``path`` relative to the project root when it is near it (``../shared/anchors/...``), else absolute."""
    try:
        return os.path.relpath(Path(path).resolve(), PROJECT_ROOT)
    except ValueError:
        return str(path)


def read_anchor(path: Path = ANCHOR_PATH) -> dict:
    """The anchor file's table (:func:`parse_anchor_table`) with its codecs measured outside the project singled out.

    Returns:
        ``{"path", "found", "sets", "rows", "outside_project", "error"}``: ``outside_project`` holds the rows whose
        label starts with one of :data:`OUTSIDE_PREFIXES`, each with ``"measured": OUTSIDE_LABEL`` and
        ``"provenance"`` (the anchor file's path); a missing or unparsable file gives ``found``/``error`` and no rows.
    """
    out = {"path": display_path(path), "found": Path(path).is_file(), "sets": {}, "rows": [], "outside_project": [],
           "error": None}
    if not out["found"]:
        out["error"] = f"anchor file not found at {path}"
        return out
    try:
        table = parse_anchor_table(Path(path).read_text(encoding="utf-8"))
    except ValueError as e:
        out["error"] = f"{path}: {e}"
        return out
    out["sets"], out["rows"] = table["sets"], table["rows"]
    out["outside_project"] = [{**r, "measured": OUTSIDE_LABEL, "provenance": out["path"]} for r in table["rows"]
                              if anchor_key(r["label"]).startswith(OUTSIDE_PREFIXES)]
    return out


def compare_with_anchor(codec: Codec, results: dict, anchor: dict) -> dict | None:
    """The anchor row with ``codec``'s settings and, per set measured in both, measured minus anchor bits per sample;
    ``None`` when the anchor file has no such row."""
    row = next((r for r in anchor["rows"] if codec.anchor_key and r["key"] == codec.anchor_key), None)
    if row is None:
        return None
    diff = {s: round(results[s]["bits_per_sample"] - v, 4) for s, v in row["bits_per_sample"].items()
            if v is not None and s in results and results[s]["bits_per_sample"] is not None}
    return {**row, "difference_bits_per_sample": diff}


# --------------------------------------------------------------------------------------------------------------------
# the benchmark


def prepare_codecs(codecs: Sequence[Codec], log: Callable[[str], None]) -> dict:
    """Each codec's entry before any measurement: its commands, the programs it lacks (with the Debian packages to
    install) and the options the installed tools lack; ``runnable`` is False for either."""
    entries = {}
    for c in codecs:
        missing = missing_programs(c)
        options = {"checked": [], "absent": []} if missing else check_options(c)
        entry = {"label": c.label, "programs": list(c.programs), "encode_command": " ".join(c.encode),
                 "decode_command": " ".join(c.decode), "missing_programs": missing,
                 "install": (f"apt-get install {' '.join(dict.fromkeys(PACKAGES.get(p, p) for p in missing))}"
                             if missing else None),
                 "options": options, "runnable": not missing and not options["absent"], "results": {}}
        if missing:
            log(f"MISSING {c.name}: {', '.join(missing)} not installed ({entry['install']}); left out")
        elif options["absent"]:
            log(f"LEFT OUT {c.name}: the installed version's help lacks "
                f"{'; '.join(f'{o!r} ({h})' for h, o in options['absent'])}")
        entries[c.name] = entry
    return entries


def load_note(before: Sequence[float], after: Sequence[float]) -> str:
    """What the 1-minute load averages ``before`` and ``after`` the run say about the speeds."""
    busy = max(before[0], after[0]) > 0.5
    return (f"load average {before[0]:.2f} before and {after[0]:.2f} after (1 min): "
            + ("measured under load, other work sharing the cores; the speeds (CPU time of the codec processes) are "
               "less affected than wall time would be, but not immune (shared caches, clock)" if busy
               else "the machine was nearly idle"))


def run_benchmark(sets: dict[str, Sequence], codecs: Sequence[Codec], anchor_path: Path = ANCHOR_PATH,
                  log: Callable[[str], None] = print, quick: bool = False) -> dict:
    """Measure ``codecs`` on ``sets`` (name -> utterances, see :func:`bench_set`) and gather what the outputs show.

    Returns:
        the JSON record (see the module docstring); round-trip failures are recorded in it (``round_trips_ok``,
        ``failures``), not raised.
    """
    load_before = list(os.getloadavg())
    entries = prepare_codecs(codecs, log)
    runnable = [c for c in codecs if entries[c.name]["runnable"]]
    programs = dict.fromkeys(p for c in runnable for p in c.programs)
    tools = {Path(p).name: tool_version(p) for p in programs}
    for name, utterances in sets.items():
        log(f"{name}: {len(utterances)} utterances, {', '.join(c.name for c in runnable) or 'no codec'}")
        for cname, summary in bench_set(runnable, utterances, name, log).items():
            entries[cname]["results"][name] = summary
    anchor = read_anchor(anchor_path)
    for c in codecs:
        entries[c.name]["anchor"] = compare_with_anchor(c, entries[c.name]["results"], anchor)
    failures = [f for e in entries.values() for r in e["results"].values() for f in r["failures"]]
    set_info = {}
    for name, utterances in sets.items():
        info = anchor["sets"].get(name, {})
        set_info[name] = {"utterances": len(utterances), "samples": int(sum(len(u.audio()) for u in utterances)),
                          "anchor_utterances": info.get("utterances"), "anchor_samples": info.get("samples")}
    return {
        "benchmark": "lossless_codecs", "created": utc_now(), "quick": quick, "threads": 1,
        "commit": git_commit(), "hardware": hardware_info(),
        "load_average": {"before": load_before, "after": (load_after := list(os.getloadavg())),
                         "cores": os.cpu_count(), "note": load_note(load_before, load_after)},
        "method": {"bits_per_sample": "8 x (sum of compressed file sizes in bytes) / (sum of samples) over the set "
                                      "(Havtorn et al., eq. 11, over a set); whole files, headers included",
                   "speed": "samples / CPU seconds (user + sys, getrusage RUSAGE_CHILDREN) of the codec processes, "
                            "one at a time, one thread, process start-up included",
                   "input": "each utterance written by soundfile as a 16-bit mono 16 kHz WAV (44-byte header)",
                   "round_trip": "decoded samples compared with the input, bit for bit, for every file and codec"},
        "sets": set_info, "tools": tools, "codecs": entries,
        "missing_codecs": [n for n, e in entries.items() if e["missing_programs"]],
        "left_out_codecs": [n for n, e in entries.items() if not e["runnable"]],
        "outside_project": anchor["outside_project"],
        "anchor": {k: anchor[k] for k in ("path", "found", "error", "sets")},
        "round_trips_ok": not failures and bool(runnable), "failures": failures,
    }


def _bps(x: float | None) -> str:
    return "" if x is None else f"{x:.3f}"


def _speed(x: float | None) -> str:
    return "" if x is None else re.sub(r"e\+?0*(\d)", r"e\1", f"{x:.1e}")  # 1.7e7, as the anchor file writes it


def _difference(x: float) -> str:
    return "0.000" if abs(x) < 5e-4 else f"{x:+.3f}"  # no "-0.000"


def _measured_row(entry: dict, sets: Sequence[str]) -> list[str]:
    cells = [entry["label"]]
    for s in sets:
        r = entry["results"].get(s)
        if not entry["runnable"]:
            cells.append("missing" if entry["missing_programs"] else "options absent")
        elif r is None:
            cells.append("not run")
        else:
            cells.append(_bps(r["bits_per_sample"]) if r["round_trip_ok"] else
                         f"round trip FAILED ({len(r['failures'])} files)")
    speed = entry["results"].get(SPEED_SET)
    cells += [_speed(speed["encode_samples_per_s"]) if speed else "", _speed(speed["decode_samples_per_s"])
              if speed else "", "measured here"]
    return cells


def _outside_row(row: dict, sets: Sequence[str]) -> list[str]:
    cells = [row["label"]]
    cells += [_bps(row["bits_per_sample"][s]) if row["bits_per_sample"].get(s) is not None else
              ("not measured" if s in row["bits_per_sample"] else "n/a") for s in sets]
    return cells + [_speed(row["encode_samples_per_s"]), _speed(row["decode_samples_per_s"]),
                    f"**{row['measured']}** ({row['provenance']})"]


def markdown(bench: dict) -> str:
    """The outputs' table: rows = codecs (measured here, then those measured outside the project, marked), columns
    = bits per sample per set and encode / decode samples per CPU second on the TIMIT test split; with the
    conditions of the measurement, what is missing, the round-trip verdict and the differences from the anchor
    file."""
    sets = [s for s in DEFAULT_SETS if s in bench["sets"]] + [s for s in bench["sets"] if s not in DEFAULT_SETS]
    load, hw, commit = bench["load_average"], bench["hardware"], bench["commit"]
    size = ", ".join(f"{SET_TITLES.get(s, s)} {bench['sets'][s]['utterances']} utt. / "
                     f"{bench['sets'][s]['samples']:,} samples" for s in sets)
    lines = [("**SMOKE RUN** (--quick): not a result.\n\n" if bench["quick"] else "") +
             f"Lossless codecs, bits per sample = 8 x total compressed bytes / total samples per set; speeds in "
             f"samples per CPU second (user + sys of the codec processes, start-up included, one thread) on "
             f"{SET_TITLES[SPEED_SET]}. {bench['created']}, commit {str(commit.get('hash'))[:10]}"
             f"{' (dirty tree)' if commit.get('dirty') else ''}, {hw['cpu']} ({hw['cores']} logical cores). "
             f"Load average (1, 5, 15 min) {', '.join(f'{x:.2f}' for x in load['before'])} before and "
             f"{', '.join(f'{x:.2f}' for x in load['after'])} after: "
             f"{load_note(load['before'], load['after']).split(': ', 1)[1]}. Sets: {size}. "
             f"Tools: {'; '.join(bench['tools'].values()) or 'none'}.", ""]
    head = ["codec and settings", *[f"{SET_TITLES.get(s, s)} bits/sample" for s in sets],
            f"encode samples/s ({SET_TITLES[SPEED_SET]})", f"decode samples/s ({SET_TITLES[SPEED_SET]})", "source"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    rows = [_measured_row(e, sets) for e in bench["codecs"].values()]
    rows += [_outside_row(r, sets) for r in bench["outside_project"]]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines + [""] + _notes(bench, sets)) + "\n"


def _notes(bench: dict, sets: Sequence[str]) -> list[str]:
    notes = []
    if bench["round_trips_ok"]:
        notes.append("Every round trip was bit-exact (every file, every codec run).")
    for f in bench["failures"]:
        notes.append(f"- ROUND TRIP FAILED: {f['codec']} on {f['file']} ({f['set']}): {f['error']}")
    for name, e in bench["codecs"].items():
        if e["missing_programs"]:
            notes.append(f"- {name} not measured: {', '.join(e['missing_programs'])} missing ({e['install']}).")
        elif e["options"]["absent"]:
            notes.append(f"- {name} not measured: the installed tools lack {e['options']['absent']}.")
    anchor = bench["anchor"]
    if anchor["error"]:
        notes.append(f"- No rows measured outside the project: {anchor['error']}.")
    diffs = []
    for name, e in bench["codecs"].items():
        d = (e.get("anchor") or {}).get("difference_bits_per_sample") or {}
        if d:
            diffs.append(f"{name} " + ", ".join(f"{SET_TITLES.get(s, s)} {_difference(v)}" for s, v in d.items()))
    if diffs:
        notes.append(f"Measured minus the anchor file's figures ({anchor['path']}), bits per sample: "
                     + "; ".join(diffs) + ".")
    if any(s not in anchor["sets"] for s in sets) and anchor["found"]:
        notes.append("The anchor file has no " + ", ".join(SET_TITLES.get(s, s) for s in sets
                                                            if s not in anchor["sets"]) + " column (n/a).")
    return notes


def write_outputs(bench: dict, out: Path) -> None:
    """Write the JSON record to ``out`` and the markdown table beside it (``.md``), each atomically (a temporary file
    renamed into place); both are rendered before either is written, so a failure leaves neither half-made."""
    out = Path(out)
    data = (json.dumps(bench, indent=2) + "\n").encode()
    md = markdown(bench).encode()
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out, lambda f: f.write(data))
    atomic_write_bytes(out.with_suffix(".md"), lambda f: f.write(md))


def load_set(name: str) -> list:
    """The utterances of a set named ``corpus:split`` (:func:`wavelab.data.load_split`).

    Raises:
        ValueError: not ``corpus:split``, or an unknown corpus or split; DataNotFoundError: no data.
    """
    corpus, sep, split = name.partition(":")
    if not sep:
        raise ValueError(f"a set is corpus:split (timit:test), not {name!r}")
    return load_split(corpus, split)


def main(argv: Sequence[str] | None = None) -> int:
    """The command line (see the module docstring).  Returns 0, or 1 when a round trip failed or no codec ran."""
    names = [c.name for c in CODECS]
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sets", nargs="+", default=list(DEFAULT_SETS), metavar="CORPUS:SPLIT")
    p.add_argument("--codecs", nargs="+", default=names, choices=names)
    p.add_argument("--limit", type=int, default=None, metavar="N", help="the first N utterances of each set")
    p.add_argument("--out", default=None, help=f"default {display_path(DEFAULT_OUT)} (with --quick: a temp dir)")
    p.add_argument("--anchor", default=str(ANCHOR_PATH), help="the anchor file (default %(default)s)")
    p.add_argument("--quick", action="store_true", help="smoke test: the 2 shortest utterances of TIMIT test")
    args = p.parse_args(argv)
    if args.quick:
        sets = {"timit:test": sorted(load_set("timit:test"), key=lambda u: (u.num_samples, u.id))[:2]}
    else:
        sets = {name: load_set(name)[: args.limit] for name in args.sets}
    out = Path(args.out) if args.out else (Path(tempfile.mkdtemp(prefix="lossless_codecs_")) / "lossless_codecs.json"
                                           if args.quick else DEFAULT_OUT)
    codecs = [c for c in CODECS if c.name in args.codecs]
    bench = run_benchmark(sets, codecs, Path(args.anchor), lambda line: print(line, flush=True), args.quick)
    write_outputs(bench, out)
    print(markdown(bench))
    print(f"wrote {out} and {out.with_suffix('.md')}")
    if bench["failures"]:
        print(f"{len(bench['failures'])} round trip(s) FAILED: see 'failures' in {out}", file=sys.stderr)
    return 0 if bench["round_trips_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
