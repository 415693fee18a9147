"""Tests of the training loop (wavelab.train) and evaluation (wavelab.evaluate) on a tiny model and synthetic audio.

The tiny model is registered under a test-only name; the SIGKILL and DDP tests start child processes that import this
file to get it.
"""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import types
import sys
import time
from dataclasses import dataclass
from dataclasses import replace as dataclasses_replace
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from wavelab.data import Recording
from wavelab.models import REGISTRY, ModelConfig, ModelOutput, WavelabModel, length_mask
from wavelab.representations import get_representation
from wavelab.train import CHECKPOINT, METRICS, NonFiniteLossError, TrainConfig, load_run, read_metrics, train

torch.set_num_threads(1)
TESTS_DIR = Path(__file__).resolve().parent
REPO = TESTS_DIR.parent
TINY = "_tiny_test"


@dataclass
class TinyConfig(ModelConfig):
    """A bigram model over 8-bit codes, with dropout so that the model's own RNG matters for exact resume."""

    bits: int = 8
    hidden: int = 8
    dropout: float = 0.2
    nan_at_call: int | None = None  # the training forward call (1-based) that returns a NaN loss
    nan_grad_at_call: int | None = None  # the training forward call whose loss is finite but whose gradient is NaN
    sleep_s: float = 0.0  # slow each training step down (for the kill test)
    bound: bool = False  # pretend to be a latent variable model: is_bound and a KL term


class _NaNGradient(torch.autograd.Function):
    """Identity forward, NaN backward: a finite loss whose gradient is not (as an fp32/bf16 overflow can give)."""

    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        return grad * float("nan")


class TinyModel(WavelabModel):
    def __init__(self, config: TinyConfig):
        super().__init__()
        self.config, self.bits = config, config.bits
        self.representation = get_representation("mulaw", config.bits)  # the contract: every model has one
        n = 2**config.bits
        self.embed = nn.Embedding(n + 1, config.hidden)  # index n: "no previous sample"
        self.drop = nn.Dropout(config.dropout)
        self.out = nn.Linear(config.hidden, n)
        self.calls = 0

    @property
    def is_bound(self) -> bool:
        return self.config.bound

    def forward(self, codes, lengths):
        if self.training:
            self.calls += 1
            if self.config.sleep_s:
                time.sleep(self.config.sleep_s)
        B, T = codes.shape
        prev = torch.cat([torch.full((B, 1), 2**self.bits, dtype=codes.dtype, device=codes.device), codes[:, :-1]], 1)
        logits = self.out(self.drop(self.embed(prev)))
        logp = torch.log_softmax(logits.float(), -1).gather(-1, codes[..., None]).squeeze(-1)
        nll = -(logp * length_mask(lengths, T)).sum(1)
        if self.training and self.config.nan_at_call == self.calls:
            nll = nll * float("nan")
        if self.training and self.config.nan_grad_at_call == self.calls:
            nll = _NaNGradient.apply(nll)
        kl = {}
        if self.config.bound:
            kl = {"z": 0.01 * lengths.float()}
            nll = nll + kl["z"] + 1e-3 * torch.rand(B, device=codes.device)  # a one-sample bound is random
        return ModelOutput(nll=nll, frames=lengths.clone(), is_bound=self.config.bound, kl=kl)



@pytest.fixture(autouse=True)
def tiny_in_registry(monkeypatch):
    """The test double joins the model registry for each test of this file only."""
    monkeypatch.setitem(REGISTRY, TINY, (TinyConfig, TinyModel))


def fake_utterances(n: int = 4, seed: int = 0, min_len: int = 300, max_len: int = 600) -> list[Recording]:
    rng = np.random.default_rng(seed)
    utts = []
    for i in range(n):
        T = int(rng.integers(min_len, max_len))
        t = np.arange(T)
        x = 8000 * np.sin(2 * np.pi * t * rng.uniform(0.01, 0.05)) + rng.normal(0, 500, T)
        utts.append(Recording(f"utt{i}", np.clip(x, -32768, 32767).astype(np.int16)))
    return utts


