"""The two-file promise of the model contract: a new model needs its own definitions and one registry line, nothing
else.  A toy model defined here, registered for the test only, trains, evaluates, appears in a records table under
its own name and key settings, samples, and compresses and decompresses bit for bit through its step."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest
import torch
from torch import nn

from wavelab.coding import CodecModel, Container, compress_pcm, decompress_bytes
from wavelab.data import Recording
from wavelab.distributions import Categorical
from wavelab.evaluate import evaluate
from wavelab.models import REGISTRY, ModelConfig, ModelOutput, WavelabModel, length_mask
from wavelab.representations import get_representation
from wavelab.report.records import record_from_run
from wavelab.report.tables import records_table
from wavelab.train import TrainConfig, load_run, train


@dataclass
class ToyConfig(ModelConfig):
    """A bigram over 8-bit mu-law codes that predicts ``block`` samples per step from the last code before them."""

    display_name: ClassVar[str] = "Toy bigram"
    key_fields: ClassVar[tuple[str, ...]] = ("block",)

    block: int = 2
    bits: int = 8
    representation: str = "mulaw"

    @classmethod
    def quick_overrides(cls) -> dict:
        return {"block": 2}

    @classmethod
    def label_suffix(cls, config: dict) -> str:
        return f" b={config.get('block', 2)}"


class ToyModel(WavelabModel):
    """``p(x_t | x_{<t}) = softmax(W[x_c])`` with ``x_c`` the last code of the previous block (silence first)."""

    def __init__(self, config: ToyConfig):
        super().__init__()
        self.config, self.bits = config, config.bits
        self.representation = get_representation(config.representation, config.bits)
        self.silence_code = self.representation.silence_code
        self.distribution = Categorical(config.bits)
        self.table = nn.Parameter(torch.zeros(2 ** config.bits, 2 ** config.bits))

    def _context(self, codes: torch.Tensor) -> torch.Tensor:
        """``[B, T]`` the code each position is predicted from: the last code of the block before it."""
        t = torch.arange(codes.shape[1])
        before = (t // self.config.block) * self.config.block - 1
        ctx = codes[:, before.clamp(min=0)]
        return torch.where(before[None, :] >= 0, ctx, torch.full_like(ctx, self.silence_code))

    def forward(self, codes: torch.Tensor, lengths: torch.Tensor) -> ModelOutput:
        logits = self.table[self._context(codes)].transpose(1, 2)  # [B, 2**bits, T]
        log_p = self.distribution.log_prob(logits, codes)
        mask = length_mask(lengths, codes.shape[1])
        return ModelOutput(nll=-torch.where(mask, log_p, torch.zeros_like(log_p)).sum(1), frames=lengths)

    @property
    def step_size(self) -> int:
        return self.config.block

    def default_state(self, batch_size: int = 1):
        return None  # the previous block is all a bigram remembers

    def step(self, codes_prev: torch.Tensor, state):
        logits = self.table[codes_prev[:, -1]]  # [B, 2**bits]
        return logits.unsqueeze(-1).expand(-1, -1, self.config.block), state


@pytest.fixture
def toy(monkeypatch):
    monkeypatch.setitem(REGISTRY, "toy", (ToyConfig, ToyModel))
    return "toy"


def _speech_like(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = np.zeros(n)
    for i in range(2, n):  # a resonant AR(2) process: strong sample-to-sample dependence
        x[i] = 1.8 * x[i - 1] - 0.9 * x[i - 2] + rng.normal(0, 300)
    return np.clip(x, -32768, 32767).astype(np.int16)


def test_a_new_model_needs_only_its_definitions_and_a_registry_line(toy, tmp_path):
    utterances = [Recording(f"u{i}", _speech_like(3000, i)) for i in range(4)]
    cfg = TrainConfig(model=toy, segment_length=400, batch_size=4, max_steps=40, lr=0.1, device="cpu",
                      log_every=10, checkpoint_every=None, checkpoint_minutes=None, run_dir=str(tmp_path / "run"))
    summary = train(cfg, utterances, progress=False)
    assert summary.steps == 40

    model, _, meta = load_run(tmp_path / "run")
    assert isinstance(model, ToyModel)
    test = [Recording("held-out", _speech_like(2001, 9))]  # not a whole number of blocks
    ev = evaluate(model, test, seed=0)
    assert ev.bpf.weighted < 7.0  # learnt: below the 8 bits of a uniform 8-bit code

    record = record_from_run(tmp_path / "run", ev, model_name=toy, model_config=meta["model_config"], meta=meta,
                             dataset="timit", split="test", split_utterances=len(test), estimator=model.estimator(),
                             eval_seed=0)
    assert record.label == "toy b=2"
    html = records_table([record], caption="toy")._repr_html_()
    assert "Toy bigram b=2" in html and "block=2" in html

    codes = model.sample(301, batch_size=2, generator=torch.Generator().manual_seed(0))
    assert codes.shape == (2, 301) and int(codes.max()) < 256

    codec = CodecModel.from_model(model, {"representation": "mulaw"})
    pcm = test[0].pcm
    data, stats = compress_pcm(codec, pcm)
    back = decompress_bytes(codec, Container.from_bytes(data))
    assert torch.equal(codec.representation.codes_from_pcm16(back), codec.representation.codes_from_pcm16(pcm))
    assert stats.ideal_bits / len(pcm) == pytest.approx(ev.bpf.weighted, rel=1e-4)
