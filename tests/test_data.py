"""Tests of wavelab.data: data roots and downloads, the TIMIT and LibriSpeech readers, the fixed splits, batching."""

from __future__ import annotations

import hashlib
import io
import tarfile
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from wavelab.audio import mu_law_decode
from wavelab.data import (
    TIMIT_PHONES,
    TIMIT_TEST_SPEAKERS,
    CorpusError,
    DataNotFoundError,
    DownloadError,
    Segment,
    Speaker,
    Utterance,
    bucket_batches,
    bucket_indices,
    data_root,
    download_corpus,
    load_corpus,
    load_librispeech,
    load_split,
    load_timit,
    random_segments,
    silence_code,
)
from wavelab.data import roots
from wavelab.data.timit import parse_height_cm

# --- builders of tiny synthetic corpora ------------------------------------------------------------------------------


def _pcm(n: int, seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(n) * 2000).astype(np.int16)


def _flac_bytes(n: int, seed: int) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, _pcm(n, seed), 16000, format="FLAC", subtype="PCM_16")
    return buf.getvalue()


SPKRINFO = """; ID Sex DR Use RecDate BirthDate Ht Race Edu Comments
CJF0  F  1  TRN  01/30/86  02/18/62  5'11"  WHT  BS
ABC0  M  2  TST  03/11/86  01/08/60  6'02"  WHT  MS   A COMMENT
"""


def _timit_utterance(folder: Path, stem: str, n: int, seed: int, upper: bool, fmt: str = "WAV",
                     phones: tuple[str, ...] = ("h#", "sh", "iy", "h#")) -> None:
    name = stem.upper() if upper else stem
    ext = (lambda e: e.upper()) if upper else (lambda e: e)
    folder.mkdir(parents=True, exist_ok=True)
    sf.write(folder / f"{name}.{ext('wav')}", _pcm(n, seed), 16000, format=fmt, subtype="PCM_16")
    cuts = np.linspace(0, n, len(phones) + 1).astype(int)
    (folder / f"{name}.{ext('phn')}").write_text(
        "".join(f"{a} {b} {p}\n" for a, b, p in zip(cuts[:-1], cuts[1:], phones)))
    (folder / f"{name}.{ext('wrd')}").write_text(f"{cuts[1]} {cuts[3]} she\n")
    (folder / f"{name}.{ext('txt')}").write_text(f"0 {n} She.\n")


def make_ldc_timit(root: Path) -> Path:
    """A 3-utterance LDC-layout TIMIT tree: TRAIN/DR1/FCJF0 (NIST SPHERE .WAV), TEST/DR2/MABC0, DOC/SPKRINFO.TXT."""
    _timit_utterance(root / "TRAIN" / "DR1" / "FCJF0", "sa1", 3000, 1, upper=True, fmt="NIST")
    _timit_utterance(root / "TRAIN" / "DR1" / "FCJF0", "si648", 2500, 2, upper=True, fmt="NIST")
    _timit_utterance(root / "TEST" / "DR2" / "MABC0", "sx10", 2000, 3, upper=True)
    (root / "DOC").mkdir()
    (root / "DOC" / "SPKRINFO.TXT").write_text(SPKRINFO)
    return root


def make_sample_timit(root: Path) -> Path:
    """A 2-speaker tree in the NLTK sample layout (dr1-fcjf0/, dr2-mabc0/, spkrinfo.txt)."""
    _timit_utterance(root / "dr1-fcjf0", "sa1", 3000, 1, upper=False)
    _timit_utterance(root / "dr2-mabc0", "sx10", 2000, 3, upper=False)
    (root / "spkrinfo.txt").write_text(SPKRINFO)
    return root


SPEAKERS_TXT = """; comment
;ID  |SEX| SUBSET           |MINUTES| NAME
1    | F | test-other       | 25.03 | Reader One
2    | M | train-clean-100  | 20.18 | |CBW|Simon
"""


def _snapshot(folder: Path) -> dict[str, tuple[int, float]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime) for p in folder.rglob("*")}


