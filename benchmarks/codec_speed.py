"""Likelihood is compression, measured: real file sizes of the codec (wavelab.coding, constriction's range coder) next
to the model's bits and to FLAC, and the codec's encode and decode speed, on the test split.

    .venv/bin/python benchmarks/codec_speed.py [--runs results/runs/lstm-s64 results/runs/wavenet-dc32-b2]
        [--shortest] [--limit lstm-s64=40 --limit wavenet-dc32-b2=2] [--out benchmarks/results/codec_speed.json]
    .venv/bin/python benchmarks/codec_speed.py --quick    # tiny untrained models, 2 short utterances; temp dir

For every test utterance of a run (all, or the first ``--limit`` of the split, or with ``--shortest`` the shortest
ones; whole utterances): the model's bits
``-log2 p(x)`` from its forward pass (``evaluate_long``: what ``evaluate`` reports as bpf), the ideal code length of
the pmfs the coder used (the same up to float rounding), the range coder's payload (its overhead over the model's
bits is what the coder costs), the whole ``.wlc`` file (payload + the fixed header), and FLAC on the same utterance:
``flac -8`` (the command-line tool, with its default padding and seek table, as the data README's 8.69 bpf; only when
the ``flac`` CLI is installed), libFLAC's stream at the same strength without padding (via soundfile, as
:func:`wavelab.baselines.flac_bits`), and, for mu-law runs, libFLAC on the mu-law-decoded audio the codec gives back
(a mu-law run is lossless on the mu-law codes, not on the input's int16 samples).  Every round trip is checked.

Committed outputs (``benchmarks/results/``): ``codec_speed.json`` (the LSTM, s = 64, on the whole test split),
``codec_speed_wavenet.json`` (``--runs results/runs/wavenet-dc32-b2 --shortest``: its 2 shortest test utterances) and
``codec_speed_prelim.json`` (both on a few of the shortest utterances while the machine was busy with training); for
the lossless ``pcm16`` runs of issue 12, ``codec_speed_pcm16.json`` (``--runs results/equal/runs/eq-lstm-s64-pcm16``:
the whole test split), ``codec_speed_pcm16_s1.json`` (``--runs results/equal/runs/eq-lstm-s1-pcm16 --limit
eq-lstm-s1-pcm16=3``: one LSTM step per sample, the first 3 test utterances) and ``codec_speed_pcm16_wavenet.json``
(``--runs results/compression/runs/wavenet-dc32-b2-pcm16-long --limit wavenet-dc32-b2-pcm16-long=40``: the
whole test split, run as ``--shard 0/2`` and ``--shard 1/2`` in two processes, one per core, joined with ``--merge``).

Encode and decode are timed end to end per utterance (``compress_pcm`` / ``decompress_bytes``: the model's incremental
steps, the pmfs and the coder), on one thread as the codec always runs, and reported in samples per second.  The JSON
records the load average before and after (the numbers depend on what else the machine runs), hardware and commit.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from wavelab.baselines import flac_bits
from wavelab.coding import HEADER_BYTES, TRAILER_BYTES, Container, compress_pcm, decompress_bytes, load_codec_model
from wavelab.data import load_split
from wavelab.report.records import utc_now
from wavelab.runs import git_commit, hardware_info

DEFAULT_RUNS = ("results/runs/lstm-s64", "results/runs/wavenet-dc32-b2")
DEFAULT_LIMITS = {"lstm-s64": None, "wavenet-dc32-b2": 2}  # WaveNet decodes one sample per step: a few utterances


def flac_cli_bits(pcm: np.ndarray, sample_rate: int = 16000) -> int | None:
    """Bits of ``flac -8`` (the CLI, default padding and seek table) on int16 ``pcm``; ``None`` without the CLI."""
    exe = shutil.which("flac")
    if exe is None:
        return None
    with tempfile.TemporaryDirectory() as d:
        wav, out = Path(d) / "x.wav", Path(d) / "x.flac"
        sf.write(wav, pcm, sample_rate, subtype="PCM_16")
        subprocess.run([exe, "-8", "-s", "-f", "-o", str(out), str(wav)], check=True, capture_output=True)
        return 8 * out.stat().st_size


def model_bits(model, codes: torch.Tensor) -> float:
    """``-log2 p(codes)`` from the model's forward pass (``evaluate_long``), bits."""
    with torch.inference_mode():
        out = model.evaluate_long(codes[None], torch.tensor([len(codes)]))
    return float(out.nll.double()) / math.log(2)


