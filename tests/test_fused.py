"""The compiled generation loops (wavelab.models.fused) draw what the eager loop of step + distribution.sample draws.

Both loops take the same uniforms from the same generator, so their codes agree unless a float rounding difference
moves a draw across a bin edge (16-bit bins are about 3e-5 wide, so now and then one does, differently on each CPU):
the tests ask for at least 95% equal codes and states equal to float32 rounding.
"""

import numpy as np
import pytest
import torch

from wavelab.distributions import DiscretizedMixtureLogistics
from wavelab.models import fused
from wavelab.models.base import WavelabModel
from wavelab.models.lstm import LSTMConfig, LSTMModel
from wavelab.models.sashimi import SaShiMi, SaShiMiConfig
from wavelab.models.wavenet import WaveNet, WaveNetConfig


def eager_steps(model, state, n, temperature, seed, codes_prev=None):
    """``n`` rounds of the eager loop (the default :meth:`WavelabModel.steps`): ``(codes, state)``."""
    codes_prev = model.silence_block(state_batch(state)) if codes_prev is None else codes_prev
    generator = torch.Generator().manual_seed(seed)
    return WavelabModel.steps(model, codes_prev, state, n, temperature, generator)


def assert_same_draws(got: torch.Tensor, expected: torch.Tensor) -> None:
    assert got.shape == expected.shape
    agree = (got == expected).float().mean().item()
    assert agree >= 0.95, f"only {agree:.1%} of the codes agree"


def state_batch(state) -> int:
    if isinstance(state, tuple):  # the LSTM's (d, c), each [layers, B, Dd]
        return state[0].shape[1]
    return state.batch_size if hasattr(state, "batch_size") else state.x_prev.shape[0]


@pytest.mark.parametrize("representation", ["mulaw", "pcm16"])
@pytest.mark.parametrize("temperature", [1.0, 0.7, 0.0])
def test_wavenet_fused_loop_draws_the_eager_codes(representation, temperature):
    torch.manual_seed(0)
    model = WaveNet(WaveNetConfig(Dc=16, blocks=2, layers_per_block=5, representation=representation)).eval()
    eager_state, fused_state = model.default_state(1), model.default_state(1)
    expected, eager_state = eager_steps(model, eager_state, 300, temperature, seed=3)
    generator = torch.Generator().manual_seed(3)
    got, fused_state = model.steps(model.silence_block(1), fused_state, 300, temperature, generator)
    assert_same_draws(got, expected)
    assert fused_state.t == eager_state.t == 300
    # both loops leave the generator where they found it plus the same draws (none at temperature 0)
    eager_generator = torch.Generator().manual_seed(3)
    WavelabModel.steps(model, model.silence_block(1), model.default_state(1), 300, temperature, eager_generator)
    assert torch.equal(torch.rand(4, generator=generator), torch.rand(4, generator=eager_generator))
    if torch.equal(got, expected):  # the same inputs went in, so the queues hold the same values
        for a, b in zip(fused_state.queues + [fused_state.input_queue],
                        eager_state.queues + [eager_state.input_queue]):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_wavenet_fused_loop_continues_a_prompted_state_in_batches():
    torch.manual_seed(1)
    model = WaveNet(WaveNetConfig(Dc=8, blocks=1, layers_per_block=4)).eval()
    prompt = torch.randint(0, 2**16, (2, 40))
    eager_state, fused_state = model.default_state(2, prompt), model.default_state(2, prompt)
    first = prompt[:, -1:]
    expected, eager_state = eager_steps(model, eager_state, 120, 1.0, seed=5, codes_prev=first)
    generator = torch.Generator().manual_seed(5)
    part1, fused_state = model.steps(first, fused_state, 70, 1.0, generator)
    part2, fused_state = model.steps(part1[:, -1:], fused_state, 50, 1.0, generator)
    assert_same_draws(torch.cat([part1, part2], dim=1), expected)


def sashimi(**overrides) -> SaShiMi:
    torch.manual_seed(2)
    config = dict(head="dmol", d_model=8, n_layers=2, d_state=8, l_max=240, pool=[2, 3])
    return SaShiMi(SaShiMiConfig(**{**config, **overrides})).eval()