def _files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


# --- TIMIT reader ----------------------------------------------------------------------------------------------------


def test_timit_phone_set_has_61_distinct_symbols():
    assert len(TIMIT_PHONES) == 61 == len(set(TIMIT_PHONES))
    assert {"h#", "pau", "epi", "ax-h", "eng", "q", "dx", "nx"} <= set(TIMIT_PHONES)


@pytest.mark.parametrize("text, cm", [("5'6\"", 167.64), ("6'02\"", 187.96), ("4'9\"", 144.78), ("?", None)])
def test_height_feet_inches_to_cm(text, cm):
    assert parse_height_cm(text) == cm


def test_ldc_layout_is_read_with_speakers_labels_and_parts(tmp_path):
    root = make_ldc_timit(tmp_path / "TIMIT")
    before = _snapshot(root)
    utts = load_timit(root)
    assert [u.id for u in utts] == ["dr1-fcjf0/sa1", "dr1-fcjf0/si648", "dr2-mabc0/sx10"]
    f, m = utts[0].speaker, utts[2].speaker
    assert f == Speaker("dr1-fcjf0", "timit", "F", 180.34, 1)
    assert m == Speaker("dr2-mabc0", "timit", "M", 187.96, 2)
    assert [u.subset for u in utts] == ["train", "train", "test"]
    u = utts[0]
    assert u.phones == (Segment(0, 750, "h#"), Segment(750, 1500, "sh"), Segment(1500, 2250, "iy"),
                        Segment(2250, 3000, "h#"))
    assert u.words == (Segment(750, 2250, "she"),) and u.text == "She."
    assert u.num_samples == 3000 and np.array_equal(u.audio(), _pcm(3000, 1))
    assert u.audio() is u.audio()  # cached in memory
    assert not u.audio().flags.writeable
    # the LDC tree's own TRAIN/TEST parts are the splits; nothing was written under the root
    assert [x.id for x in load_split("timit", "test", root=root)] == ["dr2-mabc0/sx10"]
    assert len(load_split("timit", "train", root=root)) == 2
    assert _snapshot(root) == before


def test_sample_layout_and_missing_spkrinfo(tmp_path):
    root = make_sample_timit(tmp_path / "timit_sample")
    utts = load_timit(root)
    assert [(u.id, u.speaker.sex, u.speaker.height_cm, u.subset) for u in utts] == [
        ("dr1-fcjf0/sa1", "F", 180.34, None), ("dr2-mabc0/sx10", "M", 187.96, None)]
    (root / "spkrinfo.txt").unlink()
    utts = load_timit(root)  # no spkrinfo: sex and dialect region from the folder name, no height
    assert [(u.speaker.sex, u.speaker.dialect_region, u.speaker.height_cm) for u in utts] == [("F", 1, None),
                                                                                              ("M", 2, None)]


def test_bad_timit_labels_raise_naming_the_file(tmp_path):
    root = make_sample_timit(tmp_path / "timit_sample")
    phn = root / "dr1-fcjf0" / "sa1.phn"
    phn.write_text("0 100 h#\n100 200 xyz\n")
    with pytest.raises(CorpusError, match=r"sa1\.phn line 2: 'xyz' is not one of the 61 TIMIT phones"):
        load_timit(root)
    phn.write_text("0 100\n")
    with pytest.raises(CorpusError, match=r"sa1\.phn line 1"):
        load_timit(root)
    phn.unlink()
    with pytest.raises(CorpusError, match=r"sa1\.wav has no \.phn file"):
        load_timit(root)
    with pytest.raises(CorpusError, match="no TIMIT speaker folders"):
        load_timit(tmp_path / "timit_sample" / "dr1-fcjf0")


# --- LibriSpeech reader ----------------------------------------------------------------------------------------------


