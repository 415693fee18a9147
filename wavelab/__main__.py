"""Command line: ``python -m wavelab {train, evaluate, export, sample, baselines, campaign, compress, decompress,
score}``.

Examples::

    python -m wavelab train --model wavenet --set Dc=32 --set blocks=2 --steps 2000 --run-dir runs/wn32
    python -m wavelab train --quick --run-dir runs/smoke            # a tiny model for a few steps
    python -m wavelab evaluate --run-dir runs/wn32 --split test --record results/wn32.json
    python -m wavelab sample --run-dir runs/wn32 --seconds 1 --temperature 1.0 --out wn32.wav
    python -m wavelab baselines --dataset timit --results-dir results
    python -m wavelab export --run-dir runs/wn32 --dest results/runs/wn32   # weights + logs, small enough to commit
    torchrun --nproc_per_node 2 -m wavelab train --model wavenet --steps 10000 --run-dir runs/wn96
    python -m wavelab campaign recipes/lstm-s64.toml recipes/vrnn-s64.toml  # train, export, evaluate (recipes/)
    python -m wavelab compress speech.wav speech.wlc         # likelihood is compression, with the shipped model
    python -m wavelab decompress speech.wlc back.wav        # bit for bit, on any machine
    python -m wavelab compress recordings/ more.flac compressed/   # folders and several files, in batches
    python -m wavelab compress --run-dir results/runs/lstm-s64 in.wav out.wlc   # another run's model
    python -m wavelab score --run-dir results/runs/lstm-s64 recordings/ extra.wav  # bpf per file and in total

Running ``train`` again on a run directory with a checkpoint resumes it; without ``--model``/``--set`` the saved
model settings are reused, so ``train --run-dir runs/x --steps 4000`` extends a run.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

SAMPLE_RATE = 16_000

# --quick: every model's config class gives its tiny configuration (``ModelConfig.quick_overrides``); these are the
# training settings of a smoke run
QUICK_TRAIN = {"max_steps": 20, "segment_length": 2_000, "log_every": 5, "checkpoint_every": 10, "eval_subset": 2}


class CLIError(Exception):
    """A user error: printed as ``error: ...`` with exit status 2."""


def _parse_value(text: str) -> Any:
    """``"32"`` -> 32, ``"1e-3"`` -> 0.001, ``"True"`` -> True, ``"(1,2)"`` -> (1, 2), ``"None"`` -> None; other text
    stays a string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _parse_sets(items: list[str]) -> dict[str, Any]:
    out = {}
    for item in items:
        if "=" not in item:
            raise CLIError(f"--set expects KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        out[key.strip()] = _parse_value(value.strip())
    return out


def _model_config(name: str, overrides: dict[str, Any]):
    from .models import REGISTRY, UnknownModelError, check_model_name, config_for

    try:
        check_model_name(name)
    except UnknownModelError as e:
        raise CLIError(str(e)) from e
    fields = [f.name for f in dataclasses.fields(REGISTRY[name][0])]
    unknown = sorted(set(overrides) - set(fields))
    if unknown:
        raise CLIError(f"{name} has no setting(s) {unknown} (from --set); its settings are: {', '.join(fields)}")
    try:
        return config_for(name, **overrides)
    except (TypeError, ValueError) as e:
        raise CLIError(f"invalid --set for {name}: {e}") from e


def _quick_overrides(name: str) -> dict[str, Any]:
    from .models import REGISTRY

    return dict(REGISTRY[name][0].quick_overrides())


# --------------------------------------------------------------------------------------------------------------------
# train


def cmd_train(args: argparse.Namespace) -> int:
    """``python -m wavelab train``: train (or resume) a run; see :func:`wavelab.train.train`. Returns the exit status."""
    from .models import DEFAULT_MODEL
    from .train import CONFIG, NonFiniteLossError, TrainConfig, train

    run_dir = Path(args.run_dir)
    saved = None
    if (run_dir / CONFIG).exists():
        saved = json.loads((run_dir / CONFIG).read_text())["train_config"]

    sets = _parse_sets(args.set)
    if args.model is None and saved is not None and not sets:
        model, overrides = saved["model"], saved["model_overrides"]  # resume/extend with the saved model
    else:
        model = args.model or DEFAULT_MODEL
        overrides = {}
        if args.quick:
            _model_config(model, {})  # an unknown model name fails here, with the known names
            overrides.update(_quick_overrides(model))
        overrides.update(sets)
    _model_config(model, overrides)  # validate names and values early, with a clear message

    base = TrainConfig.from_dict(saved) if saved is not None else TrainConfig()
    values: dict[str, Any] = {"model": model, "model_overrides": overrides, "run_dir": str(run_dir)}
    if args.quick:
        values.update(QUICK_TRAIN)
    # the budget comes from this command line only (not from a saved run): totals over the whole run
    if args.steps is not None or args.minutes is not None or not args.quick:
        values.update({"max_steps": args.steps, "max_minutes": args.minutes})
    cli = {
        "seed": args.seed, "dataset": args.dataset,
        "batch_size": args.batch_size, "segment_length": args.segment_length, "lr": args.lr, "device": args.device,
        "amp": args.amp, "grad_clip": args.grad_clip, "log_every": args.log_every,
        "checkpoint_every": args.checkpoint_every, "checkpoint_minutes": args.checkpoint_minutes,
        "eval_every": args.eval_every,
    }
    values.update({k: v for k, v in cli.items() if v is not None})
    if saved is not None and args.steps is None and args.minutes is None and not args.quick:
        raise CLIError(f"{run_dir} already holds a run; give --steps and/or --minutes to train it further")
    cfg = dataclasses.replace(base, **values)
    try:
        cfg.validate()
    except ValueError as e:
        raise CLIError(str(e)) from e

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        summary = train(cfg, progress=not args.no_progress)
    except (ValueError, FileNotFoundError) as e:  # invalid settings, missing data, or a run dir of another run
        raise CLIError(str(e)) from e
    except NonFiniteLossError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if int(os.environ.get("RANK", "0")) != 0:
        return 0
    print(
        f"{summary.run_dir}: {summary.steps} steps, {summary.frames_seen:,} frames, {summary.wall_s:.0f} s, "
        f"last loss {summary.final_bpf:.3f} bpf (stopped by {summary.stopped_by})"
    )
    return 0


# --------------------------------------------------------------------------------------------------------------------
# evaluate


def cmd_evaluate(args: argparse.Namespace) -> int:
    """``python -m wavelab evaluate``: bpf of whole utterances of a split, optionally written as a results record."""
    import torch

    from .data import load_split
    from .evaluate import evaluate
    from .report.records import record_from_run, write_record
    from .train import load_run

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        model, cfg, meta = load_run(args.run_dir, device=device)
    except FileNotFoundError as e:
        raise CLIError(str(e)) from e
    dataset = args.dataset or cfg.dataset
    try:
        utterances = load_split(dataset, args.split)
        split_utterances = len(utterances)
        estimator = model.estimator(args.iw_samples)  # a CapabilityError (ValueError) for --iw-samples without latents
    except (ValueError, FileNotFoundError) as e:  # unknown split or corpus, data not found, no such estimator
        raise CLIError(str(e)) from e
    if args.limit is not None:
        utterances = utterances[: args.limit]
    try:
        ev = evaluate(model, utterances, max_frames=args.max_frames, device=device, progress=not args.no_progress,
                      iw_samples=args.iw_samples, seed=args.seed)
    except ValueError as e:
        raise CLIError(str(e)) from e
    print(f"{cfg.model} on {dataset} {args.split} (seed {args.seed}): {ev.bpf}")

    if args.record:
        notes = args.notes or ""
        if args.limit is not None:
            notes = (notes + "; " if notes else "") + f"first {len(utterances)} utterances of the split only"
        record = record_from_run(args.run_dir, ev, model_name=cfg.model, model_config=meta["model_config"], meta=meta,
                                 dataset=dataset, split=args.split, split_utterances=split_utterances,
                                 estimator=estimator, eval_seed=args.seed,
                                 budget=args.budget, notes=notes)
        print(f"wrote {write_record(record, args.record)}")
    return 0


# --------------------------------------------------------------------------------------------------------------------
# export


def cmd_export(args: argparse.Namespace) -> int:
    """``python -m wavelab export``: copy a run's weights, config and logs (no optimizer state) to commit them."""
    from .runs import export_run

    try:
        dest = export_run(args.run_dir, args.dest)
    except FileNotFoundError as e:
        raise CLIError(str(e)) from e
    print(f"exported {args.run_dir} to {dest}")
    return 0


# --------------------------------------------------------------------------------------------------------------------
# sample


def cmd_sample(args: argparse.Namespace) -> int:
    """``python -m wavelab sample``: generate audio from a trained run and write a 16 kHz int16 WAV file."""
    import soundfile as sf
    import torch

    from .train import load_run

    if not args.seconds > 0:
        raise CLIError(f"--seconds must be > 0, got {args.seconds}")
    if not args.temperature > 0:
        raise CLIError(f"--temperature must be > 0, got {args.temperature}")
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        model, cfg, meta = load_run(args.run_dir, device=device)
    except FileNotFoundError as e:
        raise CLIError(str(e)) from e
    generator = torch.Generator(device=device).manual_seed(args.seed)
    num_samples = max(1, round(args.seconds * SAMPLE_RATE))
    with torch.inference_mode():
        codes = model.sample(num_samples, batch_size=1, temperature=args.temperature, generator=generator,
                             progress=not args.no_progress)
    pcm = model.representation.pcm16_from_codes(codes[0].cpu())  # exact for linear / pcm16, nearest for mu-law
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    sf.write(out, pcm, SAMPLE_RATE, subtype="PCM_16")
    print(f"wrote {out}: {num_samples} samples ({num_samples / SAMPLE_RATE:.2f} s at {SAMPLE_RATE} Hz) from "
          f"{cfg.model} after {meta['step']} steps, temperature {args.temperature}")
    return 0


# --------------------------------------------------------------------------------------------------------------------
# baselines


def baseline_record_name(dataset: str, model: str, representation: str = "mulaw") -> str:
    """File name of a baseline's record: ``baseline-<dataset>-<model>.json`` for mu-law (the names records had
    before representations existed), ``baseline-<dataset>-<model>-<representation>.json`` otherwise; ``+`` in a
    model name becomes ``-``."""
    name = model.replace("+", "-")
    return f"baseline-{dataset}-{name}" + ("" if representation == "mulaw" else f"-{representation}") + ".json"


def cmd_baselines(args: argparse.Namespace) -> int:
    """``python -m wavelab baselines``: uniform, fitted 2-component DMoL, fitted histogram and FLAC on a test
    split, in one representation or each (``--representation``)."""
    from .baselines import run_baselines
    from .data import load_split
    from .report.records import ResultRecord, write_record
    from .report.tables import records_table
    from .runs import git_commit, hardware_info

    try:
        train_utts, test_utts = load_split(args.dataset, "train"), load_split(args.dataset, "test")
    except (ValueError, FileNotFoundError) as e:
        raise CLIError(str(e)) from e
    reps = ["mulaw", "linear", "pcm16"] if args.representation == "all" else [args.representation]
    hardware, commit = hardware_info(), git_commit()
    for rep in reps:
        t0 = time.perf_counter()
        results = run_baselines(train_utts, test_utts, progress=not args.no_progress, representation=rep)
        wall = time.perf_counter() - t0  # all baselines together: loading, fitting the DMoL, encoding FLAC
        records = [
            ResultRecord(model=r.name, config=dict(r.details), dataset=args.dataset, split="test",
                         bpf_weighted=r.bpf.weighted, bpf_mean=r.bpf.mean, is_bound=r.bpf.is_bound,
                         hardware=hardware, commit=commit, budget="cpu-budget", utterances=r.bpf.utterances,
                         split_utterances=len(test_utts), frames=r.bpf.frames, wall_time_s=wall,
                         train_split="train" if r.name in ("dmol", "histogram") else "", representation=rep,
                         notes=f"baseline (wall time covers all baselines of this run); training split "
                               f"({len(train_utts)} utterances) used for fitting only")
            for r in results
        ]
        print(records_table(records, digits=3))
        if args.results_dir:
            for rec in records:
                path = Path(args.results_dir) / baseline_record_name(args.dataset, rec.model, rep)
                print(f"wrote {write_record(rec, path)}")
    return 0


# --------------------------------------------------------------------------------------------------------------------
# campaign


def cmd_campaign(args: argparse.Namespace) -> int:
    """``python -m wavelab campaign``: run recipes (``recipes/NAME.toml``, see :mod:`wavelab.campaign.recipes`):
    train (or resume), export and evaluate each, in order.  Every recipe is read and checked, and every run directory
    and output planned, before the first training starts; a bad recipe is a user error (exit status 2).  Returns the
    exit status (1 when a loss became non-finite)."""
    from .campaign.recipes import RecipeError, execute_plan, load_recipes, plan_recipe
    from .train import NonFiniteLossError

    device = None if args.device == "auto" else args.device
    try:
        recipes = load_recipes(args.recipes)
        plans = [plan_recipe(r, args.runs_dir, args.results_dir, quick=args.quick, device=device,
                             evaluate_missing=args.evaluate_missing) for r in recipes]
    except (RecipeError, ValueError) as e:
        raise CLIError(str(e)) from e
    print(f"campaign: {len(plans)} recipe(s){' (quick dry run)' if args.quick else ''}")
    for i, plan in enumerate(plans, 1):
        print(f"[{i}/{len(plans)}] {plan.describe()}", flush=True)
        try:
            outcome = execute_plan(plan, progress=not args.no_progress, log=lambda line: print(line, flush=True))
        except (ValueError, FileNotFoundError) as e:  # missing data, a run directory of another run
            raise CLIError(f"{plan.recipe.source}: {e}") from e
        except NonFiniteLossError as e:
            print(f"error: {plan.recipe.source}: {e}", file=sys.stderr)
            return 1
        print(f"[{i}/{len(plans)}] {outcome.name}: done, {outcome.steps} steps, {len(outcome.records)} record(s)")
    return 0


# --------------------------------------------------------------------------------------------------------------------
# compress, decompress, score


def _check_output(args: argparse.Namespace) -> None:
    """Refuse to write over the input, or over an existing output without ``--force`` (before any work is done)."""
    out, inp = Path(args.output), Path(args.input)
    if out.exists() and inp.exists() and out.resolve() == inp.resolve():
        raise CLIError(f"{out} is both the input and the output; choose another output file (nothing was written)")
    if out.exists() and not args.force:
        raise CLIError(f"{out} already exists; pass --force to overwrite it (nothing was written)")


def _codec_models(run_dir):
    """``(integer model, None)`` for the portable codec: the shipped model, or a run's pcm16 WaveNet quantised
    (:mod:`wavelab.fixedpoint`); ``(None, float CodecModel)`` for a run whose model the integer codec cannot run
    (the float codec of :mod:`wavelab.coding`, whose files decode only where the arithmetic matches)."""
    from .coding import load_codec_model
    from .fixedpoint import IntegerWaveNet
    from .portable import load_default_model

    if run_dir is None:
        return load_default_model(), None
    codec = load_codec_model(run_dir)
    try:
        return IntegerWaveNet.from_wavenet(codec.model), None
    except ValueError:
        return None, codec


def _check_paths(args: argparse.Namespace) -> None:
    if len(args.paths) < 2:
        raise CLIError(f"give at least one input and then the output (got only {args.paths[0]})")


def _portable(args: argparse.Namespace, integer, action, done: str) -> int:
    """Run ``action`` (:func:`wavelab.portable.compress_paths` or ``decompress_paths``) on the command's paths and
    print what it wrote."""
    from .portable import summary_text

    results = action(integer, args.paths[:-1], args.paths[-1], args.force, not args.no_progress)
    if len(results) == 1:
        print(f"wrote {results[0].target}{done}")
    print(summary_text(results))
    return 0


def _float_paths(args: argparse.Namespace) -> None:
    """The float codec codes one file: ``args.input`` / ``args.output`` from the two paths given."""
    if len(args.paths) != 2:
        raise CLIError(f"the model of {args.run_dir} runs only in the float codec, which codes one file at a time: "
                       f"give one input and one output")
    args.input, args.output = args.paths
    _check_output(args)


def cmd_compress(args: argparse.Namespace) -> int:
    """``python -m wavelab compress``: code 16 kHz mono 16-bit audio files or folders with the shipped model (or a
    run's, ``--run-dir``) and the range coder (:mod:`wavelab.portable`); nothing is written on failure, and an
    existing output only with ``--force``."""
    from .coding import CodecError, compress_file
    from .portable import compress_paths

    _check_paths(args)
    try:
        integer, codec = _codec_models(args.run_dir)
        if integer is not None:
            return _portable(args, integer, compress_paths, "")
        _float_paths(args)
        stats = compress_file(codec, args.input, args.output)
    except CodecError as e:
        raise CLIError(str(e)) from e
    print(f"wrote {args.output}: {stats.frames:,} samples in {stats.file_bits // 8:,} bytes = {stats.file_bpf:.3f} "
          f"bits/sample; model {stats.ideal_bpf:.3f} bpf, range coder {100 * stats.overhead:+.3f}% (float codec: "
          f"the file decodes only with this run where the arithmetic matches)")
    if not stats.lossless:
        print(f"note: representation {stats.representation} is lossy: decompression gives back the mu-law codes "
              f"(the mu-law-decoded audio), not the input's exact int16 samples")
    return 0


def cmd_decompress(args: argparse.Namespace) -> int:
    """``python -m wavelab decompress``: decode ``.wlc`` files or folders into 16 kHz WAV files with the shipped model
    (or the run that made them, ``--run-dir``); every check (format, CRC, model fingerprint, PCM checksum) passes
    before a file is written, and an existing output is replaced only with ``--force``."""
    from .coding import CodecError, decompress_file
    from .portable import decompress_paths

    _check_paths(args)
    try:
        integer, codec = _codec_models(args.run_dir)
        if integer is not None:
            return _portable(args, integer, decompress_paths, ": checksum verified")
        _float_paths(args)
        c = decompress_file(codec, args.input, args.output)
    except CodecError as e:
        raise CLIError(" ".join(str(e).split())) from e  # one line, whatever the range coder's message held
    kind = "the input's int16 samples" if c.lossless else f"the {c.representation} codes (mu-law-decoded audio)"
    print(f"wrote {args.output}: {c.frames:,} samples at {c.sample_rate} Hz, checksum verified ({kind})")
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    """``python -m wavelab score``: bpf of each audio file and in total (eq. 11); exit status 2 if a file could not
    be scored (each is reported with its reason)."""
    import torch

    from .coding import CodecError
    from .runs import read_run_config
    from .scoring import format_report, score_files
    from .train import load_run

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        model, cfg, _ = load_run(args.run_dir, device="cpu")
        report = score_files(model, args.paths, run_config=read_run_config(args.run_dir), model_name=cfg.model,
                             max_frames=args.max_frames)
    except (FileNotFoundError, CodecError) as e:
        raise CLIError(str(e)) from e
    print(format_report(report, args.run_dir))
    for f in report.failures:
        print(f"error: {f.reason}", file=sys.stderr)  # every reason names its file
    return 2 if report.failures else 0


# --------------------------------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of ``python -m wavelab``."""
    p = argparse.ArgumentParser(prog="python -m wavelab", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a model (resumes a run directory that holds a checkpoint)")
    t.add_argument("--model", help="registry name (default wavenet, or the run's model when resuming)")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="model config override, repeatable, e.g. --set Dc=32")
    t.add_argument("--steps", type=int, help="total optimizer steps of the run, earlier sessions included")
    t.add_argument("--minutes", type=float,
                   help="total wall-clock training budget of the run in minutes, earlier sessions included")
    t.add_argument("--run-dir", required=True)
    t.add_argument("--seed", type=int)
    t.add_argument("--dataset", choices=["timit", "librispeech"])
    t.add_argument("--batch-size", type=int)
    t.add_argument("--segment-length", type=int, help="samples per training segment (paper: 16000)")
    t.add_argument("--lr", type=float)
    t.add_argument("--device", help="auto, cpu, cuda, cuda:N")
    t.add_argument("--amp", choices=["auto", "bf16", "fp16", "off"])
    t.add_argument("--grad-clip", type=float)
    t.add_argument("--log-every", type=int)
    t.add_argument("--checkpoint-every", type=int)
    t.add_argument("--checkpoint-minutes", type=float)
    t.add_argument("--eval-every", type=int,
                   help="evaluate on the validation split every N steps (the learning curve; never the test split)")
    t.add_argument("--quick", action="store_true",
                   help=f"smoke test: a tiny model config and {QUICK_TRAIN} (explicit options still win)")
    t.add_argument("--threads", type=int, help="torch CPU threads")
    t.add_argument("--no-progress", action="store_true")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("evaluate", help="bits per frame of whole utterances of a split")
    e.add_argument("--run-dir", required=True)
    e.add_argument("--split", default="test")
    e.add_argument("--dataset", choices=["timit", "librispeech"], help="default: the run's dataset")
    e.add_argument("--record", help="write a result record (JSON) here, e.g. results/x.json")
    e.add_argument("--budget", choices=["cpu-budget", "gpu"], help="default: from the training device")
    e.add_argument("--notes", default="")
    e.add_argument("--limit", type=int, help="evaluate only the first N utterances (noted in the record)")
    e.add_argument("--max-frames", type=int, default=200_000, help="frames per forward pass")
    e.add_argument("--iw-samples", type=int,
                   help="latent models: the importance-weighted bound with K samples instead of the one-sample ELBO")
    e.add_argument("--seed", type=int, default=0,
                   help="seed of the evaluation's noise (posterior samples, dequantization); written into the record")
    e.add_argument("--device")
    e.add_argument("--threads", type=int)
    e.add_argument("--no-progress", action="store_true")
    e.set_defaults(func=cmd_evaluate)

    x = sub.add_parser("export", help="copy a run's weights, config and logs (no optimizer state) for committing")
    x.add_argument("--run-dir", required=True)
    x.add_argument("--dest", required=True, help="e.g. results/runs/NAME")
    x.set_defaults(func=cmd_export)

    s = sub.add_parser("sample", help="generate audio from a trained run")
    s.add_argument("--run-dir", required=True)
    s.add_argument("--seconds", type=float, default=1.0)
    s.add_argument("--temperature", type=float, default=1.0)
    s.add_argument("--out", required=True, help="output .wav (16 kHz, 16-bit PCM)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--device")
    s.add_argument("--no-progress", action="store_true")
    s.set_defaults(func=cmd_sample)

    b = sub.add_parser("baselines", help="uniform, fitted 2-component DMoL, fitted histogram and FLAC baselines")
    b.add_argument("--dataset", default="timit", choices=["timit", "librispeech"])
    b.add_argument("--representation", default="mulaw", choices=["mulaw", "linear", "pcm16", "all"],
                   help="the codes the baselines are measured on (default mulaw, the paper's; all: each in turn); "
                        "records of a representation other than mulaw are named baseline-DATASET-NAME-REPR.json")
    b.add_argument("--results-dir", help="write one result record per baseline here (e.g. results)")
    b.add_argument("--no-progress", action="store_true")
    b.set_defaults(func=cmd_baselines)

    c = sub.add_parser("campaign", help="train, export and evaluate run recipes (recipes/NAME.toml)")
    c.add_argument("recipes", nargs="+", metavar="RECIPE", help="recipe files, e.g. recipes/lstm-s64.toml")
    c.add_argument("--runs-dir", default="runs", help="parent of the run directories (default runs)")
    c.add_argument("--results-dir", default="results",
                   help="where exports (runs/NAME) and records go (default results)")
    c.add_argument("--quick", action="store_true",
                   help="CPU dry run: tiny model, a few steps, 2 test utterances (see wavelab.campaign.recipes); "
                        "it refuses to replace another run's export or records")
    c.add_argument("--device", choices=["cpu", "cuda", "auto"], default="auto",
                   help="training and evaluation device (default auto: CUDA when available)")
    c.add_argument("--evaluate-missing", action="store_true",
                   help="neither train nor export: evaluate each recipe's export (RESULTS_DIR/runs/NAME) for the "
                        "evaluations whose record is missing, e.g. one added to a finished recipe")
    c.add_argument("--no-progress", action="store_true")
    c.set_defaults(func=cmd_campaign)

    z = sub.add_parser("compress", help="compress 16 kHz mono 16-bit audio files or folders losslessly (.wlc)")
    z.add_argument("--run-dir", help="another model: a run of a pcm16 WaveNet (coded in the portable integer codec) "
                                     "or of another model with an exact likelihood and a step (the float codec, "
                                     "one file, machine-local); default: the model shipped with wavelab")
    z.add_argument("paths", nargs="+", metavar="IN ... OUT",
                   help="IN.wav OUT.wlc, or files and folders then an output folder")
    z.add_argument("--force", action="store_true", help="overwrite outputs that exist")
    z.add_argument("--no-progress", action="store_true")
    z.set_defaults(func=cmd_compress)

    u = sub.add_parser("decompress", help="decompress .wlc files or folders into 16 kHz WAV files")
    u.add_argument("--run-dir", help="the run that compressed the files, if not the shipped model")
    u.add_argument("paths", nargs="+", metavar="IN ... OUT", help="IN.wlc OUT.wav, or files and folders then a folder")
    u.add_argument("--force", action="store_true", help="overwrite outputs that exist")
    u.add_argument("--no-progress", action="store_true")
    u.set_defaults(func=cmd_decompress)

    r = sub.add_parser("score", help="bits per frame of audio files under a run's model, per file and in total")
    r.add_argument("--run-dir", required=True)
    r.add_argument("paths", nargs="+", metavar="FILE_OR_FOLDER")
    r.add_argument("--max-frames", type=int, default=200_000, help="frames per forward pass")
    r.add_argument("--threads", type=int, help="torch CPU threads")
    r.set_defaults(func=cmd_score)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status (2 for a user error, printed as ``error: ...``)."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except CLIError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