def bench_run(codec, utterances, log, on_progress=None) -> dict:
    """Round trips of ``utterances`` with ``codec``; ``on_progress(partial_result)`` after every utterance."""
    rows = []
    rep = codec.representation
    for i, u in enumerate(utterances):
        pcm = np.ascontiguousarray(u.audio())
        codes = rep.codes_from_pcm16(pcm)
        t0 = time.perf_counter()
        data, stats = compress_pcm(codec, pcm)
        t1 = time.perf_counter()
        out = decompress_bytes(codec, Container.from_bytes(data))
        t2 = time.perf_counter()
        assert torch.equal(rep.codes_from_pcm16(out), codes), f"{u.id}: round trip failed"
        if rep.lossless:
            assert np.array_equal(out, pcm), f"{u.id}: lossless round trip failed"
        row = {"id": u.id, "frames": len(pcm), "model_bits": model_bits(codec.model, codes),
               "ideal_bits": stats.ideal_bits, "payload_bits": stats.payload_bits, "file_bits": stats.file_bits,
               "flac8_cli_bits": flac_cli_bits(pcm), "flac_stream_bits": flac_bits(pcm),
               "flac_stream_decoded_bits": None if rep.lossless else flac_bits(out),
               "samples_changed": int((out != pcm).sum()),  # by a lossy representation (mu-law)
               "max_abs_change": int(np.abs(out.astype(np.int32) - pcm).max()),
               "encode_s": t1 - t0, "decode_s": t2 - t1}
        rows.append(row)
        if on_progress is not None and len(rows) < len(utterances):
            on_progress(_result(codec, rows, len(utterances)))
        n = row["frames"]
        log(f"  [{i + 1}/{len(utterances)}] {u.id}: {n} samples, model {row['model_bits'] / n:.3f} bpf, file "
            f"{row['file_bits'] / n:.3f}, flac -8 {(row['flac8_cli_bits'] or float('nan')) / n:.3f}; encode "
            f"{n / row['encode_s']:.0f} samples/s, decode {n / row['decode_s']:.0f}")
    return _result(codec, rows, len(utterances))


def _result(codec, rows: list[dict], planned: int) -> dict:
    rep = codec.representation
    return _summarise(codec.name, rep.name, rep.lossless, codec.config, rows, planned)


def merge(shards: list[dict]) -> dict:
    """One benchmark from the outputs of ``--shard K/N`` runs: every run's utterances joined in split order, its
    summary recomputed; the load averages and commits of all shards are kept."""
    if not shards:
        raise ValueError("merge needs at least one shard")
    bench = {k: v for k, v in shards[0].items() if k not in ("runs", "shard")}
    bench.update(shards=[s.get("shard") for s in shards], load_before=[s["load_before"] for s in shards],
                 load_after=[s.get("load_after") for s in shards], commits=[s["commit"] for s in shards], runs={})
    for name in dict.fromkeys(n for s in shards for n in s["runs"]):
        parts = [s["runs"][name] for s in shards if name in s["runs"]]
        rows = [r for part in parts for r in part["utterances"]]
        order = {u.id: i for i, u in enumerate(load_split("timit", bench["split"]))}
        rows.sort(key=lambda r: order.get(r["id"], len(order)))
        first = parts[0]
        bench["runs"][name] = _summarise(first["model"], first["representation"], first["lossless"],
                                         first["model_config"], rows, sum(p["utterances_planned"] for p in parts))
    return bench


def _summarise(model: str, representation: str, lossless: bool, config: dict, rows: list[dict], planned: int) -> dict:
    frames = sum(r["frames"] for r in rows)

    def total(key):
        vals = [r[key] for r in rows]
        return None if any(v is None for v in vals) else float(sum(vals))

    totals = {k: total(k) for k in ("model_bits", "ideal_bits", "payload_bits", "file_bits", "flac8_cli_bits",
                                    "flac_stream_bits", "flac_stream_decoded_bits", "encode_s", "decode_s")}
    summary = {"frames": frames, "utterances": len(rows),
               "samples_changed": sum(r["samples_changed"] for r in rows),
               "max_abs_change": max(r["max_abs_change"] for r in rows),
               **{k.replace("_bits", "_bpf"): (v / frames if v is not None else None)
                  for k, v in totals.items() if k.endswith("_bits")},
               "coder_overhead_bits": totals["payload_bits"] - totals["model_bits"],
               "coder_overhead_pct": 100 * (totals["payload_bits"] / totals["model_bits"] - 1),
               "header_bits_per_file": 8 * (HEADER_BYTES + TRAILER_BYTES),
               "encode_samples_per_s": frames / totals["encode_s"], "decode_samples_per_s": frames / totals["decode_s"]}
    return {"model": model, "representation": representation, "lossless": lossless,
            "complete": len(rows) == planned, "utterances_planned": planned,
            "model_config": config, "summary": summary, "utterances": rows}


