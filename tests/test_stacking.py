"""Tests of wavelab.models.stacking: frames of s samples, their inverse, and the pieces the recurrent models share."""

import pytest
import torch

from wavelab.models.stacking import (
    frame_params,
    mlp,
    num_steps,
    previous_frames,
    segments,
    stack_frames,
    unstack_frames,
)

torch.set_num_threads(1)
PAD = 32768


@pytest.mark.parametrize("s", [1, 3, 64, 256])
@pytest.mark.parametrize("T", [1, 63, 64, 200, 512])
def test_stack_unstack_round_trip_with_padding(s, T):
    g = torch.Generator().manual_seed(s * 1000 + T)
    B = 4
    codes = torch.randint(0, 65536, (B, T), generator=g)
    lengths = torch.tensor([T, max(T - 1, 0), T // 2, 0])
    frames = stack_frames(codes, lengths, s, PAD)
    n = -(-T // s)
    assert frames.shape == (B, n, s) and frames.dtype == codes.dtype
    # frame t of row b holds samples t s .. t s + s - 1 where they are valid, the pad code elsewhere
    flat = unstack_frames(frames)
    assert flat.shape == (B, n * s)
    for b in range(B):
        L = int(lengths[b])
        assert torch.equal(flat[b, :L], codes[b, :L])
        assert bool((flat[b, L:] == PAD).all())
    for t in range(n):
        assert torch.equal(frames[0, t], flat[0, t * s:(t + 1) * s])
    # full rows round-trip exactly, cut back to T
    assert torch.equal(unstack_frames(frames, T)[0], codes[0])
    # steps cover each row's samples: ceil(L / s)
    assert num_steps(lengths, s).tolist() == [-(-int(L) // s) for L in lengths]


def test_padding_values_never_reach_the_frames():
    codes = torch.randint(0, 65536, (2, 10))
    other = codes.clone()
    other[0, 7:] = 0
    other[1, 3:] = 65535
    lengths = torch.tensor([7, 3])
    assert torch.equal(stack_frames(codes, lengths, 4, PAD), stack_frames(other, lengths, 4, PAD))
    assert not torch.equal(stack_frames(codes, torch.tensor([10, 10]), 4, PAD),
                           stack_frames(other, torch.tensor([10, 10]), 4, PAD))


def test_previous_frames_shift_by_one_frame_and_start_with_silence():
    frames = torch.arange(2 * 3 * 4, dtype=torch.float32).view(2, 3, 4)
    first = torch.full((4,), -7.0)
    prev = previous_frames(frames, first)
    assert prev.shape == frames.shape
    assert bool((prev[:, 0] == -7.0).all())
    assert torch.equal(prev[:, 1:], frames[:, :-1])


def test_frame_params_layout_is_one_block_of_parameters_per_sample():
    B, S, s, P = 2, 3, 4, 5
    out = torch.randn(B, S, s * P)
    params = frame_params(out, s, P)
    assert params.shape == (B, P, S * s)
    for t in range(S):
        for i in range(s):
            assert torch.equal(params[:, :, t * s + i], out[:, t, i * P:(i + 1) * P])


def test_mlp_depth_and_activations():
    net = mlp(5, 7, 3, layers=3)
    linears = [m for m in net if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(5, 7), (7, 7), (7, 3)]
    assert not isinstance(net[-1], torch.nn.LeakyReLU)
    assert isinstance(mlp(5, 7, 3, layers=1, final_activation=True)[-1], torch.nn.LeakyReLU)
    with pytest.raises(ValueError, match="at least one layer"):
        mlp(5, 7, 3, layers=0)


def test_segments_cover_all_steps_once():
    for n, size in [(0, 4), (1, 4), (10, 3), (12, 4), (5, 100)]:
        pieces = segments(n, size)
        covered = [t for t0, t1 in pieces for t in range(t0, t1)]
        assert covered == list(range(n))
        assert all(0 < t1 - t0 <= size for t0, t1 in pieces if n)


def test_bad_arguments_are_reported():
    codes = torch.zeros(2, 8, dtype=torch.int64)
    with pytest.raises(ValueError, match="stack size s"):
        stack_frames(codes, torch.tensor([8, 8]), 0, PAD)
    with pytest.raises(ValueError, match="lengths must lie"):
        stack_frames(codes, torch.tensor([9, 8]), 4, PAD)
    with pytest.raises(ValueError, match="lengths must have shape"):
        stack_frames(codes, torch.tensor([8]), 4, PAD)
    with pytest.raises(ValueError, match=r"\[B, T\]"):
        stack_frames(codes[0], torch.tensor([8]), 4, PAD)
    with pytest.raises(ValueError, match="length must lie"):
        unstack_frames(torch.zeros(1, 2, 4), 9)
    with pytest.raises(ValueError, match="stack size s"):
        num_steps(torch.tensor([3]), 0)
