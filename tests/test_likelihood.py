import math

import pytest
import torch

from wavelab.likelihood import LN2, bits_per_frame, bits_to_nats, nats_to_bits


def test_nats_bits_round_trip():
    assert nats_to_bits(LN2) == pytest.approx(1.0)
    assert bits_to_nats(nats_to_bits(3.7)) == pytest.approx(3.7)


def test_weighted_versus_mean_bpf():
    # utterance 1: 100 frames at 10 bits each; utterance 2: 300 frames at 14 bits each
    nll = torch.tensor([100 * 10 * LN2, 300 * 14 * LN2])
    bpf = bits_per_frame(nll, torch.tensor([100, 300]))
    assert bpf.weighted == pytest.approx((1000 + 4200) / 400)  # eq. 11 weights by length
    assert bpf.mean == pytest.approx(12.0)
    assert bpf.frames == 400 and bpf.utterances == 2 and not bpf.is_bound
    assert "<=" in str(bits_per_frame(nll, [100, 300], is_bound=True))


def test_uniform_model_is_exactly_16_bits():
    T = torch.tensor([12345, 678])
    nll = T.double() * 16 * math.log(2)
    assert bits_per_frame(nll, T).weighted == pytest.approx(16.0, abs=1e-12)


def test_bits_per_frame_rejects_bad_input():
    with pytest.raises(ValueError):
        bits_per_frame([], [])
    with pytest.raises(ValueError):
        bits_per_frame([1.0, 2.0], [3])
    with pytest.raises(ValueError):
        bits_per_frame([1.0], [0])