def summary_markdown(bench: dict) -> str:
    """A markdown table of the summaries."""
    head = ("| run | utt | frames | model bpf | coder payload bpf | file bpf | overhead | flac -8 | libFLAC stream | "
            "libFLAC on decoded | encode samples/s | decode samples/s |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    f = lambda x: "n/a" if x is None else f"{x:.3f}"  # noqa: E731
    for name, r in bench["runs"].items():
        s = r["summary"]
        done = "" if r.get("complete", True) else f", partial: {s['utterances']} of {r['utterances_planned']}"
        lines.append(f"| {name} ({r['representation']}{done}) | {s['utterances']} | {s['frames']:,} | {f(s['model_bpf'])} | "
                     f"{f(s['payload_bpf'])} | {f(s['file_bpf'])} | {s['coder_overhead_pct']:+.4f}% | "
                     f"{f(s['flac8_cli_bpf'])} | {f(s['flac_stream_bpf'])} | {f(s['flac_stream_decoded_bpf'])} | "
                     f"{s['encode_samples_per_s']:,.0f} | {s['decode_samples_per_s']:,.0f} |")
    return "\n".join(lines)


def write(bench: dict, out: Path) -> None:
    """Write the JSON and its markdown table (``out`` with suffix ``.md``), each atomically."""
    from wavelab.runs import atomic_write_bytes

    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out, lambda f: f.write((json.dumps(bench, indent=2) + "\n").encode()))
    atomic_write_bytes(out.with_suffix(".md"), lambda f: f.write((summary_markdown(bench) + "\n").encode()))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", nargs="+", default=list(DEFAULT_RUNS))
    p.add_argument("--limit", action="append", default=[], metavar="RUN=N",
                   help="first N test utterances of run RUN (its folder name); default: all for lstm-s64, 2 for "
                        "wavenet-dc32-b2")
    p.add_argument("--shortest", action="store_true",
                   help="with --limit: the N shortest utterances of the split instead of the first N")
    p.add_argument("--split", default="test")
    p.add_argument("--out", default="benchmarks/results/codec_speed.json")
    p.add_argument("--quick", action="store_true", help="tiny untrained models, 2 utterances cut to 2,000 samples")
    p.add_argument("--shard", default=None, metavar="K/N",
                   help="only utterances K, K + N, K + 2N, ... of the selection (one process per core); join the "
                        "shards' outputs with --merge")
    p.add_argument("--merge", nargs="+", default=None, metavar="SHARD_JSON",
                   help="join the outputs of --shard runs into --out (recomputing every summary) and exit")
    args = p.parse_args(argv)
    if args.merge:
        bench = merge([json.loads(Path(f).read_text()) for f in args.merge])
        write(bench, Path(args.out))
        print(summary_markdown(bench))
        print(f"wrote {args.out} and {Path(args.out).with_suffix('.md')}")
        return 0
    shard = None
    if args.shard is not None:
        k, n = (int(v) for v in args.shard.split("/"))
        if not 0 <= k < n:
            p.error(f"--shard K/N needs 0 <= K < N, got {args.shard}")
        shard = (k, n)
    torch.set_num_threads(1)
    limits = dict(DEFAULT_LIMITS)
    for item in args.limit:
        k, v = item.split("=", 1)
        limits[k] = int(v)
    utterances = load_split("timit", args.split)
    runs = args.runs
    if args.quick:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        from tests.codec_helpers import make_run

        tmp = Path(tempfile.mkdtemp(prefix="codec_speed_"))
        runs = [str(make_run(tmp / "lstm", "lstm", s=64)), str(make_run(tmp / "wavenet", "wavenet"))]
        args.out = str(tmp / "codec_speed.json")

        class Cut:
            def __init__(self, u):
                self.id, self._x = u.id, u.audio()[2000:4000]

            @property
            def num_samples(self):
                return len(self._x)

            def audio(self):
                return self._x

        utterances = [Cut(u) for u in utterances[:2]]
    bench = {"benchmark": "codec_speed", "utc": utc_now(), "threads": 1, "split": args.split, "quick": args.quick,
             "load_before": os.getloadavg(), "hardware": hardware_info(), "commit": git_commit(),
             "flac_cli": (subprocess.run(["flac", "--version"], capture_output=True, text=True).stdout.strip()
                          if shutil.which("flac") else None),
             "shard": args.shard, "runs": {}}
    for run in runs:
        name = Path(run).name
        codec = load_codec_model(run)
        if args.quick or limits.get(name) is None:
            utts = utterances
        elif args.shortest:
            utts = sorted(utterances, key=lambda u: (u.num_samples, u.id))[: limits[name]]
        else:
            utts = utterances[: limits[name]]
        if shard is not None:
            utts = utts[shard[0]::shard[1]]
        print(f"{name}: {codec.name}, representation {codec.representation.name}, {len(utts)} utterance(s)", flush=True)
        def progress(partial, name=name):  # a benchmark stopped early keeps the utterances it finished
            bench["runs"][name] = partial
            write(bench, Path(args.out))

        bench["runs"][name] = bench_run(codec, utts, lambda line: print(line, flush=True), progress)
        bench["load_after"] = os.getloadavg()
        write(bench, Path(args.out))  # after every run, so a long benchmark stopped early keeps the runs it finished
    out = Path(args.out)
    print(summary_markdown(bench))
    print(f"wrote {out} and {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