def test_librispeech_flat_and_nested_layouts(tmp_path):
    root = tmp_path / "librispeech_sample"
    (root / "train-clean-100").mkdir(parents=True)
    (root / "train-clean-100" / "2-20-0000.flac").write_bytes(_flac_bytes(1000, 5))
    (root / "test-other" / "1" / "10").mkdir(parents=True)
    (root / "test-other" / "1" / "10" / "1-10-0001.flac").write_bytes(_flac_bytes(1200, 6))
    (root / "SPEAKERS.TXT").write_text(SPEAKERS_TXT)
    utts = load_librispeech(root)
    assert [(u.id, u.subset, u.speaker.id, u.speaker.sex, u.text, u.phones) for u in utts] == [
        ("1-10-0001", "test-other", "1", "F", None, ()), ("2-20-0000", "train-clean-100", "2", "M", None, ())]
    assert utts[0].num_samples == 1200
    with pytest.raises(CorpusError, match="no dev-clean/ folder"):
        load_librispeech(root, subsets=("dev-clean",))
    (root / "SPEAKERS.TXT").write_text(SPEAKERS_TXT.replace("2    | M", "3    | M"))
    with pytest.raises(CorpusError, match=r"reader 2 is not listed in .*SPEAKERS\.TXT"):
        load_librispeech(root)


# --- the real samples and the fixed splits (skipped without the data) -----------------------------------------------


def test_real_timit_splits(timit_root):
    utts = load_corpus("timit", timit_root)
    train, test = load_split("timit", "train", timit_root), load_split("timit", "test", timit_root)
    valid = load_split("timit", "valid", timit_root)
    study = load_split("timit", "phoneme_study", timit_root)
    assert (len(utts), len(train), len(valid), len(test), len(study)) == (160, 100, 20, 40, 10)
    test_speakers = {u.speaker for u in test}
    train_speakers = {u.speaker for u in train}
    valid_speakers = {u.speaker for u in valid}
    assert {s.id for s in test_speakers} == set(TIMIT_TEST_SPEAKERS)
    assert {s.id for s in valid_speakers} == {"dr3-falk0", "dr3-madc0"}
    assert not test_speakers & train_speakers and not valid_speakers & (train_speakers | test_speakers)
    assert len(train_speakers) == 10 and {u.id for u in train + valid + test} == {u.id for u in utts}
    assert Counter(s.sex for s in test_speakers) == {"F": 2, "M": 2}
    assert Counter(s.sex for s in valid_speakers) == {"F": 1, "M": 1}
    assert Counter(s.sex for s in train_speakers) == {"F": 5, "M": 5}
    assert {u.speaker.id for u in study} == {"dr1-fvmh0"}
    assert all(u.speaker.id[4] == u.speaker.sex.lower() for u in utts)  # sex agrees with the folder name
    heights = {u.speaker.id: u.speaker.height_cm for u in utts}
    assert heights["dr6-mbma1"] == 187.96 and heights["dr8-fbcg1"] == 144.78  # 6'02" and 4'9"
    assert {p.label for u in utts for p in u.phones} == set(TIMIT_PHONES)  # the sample uses all 61 phones
    for u in utts:
        assert u.phones[0].start == 0 and u.phones[-1].end <= u.num_samples, u.id
        assert all(a.end == b.start for a, b in zip(u.phones, u.phones[1:])), u.id
        assert u.text and u.words
    assert load_corpus("timit", timit_root)[0] is utts[0]  # loaded once per root: audio caches are shared


def test_real_librispeech_splits(librispeech_root):
    train = load_split("librispeech", "train", librispeech_root)
    valid = load_split("librispeech", "valid", librispeech_root)
    test = load_split("librispeech", "test", librispeech_root)
    assert (len(train), len(valid), len(test)) == (226, 25, 100)
    train_speakers, test_speakers = {u.speaker for u in train}, {u.speaker for u in test}
    valid_ids = sorted(int(u.speaker.id) for u in valid)
    assert len(set(valid_ids)) == 25 and max(valid_ids) < min(int(s.id) for s in train_speakers)  # 25 smallest ids
    assert Counter(s.sex for s in train_speakers | {u.speaker for u in valid}) == {"M": 126, "F": 125}
    assert all(u.subset == "train-clean-100" for u in valid) and not {u.speaker for u in valid} & train_speakers
    assert len(test_speakers) == 10 and Counter(s.sex for s in test_speakers) == {"F": 5, "M": 5}
    assert not train_speakers & test_speakers
    assert all(u.subset == "train-clean-100" for u in train) and all(u.subset == "test-other" for u in test)


