"""The portable codec (wavelab.portable) measured: the shipped model's rate on the test sets beside the float model it
was quantised from, what each design choice costs, and encode and decode speed on one thread against this CPU's limits.

    .venv/bin/python benchmarks/portable_codec.py [--sets timit:test librispeech:test]
        [--out benchmarks/results/portable_codec.json]
    .venv/bin/python benchmarks/portable_codec.py --quick     # the 2 shortest TIMIT test utterances, cut; temp dir

Per set, bits per sample (Havtorn et al.'s eq. 11 over the set):

* ``float_bpf``: the float model's record (``results/compression/<record>.json``, whole utterances; the model card's
  ``float_records``);
* ``integer_whole_bpf``: the integer model's ideal code length with every utterance one block (the cost of integer
  arithmetic is this minus ``float_bpf``; ``None`` for a set left out of ``--whole-sets``, since one stream per file
  is the slow part of the benchmark);
* ``integer_blocks_bpf``: the same with blocks of ``wavelab.portable.BLOCK`` samples (the cost of block boundaries is
  this minus ``integer_whole_bpf``);
* ``file_bpf``: the ``.wlc`` files, header and range coder included (what a user stores);
* ``flac8_bpf``: ``flac -8``'s files (libFLAC's stream plus the ``flac`` tool's default padding and seek table).

``per_utterance`` holds each utterance's speaker, sex, loudness and the bits of every coder on it (the compression
chapter's wins and losses).

Speed: the whole set is encoded and decoded as the command line does it (files batched, blocks in parallel), every
round trip compared sample for sample, with BLAS and numba on one thread; samples per second of wall time (the
machine's load average is recorded).  The CPU's limits: the step's multiply-accumulates per sample (from the model's
shape) at the measured decode rate, against the float64 matrix-product rate and the memory bandwidth this process
measures (``ceiling``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from wavelab import portable  # noqa: E402
from wavelab.baselines import flac_bits, flac_tool_overhead_bytes  # noqa: E402
from wavelab.data import load_split  # noqa: E402
from wavelab.report.records import utc_now  # noqa: E402
from wavelab.runs import atomic_write_json, cpu_kind, git_commit, hardware_info  # noqa: E402

WHOLE = 1 << 30  # a block longer than any utterance: each utterance one stream


def macs_per_sample(config: dict) -> int:
    """Multiply-accumulates of one network step: the input conv, per layer the dilated conv (2 Dc -> 2 Dc) and the
    residual and skip convs (Dc -> Dc + S), and the head (S -> S -> 3M)."""
    Dc, S, M, L = config["Dc"], config["skip_channels"], config["num_components"], len(config["dilations"])
    return 2 * Dc + L * (2 * Dc * 2 * Dc + Dc * (Dc + S)) + S * S + S * 3 * M


def ceiling(seconds: float = 1.0) -> dict:
    """This thread's float64 matrix-product rate at the step's shape (64 x 64 by 64 x 64) and its memory bandwidth
    (copying 256 MB), measured now."""
    a, b = np.random.default_rng(0).normal(size=(2, 64, 64))
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        np.dot(a, b)
        n += 1
    flops = 2 * 64 ** 3 * n / (time.perf_counter() - t0)
    big = np.ones(1 << 25)
    out = np.zeros_like(big)
    np.copyto(out, big)  # the pages are touched before the clock starts
    t0 = time.perf_counter()
    for _ in range(5):
        np.copyto(out, big)
    bandwidth = 5 * 2 * big.nbytes / (time.perf_counter() - t0)
    return {"float64_matmul_gflops": flops / 1e9, "memory_gb_per_s": bandwidth / 1e9}


def per_utterance(utts, pcms, whole, ideal, datas) -> list[dict]:
    """One row per utterance: who speaks, how loud (RMS in dB below full scale), and the bits of every coder on it:
    the integer model whole and in blocks, the ``.wlc`` file, FLAC's stream and ``flac -8``'s file, and the classical
    baseline (the NLMS cascade with the adaptive Laplace coder, ``wavelab.adaptive.bits_per_sample``)."""
    from wavelab.adaptive import bits_per_sample

    rows = []
    for u, x, w, i, d in zip(utts, pcms, whole, ideal, datas):
        rms = float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))
        stream = flac_bits(x)
        rows.append({"id": u.id, "corpus": u.corpus, "speaker": u.speaker.id, "sex": u.speaker.sex,
                     "samples": len(x), "rms_dbfs": 20 * np.log10(max(rms, 1e-9) / 32768),
                     "integer_whole_bits": w, "integer_blocks_bits": i, "wlc_bytes": len(d),
                     "flac_stream_bits": stream, "flac8_bytes": stream // 8 + flac_tool_overhead_bytes(len(x)),
                     "cascade_laplace_bits": bits_per_sample(x) * len(x)})
    return rows


def bench_set(model, name: str, utts, pcms: list[np.ndarray], record_bpf: float | None, whole_files: bool) -> dict:
    ids = [u.id for u in utts]
    n = sum(len(p) for p in pcms)
    # one stream per file runs as long as the longest file: the slowest measurement, optional per set
    whole = portable.encode(model, pcms, block=WHOLE)[1] if whole_files else [None] * len(pcms)
    t0 = time.perf_counter()
    datas, ideal = [], []
    for batch in portable._batches([len(p) for p in pcms]):
        d, i = portable.encode(model, [pcms[k] for k in batch])
        datas += d
        ideal += i
    encode_s = time.perf_counter() - t0
    containers = [portable.PortableContainer.from_bytes(d) for d in datas]
    t0 = time.perf_counter()
    decoded = []
    for batch in portable._batches([c.frames for c in containers]):
        decoded += portable.decode(model, [containers[k] for k in batch], [ids[k] for k in batch])
    decode_s = time.perf_counter() - t0
    changed = sum(int(not np.array_equal(a, b)) for a, b in zip(pcms, decoded))
    flac8 = sum(flac_bits(p) + 8 * flac_tool_overhead_bytes(len(p)) for p in pcms)
    return {"set": name, "utterances": len(pcms), "samples": n, "float_bpf": record_bpf,
            "integer_whole_bpf": sum(whole) / n if whole_files else None, "integer_blocks_bpf": sum(ideal) / n,
            "file_bpf": 8 * sum(len(d) for d in datas) / n, "flac8_bpf": flac8 / n,
            "encode_samples_per_s": n / encode_s, "decode_samples_per_s": n / decode_s,
            "files_changed": changed, "round_trip_ok": changed == 0,
            "files_sha256": hashlib.sha256(b"".join(datas)).hexdigest(),
            "per_utterance": per_utterance(utts, pcms, whole, ideal, datas)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sets", nargs="+", default=["timit:test", "librispeech:test"])
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "portable_codec.json"))
    p.add_argument("--whole-sets", nargs="*", default=None, metavar="SET",
                   help="the sets whose utterances are also coded whole, one stream each (default: every set)")
    p.add_argument("--quick", action="store_true")
    args = p.parse_args(argv)
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")
    model = portable.load_default_model()
    card = json.loads(portable.DEFAULT_MODEL.with_suffix(".json").read_text())
    load_before = os.getloadavg()
    out = {"benchmark": "portable_codec", "created": utc_now(), "quick": args.quick, "commit": git_commit(REPO),
           "hardware": hardware_info(), "cpu_kind": cpu_kind(), "model": card["model"],
           "model_fingerprint": card["fingerprint"], "source_run": card["source_run"], "block": portable.BLOCK,
           "group": portable.GROUP, "threads": 1, "sets": {}}
    with threadpool_limits(1):
        out["ceiling"] = ceiling(0.2 if args.quick else 2.0)
        for name in (["timit:test"] if args.quick else args.sets):
            dataset, split = name.split(":")
            utts = load_split(dataset, split)
            if args.quick:
                utts = sorted(utts, key=lambda u: u.num_samples)[:2]
            pcms = [u.audio()[:4000] if args.quick else u.audio() for u in utts]
            record = card["float_records"].get(dataset, {})
            whole = args.whole_sets is None or name in args.whole_sets
            r = bench_set(model, name, utts, pcms, None if args.quick else record.get("bpf"), whole)
            out["sets"][name] = r
            print(json.dumps({k: v for k, v in r.items() if k != "per_utterance"}), flush=True)
    macs = macs_per_sample(card["config"])
    slowest = min(r["decode_samples_per_s"] for r in out["sets"].values())
    out["step"] = {"macs_per_sample": macs, "gflops_at_decode_rate": 2 * macs * slowest / 1e9,
                   "fraction_of_matmul_rate": 2 * macs * slowest / 1e9 / out["ceiling"]["float64_matmul_gflops"],
                   "weight_bytes_per_step": 8 * macs, "note": "the weights (float64) are read once per step for a "
                   "batch of up to GROUP blocks, so the step is bound by per-call overhead and the matrix products, "
                   "not by memory bandwidth"}
    out["load_average"] = {"before": list(load_before), "after": list(os.getloadavg()), "cores": os.cpu_count()}
    if not args.quick:
        atomic_write_json(out, Path(args.out))
        print(f"wrote {args.out}")
    return 0 if all(r["round_trip_ok"] for r in out["sets"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
