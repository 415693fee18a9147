"""Tests of the portable codec (wavelab.fixedpoint, wavelab.portable): the integer network and pmf, files that decode
bit for bit whatever they are batched with, golden files written on other CPUs that decode here (also with torch's,
OpenBLAS's and numba's dispatch forced down), and clear errors for files this wavelab cannot read."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

from wavelab import portable
from wavelab.coding import CodecError
from wavelab.fixedpoint import (ARITHMETIC_VERSION, CODES, FLOOR, TABLE_NAMES, IntegerWaveNet, build_tables,
                                cdf_points, load_tables, log2_pmf)
from wavelab.models import build_model, quick_config

REPO = Path(__file__).resolve().parent.parent
GOLDEN = REPO / "tests" / "golden_wlc"


def _golden_module():
    spec = importlib.util.spec_from_file_location("make_golden_wlc", REPO / "scripts" / "make_golden_wlc.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def quick_integer(seed: int = 0, adaptive_residual: bool = False) -> tuple[torch.nn.Module, IntegerWaveNet]:
    """A small untrained pcm16 WaveNet (weights drawn with ``seed``, biases and scales spread so that the pmfs are
    far from uniform) and its integer network."""
    torch.manual_seed(seed)
    model = build_model("wavenet", config=quick_config("wavenet", representation="pcm16",
                                                       adaptive_residual=adaptive_residual)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(3.0)
    return model, IntegerWaveNet.from_wavenet(model)


def speech_like(n: int, seed: int) -> np.ndarray:
    t = np.arange(n)
    rng = np.random.default_rng(seed)
    x = 6000 * np.sin(2 * np.pi * 180 * t / 16000) * np.sin(np.pi * t / n) + rng.normal(0, 300, n)
    return np.clip(x, -32768, 32767).astype(np.int16)


def test_the_shipped_tables_are_the_functions_they_tabulate():
    """Each table is its function rounded (a machine whose exp differs in the last bit could differ by one unit:
    that is why the tables ship instead of being computed where the codec runs)."""
    shipped, fresh = load_tables(), build_tables()
    for name in TABLE_NAMES:
        assert np.abs(getattr(shipped, name) - fresh[name]).max() <= 1, name
    assert np.all(np.diff(shipped.cdf) >= 0) and np.all(np.diff(shipped.edges) > 0)
    assert np.all(np.diff(shipped.gate_tanh) >= 0) and np.all(np.diff(shipped.gate_sigmoid) >= 0)


def test_a_stream_gets_the_same_integers_alone_and_in_a_batch():
    _, net = quick_integer()
    rng = np.random.default_rng(0)
    codes = rng.integers(0, CODES, (3, 40))
    alone, batch = net.new_state(1), net.new_state(3)
    prev_a, prev_b = np.array([32768]), np.full(3, 32768)
    for t in range(40):
        pa, pb = net.step(prev_a, alone), net.step(prev_b, batch)
        np.testing.assert_array_equal(pa[0], pb[0])
        assert not np.array_equal(pb[0], pb[1]) or t == 0
        prev_a, prev_b = codes[:1, t], codes[:, t]


def test_the_integer_cdf_defines_a_pmf_that_the_digits_factor_exactly():
    _, net = quick_integer(1)
    state = net.new_state(4)
    params = net.step(np.array([32768, 0, 65535, 40000]), state)
    grid = np.tile(np.arange(0, CODES + 1, 97), (4, 1))
    grid[:, -1] = CODES
    c = cdf_points(net, params, grid)
    assert np.all(c[:, 0] == 0) and np.all(np.diff(c, axis=1) >= FLOOR)
    assert c.max() < 2 ** 53  # exact as float64, which the range coder receives
    code = np.array([0, 12345, 32768, 65535])
    prefix, log2_p, chosen = np.zeros(4, dtype=np.int64), np.zeros(4), None
    for level in range(portable.DIGITS):
        m = portable._masses(net, params, prefix, level)
        digit = (code >> (12 - 4 * level)) & 15
        if level:  # the sixteen runs partition the run the digits before chose
            np.testing.assert_array_equal(m.sum(1), chosen)
        chosen = m[np.arange(4), digit]
        log2_p += np.log2(chosen) - np.log2(m.sum(1))
        prefix += digit << (12 - 4 * level)
    np.testing.assert_allclose(log2_p, log2_pmf(net, params, code), atol=1e-9)


def test_the_integer_model_costs_almost_nothing_against_the_float_model():
    """The rate of quantisation: the integer pmfs' code length is within 0.5% of the float model's on a signal."""
    model, net = quick_integer(2)
    x = speech_like(3000, 0)
    codes = torch.from_numpy(x.astype(np.int64) + 32768)[None]
    with torch.no_grad():
        float_bits = -float(model.distribution.log_prob(model.logits(codes), codes).double().sum()) / np.log(2)
    state, prev, bits = net.new_state(1), np.array([32768]), 0.0
    for t in range(len(x)):
        params = net.step(prev, state)
        bits -= float(log2_pmf(net, params, codes[0, t:t + 1].numpy())[0])
        prev = codes[0, t:t + 1].numpy()
    assert abs(bits / float_bits - 1) < 0.005, (bits, float_bits)


@pytest.mark.parametrize("adaptive_residual", [False, True])
def test_files_decode_bit_for_bit_alone_and_in_any_batch(adaptive_residual):
    _, net = quick_integer(3, adaptive_residual)
    rng = np.random.default_rng(1)
    pcms = [speech_like(700, 1), rng.integers(-32768, 32768, 300).astype(np.int16), np.zeros(1, np.int16),
            speech_like(129, 2)]
    batch, ideal = portable.encode(net, pcms, block=64, group=3)
    for i, p in enumerate(pcms):
        (alone,), _ = portable.encode(net, [p], block=64, group=3)
        assert alone == batch[i]  # a file's bytes do not depend on the files beside it
        assert 8 * len(alone) >= ideal[i]
    containers = [portable.PortableContainer.from_bytes(b) for b in batch]
    for order in ([0, 1, 2, 3], [3, 1], [2]):
        out = portable.decode(net, [containers[i] for i in order])
        for i, y in zip(order, out):
            np.testing.assert_array_equal(y, pcms[i])


def test_bad_containers_get_errors_that_say_what_reads_them():
    _, net = quick_integer(4)
    (data,), _ = portable.encode(net, [speech_like(200, 3)], block=64)

    def resealed(body: bytes) -> bytes:
        return body[:-4] + struct.pack("<I", zlib.crc32(body[:-4]))

    older = bytearray(data)
    struct.pack_into("<H", older, 10, ARITHMETIC_VERSION + 1)
    with pytest.raises(CodecError, match=f"arithmetic version {ARITHMETIC_VERSION + 1}.*ARITHMETIC_VERSION is"):
        portable.PortableContainer.from_bytes(resealed(bytes(older)), "x.wlc")
    v1 = bytearray(data)
    struct.pack_into("<H", v1, 8, 1)
    with pytest.raises(CodecError, match="float codec.*--run-dir"):
        portable.PortableContainer.from_bytes(bytes(v1), "x.wlc")
    from wavelab.coding import Container

    with pytest.raises(CodecError, match="portable codec.*without --run-dir"):
        Container.from_bytes(data, "x.wlc")  # the float codec, given a portable file
    flipped = bytearray(data)
    flipped[200] ^= 1
    with pytest.raises(CodecError, match="CRC-32"):
        portable.PortableContainer.from_bytes(bytes(flipped), "x.wlc")
    with pytest.raises(CodecError, match="truncated"):
        portable.PortableContainer.from_bytes(data[:-9], "x.wlc")
    _, other = quick_integer(5)
    with pytest.raises(CodecError, match="another model"):
        portable.decode(other, [portable.PortableContainer.from_bytes(data)], ["x.wlc"])
    with pytest.raises(CodecError, match="int16"):
        portable.encode(net, [np.zeros(10, np.float32)])


def _golden_check(env: dict[str, str]) -> dict:
    """Decode every golden file and re-encode the golden signal in a fresh process with ``env`` (dispatch is read
    when torch, OpenBLAS and numba start)."""
    code = f"""
