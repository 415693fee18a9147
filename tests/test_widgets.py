"""The listening room and the players: generation follows the controls; every player is at the stated level with its
peaks limited and a WAV that decodes to the stated length; without a kernel the room shows its pre-generated players."""

import base64
import io
import math
import re

import numpy as np
import pytest
import soundfile as sf
import torch

from wavelab.models import build_model
from wavelab.report.widgets import (LOUDNESS_DBFS, PEAK_DBFS, SILENCE_GATE_DBFS, ListeningRoom, audio_player,
                                    codes_to_audio, generate, normalise_loudness, reference_player, rms_dbfs,
                                    sample_caption, waveform_png)


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


def _png_pixels(png: bytes) -> np.ndarray:
    from matplotlib.image import imread

    return imread(io.BytesIO(png), format="png")


def test_the_room_draws_nothing_through_pyplot_or_display_and_cannot_tear(tiny, monkeypatch):
    """A press may run on another thread than the cells (JupyterLab's comm subshell): the room sets widget values
    only, and its waveform, drawn while the main thread draws pyplot figures, is the same image as one drawn alone."""
    import threading

    import matplotlib.pyplot as plt
    import IPython.display

    room = ListeningRoom({"tiny": tiny}, max_seconds=0.5, default_seconds=0.25)
    stop, errors, pressing = threading.Event(), [], set()

    def guarded(original):  # refuses calls from the press's thread only
        def call(*args, **kwargs):
            if threading.get_ident() in pressing:
                raise AssertionError(f"the room's callback called {original.__name__}")
            return original(*args, **kwargs)
        return call

    for name in ("figure", "subplots", "gcf", "show"):
        monkeypatch.setattr(plt, name, guarded(getattr(plt, name)))
    monkeypatch.setattr(IPython.display, "display", guarded(IPython.display.display))

    def press():
        pressing.add(threading.get_ident())
        try:
            room.generate()
        except Exception as e:  # noqa: BLE001  (reported below, on the test's thread)
            errors.append(e)
        finally:
            stop.set()

    worker = threading.Thread(target=press)
    worker.start()
    while not stop.is_set():  # pyplot drawing of the kind a notebook cell does, until the press is over
        fig, ax = plt.subplots()
        ax.plot(np.random.default_rng(0).normal(size=500))
        fig.canvas.draw()
        plt.close(fig)
    worker.join()
    assert not errors, errors
    alone = waveform_png(room.last_player.audio, 16000, "tiny, seed 0 (as played)")
    assert bytes(room.waveform.value) == room.last_png
    drawn = _png_pixels(room.last_png)
    assert np.array_equal(drawn, _png_pixels(alone))
    assert drawn[..., :3].std() > 0.01  # not blank
    assert "<audio" in room.player.value and "0.25 s" in room.player.value


def test_the_button_is_disabled_while_a_sample_is_drawn_and_progress_reaches_the_end(tiny, monkeypatch):
    room = ListeningRoom({"tiny": tiny}, max_seconds=0.5, default_seconds=0.1)
    seen = {}
    sample = tiny.sample

    def spy(*args, **kwargs):
        seen["disabled"] = room.button.disabled
        seen["progress"] = kwargs.get("progress")
        return sample(*args, **kwargs)

    monkeypatch.setattr(tiny, "sample", spy)
    room.generate()
    assert seen["disabled"] is True and callable(seen["progress"])
    assert room.button.disabled is False and room.progress.value == 1.0
    assert "samples/s" in room.status.value


def test_each_model_gets_a_length_a_press_can_afford(tiny):
    room = ListeningRoom({"tiny": tiny, "same": tiny}, max_seconds=4.0, default_seconds=4.0, press_budget_s=1e-3)
    assert set(room.speeds) == {"tiny", "same"} and all(v > 0 for v in room.speeds.values())
    assert room.limits["tiny"] == 0.05 and room.seconds.max == 0.05 and room.seconds.value == 0.05
    assert "samples/s" in room.status.value and "at most 0.05 s" in room.status.value
    assert len(room.generate()) == 800
    generous = ListeningRoom({"tiny": tiny}, max_seconds=0.5, press_budget_s=None)
    assert generous.limits == {"tiny": 0.5} and generous.seconds.max == 0.5


