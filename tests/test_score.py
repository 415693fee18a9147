"""python -m wavelab score: bpf per file and in total (eq. 11), every bad file reported with its reason while the good
ones are still scored, exit status 2 when any failed, no traceback."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.codec_helpers import make_run, speech_pcm, write_wav
from wavelab.__main__ import main
from wavelab.audio import pcm16_to_codes
from wavelab.models import REGISTRY
from wavelab.train import load_run

torch.set_num_threads(1)
REPO = Path(__file__).resolve().parent.parent


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("score") / "lstm", "lstm", seed=0, s=16)


def _model_bits(run_dir, pcm) -> float:
    model, _, _ = load_run(run_dir)
    codes = pcm16_to_codes(pcm)
    with torch.no_grad():
        return float(model(codes[None], torch.tensor([len(codes)])).nll) / math.log(2)


def _bad_files(tmp_path: Path, pcm: np.ndarray) -> dict[str, tuple[Path, str]]:
    """Every kind of file score must refuse: {name: (path, a word its reason must contain)}."""
    bad = {}
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    bad["empty"] = (empty, "empty")
    whole = write_wav(tmp_path / "whole.wav", pcm).read_bytes()
    cut = tmp_path / "truncated.wav"
    cut.write_bytes(whole[: len(whole) // 2])
    bad["truncated"] = (cut, "truncated")
    bad["stereo"] = (write_wav(tmp_path / "stereo.wav", np.stack([pcm, pcm], axis=1)), "2 channels")
    bad["8-bit"] = (write_wav(tmp_path / "u8.wav", pcm, subtype="PCM_U8"), "PCM_U8")
    bad["float32"] = (write_wav(tmp_path / "f32.wav", pcm.astype(np.float32) / 32768, subtype="FLOAT"), "FLOAT")
    bad["8 kHz"] = (write_wav(tmp_path / "8k.wav", pcm, sample_rate=8000), "8000 Hz")
    text = tmp_path / "notes.wav"
    text.write_text("these are not audio samples\n" * 20)
    bad["text"] = (text, "cannot read")
    return bad


def test_bad_files_are_reported_and_the_good_ones_still_scored(run, tmp_path, capsys, shared_data):
    good_a, good_b = speech_pcm(1000, index=0), speech_pcm(2600, index=1)
    a = write_wav(tmp_path / "good_a.wav", good_a)
    bad = _bad_files(tmp_path, good_a[:500])
    folder = tmp_path / "folder"
    folder.mkdir()
    write_wav(folder / "good_b.wav", good_b)
    (folder / "readme.txt").write_text("not scored: not an audio suffix")
    code, out, err = run_cli(capsys, "score", "--run-dir", run, a, *[p for p, _ in bad.values()], folder,
                             tmp_path / "missing.wav")
    assert code == 2
    assert "Traceback" not in err and "representation mulaw" in out
    for name, (path, reason) in bad.items():
        line = next((ln for ln in err.splitlines() if str(path) in ln), None)
        assert line is not None and reason in line, (name, err)
        assert str(path) not in out  # not scored
    assert str(tmp_path / "missing.wav") in err and "does not exist" in err
    assert "readme.txt" not in out + err
    # the good files: each file's bpf is the model's, and the total is eq. 11 (total bits / total frames)
    bits_a, bits_b = _model_bits(run, good_a), _model_bits(run, good_b)
    lines = {Path(ln.split()[-1]).name: ln.split() for ln in out.splitlines() if ln.strip().endswith(".wav")}
    assert set(lines) == {"good_a.wav", "good_b.wav"}
    assert float(lines["good_a.wav"][0]) == pytest.approx(bits_a / len(good_a), abs=1e-3)
    assert float(lines["good_b.wav"][0]) == pytest.approx(bits_b / len(good_b), abs=1e-3)
    total = next(ln for ln in out.splitlines() if ln.startswith("total:"))
    eq11 = (bits_a + bits_b) / (len(good_a) + len(good_b))
    assert float(total.split()[1]) == pytest.approx(eq11, abs=1e-3)
    assert f"{len(good_a) + len(good_b):,} frames" in total


def test_all_good_exits_zero_and_nothing_scorable_exits_two(run, tmp_path, capsys, shared_data):
    a = write_wav(tmp_path / "a.wav", speech_pcm(800))
    code, out, err = run_cli(capsys, "score", "--run-dir", run, a)
    assert code == 0 and err == "" and "total:" in out
    empty_folder = tmp_path / "nothing"
    empty_folder.mkdir()
    code, out, err = run_cli(capsys, "score", "--run-dir", run, empty_folder)
    assert code == 2 and "no audio files" in err and "no file could be scored" in out
    code, _, err = run_cli(capsys, "score", "--run-dir", tmp_path / "no-run", a)
    assert code == 2 and "does not exist" in err


def test_score_from_the_module_entry_point_has_no_traceback(run, tmp_path, shared_data):
    good = write_wav(tmp_path / "good.wav", speech_pcm(600))
    stereo = write_wav(tmp_path / "stereo.wav", np.zeros((300, 2), dtype=np.int16))
    r = subprocess.run([sys.executable, "-m", "wavelab", "score", "--run-dir", str(run), str(good), str(stereo)],
                       cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert str(stereo) in r.stderr and "channels" in r.stderr and str(good) in r.stdout


REPRESENTATIONS = ("mulaw", "linear", "pcm16")
GRID = [(name, rep) for name in REGISTRY for rep in REPRESENTATIONS]


@pytest.mark.parametrize("name,representation", GRID, ids=[f"{n}-{r}" for n, r in GRID])
def test_every_model_and_representation_scores_through_the_cli(name, representation, tmp_path, capsys, shared_data):
    """Every registry model in every representation prints a file's bpf: the model's own figure on the codes of
    that representation (computed here without the CLI), marked ``<=`` where it is a bound, with the estimator."""
    from wavelab.representations import get_representation

    # SaShiMi's 16-bit linear/pcm16 form uses its DMoL head (its categorical head is the paper's 8-bit mu-law one)
    extra = {"head": "dmol"} if name == "sashimi" and representation != "mulaw" else {}
    run = make_run(tmp_path / "run", name, seed=0, representation=representation, **extra)
    pcm = speech_pcm(3000, index=2)
    wav = write_wav(tmp_path / "speech.wav", pcm)
    code, out, err = run_cli(capsys, "score", "--run-dir", run, wav)
    assert code == 0 and err == "", err
    model, _, _ = load_run(run)
    header = out.splitlines()[0]
    assert f"representation {representation}" in header and name in header
    assert (f"upper bounds ({model.estimator()})" in header) == model.is_bound
    line = next(ln for ln in out.splitlines() if ln.strip().endswith("speech.wav")).split()
    codes = get_representation(representation, model.bits).codes_from_pcm16(pcm)
    with torch.random.fork_rng(), torch.inference_mode():
        torch.manual_seed(0)  # the seed score uses for a bound's noise
        bits = float(model.eval().evaluate_long(codes[None], torch.tensor([len(codes)])).nll[0]) / math.log(2)
    if model.is_bound:
        assert line[0] == "<="
        line = line[1:]
    bpf = float(line[0])
    assert bpf == pytest.approx(bits / len(pcm), abs=1e-3)