def test_the_joined_corpus_is_the_union_of_both_splits_interleaved(timit_root, librispeech_root):
    """``timit+librispeech``: each split is the union of the corpora's (about 52 minutes and 236 speakers of
    training speech), alternating corpora so that a round-robin validation subset draws on both."""
    from wavelab.train import curve_utterances

    for split in ("train", "valid", "test"):
        parts = [load_split(c, split) for c in ("timit", "librispeech")]
        joined = load_split("timit+librispeech", split)
        assert sorted(u.id for u in joined) == sorted(u.id for p in parts for u in p), split
        assert len(joined) == sum(len(p) for p in parts)
        n = min(len(p) for p in parts)
        assert [u.id for u in joined[:2 * n:2]] == [u.id for u in parts[0][:n]]  # corpora alternate
        assert [u.id for u in joined[1:2 * n:2]] == [u.id for u in parts[1][:n]]
    train = load_split("timit+librispeech", "train")
    assert len({u.speaker.id for u in train}) == 236
    assert 45 < sum(u.num_samples for u in train) / 16000 / 60 < 60  # minutes
    curve = curve_utterances("timit+librispeech", 4)
    timit_valid = load_split("timit", "valid")
    # the validation curve reads both corpora, and both TIMIT validation speakers
    assert [u.id in {v.id for v in timit_valid} for u in curve] == [True, False, True, False]
    assert len({u.speaker.id for u in curve}) == 4
    assert curve_utterances("timit", 2) == curve_utterances("timit+librispeech", 4)[::2]
    with pytest.raises(ValueError, match="splits"):
        load_split("timit+librispeech", "phoneme_study")
    with pytest.raises(ValueError, match="own data root"):
        load_split("timit+librispeech", "train", timit_root)


def test_unknown_corpus_or_split():
    with pytest.raises(ValueError, match="unknown corpus"):
        load_split("wsj", "train")
    with pytest.raises(ValueError, match="phoneme_study"):
        load_split("librispeech", "phoneme_study")


# --- data roots ------------------------------------------------------------------------------------------------------


def test_wavelab_data_is_searched_first_in_every_form(tmp_path, monkeypatch, isolated_data_env):
    holder = tmp_path / "holder"
    make_sample_timit(holder / "timit_sample")
    monkeypatch.setenv("WAVELAB_DATA", str(holder))
    assert data_root("timit", download=False) == holder / "timit_sample"
    monkeypatch.setenv("WAVELAB_DATA", str(holder / "timit_sample"))
    assert data_root("timit", download=False) == holder / "timit_sample"
    make_ldc_timit(tmp_path / "ldc" / "TIMIT")
    monkeypatch.setenv("WAVELAB_DATA", str(tmp_path / "ldc"))
    assert data_root("timit", download=False) == tmp_path / "ldc" / "TIMIT"


def test_shared_folder_is_found(shared_data, isolated_data_env):
    assert data_root("timit", download=False) == shared_data / "timit_sample"
    assert data_root("librispeech", download=False) == shared_data / "librispeech_sample"


def test_missing_data_lists_every_place_looked(tmp_path, monkeypatch, isolated_data_env):
    monkeypatch.setattr(roots, "shared_data_dir", lambda: tmp_path / "no_shared")
    monkeypatch.setenv("WAVELAB_DATA", str(tmp_path / "nowhere"))
    monkeypatch.setenv("WAVELAB_DATA_URL_LIBRISPEECH", (tmp_path / "no_server").as_uri())
    with pytest.warns(UserWarning, match="holds no librispeech corpus"):
        with pytest.raises(DataNotFoundError) as err:
            data_root("librispeech", progress=False)
    msg = str(err.value)
    for place in ("nowhere", "no_shared", str(isolated_data_env / "librispeech_sample"), "download failed",
                  "set WAVELAB_DATA"):
        assert place in msg
    assert _files(isolated_data_env) == []
    monkeypatch.delenv("WAVELAB_DATA")
    with pytest.raises(DataNotFoundError, match=r"\$WAVELAB_DATA \(not set\).*downloads disabled"):
        data_root("timit", download=False)


