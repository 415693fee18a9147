"""Shared by tests/test_codec.py and tests/test_score.py: tiny run directories and real test audio."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from wavelab.models import build_model, quick_config
from wavelab.train import TrainConfig


def make_run(run_dir: Path, name: str, seed: int = 0, **overrides) -> Path:
    """A run directory holding an untrained quick-sized ``name`` model (weights drawn with ``seed``), in the
    checkpoint format :func:`wavelab.train.load_run` reads."""
    torch.manual_seed(seed)
    config = quick_config(name, **overrides)
    model = build_model(name, config=config)
    cfg = TrainConfig(model=name, model_overrides=dataclasses.asdict(config), run_dir=str(run_dir))
    run_dir.mkdir(parents=True, exist_ok=True)
    torch.save({"model": model.state_dict(), "step": 0, "frames_seen": 0, "wall_s": 0.0, "world_size": 1,
                "train_config": dataclasses.asdict(cfg), "model_name": name,
                "model_config": dataclasses.asdict(config), "torch_version": str(torch.__version__),
                "saved_utc": "2026-01-01T00:00:00Z"}, run_dir / "checkpoint.pt")
    return run_dir


def speech_pcm(num_samples: int, index: int = 0) -> np.ndarray:
    """The first ``num_samples`` int16 samples of utterance ``index`` of the TIMIT sample's test split (real
    speech), starting 2,000 samples in (past the leading silence)."""
    from wavelab.data import load_split

    x = load_split("timit", "test")[index].audio()
    return np.ascontiguousarray(x[2000:2000 + num_samples])


def write_wav(path: Path, pcm: np.ndarray, sample_rate: int = 16000, subtype: str = "PCM_16") -> Path:
    """Write ``pcm`` as a WAV file."""
    sf.write(path, pcm, sample_rate, subtype=subtype)
    return path
