"""Make the codec model that ships with the package: quantise a trained pcm16 WaveNet to the integer network of
:mod:`wavelab.fixedpoint` and write it, with a JSON card of where it came from, under ``wavelab/codec_model/``.

    .venv/bin/python scripts/make_codec_model.py results/compression/runs/wavenet-dc32-b2-pcm16-nlms-joined
    .venv/bin/python scripts/make_codec_model.py --tables     # rebuild the integer tables (bumps nothing by itself)

Rebuilding the tables changes every model's fingerprint and can change pmfs: do it only with a new
``wavelab.fixedpoint.ARITHMETIC_VERSION``.  The card names the run, its config and its records (the float model's bpf
on each test set), the commit and the machine; the codec benchmark (``benchmarks/portable_codec.py``) measures
the integer model's rate beside them.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from wavelab.fixedpoint import ARITHMETIC_VERSION, TABLES_PATH, IntegerWaveNet, build_tables  # noqa: E402
from wavelab.portable import DEFAULT_MODEL  # noqa: E402
from wavelab.runs import atomic_write_json, git_commit, hardware_info  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run", nargs="?", help="an exported run of a pcm16 WaveNet (results/compression/runs/NAME)")
    p.add_argument("--out", default=str(DEFAULT_MODEL), help="the .npz to write (default: the shipped model)")
    p.add_argument("--tables", action="store_true", help=f"rebuild {TABLES_PATH.name} first")
    args = p.parse_args(argv)
    if args.tables:
        with open(TABLES_PATH, "wb") as f:
            np.savez_compressed(f, **build_tables())
        print(f"wrote {TABLES_PATH}")
    if args.run is None:
        return 0
    from wavelab.report.records import load_records
    from wavelab.train import load_run

    run = Path(args.run)
    model, cfg, meta = load_run(run, device="cpu")
    integer = IntegerWaveNet.from_wavenet(model.eval())
    out = Path(args.out)
    integer.save(out)
    records = [r for r in load_records(run.parent.parent) if Path(r.run_dir or "").name == run.name]
    card = {"model": out.name, "arithmetic_version": ARITHMETIC_VERSION, "fingerprint": integer.fingerprint().hex(),
            "bytes": out.stat().st_size, "source_run": str(run.relative_to(REPO) if run.is_absolute() else run),
            "config": integer.config, "parameters": int(sum(p.numel() for p in model.parameters())),
            "train_config": {k: v for k, v in dataclasses.asdict(cfg).items() if k != "run_dir"},
            "steps": meta["step"], "train_cpu_s": meta["train_cpu_s"],
            "float_records": {r.dataset: {"split": r.split, "bpf": r.bpf_weighted} for r in records},
            "commit": git_commit(REPO), "hardware": hardware_info()}
    atomic_write_json(card, out.with_suffix(".json"))
    print(f"wrote {out} ({card['bytes']:,} bytes, fingerprint {card['fingerprint'][:12]}) and its card")
    return 0


if __name__ == "__main__":
    sys.exit(main())