# --- downloads from a local file:// source ---------------------------------------------------------------------------


def _manifest(path: Path, files: dict[str, bytes]) -> Path:
    path.write_text("".join(f"{hashlib.sha256(b).hexdigest()}  {rel}\n" for rel, b in sorted(files.items())))
    return path


def _timit_zip(server: Path, files: dict[str, bytes]) -> Path:
    server.mkdir(exist_ok=True)
    with zipfile.ZipFile(server / "timit.zip", "w") as z:
        for rel, data in files.items():
            z.writestr(f"timit/{rel}", data)
        z.writestr("timit/extra_not_in_manifest.txt", b"ignored")
    return server / "timit.zip"


def _timit_files(tmp_path: Path) -> dict[str, bytes]:
    src = make_sample_timit(tmp_path / "src")
    return {p.relative_to(src).as_posix(): p.read_bytes() for p in sorted(src.rglob("*")) if p.is_file()}


def test_timit_download_via_env_url_is_verified_and_loadable(tmp_path, monkeypatch, isolated_data_env, capsys):
    files = _timit_files(tmp_path)
    _timit_zip(tmp_path / "server", files)
    manifest = _manifest(tmp_path / "timit_sample.sha256", files)
    monkeypatch.setattr("wavelab.data.download.manifest_path", lambda corpus: manifest)
    monkeypatch.setattr(roots, "shared_data_dir", lambda: tmp_path / "no_shared")
    monkeypatch.setenv("WAVELAB_DATA_URL_TIMIT", (tmp_path / "server").as_uri())
    root = data_root("timit", progress=True)
    assert root == isolated_data_env / "timit_sample"
    assert "timit.zip" in capsys.readouterr().err  # the tqdm progress bar
    assert sorted(p.relative_to(root).as_posix() for p in _files(root)) == sorted(files)
    assert not (root / "extra_not_in_manifest.txt").exists()
    assert [p.name for p in isolated_data_env.iterdir()] == ["timit_sample"]  # no archive or temp folder left
    assert [u.id for u in load_timit(root)] == ["dr1-fcjf0/sa1", "dr2-mabc0/sx10"]
    assert data_root("timit") == root  # found in the cache the second time


def test_corrupt_archive_raises_and_leaves_nothing(tmp_path, isolated_data_env):
    files = _timit_files(tmp_path)
    archive = _timit_zip(tmp_path / "server", files)
    manifest = _manifest(tmp_path / "m.sha256", files)
    data = bytearray(archive.read_bytes())
    for i in range(100, len(data) - 200, 97):  # damage the members' data, keep the zip directory
        data[i] ^= 0xFF
    archive.write_bytes(bytes(data))
    with pytest.raises(DownloadError, match="corrupt|SHA-256"):
        download_corpus("timit", url_base=(tmp_path / "server").as_uri(), manifest=manifest, progress=False)
    assert _files(isolated_data_env) == []


def test_archive_with_other_content_or_missing_files_is_refused(tmp_path, isolated_data_env):
    files = _timit_files(tmp_path)
    _timit_zip(tmp_path / "server", {**files, "dr1-fcjf0/sa1.txt": b"0 3000 Something else.\n"})
    manifest = _manifest(tmp_path / "m.sha256", files)
    url = (tmp_path / "server").as_uri()
    with pytest.raises(DownloadError, match=r"dr1-fcjf0/sa1\.txt extracted from timit\.zip has SHA-256"):
        download_corpus("timit", url_base=url, manifest=manifest, progress=False)
    assert _files(isolated_data_env) == []
    _timit_zip(tmp_path / "server", {k: v for k, v in files.items() if k != "spkrinfo.txt"})
    with pytest.raises(DownloadError, match=r"lack 1 file\(s\).*spkrinfo\.txt"):
        download_corpus("timit", url_base=url, manifest=manifest, progress=False)
    assert _files(isolated_data_env) == []