@pytest.mark.parametrize("head", ["dmol", "categorical"])
@pytest.mark.parametrize("batch_size", [1, 3])
def test_sashimi_fused_loop_draws_the_eager_codes_across_calls_and_hands_over_its_state(batch_size, head):
    """Calls end mid-window (37 = 6 * 6 + 1 steps, then 20): the pooling windows and up-pool queues go back into the
    eager state's lists, and the eager step continues from them."""
    model = sashimi(head=head, bits=16 if head == "dmol" else 8)
    eager_state, fused_state = model.default_state(batch_size), model.default_state(batch_size)
    expected, eager_state = eager_steps(model, eager_state, 77, 1.0, seed=4)
    generator = torch.Generator().manual_seed(4)
    part1, fused_state = model.steps(model.silence_block(batch_size), fused_state, 37, 1.0, generator)
    part2, fused_state = model.steps(part1[:, -1:], fused_state, 20, 1.0, generator)
    replayed = _replay(model, batch_size, 57)
    assert [len(w) for w in fused_state.windows] == [len(w) for w in replayed.windows]
    assert [len(q) for q in fused_state.queues] == [len(q) for q in replayed.queues]
    part3, fused_state = WavelabModel.steps(model, part2[:, -1:], fused_state, 20, 1.0, generator)
    got = torch.cat([part1, part2, part3], dim=1)
    assert_same_draws(got, expected)
    if torch.equal(got, expected):
        for stage_a, stage_b in zip([*fused_state.up_states, fused_state.center],
                                    [*eager_state.up_states, eager_state.center]):
            for a, b in zip(stage_a, stage_b):
                torch.testing.assert_close(a.x, b.x, rtol=1e-3, atol=1e-4)


def _replay(model, batch_size, n):
    return eager_steps(model, model.default_state(batch_size), n, 1.0, seed=0)[1]


@pytest.mark.parametrize("s", [1, 4])
@pytest.mark.parametrize("batch_size", [1, 2])
def test_lstm_fused_loop_draws_the_eager_codes(s, batch_size):
    torch.manual_seed(4)
    model = LSTMModel(LSTMConfig(s=s, Dd=16, mlp_layers=2, num_layers=2)).eval()
    eager_state, fused_state = model.default_state(batch_size), model.default_state(batch_size)
    expected, eager_state = eager_steps(model, eager_state, 80, 1.0, seed=6)
    generator = torch.Generator().manual_seed(6)
    got, fused_state = model.steps(model.silence_block(batch_size), fused_state, 50, 1.0, generator)
    rest, fused_state = model.steps(got[:, -s:], fused_state, 30, 1.0, generator)
    got = torch.cat([got, rest], dim=1)
    assert_same_draws(got, expected)
    if torch.equal(got, expected):
        for a, b in zip(fused_state, eager_state):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_dmol_draw_matches_the_distribution_given_the_same_uniforms():
    torch.manual_seed(3)
    dist = DiscretizedMixtureLogistics(10, 16)
    params = torch.randn(200, 30, 1)
    params[:, 10:20] = torch.rand(200, 10, 1) * 2 - 1
    generator = torch.Generator().manual_seed(9)
    expected = torch.stack([dist.sample(params[i:i + 1], 0.8, generator)[0, 0] for i in range(200)])
    noise = fused.draw_uniforms(200, 1, 10, torch.Generator().manual_seed(9), 0.8)
    edges = fused.interior_edges(dist.representation)
    p = params[:, :, 0].numpy()
    got = [fused.dmol_draw(p[i], noise[i], 0.8, edges, dist.log_scale_min) for i in range(200)]
    diff = np.abs(np.array(got) - expected.numpy())
    assert diff.max() <= 1 and (diff == 0).mean() >= 0.98  # a value within float rounding of an edge may move one bin


def test_s4_step_params_are_recomputed_after_an_optimizer_step():
    from wavelab.models.s4 import S4Layer

    torch.manual_seed(0)
    layer = S4Layer(4, 8, 64)
    before = layer.default_state(1).params
    assert layer.default_state(1).params is before  # kept while the weights stay
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.1)
    layer(torch.randn(1, 16, 4)).pow(2).sum().backward()
    optimizer.step()
    after = layer.default_state(1).params
    assert not torch.allclose(after["C"], before["C"])
    torch.testing.assert_close(after["C"], layer.ssm.step_params()["C"])