def tiny_cfg(run_dir, **kw) -> TrainConfig:
    base = dict(model=TINY, segment_length=64, batch_size=2, lr=1e-2, max_steps=6, seed=3, device="cpu",
                log_every=1, checkpoint_every=None, checkpoint_minutes=None, run_dir=str(run_dir))
    base.update(kw)
    return TrainConfig(**base)


def params(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def assert_same(a: dict, b: dict):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"parameter {k} differs"


# ---------------------------------------------------------------------------------------------------- basic training


def test_train_writes_run_dir_and_metrics(tmp_path):
    utts = fake_utterances()
    s = train(tiny_cfg(tmp_path / "run", max_steps=5, log_every=2, model_overrides={"bound": True}), utts,
              progress=False)
    run = tmp_path / "run"
    assert s.steps == 5 and s.stopped_by == "max_steps" and s.resumed_from is None
    assert (run / CHECKPOINT).exists() and not (run / (CHECKPOINT + ".tmp")).exists()
    config = json.loads((run / "config.json").read_text())
    assert config["train_config"]["model"] == TINY and config["model_config"]["bound"] is True
    assert config["parameters"] == sum(p.numel() for p in s.model.parameters())
    lines = read_metrics(run)
    assert [r["step"] for r in lines] == [2, 4, 5]  # every log_every steps and the last one
    for r in lines:
        assert r["bpf"] == pytest.approx(r["loss_nats"] / math.log(2))
        assert r["kl_z"] == pytest.approx(0.01)  # KL per frame of the fake LVM
        assert r["lr"] == 1e-2
    # the utterances are longer than the segment, so every row is full
    assert lines[-1]["frames_seen"] == s.frames_seen == 5 * 2 * 64
    assert s.final_bpf == pytest.approx(lines[-1]["bpf"])
    events = [r["event"] for r in read_metrics(run, kind="event")]
    assert events == ["start", "end"]


def test_training_reduces_loss(tmp_path):
    train(tiny_cfg(tmp_path, max_steps=40, log_every=10, lr=3e-2, model_overrides={"dropout": 0.0}),
          fake_utterances(), progress=False)
    bpf = [r["bpf"] for r in read_metrics(tmp_path)]
    assert bpf[0] > bpf[-1] + 0.5, bpf  # starts near log2(256) = 8 bits, learns the bigram statistics
    assert bpf[0] < 8.5


def test_resume_equals_uninterrupted(tmp_path):
    utts = fake_utterances()
    full = train(tiny_cfg(tmp_path / "full", max_steps=8), utts, progress=False)
    first = train(tiny_cfg(tmp_path / "split", max_steps=3), utts, progress=False)
    assert first.steps == 3
    second = train(tiny_cfg(tmp_path / "split", max_steps=8), utts, progress=False)
    assert second.resumed_from == 3 and second.steps == 8 and second.frames_seen == full.frames_seen
    assert_same(params(full.model), params(second.model))
    # optimizer state too
    a = torch.load(tmp_path / "full" / CHECKPOINT, weights_only=True)["optimizer"]["state"]
    b = torch.load(tmp_path / "split" / CHECKPOINT, weights_only=True)["optimizer"]["state"]
    for k in a:
        assert torch.equal(a[k]["exp_avg_sq"], b[k]["exp_avg_sq"])
    # the metrics of the split run equal those of the uninterrupted run
    assert [r["loss_nats"] for r in read_metrics(tmp_path / "split")] == [
        r["loss_nats"] for r in read_metrics(tmp_path / "full")]


def test_dropout_rng_matters(tmp_path):
    """Guard for the resume test: without restoring the model's RNG the runs would differ (dropout)."""
    utts = fake_utterances()
    a = train(tiny_cfg(tmp_path / "a", max_steps=3), utts, progress=False)
    b = train(tiny_cfg(tmp_path / "b", max_steps=3, seed=4), utts, progress=False)
    assert not torch.equal(a.model.out.weight, b.model.out.weight)


def test_resume_refuses_a_different_run(tmp_path):
    utts = fake_utterances()
    train(tiny_cfg(tmp_path, max_steps=2), utts, progress=False)
    with pytest.raises(ValueError, match="different run.*batch_size"):
        train(tiny_cfg(tmp_path, max_steps=4, batch_size=3), utts, progress=False)


def test_time_budget_stops_the_run(tmp_path):
    s = train(tiny_cfg(tmp_path, max_steps=10_000, max_minutes=0.3 / 60, model_overrides={"sleep_s": 0.05}),
              fake_utterances(), progress=False)
    assert s.stopped_by == "max_minutes"
    assert 3 <= s.steps < 40
    assert torch.load(tmp_path / CHECKPOINT, weights_only=True)["step"] == s.steps


def test_cpu_clock_counts_training_cpu_time_not_waiting(tmp_path):
    """clock="cpu": the budget is the process's CPU time spent training, so time the process waits (here a sleep in
    every step, as when another job holds the core) does not use it up, while the wall clock would."""
    sleepy = {"sleep_s": 0.05}
    wall = train(tiny_cfg(tmp_path / "wall", max_steps=10_000, max_minutes=0.3 / 60, model_overrides=sleepy),
                 fake_utterances(), progress=False)
    cpu = train(tiny_cfg(tmp_path / "cpu", max_steps=10_000, max_minutes=0.3 / 60, clock="cpu",
                         model_overrides=sleepy), fake_utterances(), progress=False)
    assert wall.stopped_by == cpu.stopped_by == "max_minutes"
    assert cpu.train_cpu_s >= 0.3 and wall.wall_s >= 0.3
    assert cpu.wall_s > cpu.train_cpu_s + 0.04 * cpu.steps  # every step slept 0.05 s off the CPU clock
    assert cpu.steps > 2 * wall.steps
    ckpt = torch.load(tmp_path / "cpu" / CHECKPOINT, weights_only=True)
    assert ckpt["train_cpu_s"] == pytest.approx(cpu.train_cpu_s, abs=0.05)
    with pytest.raises(ValueError, match="clock"):
        train(tiny_cfg(tmp_path / "bad", clock="gpu"), fake_utterances(), progress=False)


def test_eval_every_minutes_logs_a_curve_on_the_training_clock(tmp_path):
    """eval_every_minutes: a validation point before the first step, one each interval of training CPU time and one
    at the end of the budget; validation time is not charged to the budget, and a resumed run continues the
    clock and the curve."""
    utts, held_out = fake_utterances(), fake_utterances(n=2, seed=9)
    interval = 0.1 / 60
    cfg = tiny_cfg(tmp_path, max_steps=100_000, max_minutes=0.45 / 60, clock="cpu", eval_every_minutes=interval,
                   log_every=50)
    first = train(cfg, utts, eval_utterances=held_out, progress=False)
    evals = read_metrics(tmp_path, kind="eval")
    t = [e["train_cpu_s"] for e in evals]
    assert evals[0]["step"] == 0 and t[0] < 0.01
    assert evals[-1]["step"] == first.steps and t[-1] == pytest.approx(first.train_cpu_s, abs=0.02)
    # one point per interval: each interior point sits on (or a step after) its own grid point k * 0.1 s; a point that
    # overshoots its grid point by a step may lie less than 0.1 s before the next one, which is on time
    grid = [round(ti / 0.1) for ti in t[1:-1]]
    assert len(evals) >= 5 and all(b > a for a, b in zip(grid, grid[1:])), t
    assert all(abs(ti / 0.1 - round(ti / 0.1)) * 0.1 < 0.03 for ti in t[1:-1])  # on the interval's grid
    assert all(e["frames_seen"] == e["step"] * 2 * 64 for e in evals)
    second = train(dataclasses_replace(cfg, max_minutes=0.75 / 60), utts, eval_utterances=held_out, progress=False)
    resumed = read_metrics(tmp_path, kind="eval")
    assert [e["step"] for e in resumed[:len(evals)]] == [e["step"] for e in evals]
    assert second.train_cpu_s >= 0.75 and resumed[-1]["step"] == second.steps
    t2 = [e["train_cpu_s"] for e in resumed]
    assert t2 == sorted(t2) and len(resumed) > len(evals)


def test_invalid_config_is_reported(tmp_path):
    with pytest.raises(ValueError, match="budget"):
        train(tiny_cfg(tmp_path, max_steps=None), fake_utterances(), progress=False)
    with pytest.raises(ValueError, match="amp"):
        train(tiny_cfg(tmp_path, amp="fp8"), fake_utterances(), progress=False)
    with pytest.raises(TypeError, match="no field"):
        train(tiny_cfg(tmp_path, model_overrides={"Dc": 3}), fake_utterances(), progress=False)


def test_amp_resolution_on_cpu_and_cuda():
    from wavelab.train import _resolve_amp

    assert _resolve_amp("auto", torch.device("cpu")) == (False, None, False)
    assert _resolve_amp("auto", torch.device("cuda")) == (True, torch.float16, True)  # the paper's fp16 AMP
    assert _resolve_amp("off", torch.device("cuda")) == (False, None, False)
    assert _resolve_amp("fp16", torch.device("cuda")) == (True, torch.float16, True)  # GradScaler with fp16
    assert _resolve_amp("bf16", torch.device("cuda")) == (True, torch.bfloat16, False)


# ---------------------------------------------------------------------------------------------------- NaN


def test_non_finite_loss_stops_and_keeps_checkpoint(tmp_path):
    utts = fake_utterances()
    cfg = tiny_cfg(tmp_path, max_steps=10, checkpoint_every=1, model_overrides={"nan_at_call": 4})
    with pytest.raises(NonFiniteLossError, match=r"step 4 .*step 3\).*--lr") as info:
        train(cfg, utts, progress=False)
    assert info.value.step == 4 and math.isnan(info.value.loss) and info.value.checkpoint_step == 3
    ckpt = torch.load(tmp_path / CHECKPOINT, weights_only=True)
    assert ckpt["step"] == 3
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values())
    # the checkpoint is the state after 3 good steps
    ref = train(tiny_cfg(tmp_path / "ref", max_steps=3), utts, progress=False)
    assert_same(ckpt["model"], params(ref.model))
    assert read_metrics(tmp_path, kind="event")[-1]["event"] == "non_finite_loss"