def test_librispeech_download_selects_sample_files_from_both_archives(tmp_path, isolated_data_env):
    server = tmp_path / "server"
    server.mkdir()
    members = {
        "test-other.tar.gz": {"LibriSpeech/SPEAKERS.TXT": SPEAKERS_TXT.encode(),
                              "LibriSpeech/test-other/1/10/1-10-0001.flac": _flac_bytes(1200, 6),
                              "LibriSpeech/test-other/1/10/1-10-0002.flac": _flac_bytes(900, 7)},  # not in sample
        "train-clean-100.tar.gz": {"LibriSpeech/SPEAKERS.TXT": SPEAKERS_TXT.encode(),
                                   "LibriSpeech/train-clean-100/2/20/2-20-0000.flac": _flac_bytes(1000, 5)},
    }
    for name, content in members.items():
        with tarfile.open(server / name, "w:gz") as t:
            for member, data in content.items():
                info = tarfile.TarInfo(member)
                info.size = len(data)
                t.addfile(info, io.BytesIO(data))
    wanted = {"SPEAKERS.TXT": SPEAKERS_TXT.encode(),
              "test-other/1/1-10-0001.flac": members["test-other.tar.gz"]["LibriSpeech/test-other/1/10/1-10-0001.flac"],
              "train-clean-100/2-20-0000.flac": members["train-clean-100.tar.gz"][
                  "LibriSpeech/train-clean-100/2/20/2-20-0000.flac"]}
    root = download_corpus("librispeech", url_base=server.as_uri(), manifest=_manifest(tmp_path / "m", wanted),
                           progress=False)
    assert sorted(p.relative_to(root).as_posix() for p in _files(root)) == sorted(wanted)
    assert [(u.id, u.subset) for u in load_librispeech(root)] == [("1-10-0001", "test-other"),
                                                                   ("2-20-0000", "train-clean-100")]
    assert not (isolated_data_env / "downloads").exists()  # archives deleted after extraction


