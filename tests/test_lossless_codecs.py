"""benchmarks/lossless_codecs.py: bits per sample over a set is a ratio of sums, a round trip that changes a sample
is a failure naming the codec and the file, a missing codec is reported and the others measured, the anchor file's
codecs measured outside the project are parsed with their figures and labels, and the outputs appear whole or not at
all.  Fake codecs are small Python commands; only the tests marked so use Debian's ``flac`` (none needs flake,
wavpack or ffmpeg)."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys

import numpy as np
import pytest

from wavelab.data import Recording
from wavelab.settings import PROJECT_ROOT


def _load_script():
    name = "lossless_codecs_benchmark"
    spec = importlib.util.spec_from_file_location(name, PROJECT_ROOT / "benchmarks" / "lossless_codecs.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


lc = _load_script()
PY = sys.executable
COPY = (PY, "-c", "import shutil, sys; shutil.copyfile(sys.argv[1], sys.argv[2])", lc.SRC, lc.DST)
# copies the WAV and flips the lowest bit of sample 5 (after soundfile's 44-byte header)
FLIP = (PY, "-c", ("import sys; d = bytearray(open(sys.argv[1], 'rb').read()); d[44 + 2 * 5] ^= 1; "
                   "open(sys.argv[2], 'wb').write(d)"), lc.SRC, lc.DST)
COPY_CODEC = lc.Codec("copy", "copy (WAV as is)", "", "wav", COPY, COPY)
FLIP_CODEC = lc.Codec("flipper", "flips sample 5", "", "wav", COPY, FLIP)

SYNTHETIC_ANCHOR = """# anchors
| codec and settings | TIMIT sample test (2 utt., 1,000 samples) | LibriSpeech sample test-other (3 utt., 2,000) \
| encode / decode samples/s |
|---|---|---|---|
| `flac -8` (flac 1.4.2, default padding) | 8.100 | 9.000 | 1.7e7 / 2.5e7 |
| Monkey's Audio `-c4000` (extra high) | **6.850** | 8.323 | 8.9e6 / 7.8e6 |
| MPEG-4 ALS reference encoder (RM23) `-a` | 6.797 | 8.358 | 5.0e5 / 9.9e6 |
| paq8px v216 `-8` | 6.482 | not measured | 9.3e3 / 9.3e3 |
| SAC, same build, `--high` | **6.374** | **8.047** | 4.3e3 / 1.1e5 |

