"""The room for runs: what a training run directory holds, how its files are written and read, and provenance.

A run lives in one directory::

    run_dir/
      config.json        the TrainConfig, the model's config and provenance (rewritten at every start)
      checkpoint.pt      latest checkpoint, replaced atomically (written to checkpoint.pt.tmp, then os.replace)
      metrics.jsonl      one JSON object per line: training log lines ("kind": "train"), evaluations on the
                         validation split ("kind": "eval", with "split": "valid") and events ("kind": "event":
                         start, resume, non-finite loss, end)

Every file that a reader may see is written atomically (a temporary file in the same directory, ``fsync``, then
``os.replace``), so a killed process never leaves a half-written JSON file or checkpoint behind.

This module depends on nothing else in wavelab, so :mod:`wavelab.train` and :mod:`wavelab.report.records` both build on
it without importing each other.
"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
from pathlib import Path
from typing import Any, Callable

CHECKPOINT = "checkpoint.pt"
CONFIG = "config.json"
METRICS = "metrics.jsonl"


# --------------------------------------------------------------------------------------------------------------------
# atomic writes


def atomic_write_bytes(path: str | Path, write: Callable[[Any], Any]) -> Path:
    """Write ``path`` through ``write(binary file)`` into ``path.tmp`` in the same directory, fsync, then
    ``os.replace`` it into place; the temporary file is removed if ``write`` raises.  Returns ``path``."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def atomic_write_json(obj: Any, path: str | Path) -> Path:
    """Write ``obj`` as indented JSON to ``path`` atomically (see :func:`atomic_write_bytes`). Returns ``path``."""
    data = (json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n").encode()
    return atomic_write_bytes(Path(path), lambda f: f.write(data))


# --------------------------------------------------------------------------------------------------------------------
# metrics


def read_metrics(run_dir: str | Path, kind: str | None = "train") -> list[dict[str, Any]]:
    """The lines of ``run_dir/metrics.jsonl`` of one ``kind`` (``"train"``, ``"eval"``, ``"event"``; ``None``: all).

    Raises:
        FileNotFoundError: no ``metrics.jsonl`` in ``run_dir``.
    """
    path = Path(run_dir) / METRICS
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist; is {run_dir} a training run directory?")
    recs = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in recs if kind is None or r.get("kind") == kind]


def trim_metrics(path: str | Path, step: int) -> None:
    """After a kill, drop the training and evaluation lines of steps past ``step`` (the checkpoint a run resumes
    from: they will be redone) and any line cut by the kill; events are kept.  Rewrites ``path`` atomically."""
    path = Path(path)
    if not path.exists():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:  # a line cut by the kill
            continue
        if rec.get("kind") == "event" or rec.get("step", 0) <= step:
            kept.append(line)
    data = ("\n".join(kept) + "\n" if kept else "").encode()
    atomic_write_bytes(path, lambda f: f.write(data))


def read_run_config(run_dir: str | Path) -> dict[str, Any]:
    """``run_dir/config.json`` as a dict (``{}`` when the run has none, e.g. a checkpoint copied by hand)."""
    path = Path(run_dir) / CONFIG
    return json.loads(path.read_text()) if path.exists() else {}


# --------------------------------------------------------------------------------------------------------------------
# export


def export_run(run_dir: str | Path, dest: str | Path) -> Path:
    """Copy a run into ``dest`` in a form small enough to keep with the project (e.g. ``results/runs/NAME``).

    ``dest`` gets the run's ``config.json`` and ``metrics.jsonl`` as they are, and a ``checkpoint.pt`` with the model
    weights and the run's metadata but without the optimizer, gradient-scaler and RNG states, so
    :func:`wavelab.train.load_run` reads it for evaluation and sampling, while training cannot resume from it (resume
    from the original run).  Every file is written atomically.

    Returns:
        ``dest``.
    Raises:
        FileNotFoundError: ``run_dir`` has no checkpoint, config or metrics.
    """
    import torch

    run_dir, dest = Path(run_dir), Path(dest)
    for name in (CHECKPOINT, CONFIG, METRICS):
        if not (run_dir / name).exists():
            raise FileNotFoundError(f"{run_dir} has no {name} to export; is it a training run directory?")
    ckpt = torch.load(run_dir / CHECKPOINT, map_location="cpu", weights_only=True)
    slim = {k: v for k, v in ckpt.items() if k not in ("optimizer", "scaler", "rng")}
    slim["exported_from"] = str(run_dir)
    dest.mkdir(parents=True, exist_ok=True)
    for name in (CONFIG, METRICS):
        src = run_dir / name
        atomic_write_bytes(dest / name, lambda f, src=src: f.write(src.read_bytes()))
    atomic_write_bytes(dest / CHECKPOINT, lambda f: torch.save(slim, f))
    return dest


# --------------------------------------------------------------------------------------------------------------------
# provenance


def hardware_info() -> dict[str, Any]:
    """The machine: ``cpu`` (model name), ``cores`` (logical), ``gpu`` (name or ``None``), ``gpu_count``, ``torch``,
    ``python``, ``platform``."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu_count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "gpu": torch.cuda.get_device_name(0) if gpu_count else None,
        "gpu_count": gpu_count,
        "torch": str(torch.__version__),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def cpu_kind() -> str:
    """``<vendor>-<isa>``: the CPU vendor and the widest matrix/vector extension it has (``amx``, ``avx512bf16``,
    ``avx512``, ``avx2`` or ``baseline``), from ``/proc/cpuinfo``."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown"
    vendor = {"GenuineIntel": "intel", "AuthenticAMD": "amd"}.get(
        (re.search(r"vendor_id\s*:\s*(\S+)", info) or [None, "other"])[1], "other")
    flags = set((re.search(r"flags\s*:\s*(.*)", info) or [None, ""])[1].split())
    for flag, isa in (("amx_bf16", "amx"), ("avx512_bf16", "avx512bf16"), ("avx512f", "avx512"), ("avx2", "avx2")):
        if flag in flags:
            return f"{vendor}-{isa}"
    return f"{vendor}-baseline"


def git_commit(path: str | Path | None = None) -> dict[str, Any]:
    """The git commit of the repository holding ``path`` (default: this package).

    Returns:
        ``{"hash": HEAD's 40-hex id or None (not a repository / no commit yet), "dirty": True when tracked or
        untracked files differ from HEAD, None when unknown}``.
    """
    cwd = Path(path) if path is not None else Path(__file__).resolve().parent

    def git(*args: str) -> str | None:
        try:
            r = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return r.stdout.strip() if r.returncode == 0 else None

    head = git("rev-parse", "--verify", "HEAD")
    status = git("status", "--porcelain")
    return {"hash": head or None, "dirty": None if status is None else bool(status)}


__all__ = ["CHECKPOINT", "CONFIG", "METRICS", "atomic_write_bytes", "atomic_write_json", "export_run", "git_commit",
           "hardware_info", "read_metrics", "read_run_config", "trim_metrics"]