def test_committed_manifests_match_the_shared_data(shared_data):
    from wavelab.data.download import manifest_path, read_manifest, sha256_file

    for corpus, n in (("timit", 660), ("librispeech", 353)):
        entries = read_manifest(manifest_path(corpus))
        assert len(entries) == n
        folder = shared_data / roots.SAMPLE_DIRS[corpus]
        for rel in list(entries)[:: max(1, n // 20)]:  # a spread-out subset, to stay fast
            assert sha256_file(folder / rel) == entries[rel], rel


# --- batching --------------------------------------------------------------------------------------------------------


@pytest.fixture
def tiny_utterances(tmp_path) -> list[Utterance]:
    """Five mono 16 kHz FLAC utterances of 300, 1200, 2500, 2500 and 700 samples."""
    utts = []
    for i, n in enumerate((300, 1200, 2500, 2500, 700)):
        path = tmp_path / f"u{i}.flac"
        path.write_bytes(_flac_bytes(n, 10 + i))
        speaker = Speaker(f"s{i}", "librispeech", "F")
        utts.append(Utterance(id=f"u{i}", corpus="librispeech", path=path, speaker=speaker))
    return utts


def test_silence_code_decodes_to_zero():
    assert silence_code(16) == 32768 and silence_code(8) == 128
    for bits in (8, 16):
        assert abs(float(mu_law_decode(torch.tensor(silence_code(bits)), bits))) < 1e-4


def _take(it, n):
    return [next(it) for _ in range(n)]


def _is_slice_of(row: torch.Tensor, full: torch.Tensor) -> bool:
    L = len(row)
    return any(torch.equal(full[o:o + L], row) for o in range(len(full) - L + 1))


@pytest.mark.parametrize("bits", [8, 16])
def test_random_segments_are_real_slices_padded_with_silence(tiny_utterances, bits):
    L = 1000
    codes_by_len = {u.id: u.codes(bits) for u in tiny_utterances}
    for codes, lengths in _take(random_segments(tiny_utterances, L, 6, bits=bits, seed=3), 4):
        assert codes.shape == (6, L) and codes.dtype == torch.int64 and lengths.dtype == torch.int64
        assert codes.min() >= 0 and codes.max() <= 2**bits - 1
        for row, n in zip(codes, lengths.tolist()):
            assert n in (L, 300, 700)  # whole short utterances, else a full segment
            assert (row[n:] == silence_code(bits)).all()
            assert any(_is_slice_of(row[:n], full) for full in codes_by_len.values() if len(full) >= n)


def test_random_segments_determinism_resume_and_ranks(tiny_utterances):
    def stream(**kw):
        return random_segments(tiny_utterances, 500, 4, **kw)

    first = _take(stream(seed=7), 6)
    assert not torch.equal(first[0][0], first[1][0])  # the stream moves on from batch to batch
    again = _take(stream(seed=7), 6)
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(first, again))
    resumed = _take(stream(seed=7, start_step=4), 2)
    assert all(torch.equal(a[0], b[0]) for a, b in zip(first[4:], resumed))
    other_seed = _take(stream(seed=8), 6)
    assert not all(torch.equal(a[0], b[0]) for a, b in zip(first, other_seed))
    rank0 = _take(stream(seed=7, rank=0, world_size=2), 3)
    rank1 = _take(stream(seed=7, rank=1, world_size=2), 3)
    assert not any(torch.equal(a[0], b[0]) for a, b in zip(rank0, rank1))


def test_length_weighting_prefers_long_utterances(tiny_utterances):
    def short_rows(weighting):
        batches = _take(random_segments(tiny_utterances, 2500, 64, seed=1, weighting=weighting), 5)
        return sum(int((lengths == 300).sum()) for _, lengths in batches)

    # u0 (300 samples) is 1/5 of the utterances but 300/7200 of the samples: expected 64 vs 13 of 320 rows
    assert short_rows("uniform") > 2 * short_rows("length")


def test_random_segments_reject_bad_arguments(tiny_utterances):
    with pytest.raises(ValueError, match="empty"):
        random_segments([], 100, 2)
    with pytest.raises(ValueError, match="rank"):
        random_segments(tiny_utterances, 100, 2, rank=2, world_size=2)
    with pytest.raises(ValueError, match="weighting"):
        random_segments(tiny_utterances, 100, 2, weighting="loudness")
    with pytest.raises(ValueError, match="bits"):
        random_segments(tiny_utterances, 100, 2, bits=12)


@pytest.mark.parametrize("max_frames", [1, 2500, 5000, 100_000])
def test_bucket_batches_cover_each_utterance_once(tiny_utterances, max_frames):
    by_id = {u.id: u for u in tiny_utterances}
    seen = []
    for batch in bucket_batches(tiny_utterances, max_frames=max_frames):
        B, T = batch.codes.shape
        assert B == len(batch.ids) == len(batch.lengths) and T == int(batch.lengths.max())
        assert B == 1 or B * T <= max_frames
        for row, n, uid in zip(batch.codes, batch.lengths.tolist(), batch.ids):
            assert n == by_id[uid].num_samples
            assert torch.equal(row[:n], by_id[uid].codes())
            assert (row[n:] == silence_code(16)).all()
        seen += batch.ids
    assert sorted(seen) == sorted(by_id)


def test_bucket_indices_group_similar_lengths(tiny_utterances):
    plan = bucket_indices(tiny_utterances, max_frames=5000)
    assert plan == [[0, 4, 1], [2, 3]]  # lengths 300, 700, 1200 | 2500, 2500
    with pytest.raises(ValueError, match="max_frames"):
        bucket_indices(tiny_utterances, max_frames=0)
