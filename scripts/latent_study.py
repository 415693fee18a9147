"""Run the latent study of Havtorn et al. 2022 (section 3.2) on a recorded CW-VAE and store it for the book.

Usage::

    python scripts/latent_study.py --run-dir results/runs/cwvae-s64-l2 --out results/studies/latent-study.json
    python scripts/latent_study.py --run-dir /tmp/runs/cwvae-quick --out /tmp/study.json --quick   # smoke test

It loads the run's latest checkpoint (:func:`wavelab.train.load_run`), finds the run's result record (the JSON under
``results/`` whose ``run_dir`` names the same run, or ``--record``), checks that the record describes these weights
(same model, config and training step), and runs :func:`wavelab.analysis.run_latent_study` on the TIMIT sample:

* phones of test speaker dr1-fvmh0 (``phoneme_study`` split): ``--num-samples`` posterior samples (paper: 100)
  averaged per latent step, then over each phone's span; log-Mel baseline with hop 64, window 256, 80 bins;
  leave-one-out kNN in a 5-D LDA subspace;
* speaker sex and height class from time-averaged features of every utterance of the 16 speakers (train + test),
  under leave-one-out and leave-one-speaker-out;
* every accuracy under two protocols: the LDA fitted inside each fold (``accuracy``) and, as the paper reads, once
  to all rows before the kNN (``accuracy_lda_all``; see :func:`wavelab.analysis.knn_accuracy`).

The result goes to ``--out`` with :func:`wavelab.analysis.save_study`, with provenance: the run (directory, model
config, training config and step), its record (path and figures), the commit, the hardware, the wall time, the
number of Monte Carlo samples and the command line.  ``results/*.json`` must hold result records only (they are read
by :func:`wavelab.report.records.load_records`), so studies belong in ``results/studies/``.

``--quick`` (smoke tests): at most 4 posterior samples and 3 utterances per speaker for sex/height (see
:func:`wavelab.analysis.run_latent_study`), and any CW-VAE config; without it the model must be the paper's
two-layer CW-VAE with strides s1 = 64, s2 = 512.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shlex
import sys
import time
from pathlib import Path

PAPER_STRIDES = [64, 512]


def _relative(path: Path) -> str:
    """``path`` relative to the project root when inside it, else absolute."""
    from wavelab.settings import PROJECT_ROOT

    path = Path(path).resolve()
    try:
        return str(path.relative_to(PROJECT_ROOT.resolve()))
    except ValueError:
        return str(path)


def find_record(run_dir: Path, results_dir: Path):
    """The result record of ``run_dir`` in ``results_dir``: a ``cwvae`` record whose ``run_dir`` has the same final
    folder name as ``run_dir``; the one-sample ELBO record if there are several.

    Returns:
        ``(path, ResultRecord)``.
    Raises:
        FileNotFoundError: no such record (the message says how to make one or to pass ``--record``).
    """
    from wavelab.report.records import read_record, select

    name = Path(run_dir).resolve().name
    paths = sorted(Path(results_dir).glob("*.json"))
    records = [read_record(p) for p in paths]
    # any record of the run, whole split or not (the study checks the weights, not the figure); the run is matched by
    # its folder name, which select does not express
    found = [r for r in select(records, model="cwvae", full_split=False) if r.run_dir and Path(r.run_dir).name == name]
    if not found:
        raise FileNotFoundError(
            f"no cwvae result record in {results_dir} names a run called {name!r}; evaluate the run first "
            f"(python -m wavelab evaluate --run-dir {run_dir} --split test --record {results_dir}/NAME.json) or "
            f"pass --record")
    record = (select(found, estimator="ELBO", full_split=False) or found)[0]
    return next(p for p, r in zip(paths, records) if r is record), record


def check_consistency(record, meta: dict, run_dir: Path) -> None:
    """Raise ``ValueError`` unless ``record`` describes the weights loaded from ``run_dir``: model ``cwvae``, the
    same model config and the same training step, and (when the record's run directory exists) the same folder."""
    problems = []
    if record.model != "cwvae" or meta["model_name"] != "cwvae":
        problems.append(f"model: record {record.model!r}, run {meta['model_name']!r} (need 'cwvae')")
    if dict(record.config) != dict(meta["model_config"]):
        diff = sorted(k for k in set(record.config) | set(meta["model_config"])
                      if record.config.get(k) != meta["model_config"].get(k))
        problems.append(f"model config differs in {diff}")
    if int(record.steps) != int(meta["step"]):
        problems.append(f"training steps: record {record.steps}, checkpoint {meta['step']}")
    if record.run_dir:
        from wavelab.report.records import record_run_dir

        try:
            rec_dir = record_run_dir(record).resolve()
        except FileNotFoundError:
            rec_dir = None
        if rec_dir is not None and rec_dir != Path(run_dir).resolve() and Path(rec_dir).name != Path(run_dir).name:
            problems.append(f"run directory: record {record.run_dir!r}, given {str(run_dir)!r}")
    if problems:
        raise ValueError("the record does not describe this run: " + "; ".join(problems))


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python scripts/latent_study.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--run-dir", required=True, help="the recorded CW-VAE run, e.g. results/runs/cwvae-s64-l2")
    p.add_argument("--out", required=True, help="where to write the study JSON, e.g. results/studies/latent-study.json")
    p.add_argument("--record", help="the run's result record (default: found in the results folder by run name)")
    p.add_argument("--num-samples", type=int, default=100, help="posterior samples averaged per latent step (100)")
    p.add_argument("--quick", action="store_true", help="smoke test: few samples and utterances, any CW-VAE config")
    p.add_argument("--seed", type=int, default=0, help="seed of the posterior sampling")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (1)")
    p.add_argument("--no-progress", action="store_true")
    return p.parse_args(argv)


def main(argv=None) -> dict:
    """Run the study as the module docstring says; returns the saved study (as :func:`wavelab.analysis.load_study`
    reads it back).

    Raises:
        ValueError: ``--num-samples`` < 1, ``--out`` directly in the results folder or not ``.json``, a model that
            is not a CW-VAE (or, without ``--quick``, not strides 64 / 512), or a record that does not match the run.
        FileNotFoundError: the run or its record is missing.
    """
    args = parse_args(argv)
    import torch

    torch.set_num_threads(max(1, args.threads))
    from wavelab.analysis import load_study, model_strides, run_latent_study, save_study
    from wavelab.report.records import read_record
    from wavelab.settings import results_dir
    from wavelab.train import load_run

    if args.num_samples < 1:
        raise ValueError(f"--num-samples must be >= 1, got {args.num_samples}")
    out = Path(args.out)
    if out.suffix != ".json":
        raise ValueError(f"--out must be a .json file, got {out}")
    if out.resolve().parent == results_dir().resolve():
        raise ValueError(f"--out {out} is directly in the results folder, which must hold result records only; "
                         f"use {results_dir() / 'studies' / out.name}")
    run_dir = Path(args.run_dir)
    model, train_cfg, meta = load_run(run_dir)
    if meta["model_name"] != "cwvae":
        raise ValueError(f"--run-dir {run_dir} holds a {meta['model_name']!r} model; the latent study needs a CW-VAE")
    strides = model_strides(model)
    if not args.quick and strides != PAPER_STRIDES:
        raise ValueError(f"the run's CW-VAE has strides {strides}; the paper's study uses {PAPER_STRIDES} "
                         f"(s1 = 64, c = 8, L = 2); pass --quick for a smoke test with another config")
    if args.record:
        record_path = Path(args.record)
        record = read_record(record_path)
    else:
        record_path, record = find_record(run_dir, results_dir())
    check_consistency(record, meta, run_dir)

    from wavelab.analysis.study import QUICK_NUM_SAMPLES

    num_samples = min(args.num_samples, QUICK_NUM_SAMPLES) if args.quick else args.num_samples
    print(f"latent study of {run_dir} (step {meta['step']:,}, strides {strides}), record {record_path} "
          f"({record.label}: {'<= ' if record.is_bound else ''}{record.bpf_weighted:.3f} bpf); "
          f"{num_samples} posterior samples{' (quick)' if args.quick else ''}", flush=True)
    t0 = time.perf_counter()
    result = run_latent_study(model, num_samples=args.num_samples, quick=args.quick, seed=args.seed,
                              progress=not args.no_progress)
    wall = time.perf_counter() - t0
    provenance = {
        "run_dir": _relative(run_dir),
        "model": meta["model_name"],
        "model_config": meta["model_config"],
        "train_config": dataclasses.asdict(train_cfg),
        "train_step": int(meta["step"]),
        "train_frames_seen": int(meta["frames_seen"]),
        "train_wall_s": float(meta["wall_s"]),
        "record_path": _relative(record_path),
        "record": {"label": record.label, "bpf_weighted": record.bpf_weighted, "is_bound": record.is_bound,
                   "estimator": record.estimator, "steps": record.steps, "budget": record.budget,
                   "split": record.split, "utterances": record.utterances, "created": record.created,
                   "run_dir": record.run_dir, "commit": record.commit},
        "num_samples": result["settings"]["num_samples"],
        "quick": bool(args.quick),
        "seed": args.seed,
        "threads": torch.get_num_threads(),
        "wall_s": wall,
        "command": " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv]) if argv is None else
                   " ".join(shlex.quote(a) for a in ["scripts/latent_study.py", *argv]),
    }
    path = save_study(result, out, provenance)
    study = load_study(path)
    print(f"wrote {path} in {wall:.0f} s")
    from wavelab.analysis import accuracy_table

    print(accuracy_table(study))
    from wavelab.analysis import protocol_table

    print()
    print(protocol_table(study, ks=study["settings"]["ks"][:3],
                         caption="kNN accuracy [%]: LDA fitted inside each fold (fold) or once to all rows (all)"))
    return study


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        main()
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