Text after the table.
"""


def _recording(name: str, n: int, seed: int = 0) -> Recording:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    x = 3000 * np.sin(2 * np.pi * 220 * t / 16000) + rng.normal(0, 200, n)
    return Recording(name, np.clip(np.round(x), -32768, 32767).astype(np.int16))


def _require_flac() -> None:
    if shutil.which("flac") is None:
        pytest.skip("Debian's flac is not installed: apt-get install flac (scripts/system_deps.sh does it as root)")


def _fake_bench(sets, codecs, tmp_path, anchor_text=SYNTHETIC_ANCHOR):
    anchor = tmp_path / "anchor.md"
    anchor.write_text(anchor_text)
    return lc.run_benchmark(sets, codecs, anchor, log=lambda line: None)


def test_bits_per_sample_over_a_set_is_total_bytes_over_total_samples():
    assert lc.bits_per_sample(1000, 4000) == 2.0
    with pytest.raises(ValueError):
        lc.bits_per_sample(10, 0)
    short, long = _recording("short", 500), _recording("long", 9500, seed=1)
    result = lc.bench_set([COPY_CODEC], [short, long], "toy", log=lambda line: None)["copy"]
    sizes = [44 + 2 * 500, 44 + 2 * 9500]  # the WAV copied as is: header + 2 bytes a sample
    assert result["bytes"] == sum(sizes) and result["samples"] == 10000 and result["files"] == 2
    assert result["bits_per_sample"] == pytest.approx(8 * sum(sizes) / 10000)
    mean_of_ratios = np.mean([8 * b / n for b, n in zip(sizes, (500, 9500))])
    assert abs(result["bits_per_sample"] - mean_of_ratios) > 0.3  # the short file's header weighs less in the sum
    assert result["round_trip_ok"] and result["encode_cpu_s"] > 0 and result["encode_samples_per_s"] > 0


def test_a_round_trip_that_changes_a_sample_is_a_failure_naming_codec_and_file(tmp_path):
    pcm = _recording("x", 800).pcm
    wav = tmp_path / "x.wav"
    lc.sf.write(wav, pcm, 16000, subtype="PCM_16", format="WAV")
    with pytest.raises(lc.RoundTripError) as err:
        lc.round_trip(FLIP_CODEC, wav, pcm, tmp_path, "dr9-test0/sa1 (/data/sa1.wav)")
    assert err.value.codec == "flipper" and err.value.file == "dr9-test0/sa1 (/data/sa1.wav)"
    assert "1 of 800 decoded samples differ" in str(err.value) and "first at sample 5" in str(err.value)

    bench = _fake_bench({"timit:test": [_recording("good", 600), _recording("bad", 700, 2)]},
                        [COPY_CODEC, FLIP_CODEC], tmp_path)
    flipped = bench["codecs"]["flipper"]["results"]["timit:test"]
    assert not flipped["round_trip_ok"] and flipped["bits_per_sample"] is None
    assert [(f["codec"], f["file"], f["kind"]) for f in flipped["failures"]] == [("flipper", "good", "mismatch"),
                                                                                ("flipper", "bad", "mismatch")]
    assert bench["codecs"]["copy"]["results"]["timit:test"]["round_trip_ok"] and not bench["round_trips_ok"]
    md = lc.markdown(bench)
    assert "round trip FAILED (2 files)" in md and "ROUND TRIP FAILED: flipper on bad" in md


def test_a_failing_codec_process_is_recorded_with_its_error(tmp_path):
    crash = lc.Codec("crash", "crash", "", "wav", (PY, "-c", "import sys; sys.exit('no such format')",
                                                  lc.SRC, lc.DST), COPY)
    result = lc.bench_set([crash], [_recording("u1", 300)], "toy", log=lambda line: None)["crash"]
    (failure,) = result["failures"]
    assert failure["kind"] == "process" and failure["file"] == "u1" and "no such format" in failure["error"]
    assert not result["round_trip_ok"] and result["bits_per_sample"] is None


def test_a_missing_codec_is_reported_and_the_others_are_measured(tmp_path, monkeypatch):
    absent = lc.Codec("absent", "absent codec", "", "x", ("wavelab-no-such-encoder", lc.SRC, lc.DST), COPY)
    bench = _fake_bench({"timit:test": [_recording("u1", 400)]}, [absent, COPY_CODEC], tmp_path)
    assert bench["missing_codecs"] == ["absent"] and bench["round_trips_ok"]
    assert bench["codecs"]["absent"]["missing_programs"] == ["wavelab-no-such-encoder"]
    assert bench["codecs"]["absent"]["results"] == {}
    assert bench["codecs"]["copy"]["results"]["timit:test"]["round_trip_ok"]
    assert "| absent codec | missing |" in lc.markdown(bench)

    monkeypatch.setenv("PATH", str(tmp_path))  # none of the real codecs' programs is found
    entries = lc.prepare_codecs(lc.CODECS, log=lambda line: None)
    assert not any(e["runnable"] for e in entries.values())
    assert entries["flake-12"]["install"] == "apt-get install flake flac"
    assert entries["wavpack-hhx6"]["install"] == "apt-get install wavpack"  # wvunpack comes with it
    assert entries["tta"]["install"] == "apt-get install ffmpeg"


def test_options_absent_from_the_installed_help_leave_the_codec_out():
    help_cmd = (PY, "-c", "print('usage: -8, --best')")
    codec = lc.Codec("old", "old", "", "wav", COPY, COPY, ((help_cmd, ("-8,", "--no-seektable")),))
    entry = lc.prepare_codecs([codec], log=lambda line: None)["old"]
    assert not entry["runnable"] and [o for _, o in entry["options"]["absent"]] == ["--no-seektable"]


def test_the_anchor_parser_returns_the_outside_project_rows_with_figures_and_labels(tmp_path):
    table = lc.parse_anchor_table(SYNTHETIC_ANCHOR)
    assert table["sets"]["timit:test"]["samples"] == 1000 and table["sets"]["librispeech:test"]["utterances"] == 3
    assert table["rows"][0]["key"] == "flac -8"
    path = tmp_path / "anchor.md"
    path.write_text(SYNTHETIC_ANCHOR)
    outside = lc.read_anchor(path)["outside_project"]
    assert [r["label"] for r in outside] == ["Monkey's Audio `-c4000` (extra high)",
                                             "MPEG-4 ALS reference encoder (RM23) `-a`", "paq8px v216 `-8`",
                                             "SAC, same build, `--high`"]
    mac, als, paq, sac = outside
    assert als["encode_samples_per_s"] == 5.0e5
    assert mac["bits_per_sample"] == {"timit:test": 6.85, "librispeech:test": 8.323}
    assert (mac["encode_samples_per_s"], mac["decode_samples_per_s"]) == (8.9e6, 7.8e6)
    assert paq["bits_per_sample"]["librispeech:test"] is None and sac["bits_per_sample"]["timit:test"] == 6.374
    assert all(r["measured"] == "measured outside the project" and r["provenance"] == lc.display_path(path)
               for r in outside)
    with pytest.raises(ValueError):
        lc.parse_anchor_table("no table here")


def test_the_real_anchor_file_parses_into_outside_rows_and_rows_for_every_packaged_codec():
    if not lc.ANCHOR_PATH.is_file():
        pytest.skip(f"the anchor file is not available at {lc.ANCHOR_PATH}")
    anchor = lc.read_anchor(lc.ANCHOR_PATH)
    assert anchor["error"] is None and anchor["path"].endswith("anchors/lossless_codecs.md")
    outside = anchor["outside_project"]
    for prefix in lc.OUTSIDE_PREFIXES:
        assert any(lc.anchor_key(r["label"]).startswith(prefix) for r in outside), prefix
    for r in outside:
        assert r["measured"] == lc.OUTSIDE_LABEL and r["provenance"] == anchor["path"]
        assert 4 < r["bits_per_sample"]["timit:test"] < 12 and r["encode_samples_per_s"] > 0
    keys = {r["key"] for r in anchor["rows"]}
    assert {c.anchor_key for c in lc.CODECS} <= keys  # each packaged codec has its anchor row to compare with
    assert not {lc.anchor_key(r["label"]) for r in outside} & {c.anchor_key for c in lc.CODECS}


def test_outputs_are_written_whole_or_not_at_all(tmp_path, monkeypatch):
    out = tmp_path / "results" / "lossless_codecs.json"
    with pytest.raises(TypeError):  # the JSON cannot be rendered: nothing may appear
        lc.write_outputs({"not json": object()}, out)
    assert not out.parent.exists() or not any(out.parent.iterdir())

    anchor = tmp_path / "anchor.md"
    anchor.write_text(SYNTHETIC_ANCHOR)
    monkeypatch.setattr(lc, "CODECS", (COPY_CODEC, FLIP_CODEC))

    def load_set(name):
        if name == "timit:valid":
            raise OSError("disk went away")  # the run fails after the first set was measured
        return [_recording("u1", 500)]

    monkeypatch.setattr(lc, "load_set", load_set)
    args = ["--anchor", str(anchor), "--out", str(out), "--codecs", "copy"]
    with pytest.raises(OSError):
        lc.main(["--sets", "timit:test", "timit:valid", *args])
    assert not out.parent.exists() or not any(out.parent.iterdir())

    assert lc.main(["--sets", "timit:test", *args]) == 0
    assert sorted(p.name for p in out.parent.iterdir()) == ["lossless_codecs.json", "lossless_codecs.md"]
    bench = json.loads(out.read_text())
    assert bench["round_trips_ok"] and bench["sets"]["timit:test"] == {
        "utterances": 1, "samples": 500, "anchor_utterances": 2, "anchor_samples": 1000}
    assert "measured outside the project" in out.with_suffix(".md").read_text()
    assert lc.main(["--sets", "timit:test", "--anchor", str(anchor), "--out", str(out), "--codecs", "flipper"]) == 1


def test_flac_round_trips_bit_exact_and_its_default_padding_costs_8_kib_a_file():
    _require_flac()
    codecs = [c for c in lc.CODECS if c.name in ("flac-8", "flac-8-nopad")]
    assert all(not lc.check_options(c)["absent"] for c in codecs)
    assert lc.tool_version("flac").startswith("flac ")
    res = lc.bench_set(codecs, [_recording("a", 16000), _recording("b", 8000, 3)], "toy", log=lambda line: None)
    padded, bare = res["flac-8"], res["flac-8-nopad"]
    assert padded["round_trip_ok"] and bare["round_trip_ok"] and bare["bits_per_sample"] < 16
    assert padded["bytes"] - bare["bytes"] >= 2 * 8192


def test_quick_run_on_timit_with_flac(timit_root, tmp_path):
    _require_flac()
    out = tmp_path / "quick.json"
    assert lc.main(["--quick", "--codecs", "flac-8-nopad", "--out", str(out)]) == 0
    bench = json.loads(out.read_text())
    assert bench["quick"] and bench["sets"]["timit:test"]["utterances"] == 2 and bench["round_trips_ok"]
    result = bench["codecs"]["flac-8-nopad"]["results"]["timit:test"]
    assert result["files"] == 2 and 4 < result["bits_per_sample"] < 12
    assert "SMOKE RUN" in out.with_suffix(".md").read_text()
