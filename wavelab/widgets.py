"""The listening room: ipywidgets controls that generate audio from trained models and play it.

In JupyterLab, moving a slider and pressing *Generate* draws a new sample through the model's fast path
(``model.sample``) and shows it as an audio player with its waveform.  In the rendered HTML book there is no kernel, so
chapters also embed one pre-generated sample with :func:`audio_player`.
"""

from __future__ import annotations

import time
from typing import Mapping

import numpy as np
import torch

from .audio import mu_law_decode


def codes_to_audio(codes: torch.Tensor, bits: int) -> np.ndarray:
    """Mu-law codes ``[T]`` -> float32 linear audio ``[T]`` in [-1, 1] (for players, plots and WAV files)."""
    return mu_law_decode(codes.detach().cpu().reshape(-1), bits).numpy().astype(np.float32)


def audio_player(audio: np.ndarray, sample_rate: int = 16000):
    """An ``IPython.display.Audio`` player for float audio ``[T]`` in [-1, 1] at ``sample_rate`` Hz.

    Not normalised, so loudness differences between samples stay audible.
    """
    from IPython.display import Audio

    return Audio(np.clip(audio, -1.0, 1.0), rate=sample_rate, normalize=False)


def generate(model, seconds: float, temperature: float = 1.0, seed: int = 0, sample_rate: int = 16000,
             progress: bool = False) -> tuple[np.ndarray, float]:
    """Draw one unconditional sample of ``seconds`` seconds from ``model`` through its fast path.

    Returns:
        (float32 audio ``[round(seconds * sample_rate)]`` in [-1, 1], wall time in seconds).
    Raises:
        ValueError: non-positive length or negative temperature.
    """
    if seconds <= 0:
        raise ValueError(f"seconds must be positive, got {seconds}")
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    n = int(round(seconds * sample_rate))
    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(int(seed))
    t0 = time.perf_counter()
    codes = model.sample(n, batch_size=1, temperature=temperature, generator=generator, progress=progress)
    return codes_to_audio(codes[0], model.bits), time.perf_counter() - t0


class ListeningRoom:
    """Sliders for temperature and length, a model picker, and a *Generate* button that plays a fresh sample.

    Args:
        models: display name -> trained model (any wavelab model with ``sample`` and ``bits``).
        max_seconds: upper end of the length slider (seconds of audio at ``sample_rate`` Hz).
        sample_rate: Hz.
    Raises:
        ValueError: no models given.
    """

    def __init__(self, models: Mapping[str, torch.nn.Module], max_seconds: float = 2.0, sample_rate: int = 16000,
                 default_seconds: float = 0.5):
        import ipywidgets as w

        if not models:
            raise ValueError("ListeningRoom needs at least one model")
        self.models = dict(models)
        self.sample_rate = sample_rate
        self.model_picker = w.Dropdown(options=list(self.models), description="model")
        self.temperature = w.FloatSlider(value=1.0, min=0.0, max=1.5, step=0.05, description="temperature")
        self.seconds = w.FloatSlider(value=min(default_seconds, max_seconds), min=0.05, max=max_seconds, step=0.05,
                                     description="length [s]")
        self.seed = w.IntText(value=0, description="seed")
        self.button = w.Button(description="Generate", button_style="primary", icon="play")
        self.output = w.Output()
        self.button.on_click(lambda _: self.generate())
        self.widget = w.VBox([w.HBox([self.model_picker, self.seed]), self.temperature, self.seconds, self.button,
                              self.output])

    def generate(self) -> np.ndarray:
        """Generate with the current control values, show player and waveform, and return the audio ``[T]``."""
        import matplotlib.pyplot as plt
        from IPython.display import display

        model = self.models[self.model_picker.value]
        audio, wall = generate(model, self.seconds.value, self.temperature.value, self.seed.value, self.sample_rate)
        self.seed.value += 1  # the next press draws a new sample
        with self.output:
            self.output.clear_output(wait=True)
            print(f"{self.model_picker.value}: {len(audio)} samples in {wall:.2f} s "
                  f"({len(audio) / wall:,.0f} samples/s), temperature {self.temperature.value:.2f}")
            display(audio_player(audio, self.sample_rate))
            fig, ax = plt.subplots(figsize=(8, 1.6))
            ax.plot(np.arange(len(audio)) / self.sample_rate, audio, lw=0.5)
            ax.set_xlabel("time [s]")
            ax.set_ylim(-1, 1)
            display(fig)
            plt.close(fig)
        return audio

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)
