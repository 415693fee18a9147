"""The codec (wavelab.coding, python -m wavelab compress / decompress): likelihood is compression.

Round trips are bit-exact on real speech, the file size is the model's code length plus a small coder overhead and
the fixed header, the two-stage (coarse, fine) pmf gives the full pmf's code length, and every bad container is
refused with a message naming the file, without writing the output."""

from __future__ import annotations

import math
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from tests.codec_helpers import make_run, speech_pcm, write_wav
from wavelab.__main__ import main
from wavelab.coding import (
    HEADER_BYTES,
    TRAILER_BYTES,
    CodecError,
    CodecModel,
    Container,
    coarse_fine_log_pmf,
    coarse_log_pmf,
    compress_pcm,
    decompress_bytes,
    fine_log_pmf,
    load_codec_model,
    read_container,
)
from wavelab.distributions import DiscretizedMixtureLogistics
from wavelab.models import build_model, quick_config

torch.set_num_threads(1)
REPO = Path(__file__).resolve().parent.parent
N_LSTM, N_WAVENET = 3000, 1200  # samples of real speech per round trip (short: the codec runs step by step)


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def _params(n: int, bits: int, seed: int) -> torch.Tensor:
    """DMoL parameters [n, 3M] spanning broad and sharp components, means near and beyond the edges."""
    g = torch.Generator().manual_seed(seed)
    M = 10
    logits = torch.randn(n, M, generator=g) * 2
    means = torch.rand(n, M, generator=g) * 2.2 - 1.1
    log_scales = torch.rand(n, M, generator=g) * 10 - (13 if bits == 16 else 8)
    return torch.cat([logits, means, log_scales], dim=1)