import hashlib, json, sys
import numpy as np
sys.path.insert(0, {str(REPO / 'scripts')!r})
from make_golden_wlc import golden_pcm
from wavelab import portable
model = portable.load_default_model()
out = {{}}
for path in sorted(__import__('pathlib').Path({str(GOLDEN)!r}).glob('*.wlc')):
    c = portable.read_portable(path)
    (pcm,) = portable.decode(model, [c], [path.name])
    out[path.name] = hashlib.sha256(pcm.astype('<i2').tobytes()).hexdigest()
(data,), _ = portable.encode(model, [golden_pcm()])
out['encoded_here'] = hashlib.sha256(data).hexdigest()
print(json.dumps(out))
"""
    full = {k: v for k, v in os.environ.items() if k not in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA")}
    full.update(env)
    r = subprocess.run([sys.executable, "-c", code], env=full, capture_output=True, text=True, timeout=900,
                       cwd=REPO)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("env", [
    {},
    {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "OPENBLAS_CORETYPE": "Haswell"},
    {"ATEN_CPU_CAPABILITY": "default", "OPENBLAS_CORETYPE": "Prescott", "NUMBA_CPU_NAME": "generic"},
], ids=["native", "avx2", "default"])
def test_golden_files_from_every_cpu_kind_decode_bit_for_bit(env):
    """Each golden file (one per CPU kind the project's machines had, written by scripts/make_golden_wlc.py) decodes
    to the PCM its manifest names, and the golden signal encodes here to the very bytes of every golden file written
    with the shipped model: on this CPU, and with torch, oneDNN, OpenBLAS and numba forced to AVX2 or to no SIMD."""
    manifest = json.loads((GOLDEN / "manifest.json").read_text())["files"]
    assert manifest and set(manifest) == {p.name for p in GOLDEN.glob("*.wlc")}
    got = _golden_check(env)
    fingerprint = portable.load_default_model().fingerprint().hex()
    for name, entry in manifest.items():
        assert got[name] == entry["pcm_sha256"], name
        golden_pcm = _golden_module().golden_pcm()
        assert entry["pcm_sha256"] == hashlib.sha256(golden_pcm.astype("<i2").tobytes()).hexdigest()
        if entry["model_fingerprint"] == fingerprint:
            assert got["encoded_here"] == hashlib.sha256((GOLDEN / name).read_bytes()).hexdigest(), name


def _cli(capsys, *argv) -> tuple[int, str, str]:
    from wavelab.__main__ import main

    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_the_command_line_codes_files_and_folders_with_the_shipped_model(tmp_path, capsys):
    """No --run-dir: the shipped model.  One file to a file; folders and files to a folder, mirrored; a summary
    against flac -8; outputs that exist are refused without --force, and nothing is written then."""
    import soundfile as sf

    a, b = speech_like(3000, 5), speech_like(1200, 6)
    (tmp_path / "in" / "sub").mkdir(parents=True)
    sf.write(tmp_path / "in" / "a.wav", a, 16000, subtype="PCM_16")
    sf.write(tmp_path / "in" / "sub" / "b.flac", b, 16000, subtype="PCM_16")
    code, out, _ = _cli(capsys, "compress", tmp_path / "in" / "a.wav", tmp_path / "a.wlc", "--no-progress")
    assert code == 0 and "flac -8 would write" in out and "bits/sample" in out
    assert _cli(capsys, "decompress", tmp_path / "a.wlc", tmp_path / "a.wav", "--no-progress")[0] == 0
    np.testing.assert_array_equal(sf.read(tmp_path / "a.wav", dtype="int16")[0], a)
    code, _, err = _cli(capsys, "compress", tmp_path / "in", tmp_path / "a.wav", tmp_path / "packed")
    assert code == 2 and "same output file" in err and not (tmp_path / "packed").exists()
    (tmp_path / "a.wav").rename(tmp_path / "c.wav")
    code, out, _ = _cli(capsys, "compress", tmp_path / "in", tmp_path / "c.wav", tmp_path / "packed", "--no-progress")
    assert code == 0 and out.startswith("3 file(s)")
    assert {p.relative_to(tmp_path / "packed").as_posix() for p in (tmp_path / "packed").rglob("*.wlc")} == {
        "a.wlc", "c.wlc", "sub/b.wlc"}
    assert _cli(capsys, "decompress", tmp_path / "packed", tmp_path / "back", "--no-progress")[0] == 0
    np.testing.assert_array_equal(sf.read(tmp_path / "back" / "sub" / "b.wav", dtype="int16")[0], b)
    before = (tmp_path / "a.wlc").read_bytes()
    code, _, err = _cli(capsys, "compress", tmp_path / "in" / "sub" / "b.flac", tmp_path / "a.wlc", "--no-progress")
    assert code == 2 and "already exists" in err and (tmp_path / "a.wlc").read_bytes() == before
    assert _cli(capsys, "compress", tmp_path / "in" / "sub" / "b.flac", tmp_path / "a.wlc", "--force",
                "--no-progress")[0] == 0
    assert (tmp_path / "a.wlc").read_bytes() != before


@pytest.mark.parametrize("kind", ["stereo", "8 kHz", "24-bit", "float"])
def test_audio_the_codec_cannot_code_is_refused_and_nothing_is_written(tmp_path, capsys, kind):
    import soundfile as sf

    good, bad = tmp_path / "in" / "good.wav", tmp_path / "in" / "z_bad.wav"
    good.parent.mkdir()
    sf.write(good, speech_like(500, 7), 16000, subtype="PCM_16")
    x = speech_like(500, 8)
    if kind == "stereo":
        sf.write(bad, np.stack([x, x], 1), 16000, subtype="PCM_16")
    elif kind == "8 kHz":
        sf.write(bad, x, 8000, subtype="PCM_16")
    else:
        sf.write(bad, x / 32768.0, 16000, subtype={"24-bit": "PCM_24", "float": "FLOAT"}[kind])
    code, _, err = _cli(capsys, "compress", tmp_path / "in", tmp_path / "out", "--no-progress")
    assert code == 2 and "z_bad.wav" in err and "nothing was written" in err
    assert not (tmp_path / "out").exists()
