"""The classical baseline of issue 22: a backward-adaptive NLMS cascade in integer arithmetic and an adaptive
discretised Laplace residual coder (:mod:`wavelab.adaptive`), no training data, no side information.  Its settings
are chosen on the validation splits; the test splits are read once, for the chosen settings.

    .venv/bin/python benchmarks/adaptive_baseline.py [--out benchmarks/results/adaptive_baseline.json]
    .venv/bin/python benchmarks/adaptive_baseline.py --quick   # 2 utterances per set, 2 candidates; a temp dir

What is measured:

- For each candidate of :data:`CANDIDATES` (cascades of NLMS stages with the prefilter and the scale's memory), the
  bits per sample on the union of the TIMIT sample's and the LibriSpeech sample's ``valid`` splits (8 x total bits /
  total samples, Havtorn et al.'s eq. 11 over the set): the ideal code length ``-log2 P`` of the residual under
  :func:`wavelab.adaptive.laplace_log2_pmf`, which a range coder matches to a few bytes per file.  The candidate with
  the fewest bits is chosen.
- For the chosen one, bits per sample on every set (TIMIT test and valid, LibriSpeech test-other and valid) and the
  speed of the residual (encoder) and of the reconstruction (decoder) in samples per second of one thread's CPU time
  (numba's compiled loops, compilation excluded), with every file's reconstruction checked sample for sample.

The output records the machine's load average, the hardware and the commit.  Committed output:
``benchmarks/results/adaptive_baseline.json`` and ``.md``, made with ``OMP_NUM_THREADS=1 nice -n 5 .venv/bin/python
benchmarks/adaptive_baseline.py`` while two training runs used both cores.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from wavelab.adaptive import (Stage, adaptive_scale, cascade_reconstruct, cascade_residual, laplace_bits)
from wavelab.data import load_split
from wavelab.report.records import utc_now
from wavelab.runs import atomic_write_bytes, atomic_write_json, git_commit, hardware_info

SETS = (("timit", "test"), ("timit", "valid"), ("librispeech", "test"), ("librispeech", "valid"))
S = Stage
#: (name, stages, prefilter k in 32nds, scale memory as a power of two)
CANDIDATES = (
    ("16", (S(16, 6),), 0, 3),
    ("32+16", (S(32, 8), S(16, 6)), 0, 3),
    ("256+16+4", (S(256, 9), S(16, 6), S(4, 5)), 0, 2),
    ("pre28 256+16+4", (S(256, 9), S(16, 6), S(4, 5)), 28, 2),
    ("pre28 256+16+4 fast", (S(256, 9), S(16, 5), S(4, 4)), 28, 2),
    ("pre28 256+32+16+4", (S(256, 9), S(32, 7), S(16, 6), S(4, 5)), 28, 2),
    ("pre28 256+16+4+2", (S(256, 9), S(16, 6), S(4, 5), S(2, 4)), 28, 2),
    ("pre28 512+16+4", (S(512, 10), S(16, 5), S(4, 4)), 28, 2),
    ("pre31 256+16+4 fast", (S(256, 9), S(16, 5), S(4, 4)), 31, 2),
)


def set_bits(signals, stages, k: int, rate: int) -> tuple[float, int]:
    """``(total bits, total samples)`` of the baseline over recordings (int16 arrays)."""
    bits, n = 0.0, 0
    for x in signals:
        r = cascade_residual(x, stages, k)
        bits += laplace_bits(r, adaptive_scale(r, rate))
        n += len(x)
    return bits, n


def timed(signals, stages, k: int) -> dict:
    """Encode and decode speed (samples per CPU second of this thread) and whether every file came back exactly."""
    enc = dec = 0.0
    exact = True
    for x in signals:
        t = time.thread_time()
        r = cascade_residual(x, stages, k)
        enc += time.thread_time() - t
        t = time.thread_time()
        y = cascade_reconstruct(r, stages, k)
        dec += time.thread_time() - t
        exact &= bool(np.array_equal(y, x.astype(np.int64)))
    n = sum(len(x) for x in signals)
    return {"encode_samples_per_s": n / enc, "decode_samples_per_s": n / dec, "round_trip_exact": exact}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=None, help="JSON output (default benchmarks/results/adaptive_baseline.json)")
    p.add_argument("--quick", action="store_true", help="2 utterances per set and 2 candidates, into a temp dir")
    args = p.parse_args(argv)
    out = Path(args.out or (Path(tempfile.gettempdir()) / "adaptive_baseline.json" if args.quick
                            else "benchmarks/results/adaptive_baseline.json"))
    limit = 2 if args.quick else None
    audio = {(c, s): [u.audio() for u in load_split(c, s)[:limit]] for c, s in SETS}
    candidates = CANDIDATES[:2] if args.quick else CANDIDATES
    load_start = os.getloadavg()
    cascade_residual(audio["timit", "valid"][0][:100], candidates[0][1])  # compile outside the timing
    cascade_reconstruct(np.zeros(10, dtype=np.int64), candidates[0][1])
    valid = audio["timit", "valid"] + audio["librispeech", "valid"]
    tried = []
    for name, stages, k, rate in candidates:
        bits, n = set_bits(valid, stages, k, rate)
        tried.append({"name": name, "stages": [[s.order, s.mu_shift] for s in stages], "prefilter": k,
                      "rate_shift": rate, "valid_bits_per_sample": bits / n})
        print(f"{name:24s} valid (TIMIT + LibriSpeech) {bits / n:.4f} bits/sample", flush=True)
    best = min(tried, key=lambda c: c["valid_bits_per_sample"])
    stages = tuple(Stage(o, m) for o, m in best["stages"])
    per_set = {}
    for (c, s), signals in audio.items():
        bits, n = set_bits(signals, stages, best["prefilter"], best["rate_shift"])
        per_set[f"{c}:{s}"] = {"bits_per_sample": bits / n, "samples": n, "files": len(signals)}
        print(f"chosen {best['name']}: {c} {s} {bits / n:.4f} bits/sample", flush=True)
    speed = timed(audio["timit", "test"], stages, best["prefilter"])
    result = {"created": utc_now(), "commit": git_commit(), "hardware": hardware_info(), "quick": args.quick,
              "load_average_at_start": load_start, "load_average_at_end": os.getloadavg(),
              "command": " ".join([sys.executable, *sys.argv]), "candidates": tried, "chosen": best,
              "sets": per_set, "speed_timit_test": speed}
    atomic_write_json(result, out)
    rows = [f"| {c['name']} | {c['valid_bits_per_sample']:.4f} |" for c in tried]
    md = ["Adaptive NLMS cascade + adaptive Laplace (wavelab.adaptive), chosen on the union of the valid splits; "
          f"{result['created']}, {hardware_info().get('cpu')}, load {load_start[0]:.2f}.", "",
          "| candidate | valid bits/sample |", "|---|---|", *rows, "",
          f"Chosen: {best['name']}.", "", "| set | bits/sample |", "|---|---|",
          *[f"| {k} | {v['bits_per_sample']:.4f} |" for k, v in per_set.items()], "",
          f"Speed on TIMIT test, one thread: encode {speed['encode_samples_per_s']:.3g}, decode "
          f"{speed['decode_samples_per_s']:.3g} samples/s; every round trip exact: {speed['round_trip_exact']}."]
    text = ("\n".join(md) + "\n").encode()
    atomic_write_bytes(out.with_suffix(".md"), lambda f: f.write(text))
    print(f"wrote {out}")
    return 0 if speed["round_trip_exact"] else 1


if __name__ == "__main__":
    sys.exit(main())