@pytest.mark.parametrize("bits", [16, 8])
def test_coarse_then_fine_gives_the_full_pmfs_code_length(bits):
    """log P(c) + log P(f | c) = log P(k) of the full 2^bits-entry pmf (materialised here, in float64, as the
    reference), for the edge bins, the mode and random codes; the codec's float32 pmfs agree within float32
    tolerance, and the coarse pmf is the full pmf summed over each run of codes."""
    dist = DiscretizedMixtureLogistics(10, bits)
    n = 6
    params = _params(n, bits, seed=bits).double()
    K = 2 ** bits
    full = dist.log_prob(params[:, :, None].expand(n, 30, K), torch.arange(K).expand(n, K))  # float64 [n, K]
    assert torch.allclose(torch.logsumexp(full, 1), torch.zeros(n, dtype=torch.float64), atol=1e-12)
    g = torch.Generator().manual_seed(1)
    codes = torch.randint(0, K, (n,), generator=g)
    codes[0], codes[1] = 0, K - 1  # the open-ended edge bins
    codes[2] = full[2].argmax()  # the mode
    direct = full.gather(1, codes[:, None])[:, 0]
    torch.testing.assert_close(coarse_fine_log_pmf(dist, params, codes), direct, atol=1e-9, rtol=1e-9)
    # the codec computes in float32, as the model does: as close to the float64 value as the model's own float32
    # log_prob (bin edges of sharp components at the scale clamp are only float32-accurate)
    two_stage = coarse_fine_log_pmf(dist, params.float(), codes)
    own = dist.log_prob(params.float()[:, :, None], codes[:, None])[:, 0].double()
    assert bool(((two_stage - direct).abs() <= 2 * (own - direct).abs() + 1e-4).all())
    assert abs(float(two_stage.sum() - direct.sum())) <= 2 * abs(float(own.sum() - direct.sum())) + 1e-3
    # the coarse pmf is the full pmf summed over each run of codes; the fine pmf is the normalised bin masses
    lc = coarse_log_pmf(dist, params)
    runs = torch.logsumexp(full.view(n, lc.shape[1], -1), dim=2)
    torch.testing.assert_close(lc.exp(), runs.exp(), atol=1e-12, rtol=1e-9)
    c = codes >> (bits // 2)
    ref = full.view(n, lc.shape[1], -1)[torch.arange(n), c]
    torch.testing.assert_close(fine_log_pmf(dist, params, c).exp(), (ref - torch.logsumexp(ref, 1, keepdim=True)).exp(),
                               atol=1e-12, rtol=1e-9)


def test_runs_log_prob_partitions_the_mass_and_refuses_runs_outside_the_codes():
    dist = DiscretizedMixtureLogistics(10, 16)
    params = _params(4, 16, seed=3).double().t().unsqueeze(0)  # [1, 3M, 4]
    zero = torch.zeros(1, 4, dtype=torch.int64)
    for width, count in [(65536, 1), (256, 256), (4096, 16)]:
        total = torch.logsumexp(dist.runs_log_prob(params, zero, width, count), dim=-1)
        torch.testing.assert_close(total, torch.zeros_like(total), atol=1e-12, rtol=0)
    # width 1: the bins of log_prob, edge bins included
    start = torch.tensor([[0, 65536 - 300, 1000, 30000]])
    singles = dist.runs_log_prob(params, start, 1, 300)  # [1, 4, 300]
    codes = start[0][:, None] + torch.arange(300)
    own = dist.log_prob(params[0].t()[:, :, None].expand(4, 30, 300), codes)
    torch.testing.assert_close(singles[0], own, atol=1e-9, rtol=1e-9)
    with pytest.raises(ValueError, match="leave the codes"):
        dist.runs_log_prob(params, start, 256, 256)
    with pytest.raises(ValueError, match="width >= 1"):
        dist.runs_log_prob(params, zero, 0, 4)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    return {"lstm": make_run(root / "lstm", "lstm", seed=0, s=64),
            "wavenet": make_run(root / "wavenet", "wavenet", seed=0),
            "lstm-other": make_run(root / "lstm-other", "lstm", seed=1, s=64),
            "lstm-8bit": make_run(root / "lstm-8bit", "lstm", seed=2, s=16, bits=8),
            "sashimi-8bit": make_run(root / "sashimi-8bit", "sashimi", seed=3),  # categorical head, 8-bit mu-law
            "sashimi-dmol": make_run(root / "sashimi-dmol", "sashimi", seed=4, head="dmol")}


@pytest.mark.parametrize("name,n", [("lstm", N_LSTM), ("wavenet", N_WAVENET), ("lstm-8bit", 1000),
                                    ("sashimi-8bit", 500), ("sashimi-dmol", 500)])
def test_round_trip_is_bit_exact_and_the_size_is_the_models_bits(runs, name, n, shared_data):
    codec = load_codec_model(runs[name])
    pcm = speech_pcm(n)
    data, stats = compress_pcm(codec, pcm)
    codes = codec.representation.codes_from_pcm16(pcm)
    # mulaw: lossless on the mu-law codes; the decoded PCM is the mu-law-decoded audio
    out = decompress_bytes(codec, Container.from_bytes(data))
    assert out.dtype == np.int16 and out.shape == pcm.shape
    assert torch.equal(codec.representation.codes_from_pcm16(out), codes)
    assert np.array_equal(out, codec.representation.pcm16_from_codes(codes))
    # the coded pmfs are the model's own: ideal code length = the model's NLL in bits
    with torch.no_grad():
        nll_bits = float(codec.model(codes[None], torch.tensor([n])).nll) / math.log(2)
    assert stats.ideal_bits == pytest.approx(nll_bits, rel=1e-4)
    # the real size: within 0.5% of the ideal code length, plus the fixed header
    assert len(data) * 8 == stats.file_bits == stats.payload_bits + 8 * (HEADER_BYTES + TRAILER_BYTES)
    assert stats.ideal_bits - 1 <= stats.payload_bits <= 1.005 * stats.ideal_bits + 64


@pytest.mark.parametrize("representation", ["linear", "pcm16"])
def test_lossless_representation_reproduces_the_input_samples(representation, shared_data):
    """With code = int16 + 32768 (``linear``, and ``pcm16`` with its non-uniform bins) the input's int16 samples
    come back bit for bit, and the coded pmfs are the model's own (ideal code length = its NLL in bits)."""
    torch.manual_seed(0)
    model = build_model("lstm", config=quick_config("lstm", s=64, representation=representation))
    codec = CodecModel.from_model(model, {})
    assert codec.representation.lossless and codec.representation.name == representation
    pcm = speech_pcm(N_LSTM, index=1)
    data, stats = compress_pcm(codec, pcm)
    c = Container.from_bytes(data)
    assert c.lossless and c.representation == representation
    assert np.array_equal(decompress_bytes(codec, c), pcm)
    codes = codec.representation.codes_from_pcm16(pcm)
    with torch.no_grad():
        nll_bits = float(model(codes[None], torch.tensor([len(pcm)])).nll) / math.log(2)
    assert stats.ideal_bits == pytest.approx(nll_bits, rel=1e-4)
    assert stats.payload_bits <= 1.005 * stats.ideal_bits + 64


@pytest.mark.parametrize("representation", ["linear", "pcm16"])
def test_runs_log_prob_on_non_uniform_bins(representation):
    """On a representation's own bins, runs of codes partition the mass and single-code runs are log_prob's bins."""
    dist = DiscretizedMixtureLogistics(10, 16, representation=representation)
    params = _params(4, 16, seed=5).double().t().unsqueeze(0)
    zero = torch.zeros(1, 4, dtype=torch.int64)
    total = torch.logsumexp(dist.runs_log_prob(params, zero, 256, 256), dim=-1)
    torch.testing.assert_close(total, torch.zeros_like(total), atol=1e-12, rtol=0)
    start = torch.tensor([[0, 65536 - 300, 1000, 32700]])
    singles = dist.runs_log_prob(params, start, 1, 300)
    codes = start[0][:, None] + torch.arange(300)
    own = dist.log_prob(params[0].t()[:, :, None].expand(4, 30, 300), codes)
    torch.testing.assert_close(singles[0], own, atol=1e-9, rtol=1e-9)


def test_cli_round_trip_and_recompression(runs, tmp_path, capsys, shared_data):
    wav, wlc, back, wlc2 = (tmp_path / n for n in ("in.wav", "in.wlc", "back.wav", "back.wlc"))
    pcm = speech_pcm(N_LSTM, index=2)
    write_wav(wav, pcm)
    # compressed in another process (python -m wavelab compress), decompressed in this one: the pmfs agree
    r = subprocess.run([sys.executable, "-m", "wavelab", "compress", "--run-dir", str(runs["lstm"]), str(wav),
                        str(wlc)], cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert r.returncode == 0, r.stderr
    assert "bits/sample" in r.stdout and "mu-law codes" in r.stdout  # says that a mulaw run is lossy on int16
    code, out, err = run_cli(capsys, "decompress", "--run-dir", runs["lstm"], wlc, back)
    assert code == 0, err
    x, sr = sf.read(back, dtype="int16")
    codec = load_codec_model(runs["lstm"])
    assert sr == 16000 and np.array_equal(x, codec.representation.pcm16_from_codes(codec.representation.codes_from_pcm16(pcm)))
    # the decoded audio compresses to the same codes: the same payload
    assert run_cli(capsys, "compress", "--run-dir", runs["lstm"], back, wlc2)[0] == 0
    assert np.array_equal(read_container(wlc).words, read_container(wlc2).words)


@pytest.fixture(scope="module")
def container(runs, tmp_path_factory):
    """A small valid container of the LSTM run (bytes)."""
    codec = load_codec_model(runs["lstm"])
    return compress_pcm(codec, speech_pcm(700, index=3))[0]


def _refused(capsys, run, path, out, *needles):
    code, _, err = run_cli(capsys, "decompress", "--run-dir", run, path, out)
    assert code == 2 and str(path) in err, err
    assert all(n in err for n in needles), err
    assert "Traceback" not in err
    assert not out.exists() and not out.with_name(out.name + ".tmp").exists()


def _with_crc(body: bytes) -> bytes:
    return body + struct.pack("<I", zlib.crc32(body))


def test_bad_containers_are_refused_and_nothing_is_written(runs, container, tmp_path, capsys, shared_data):
    out = tmp_path / "out.wav"
    good = tmp_path / "good.wlc"
    good.write_bytes(container)
    _refused(capsys, runs["lstm-other"], good, out, "another model")  # same architecture, other weights
    _refused(capsys, runs["wavenet"], good, out, "another model")
    for offset in (len(container) // 2, 20, len(container) - 1):  # payload, header, CRC
        bad = bytearray(container)
        bad[offset] ^= 0x10
        p = tmp_path / f"flipped{offset}.wlc"
        p.write_bytes(bytes(bad))
        _refused(capsys, runs["lstm"], p, out, "corrupt")
    for keep in (len(container) - 9, HEADER_BYTES + 3, 5):
        p = tmp_path / f"truncated{keep}.wlc"
        p.write_bytes(container[:keep])
        _refused(capsys, runs["lstm"], p, out, "truncated")
    # a header that says 8 kHz (with a valid CRC): the model codes 16 kHz audio
    body = bytearray(container[:-TRAILER_BYTES])
    rate_at = 8 + 2 + 2 + 16 + 32 + 16
    assert struct.unpack_from("<I", body, rate_at)[0] == 16000
    struct.pack_into("<I", body, rate_at, 8000)
    p = tmp_path / "rate.wlc"
    p.write_bytes(_with_crc(bytes(body)))
    _refused(capsys, runs["lstm"], p, out, "8000 Hz")
    p = tmp_path / "text.wlc"
    p.write_text("not a container at all, just some text that is long enough " * 4)
    _refused(capsys, runs["lstm"], p, out, "not a wavelab compressed file")
    _refused(capsys, runs["lstm"], tmp_path / "absent.wlc", out, "does not exist")
    # the good file still decompresses
    assert run_cli(capsys, "decompress", "--run-dir", runs["lstm"], good, out)[0] == 0 and out.exists()


def test_bad_inputs_to_compress_are_refused(runs, tmp_path, capsys, shared_data):
    out = tmp_path / "out.wlc"
    pcm = speech_pcm(400)
    for name, rate, subtype, reason in [("8k.wav", 8000, "PCM_16", "8000 Hz"), ("f32.wav", 16000, "FLOAT", "FLOAT")]:
        path = write_wav(tmp_path / name, pcm.astype(np.float32) / 32768 if subtype == "FLOAT" else pcm, rate, subtype)
        code, _, err = run_cli(capsys, "compress", "--run-dir", runs["lstm"], path, out)
        assert code == 2 and str(path) in err and reason in err and not out.exists(), err
    # models the codec does not support: a clear error, nothing written
    vrnn = make_run(tmp_path / "vrnn", "vrnn", s=64)
    wav = write_wav(tmp_path / "ok.wav", pcm)
    code, _, err = run_cli(capsys, "compress", "--run-dir", vrnn, wav, out)
    assert code == 2 and "does not support vrnn" in err and "lstm" in err and not out.exists()
    code, _, err = run_cli(capsys, "compress", "--run-dir", runs["lstm"], wav, tmp_path / "no" / "such" / "x.wlc")
    assert code == 2 and "does not exist" in err


def test_an_existing_output_is_kept_unless_forced(runs, container, tmp_path, capsys, shared_data):
    """compress and decompress never replace a file the user has without --force, and never write over their input:
    the file keeps its bytes and the error says what to do."""
    wav = write_wav(tmp_path / "in.wav", speech_pcm(300))
    wlc, back = tmp_path / "in.wlc", tmp_path / "back.wav"
    for path in (wlc, back):
        path.write_bytes(b"the user's own file")
    for cmd, inp, out in (("compress", wav, wlc), ("decompress", tmp_path / "c.wlc", back)):
        (tmp_path / "c.wlc").write_bytes(container)
        code, _, err = run_cli(capsys, cmd, "--run-dir", runs["lstm"], inp, out)
        assert code == 2 and str(out) in err and "--force" in err and "Traceback" not in err, err
        assert out.read_bytes() == b"the user's own file"
        code, _, err = run_cli(capsys, cmd, "--run-dir", runs["lstm"], inp, out, "--force")
        assert code == 0, err
        assert out.read_bytes() != b"the user's own file"
    code, _, err = run_cli(capsys, "compress", "--run-dir", runs["lstm"], wav, wav, "--force")
    assert code == 2 and "both the input and the output" in err
    assert sf.read(wav, dtype="int16")[0].shape == (300,)  # the input is untouched


def test_the_decoders_output_grows_past_its_first_buffer(runs, container, monkeypatch, shared_data):
    """The decoder does not trust the header's sample count with memory: its buffer starts small and doubles."""
    from wavelab import coding

    codec = load_codec_model(runs["lstm"])
    whole = decompress_bytes(codec, Container.from_bytes(container))
    monkeypatch.setattr(coding, "_FIRST_OUT", 7)  # 700 samples in blocks of 64: grown four times
    assert np.array_equal(decompress_bytes(codec, Container.from_bytes(container)), whole)


def test_corrupt_payload_with_a_valid_crc_is_caught_by_the_pcm_checksum(runs, container, shared_data):
    codec = load_codec_model(runs["lstm"])
    c = Container.from_bytes(container)
    words = c.words.copy()
    words[len(words) // 2] ^= np.uint32(1 << 7)
    forged = Container.from_bytes(Container(**{**c.__dict__, "words": words}).to_bytes())
    with pytest.raises(CodecError, match="checksum|corrupt"):
        decompress_bytes(codec, forged, "forged.wlc")


# offsets of the header's fields (see the layout in wavelab.coding's docstring)
_FIELDS = {"version": (8, "<H"), "flags": (10, "<H"), "sample_rate": (76, "<I"), "frames": (80, "<Q"),
           "words": (120, "<Q")}


def _mutations(container: bytes, other_headers: list[bytes], rng: np.random.Generator, count: int):
    """``count`` corrupted versions of ``container`` (name, bytes), drawn with ``rng``: changed payload or header
    bytes with the CRC recomputed or not, random bytes, truncated or extended words (length field and CRC made
    consistent), headers of other runs and files, header fields set to extreme values, cut or padded files."""
    body = container[:-TRAILER_BYTES]
    payload = body[HEADER_BYTES:]
    kinds = ["payload", "anywhere", "random", "fewer-words", "more-words", "field", "header", "cut", "padded"]
    for i in range(count):
        kind = kinds[i % len(kinds)]
        if kind == "payload":  # changed payload, valid CRC
            b = bytearray(body)
            for _ in range(int(rng.integers(1, 4))):
                b[HEADER_BYTES + int(rng.integers(len(payload)))] ^= int(rng.integers(1, 256))
            data = _with_crc(bytes(b))
        elif kind == "anywhere":  # changed bytes anywhere, CRC kept or recomputed
            b = bytearray(container)
            for _ in range(int(rng.integers(1, 4))):
                b[int(rng.integers(len(b)))] ^= int(rng.integers(1, 256))
            data = bytes(b) if rng.random() < 0.5 else _with_crc(bytes(b[:-TRAILER_BYTES]))
        elif kind == "random":  # random bytes, some of them behind the right magic
            data = rng.bytes(int(rng.integers(0, 2 * len(container))))
            if rng.random() < 0.5:
                data = b"WAVELABC" + data[8:]
        elif kind in ("fewer-words", "more-words"):  # whole words removed or added, the length field agreeing
            k = int(rng.integers(1, 8))
            words = payload[: len(payload) - 4 * k] if kind == "fewer-words" else payload + rng.bytes(4 * k)
            head = bytearray(body[:HEADER_BYTES])
            struct.pack_into("<Q", head, _FIELDS["words"][0], len(words) // 4)
            data = _with_crc(bytes(head) + words)
        elif kind == "field":  # one header field set to a boundary or random value, valid CRC
            name = str(rng.choice(sorted(_FIELDS)))
            offset, fmt = _FIELDS[name]
            top = 2 ** (8 * struct.calcsize(fmt)) - 1
            value = int(rng.choice([0, 1, top, int(rng.integers(0, min(top, 2 ** 62)))]))
            if name == "frames" and rng.random() < 0.5:
                value = struct.unpack_from(fmt, body, offset)[0] + int(rng.integers(-50, 50))
            b = bytearray(body)
            struct.pack_into(fmt, b, offset, max(0, min(value, top)))
            data = _with_crc(bytes(b))
        elif kind == "header":  # another run's or another file's header on this payload
            head = other_headers[int(rng.integers(len(other_headers)))]
            head = bytearray(head)
            struct.pack_into("<Q", head, _FIELDS["words"][0], len(payload) // 4)
            data = _with_crc(bytes(head) + payload)
        elif kind == "cut":
            data = container[: int(rng.integers(0, len(container)))]
        else:
            data = container + rng.bytes(int(rng.integers(1, 64)))
        yield f"{i:03d}-{kind}", data


def test_fuzzed_containers_end_in_a_codec_error_and_write_nothing(runs, container, tmp_path, capsys, shared_data):
    """Three hundred seeded corruptions of a valid file: ``decompress`` exits with status 2 and a one-line error that
    names the file, and leaves no output (or temporary) file; no other exception escapes.  The only exceptions are
    changes that lose nothing, which give back exactly the original audio (its checksum verified): a field the
    decoder does not read (the encoder's torch version), or a word or two appended after the end of the range
    coder's stream, which constriction's range decoder by design cannot tell from its own last words."""
    codec = load_codec_model(runs["lstm"])
    original = decompress_bytes(codec, Container.from_bytes(container))
    others = [compress_pcm(load_codec_model(runs[name]), speech_pcm(n, index=i))[0][:HEADER_BYTES]
              for name, n, i in (("lstm-other", 700, 3), ("lstm", 650, 3), ("lstm", 900, 4), ("wavenet", 50, 3))]
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    refused = 0
    for name, data in _mutations(container, others, np.random.default_rng(2026), 300):
        path = tmp_path / f"{name}.wlc"
        path.write_bytes(data)
        out = out_dir / f"{name}.wav"
        code, _, err = run_cli(capsys, "decompress", "--run-dir", runs["lstm"], path, out)
        if code == 0:
            decoded, _ = sf.read(out, dtype="int16")
            assert np.array_equal(decoded, original), name
            out.unlink()
            continue
        refused += 1
        assert code == 2, (name, err)
        assert err.count("\n") == 1 and err.startswith("error: ") and str(path) in err, (name, err)
        assert list(out_dir.iterdir()) == [], name
    assert refused >= 280  # nearly every mutation is refused; the rest decode to the original