def test_non_finite_gradient_stops_before_the_step_and_keeps_checkpoint(tmp_path):
    utts = fake_utterances()
    cfg = tiny_cfg(tmp_path, max_steps=10, checkpoint_every=1, model_overrides={"nan_grad_at_call": 4})
    with pytest.raises(NonFiniteLossError, match=r"gradient norm .* step 4 .*step 3\)") as info:
        train(cfg, utts, progress=False)
    assert info.value.step == 4 and info.value.what == "gradient norm" and info.value.checkpoint_step == 3
    ckpt = torch.load(tmp_path / CHECKPOINT, weights_only=True)
    assert ckpt["step"] == 3 and all(torch.isfinite(v).all() for v in ckpt["model"].values())
    ref = train(tiny_cfg(tmp_path / "ref", max_steps=3), utts, progress=False)
    assert_same(ckpt["model"], params(ref.model))
    assert read_metrics(tmp_path, kind="event")[-1]["event"] == "non_finite_gradient"


def test_bf16_autocast_trains_a_wavenet_on_cpu(tmp_path):
    """The mixed-precision path (autocast + the DMoL's float32 likelihood) runs and learns; on CUDA the same code
    runs with fp16 and a gradient scaler."""
    cfg = TrainConfig(model="wavenet", model_overrides=dict(Dc=8, blocks=1, layers_per_block=3, num_components=2),
                      segment_length=400, batch_size=2, max_steps=12, amp="bf16", device="cpu", log_every=1,
                      checkpoint_every=None, checkpoint_minutes=None, run_dir=str(tmp_path), lr=3e-3)
    t = torch.arange(4000)
    tone = (3000 * torch.sin(2 * math.pi * 300 * t / 16000)).to(torch.int16).numpy()
    train(cfg, [Recording("tone", tone)], progress=False)
    curve = [r["bpf"] for r in read_metrics(tmp_path)]
    assert all(math.isfinite(b) for b in curve) and curve[-1] < curve[0]