def test_player_and_decoding():
    codes = torch.tensor([0, 32768, 65535])
    audio = codes_to_audio(codes, bits=16)
    assert audio[0] == pytest.approx(-1.0) and audio[1] == pytest.approx(0.0, abs=1e-4) and audio[2] == pytest.approx(1.0)
    player = audio_player(audio)
    assert b"RIFF" in player.data[:4]


# --------------------------------------------------------------------------------------------------------------------
# level, players, captions, fallbacks

SR = 16000
LIMIT = 10 ** (PEAK_DBFS / 20)


def speech_like(seconds=2.0, seed=0, gain=0.3):
    """Voiced bursts (140 Hz harmonics under a syllable envelope), fricative noise and pauses of exact zeros."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    syllables = np.clip(np.sin(2 * np.pi * 3 * t), 0, None) ** 2
    voiced = sum(np.sin(2 * np.pi * 140 * h * t + h) / h for h in range(1, 12))
    fricative = (np.sin(2 * np.pi * 3 * t + np.pi) > 0.7) * rng.standard_normal(len(t)) * 0.3
    x = gain * (syllables * voiced + fricative)
    x[int(0.8 * SR):int(1.3 * SR)] = 0.0  # a pause
    return x


def noise_like(seconds=1.0, seed=0, scale=0.05):
    return np.random.default_rng(seed).standard_normal(int(seconds * SR)) * scale


def plain_rms_dbfs(x):
    return 20 * math.log10(math.sqrt(np.mean(np.square(x, dtype=np.float64))))


def test_level_of_stationary_sound_is_its_plain_rms():
    sine = np.sin(2 * np.pi * 440 * np.arange(SR) / SR)
    assert rms_dbfs(sine) == pytest.approx(-3.0103, abs=0.01)  # a full-scale sine is -3.01 dBFS
    x = noise_like(scale=0.01)
    assert rms_dbfs(x) == pytest.approx(plain_rms_dbfs(x), abs=0.05)


def test_level_leaves_out_pauses():
    burst = noise_like(0.5, scale=0.1)
    padded = np.concatenate([np.zeros(SR), burst, np.zeros(2 * SR)])
    assert plain_rms_dbfs(padded) < plain_rms_dbfs(burst) - 7  # the whole-clip RMS drops with the pauses...
    assert rms_dbfs(padded) == pytest.approx(plain_rms_dbfs(burst), abs=0.1)  # ...the gated level does not
    assert rms_dbfs(np.zeros(100)) == -math.inf and rms_dbfs(np.zeros(0)) == -math.inf


@pytest.mark.parametrize("make", [speech_like, noise_like, lambda: speech_like(gain=0.002),
                                  lambda: np.clip(noise_like(scale=3.0), -1, 1)],
                         ids=["speech", "noise", "quiet-speech", "clipped-full-scale-noise"])
def test_normalised_level_is_the_target_and_peaks_stay_below_the_limit(make):
    x = make()
    y = normalise_loudness(x)
    assert y.dtype == np.float32 and y.shape == x.shape
    assert abs(rms_dbfs(y) - LOUDNESS_DBFS) < 0.5
    assert np.abs(y).max() <= LIMIT
    assert np.corrcoef(x, y)[0, 1] > 0.99  # the same sound, not a distorted one


def test_limiter_works_near_its_limit_and_makes_up_the_loudness_it_takes():
    x = speech_like()  # crest factor about 13 dB: at -9 dBFS RMS its peaks would pass -3 dBFS
    target, peak = -9.0, -3.0
    linear = x * 10 ** ((target - rms_dbfs(x)) / 20)
    assert np.abs(linear).max() > 1.2 * 10 ** (peak / 20)
    y = normalise_loudness(x, target_dbfs=target, peak_dbfs=peak)
    assert np.abs(y).max() <= 10 ** (peak / 20)
    assert np.abs(y).max() > 0.9 * 10 ** (peak / 20)  # limited, not turned down as a whole
    assert abs(rms_dbfs(y) - target) < 0.5
    knee = 10 ** ((peak - 6) / 20) / 10 ** (6 / 20)  # below the knee even after the most make-up gain: only scaled
    quiet = (np.abs(linear) < knee) & (np.abs(linear) > 1e-3)
    ratio = y[quiet] / linear[quiet]
    np.testing.assert_allclose(ratio, ratio[0], rtol=1e-4)
    assert 1.0 < ratio[0] < 10 ** (6 / 20)  # by the make-up gain


def test_clicks_stay_below_the_limit_and_their_player_says_how_loud_they_are():
    clicks = noise_like(scale=0.001)
    clicks[::997] = 1.0  # clicks 50 dB above the noise: only crushing them would reach the target
    y = normalise_loudness(clicks, target_dbfs=-12.0)
    assert np.abs(y).max() <= LIMIT
    player = audio_player(clicks)
    assert np.abs(player.audio).max() <= LIMIT
    assert f"level {rms_dbfs(player.audio):.0f} dBFS RMS" in player.label  # the measured level, not the target


def test_silence_stays_silence():
    for silent in (np.zeros(SR), np.full(SR, 2.6e-9) * (-1) ** np.arange(SR)):  # zeros; the mu-law codes next to 0
        assert rms_dbfs(silent) < SILENCE_GATE_DBFS
        with np.errstate(all="raise"):  # no division by zero
            y = normalise_loudness(silent)
        assert np.array_equal(y, silent.astype(np.float32))
    assert audio_player(np.zeros(800)).label == "silent"


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_audio_raises(bad):
    x = noise_like()
    x[10] = bad
    with pytest.raises(ValueError, match="NaN or infinite"):
        normalise_loudness(x)
    with pytest.raises(ValueError, match="NaN or infinite"):
        audio_player(x)


def test_bad_audio_and_levels_raise():
    with pytest.raises(ValueError, match="shape"):
        normalise_loudness(np.zeros((2, 10)))
    with pytest.raises(ValueError, match="int16"):
        audio_player(np.zeros(10, dtype=np.int16))
    with pytest.raises(ValueError, match="empty"):
        audio_player(np.zeros(0))
    with pytest.raises(ValueError, match="peak_dbfs"):
        normalise_loudness(noise_like(), peak_dbfs=1.0)
    with pytest.raises(ValueError, match="target_dbfs"):
        normalise_loudness(noise_like(), target_dbfs=-0.5)


def _wav_of(html_text):
    match = re.search(r'<audio controls preload="metadata" src="data:audio/wav;base64,([A-Za-z0-9+/=]+)" '
                      r'data-duration-s="([0-9.]+)"></audio>', html_text)
    assert match, html_text[:200]
    return base64.b64decode(match.group(1)), match.group(2)


def test_player_html_carries_a_decodable_wav_of_the_stated_length():
    x = speech_like(1.25) * 0.1
    player = audio_player(x, 16000, "SRNN · temperature 1.0 <test>")
    page = player._repr_html_()
    assert page.startswith('<figure class="wavelab-audio">') and page.endswith("</figcaption></figure>")
    wav, duration = _wav_of(page)
    assert duration == "1.250" and wav == player.wav == player.data
    decoded, rate = sf.read(io.BytesIO(wav), dtype="float32")
    info = sf.info(io.BytesIO(wav))
    assert rate == 16000 and info.subtype == "PCM_16" and info.channels == 1 and len(decoded) == len(x)
    np.testing.assert_allclose(decoded, player.audio, atol=1.5 / 32768)  # what plays is the normalised audio
    assert abs(player.level_dbfs - LOUDNESS_DBFS) < 0.5 and abs(rms_dbfs(decoded) - LOUDNESS_DBFS) < 0.5
    assert "<figcaption>SRNN · temperature 1.0 &lt;test&gt; · level -26 dBFS RMS</figcaption>" in page
    assert "level -26 dBFS RMS" in repr(player)


def test_positional_call_and_unnormalised_player_keep_their_level():
    x = noise_like(0.5, scale=0.01)  # about -40 dBFS
    positional = audio_player(x)
    assert positional.sample_rate == 16000 and positional.data[:4] == b"RIFF"
    assert abs(positional.level_dbfs - LOUDNESS_DBFS) < 0.5
    raw = audio_player(x, 8000, normalise=False)
    assert raw.level_dbfs == pytest.approx(plain_rms_dbfs(x), abs=0.05) and raw.duration_s == pytest.approx(1.0)
    assert f"level {raw.level_dbfs:.0f} dBFS RMS" in raw._repr_html_()
    assert _wav_of(raw._repr_html_())[1] == "1.000"


def test_sample_caption():
    assert (sample_caption("SRNN s=64", "srnn-timit-s64", 1.0, 13.42, is_bound=True)
            == "SRNN s=64 · run srnn-timit-s64 · temperature 1.0 · <= 13.42 bpf (test)")
    assert (sample_caption("WaveNet", "wavenet-timit", 0.75, 12.3456, seconds=2)
            == "WaveNet · run wavenet-timit · temperature 0.75 · 12.35 bpf (test) · 2.00 s")
    assert sample_caption("CW-VAE", "", 0.5, None) == "CW-VAE · temperature 0.5"
    for bad in ({"temperature": -1.0}, {"bpf": math.nan}, {"model": " "}):
        with pytest.raises(ValueError):
            sample_caption(**{"model": "m", "run": "r", "temperature": 1.0, "bpf": 1.0, **bad})


def test_reference_player_is_real_speech_at_the_same_level(timit_root):
    player = reference_player("timit", "test", index=0, seconds=1.5, root=timit_root)
    utt = player.utterance
    assert len(player.audio) == 24000 and _wav_of(player._repr_html_())[1] == "1.500"
    assert abs(player.level_dbfs - LOUDNESS_DBFS) < 0.5 and np.abs(player.audio).max() <= LIMIT
    assert "real speech" in player.label and utt.id in player.label and utt.speaker.id in player.label
    start = round(player.start_s * 16000)
    original = utt.audio()[start:start + 24000] / 32768.0
    assert np.corrcoef(original, player.audio)[0, 1] > 0.999  # the utterance itself, only scaled
    with pytest.raises(IndexError):
        reference_player("timit", "test", index=10_000, root=timit_root)
    with pytest.raises(ValueError):
        reference_player("timit", "test", seconds=0, root=timit_root)


def test_listening_room_captions_normalised_samples_and_falls_back_to_its_players(tiny):
    players = [audio_player(speech_like(0.5), caption="pre-generated A"), audio_player(noise_like(0.3), caption="B")]
    room = ListeningRoom({"tiny": tiny}, max_seconds=0.5, default_seconds=0.05, fallback=players)
    room.seed.value = 5
    room.temperature.value = 0.75
    raw = room.generate()
    player = room.last_player
    assert player.caption == "tiny · temperature 0.75 · seed 5 · 0.05 s"
    assert len(player.audio) == len(raw) and np.abs(player.audio).max() <= LIMIT
    assert player.level_dbfs == -math.inf or abs(player.level_dbfs - LOUDNESS_DBFS) < 0.5
    bundle = room._repr_mimebundle_()
    view = bundle["application/vnd.jupyter.widget-view+json"]
    assert view["model_id"] == room.widget.model_id  # JupyterLab shows the live widget
    fallback = bundle["text/html"]
    for p in players:
        assert p._repr_html_() in fallback
    assert "running kernel" in fallback and "JupyterLab" in fallback and "tiny" in fallback
    assert "ListeningRoom" in bundle["text/plain"]
    with pytest.raises(TypeError, match="fallback"):
        ListeningRoom({"tiny": tiny}, fallback=[np.zeros(10)])
