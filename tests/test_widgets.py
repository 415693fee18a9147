"""The listening room: its controls drive generation (length, temperature, seed) and it shows a player."""

import numpy as np
import pytest
import torch

from wavelab.models import build_model
from wavelab.widgets import ListeningRoom, audio_player, codes_to_audio, generate


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return build_model("wavenet", Dc=8, blocks=1, layers_per_block=3, num_components=2).eval()


def test_generate_length_and_reproducibility(tiny):
    a, wall = generate(tiny, seconds=0.01, temperature=1.0, seed=3)
    b, _ = generate(tiny, seconds=0.01, temperature=1.0, seed=3)
    c, _ = generate(tiny, seconds=0.01, temperature=1.0, seed=4)
    assert a.shape == (160,) and a.dtype == np.float32 and wall > 0
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert np.abs(a).max() <= 1.0
    with pytest.raises(ValueError):
        generate(tiny, seconds=0)
    with pytest.raises(ValueError):
        generate(tiny, seconds=0.01, temperature=-1)


def test_zero_temperature_is_deterministic_whatever_the_seed(tiny):
    a, _ = generate(tiny, seconds=0.005, temperature=0.0, seed=1)
    b, _ = generate(tiny, seconds=0.005, temperature=0.0, seed=2)
    assert np.array_equal(a, b)


def test_listening_room_controls_drive_generation(tiny):
    room = ListeningRoom({"tiny": tiny}, max_seconds=0.5, default_seconds=0.05)
    room.seconds.value = 0.1
    room.temperature.value = 0.5
    first = room.generate()
    assert first.shape == (1600,)
    assert room.seed.value == 1  # the next press draws a new sample
    room.button.click()  # the same path a user's click takes
    assert room.seed.value == 2
    with pytest.raises(ValueError):
        ListeningRoom({})


def test_player_and_decoding():
    codes = torch.tensor([0, 32768, 65535])
    audio = codes_to_audio(codes, bits=16)
    assert audio[0] == pytest.approx(-1.0) and audio[1] == pytest.approx(0.0, abs=1e-4) and audio[2] == pytest.approx(1.0)
    player = audio_player(audio)
    assert b"RIFF" in player.data[:4]