# ---------------------------------------------------------------------------------------------------- kill and resume


def _child_train(run_dir: str) -> None:
    """Entry point of the SIGKILL test's child process: a long, slow run that checkpoints every 2 steps."""
    REGISTRY[TINY] = (TinyConfig, TinyModel)  # a child process of its own: no pytest fixture runs here
    train(tiny_cfg(run_dir, max_steps=100_000, checkpoint_every=2, model_overrides={"sleep_s": 0.02}),
          fake_utterances(), progress=False)


def _python_child(code: str, env: dict | None = None) -> subprocess.Popen:
    full_env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), str(TESTS_DIR)]), **(env or {}))
    return subprocess.Popen([sys.executable, "-c", code], cwd=REPO, env=full_env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def test_sigkill_then_resume_equals_uninterrupted(tmp_path):
    run = tmp_path / "killed"
    child = _python_child(f"import torch; torch.set_num_threads(1); import test_train; "
                          f"test_train._child_train({str(run)!r})")
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:  # wait for a checkpoint and a few steps beyond it
            if child.poll() is not None:
                pytest.fail(f"child exited early:\n{child.stdout.read()}")
            if (run / CHECKPOINT).exists() and (run / METRICS).exists():
                steps = [json.loads(x).get("step", 0) for x in (run / METRICS).read_text().splitlines() if x]
                if max(steps) >= 7:
                    break
            time.sleep(0.05)
        else:
            pytest.fail("child made no checkpoint in time")
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            os.kill(child.pid, signal.SIGKILL)
            child.wait()
    assert child.returncode == -signal.SIGKILL
    k = torch.load(run / CHECKPOINT, weights_only=True)["step"]
    assert k >= 2
    total = k + 3
    overrides = {"sleep_s": 0.02}
    resumed = train(tiny_cfg(run, max_steps=total, checkpoint_every=2, model_overrides=overrides),
                    fake_utterances(), progress=False)
    assert resumed.resumed_from == k and resumed.steps == total
    ref = train(tiny_cfg(tmp_path / "ref", max_steps=total, checkpoint_every=2, model_overrides=overrides),
                fake_utterances(), progress=False)
    assert_same(params(ref.model), params(resumed.model))
    # the log holds each step once (lines past the checkpoint written before the kill were dropped)
    steps = [r["step"] for r in read_metrics(run)]
    assert steps == list(range(1, total + 1))


# ---------------------------------------------------------------------------------------------------- DDP


def _ddp_child(run_dir: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    REGISTRY[TINY] = (TinyConfig, TinyModel)  # a child process of its own: no pytest fixture runs here
    s = train(tiny_cfg(run_dir, max_steps=12, log_every=4, lr=3e-2, model_overrides={"dropout": 0.0}),
              fake_utterances(), progress=False)
    torch.save(params(s.model), Path(out_dir) / f"rank{os.environ['RANK']}.pt")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_two_gloo_processes(tmp_path):
    """Two CPU processes launched the way torchrun does (RANK, WORLD_SIZE, MASTER_ADDR/PORT in the environment)."""
    run, out = tmp_path / "run", tmp_path / "out"
    out.mkdir()
    port = str(_free_port())
    children = [
        _python_child(f"import test_train; test_train._ddp_child({str(run)!r}, {str(out)!r})",
                      env={"RANK": str(r), "LOCAL_RANK": str(r), "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1",
                           "MASTER_PORT": port})
        for r in range(2)
    ]
    try:
        for c in children:
            c.wait(timeout=120)
    finally:
        for c in children:
            if c.poll() is None:
                os.kill(c.pid, signal.SIGKILL)
    for c in children:
        assert c.returncode == 0, c.stdout.read()
    p0, p1 = torch.load(out / "rank0.pt"), torch.load(out / "rank1.pt")
    assert_same(p0, p1)  # DDP kept the replicas identical
    ckpt = torch.load(run / CHECKPOINT, weights_only=True)
    assert_same(p0, ckpt["model"])
    assert ckpt["world_size"] == 2 and len(ckpt["rng"]) == 2
    # frames are counted over both ranks; logs are written once (rank 0)
    assert ckpt["frames_seen"] == 12 * 2 * 2 * 64
    lines = read_metrics(run)
    assert [r["step"] for r in lines] == [4, 8, 12]
    assert lines[-1]["bpf"] < lines[0]["bpf"] - 0.3  # training made progress
    # the ranks saw different data: a one-process run with the same settings ends elsewhere
    single = train(tiny_cfg(tmp_path / "single", max_steps=12, log_every=4, lr=3e-2,
                            model_overrides={"dropout": 0.0}), fake_utterances(), progress=False)
    assert not torch.equal(params(single.model)["out.weight"], p0["out.weight"])


# ---------------------------------------------------------------------------------------------------- load_run


def test_load_run(tmp_path):
    s = train(tiny_cfg(tmp_path, max_steps=2), fake_utterances(), progress=False)
    model, cfg, meta = load_run(tmp_path)
    assert isinstance(model, TinyModel) and not model.training
    assert cfg == tiny_cfg(tmp_path, max_steps=2)
    assert meta["step"] == 2 and meta["frames_seen"] == s.frames_seen and meta["model_name"] == TINY
    assert_same(params(model), params(s.model))
    with pytest.raises(FileNotFoundError, match="has no checkpoint.pt.*train"):
        load_run(tmp_path / "..")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_run(tmp_path / "nope")


def test_export_run_keeps_weights_and_drops_optimizer(tmp_path):
    from wavelab.train import export_run

    run = tmp_path / "run"
    train(tiny_cfg(run, max_steps=2), fake_utterances(), progress=False)
    dest = export_run(run, tmp_path / "exported")
    slim = torch.load(dest / "checkpoint.pt", weights_only=True)
    assert "optimizer" not in slim and "rng" not in slim
    assert (dest / "metrics.jsonl").read_text() == (run / "metrics.jsonl").read_text()
    a, _, meta_a = load_run(run)
    b, _, meta_b = load_run(dest)
    assert_same(params(a), params(b))
    assert meta_a["step"] == meta_b["step"] == 2
    assert (dest / "checkpoint.pt").stat().st_size < (run / "checkpoint.pt").stat().st_size
    with pytest.raises(FileNotFoundError, match="no checkpoint.pt"):
        export_run(tmp_path / "nothing", tmp_path / "x")


# ---------------------------------------------------------------------------------------------------- evaluate


def test_evaluate_matches_direct_computation():
    from wavelab.evaluate import evaluate

    torch.manual_seed(0)
    model = TinyModel(TinyConfig())
    utts = fake_utterances(n=5)
    ev = evaluate(model, utts, max_frames=1000)  # several buckets
    assert model.training  # mode restored
    assert ev.ids == [u.id for u in utts]
    model.eval()
    with torch.no_grad():
        direct = torch.tensor([float(model(u.codes(8)[None], torch.tensor([u.num_samples])).nll[0]) for u in utts],
                              dtype=torch.float64)
    torch.testing.assert_close(ev.nll, direct, rtol=1e-5, atol=1e-3)
    assert ev.lengths.tolist() == [u.num_samples for u in utts]
    total_bits = direct.sum() / math.log(2)
    assert ev.bpf.weighted == pytest.approx(float(total_bits / sum(u.num_samples for u in utts)), rel=1e-5)
    assert ev.bpf.mean == pytest.approx(float(ev.per_utterance_bpf().mean()), rel=1e-9)
    assert not ev.is_bound and ev.bpf.utterances == 5


def test_evaluate_marks_bounds_and_uses_evaluate_long():
    from wavelab.evaluate import evaluate

    class Long(TinyModel):
        def evaluate_long(self, codes, lengths):
            self.long_calls += 1
            assert not torch.is_grad_enabled()
            return self(codes, lengths)

    model = Long(TinyConfig(bound=True))
    model.long_calls = 0
    ev = evaluate(model, fake_utterances(n=3), max_frames=10_000)
    assert model.long_calls >= 1 and ev.is_bound and ev.bpf.is_bound
    torch.testing.assert_close(ev.kl["z"], 0.01 * ev.lengths.double())
    with pytest.raises(ValueError, match="at least one utterance"):
        evaluate(model, [])


def test_resume_check_ignores_tuple_versus_list(tmp_path):
    """Settings read back from config.json (lists) still match a checkpoint written with tuples."""
    from wavelab.train import _check_resumable

    cfg = tiny_cfg(tmp_path, model_overrides={"hidden": 8, "x": (1, 2)})
    saved = dict(cfg.__dict__, model_overrides={"hidden": 8, "x": [1, 2]})
    _check_resumable(cfg, saved, tmp_path)
    with pytest.raises(ValueError, match="model_overrides"):
        _check_resumable(cfg, dict(saved, model_overrides={"hidden": 9, "x": [1, 2]}), tmp_path)


def test_eval_every_logs_held_out_bpf_without_changing_training(tmp_path):
    utts, held_out = fake_utterances(), fake_utterances(n=2, seed=9)
    lvm = {"bound": True}  # its evaluation draws random numbers
    with_eval = train(tiny_cfg(tmp_path / "a", max_steps=4, eval_every=2, model_overrides=lvm), utts,
                      eval_utterances=held_out, progress=False)
    evals = read_metrics(tmp_path / "a", kind="eval")
    assert [e["step"] for e in evals] == [2, 4]
    assert all(e["utterances"] == 2 and e["frames"] == sum(u.num_samples for u in held_out) for e in evals)
    assert all(0 < e["bpf"] < 9 and e["is_bound"] for e in evals)  # 8-bit codes: about 8 bits at the start
    without = train(tiny_cfg(tmp_path / "b", max_steps=4, model_overrides=lvm), utts, progress=False)
    assert_same(params(with_eval.model), params(without.model))  # evaluation does not consume the training RNG


def test_training_reads_train_and_valid_never_test(tmp_path, monkeypatch):
    """With no utterances given, training reads the dataset's train split and evaluates on its valid split (logged as
    such, with the evaluation's seed); the test split is never read."""
    import wavelab.data as wdata

    asked = []

    def load_split(corpus, split, root=None):
        asked.append((corpus, split))
        if split == "test":
            raise AssertionError("training read the test split")
        utts = fake_utterances(n=4 if split == "train" else 3, seed=1 if split == "train" else 2)
        for i, u in enumerate(utts):  # two validation speakers
            u.speaker = types.SimpleNamespace(id=f"{split}-speaker{i % 2}")
        return utts

    monkeypatch.setattr(wdata, "load_split", load_split)
    train(tiny_cfg(tmp_path, max_steps=4, eval_every=2, eval_subset=2), progress=False)
    assert sorted(set(asked)) == [("timit", "train"), ("timit", "valid")]
    evals = read_metrics(tmp_path, kind="eval")
    assert [(e["step"], e["split"], e["utterances"], e["seed"]) for e in evals] == [(2, "valid", 2, 3), (4, "valid", 2, 3)]
    config = json.loads((tmp_path / "config.json").read_text())
    assert (config["train_split"], config["eval_split"]) == ("train", "valid")
