"""The listening room and audio players: every sound the book plays, at one stated level.

* :func:`audio_player` turns float audio ``[T]`` into an HTML ``<audio>`` player (a 16-bit PCM WAV in a data URI) whose
  caption states what it is and its level.  By default the audio is first brought to :data:`LOUDNESS_DBFS` with
  :func:`normalise_loudness`, so a reader compares models' samples and real speech without touching the volume.
* :func:`sample_caption` and :func:`reference_player` give chapters a uniform caption for generated samples and a real
  utterance at the same level to compare them with.
* :class:`ListeningRoom` has ipywidgets controls (model, temperature, length, seed) and a *Generate* button that draws a
  new sample through the model's fast path (``model.sample``).  In JupyterLab it is the live widget; in the rendered
  HTML book, where no kernel runs, it shows the pre-generated players passed as ``fallback`` (its
  ``_repr_mimebundle_`` carries both; the book's ``_config.yml`` makes the html builder pick the ``text/html`` one).

Level (loudness) is measured by :func:`rms_dbfs` as a *gated* RMS in dBFS, ``20 log10(RMS)`` with a full-scale square
wave at 0 dBFS (a full-scale sine is -3.01 dBFS), over the clip's active part: 20 ms frames, of which those below
:data:`SILENCE_GATE_DBFS` (absolute gate) or more than :data:`RELATIVE_GATE_DB` below the mean power of the remaining
frames (relative gate) are left out, as pauses.  For stationary sound (noise, a tone) this equals the plain RMS of the
whole clip; for speech it is the level while someone speaks, whatever the length of the pauses.
"""

from __future__ import annotations

import base64
import html
import io
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from ..audio import mu_law_decode
from ..models.base import Progress
from .tables import bpf_text

LOUDNESS_DBFS = -26.0
"""Target level of every player, dBFS RMS over the active part of the clip (see :func:`rms_dbfs`)."""

PEAK_DBFS = -1.0
"""Peak limit of every normalised player, dBFS: ``|x| <= 10 ** (PEAK_DBFS / 20)`` (0.891)."""

SILENCE_GATE_DBFS = -70.0
"""Absolute gate of :func:`rms_dbfs`: 20 ms frames quieter than this (dBFS RMS) count as silence.  A clip with no
louder frame is *silent*: its level is ``-inf`` and :func:`normalise_loudness` leaves it as it is (so a model that
generates near-silence, e.g. the mu-law codes next to zero, +-3e-9, is not amplified into a buzz)."""

RELATIVE_GATE_DB = -20.0
"""Relative gate of :func:`rms_dbfs`, dB: frames more than 20 dB below the mean power of the frames above the absolute
gate count as pauses."""

LEVEL_FRAME_S = 0.02
"""Frame length of the gates of :func:`rms_dbfs`, seconds."""

KNEE_DB = 6.0
"""The soft limiter of :func:`normalise_loudness` leaves samples up to ``KNEE_DB`` below the peak limit untouched."""

MAX_MAKEUP_DB = 6.0
"""At most this much extra gain (dB) makes up for loudness the limiter took away (see :func:`normalise_loudness`)."""

NO_KERNEL_NOTE = ("Generating new samples needs a running kernel: open this chapter as a notebook in JupyterLab and "
                  "run it.")


def codes_to_audio(codes: torch.Tensor, bits: int, representation="mulaw") -> np.ndarray:
    """Codes ``[T]`` (mu-law by default, or of another :mod:`wavelab.representations` representation) -> float32
    linear audio ``[T]`` in [-1, 1] (for players, plots and WAV files)."""
    if isinstance(representation, str) and representation == "mulaw":
        return mu_law_decode(codes.detach().cpu().reshape(-1), bits).numpy().astype(np.float32)
    from ..representations import get_representation

    rep = get_representation(representation, bits)
    return rep.to_linear(codes.detach().cpu().reshape(-1)).numpy().astype(np.float32)


# ----------------------------------------------------------------------------------------------------------------------
# Level
# ----------------------------------------------------------------------------------------------------------------------


def _as_audio(audio: Any, name: str = "audio") -> np.ndarray:
    """``audio`` as a finite float64 array ``[T]``; ValueError for other shapes, integer PCM, NaN or inf."""
    if isinstance(audio, torch.Tensor):
        audio = audio.detach().cpu().numpy()
    x = np.asarray(audio)
    if x.ndim != 1:
        raise ValueError(f"{name} must be one channel of samples, shape [T]; got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"{name} must be float audio in [-1, 1], got dtype {x.dtype} "
                         f"(convert int16 PCM with x / 32768)")
    x = x.astype(np.float64)
    if not np.isfinite(x).all():
        bad = int((~np.isfinite(x)).sum())
        raise ValueError(f"{name} has {bad} NaN or infinite sample(s) of {len(x)}")
    return x


def _frame_stats(x: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """Sum of squares and sample count of each 20 ms frame of ``x`` (the last frame may be shorter)."""
    frame = max(1, round(LEVEL_FRAME_S * sample_rate))
    starts = np.arange(0, len(x), frame)
    sumsq = np.add.reduceat(x * x, starts)
    counts = np.diff(np.append(starts, len(x)))
    return sumsq, counts


def _active_frames(x: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sum of squares, counts, active mask) of the frames of ``x`` that pass both gates of :func:`rms_dbfs`."""
    if len(x) == 0:
        empty = np.zeros(0)
        return empty, empty, np.zeros(0, dtype=bool)
    sumsq, counts = _frame_stats(x, sample_rate)
    power = sumsq / counts
    active = power > 10.0 ** (SILENCE_GATE_DBFS / 10.0)
    if active.any():
        mean_power = sumsq[active].sum() / counts[active].sum()
        active &= power > mean_power * 10.0 ** (RELATIVE_GATE_DB / 10.0)
    return sumsq, counts, active


def rms_dbfs(audio: np.ndarray, sample_rate: int = 16000) -> float:
    """Level of float audio ``[T]`` (linear amplitude, full scale 1): gated RMS in dBFS.

    ``20 log10(RMS)`` over the clip's active 20 ms frames: frames below :data:`SILENCE_GATE_DBFS` and frames more than
    :data:`RELATIVE_GATE_DB` below the mean power of the others are left out (pauses), see the module docstring.
    Stationary sound gets its plain whole-clip RMS; a full-scale sine reads -3.01 dBFS.

    Args:
        audio: float array ``[T]`` (any finite values; a torch tensor works too).
        sample_rate: Hz, sets the 20 ms frame length.
    Returns:
        the level in dBFS, ``-inf`` for an empty or silent clip (no frame above the absolute gate).
    Raises:
        ValueError: not 1-D, not floating point, or NaN / inf samples.
    """
    x = _as_audio(audio)
    sumsq, counts, active = _active_frames(x, sample_rate)
    if not active.any():
        return -math.inf
    return 10.0 * math.log10(sumsq[active].sum() / counts[active].sum())


def _soft_limit(x: np.ndarray, peak: float) -> np.ndarray:
    """Identity up to the knee ``peak * 10**(-KNEE_DB/20)``; above it a tanh curve with slope 1 at the knee that
    approaches ``peak`` and never exceeds it."""
    knee = peak * 10.0 ** (-KNEE_DB / 20.0)
    mag = np.abs(x)
    over = mag > knee
    if not over.any():
        return x
    y = x.copy()
    room = peak - knee
    y[over] = np.sign(x[over]) * (knee + room * np.tanh((mag[over] - knee) / room))
    return y


def normalise_loudness(audio: np.ndarray, target_dbfs: float = LOUDNESS_DBFS, peak_dbfs: float = PEAK_DBFS,
                       sample_rate: int = 16000) -> np.ndarray:
    """Bring float audio ``[T]`` to ``target_dbfs`` (level of :func:`rms_dbfs`) with its peaks below ``peak_dbfs``.

    One gain brings the clip to the target level; then a soft limiter (identity up to :data:`KNEE_DB` below the peak
    limit, a tanh knee above, asymptotic to the limit) keeps every ``|x| <= 10 ** (peak_dbfs / 20)``.  If the limiter
    took loudness away, the gain is raised again (a few fixed-point steps, at most :data:`MAX_MAKEUP_DB` in all), so
    speech and noise end within 0.1 dB of the target; only very peaky sound (clicks, crest factor above about 30 dB)
    ends quieter, and :func:`audio_player` captions the level it measured.

    Args:
        audio: float audio ``[T]``, nominally in [-1, 1] (any finite values are accepted: only the shape matters).
        target_dbfs: level to reach, dBFS (must be below ``peak_dbfs``).
        peak_dbfs: peak limit, dBFS, at most 0.
        sample_rate: Hz (for the 20 ms frames of the level gates).
    Returns:
        float32 ``[T]`` at the target level, ``|x| <= 10 ** (peak_dbfs / 20)``.  A silent clip (all zeros, or nothing
        above :data:`SILENCE_GATE_DBFS`) is returned unchanged (as float32), without any gain.
    Raises:
        ValueError: not 1-D, not floating point, NaN or inf samples, ``peak_dbfs > 0`` or ``target_dbfs >=
            peak_dbfs``.
    """
    x = _as_audio(audio)
    if not (math.isfinite(peak_dbfs) and peak_dbfs <= 0.0):
        raise ValueError(f"peak_dbfs must be a finite level <= 0 dBFS, got {peak_dbfs}")
    if not (math.isfinite(target_dbfs) and target_dbfs < peak_dbfs):
        raise ValueError(f"target_dbfs must be finite and below peak_dbfs={peak_dbfs}, got {target_dbfs}")
    peak = 10.0 ** (peak_dbfs / 20.0)
    level = rms_dbfs(x, sample_rate)
    if not math.isfinite(level):  # silence: nothing to bring up
        return x.astype(np.float32)
    gain0 = gain = 10.0 ** ((target_dbfs - level) / 20.0)
    max_gain = gain0 * 10.0 ** (MAX_MAKEUP_DB / 20.0)
    for _ in range(8):
        y = _soft_limit(gain * x, peak)
        error_db = target_dbfs - rms_dbfs(y, sample_rate)
        if abs(error_db) < 0.01 or (error_db > 0 and gain >= max_gain):
            break
        gain = min(gain * 10.0 ** (error_db / 20.0), max_gain)
    # float32 may round a value next to the limit up past it: clip to the largest float32 not above the limit
    limit32 = np.float32(peak)
    if float(limit32) > peak:
        limit32 = np.nextafter(limit32, np.float32(0.0))
    return np.clip(y.astype(np.float32), -limit32, limit32)


# ----------------------------------------------------------------------------------------------------------------------
# Players and captions
# ----------------------------------------------------------------------------------------------------------------------


def _level_text(level: float) -> str:
    return f"level {level:.0f} dBFS RMS" if math.isfinite(level) else "silent"


class AudioPlayer:
    """An HTML audio player of one clip (see :func:`audio_player`, which makes them).

    Attributes:
        audio: float32 ``[T]``, what is played (normalised unless ``normalise=False``, then clipped to [-1, 1]).
        sample_rate: Hz.
        caption: the caption given (without the level).
        label: the full caption shown, ``"<caption> · level -26 dBFS RMS"`` (``"silent"`` for a silent clip).
        level_dbfs: :func:`rms_dbfs` of :attr:`audio` (``-inf`` when silent).
        normalised: whether :func:`normalise_loudness` was applied.
        duration_s: ``T / sample_rate``, seconds.
        wav: the 16-bit PCM mono WAV file, bytes (``data`` is the same, as in ``IPython.display.Audio``).
    """

    def __init__(self, audio: np.ndarray, sample_rate: int = 16000, caption: str = "", normalise: bool = True):
        import soundfile as sf

        if not (isinstance(sample_rate, (int, np.integer)) and sample_rate > 0):
            raise ValueError(f"sample_rate must be a positive integer (Hz), got {sample_rate!r}")
        x = _as_audio(audio)
        if len(x) == 0:
            raise ValueError("cannot make a player of empty audio (0 samples)")
        self.sample_rate = int(sample_rate)
        self.normalised = bool(normalise)
        if normalise:
            self.audio = normalise_loudness(x, sample_rate=self.sample_rate)
        else:
            self.audio = np.clip(x, -1.0, 1.0).astype(np.float32)
        self.audio.flags.writeable = False
        self.caption = str(caption)
        self.level_dbfs = rms_dbfs(self.audio, self.sample_rate)
        self.label = " · ".join(part for part in (self.caption.strip(), _level_text(self.level_dbfs)) if part)
        self.duration_s = len(self.audio) / self.sample_rate
        buf = io.BytesIO()
        sf.write(buf, self.audio, self.sample_rate, format="WAV", subtype="PCM_16")
        self.wav = buf.getvalue()

    @property
    def data(self) -> bytes:
        """The WAV file bytes (the attribute name of ``IPython.display.Audio``)."""
        return self.wav

    def _repr_html_(self) -> str:
        uri = "data:audio/wav;base64," + base64.b64encode(self.wav).decode("ascii")
        # the duration is written out: a browser's own player reads "0:00" for clips under a second
        return (f'<figure class="wavelab-audio"><audio controls preload="metadata" src="{uri}" '
                f'data-duration-s="{self.duration_s:.3f}"></audio>'
                f'<span class="wavelab-duration">{self.duration_s:.2f} s</span>'
                f"<figcaption>{html.escape(self.label)}</figcaption></figure>")

    def __repr__(self) -> str:
        return f"AudioPlayer({self.label!r}, {self.duration_s:.3f} s at {self.sample_rate} Hz)"


def audio_player(audio: np.ndarray, sample_rate: int = 16000, caption: str = "", normalise: bool = True) -> AudioPlayer:
    """An HTML audio player of float audio ``[T]`` in [-1, 1] at ``sample_rate`` Hz, captioned with its level.

    Shows in JupyterLab and in the HTML book alike (``_repr_html_``: a ``<figure class="wavelab-audio">`` with an
    ``<audio>`` element whose ``src`` is a 16-bit PCM WAV data URI and whose ``data-duration-s`` is ``T /
    sample_rate`` to 3 decimals, and a ``<figcaption>``; ``text/plain`` from ``repr``).

    Args:
        audio: float audio ``[T]`` (numpy array or torch tensor).
        sample_rate: Hz.
        caption: what the clip is, e.g. :func:`sample_caption`; `` · level -26 dBFS RMS`` is appended.
        normalise: bring it to :data:`LOUDNESS_DBFS` with peaks below :data:`PEAK_DBFS` (:func:`normalise_loudness`);
            ``False`` plays it as it is (clipped to [-1, 1]), its caption still stating the level.
    Returns:
        :class:`AudioPlayer` (attributes ``audio``, ``level_dbfs``, ``wav``, ...).
    Raises:
        ValueError: empty, not 1-D, not floating point, NaN / inf samples, or a non-positive sample rate.
    """
    return AudioPlayer(audio, sample_rate, caption, normalise)


def _format_temperature(temperature: float) -> str:
    text = f"{float(temperature):.2f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def sample_caption(model: str, run: str, temperature: float, bpf: float | None, is_bound: bool = False,
                   seconds: float | None = None, split: str = "test", unit: str = "bpf") -> str:
    """The caption of a generated sample, e.g. ``"SRNN s=64 · run srnn-timit-s64 · temperature 1.0 · <= 13.42 bpf
    (test)"``.

    Args:
        model: the model's display name.
        run: the run it comes from (run folder name or id); empty to leave it out.
        temperature: sampling temperature (>= 0).
        bpf: the model's likelihood in bits per frame on ``split``, or None to leave it out.
        is_bound: ``bpf`` is an upper bound (ELBO of a latent-variable model): written ``<= 13.42 bpf``.
        seconds: length of the sample, seconds (adds ``· 2.00 s``), or None.
        split: the split ``bpf`` was measured on.
        unit: the unit of ``bpf`` (``"bits per 8-bit sample"`` for a model of 8-bit codes).
    Returns:
        the caption (plain text; :func:`audio_player` escapes it for HTML).
    Raises:
        ValueError: empty model name, negative or non-finite temperature, non-finite bpf or non-positive seconds.
    """
    if not str(model).strip():
        raise ValueError("sample_caption needs the model's name")
    if not (math.isfinite(temperature) and temperature >= 0):
        raise ValueError(f"temperature must be finite and >= 0, got {temperature}")
    parts = [str(model).strip()]
    if run:
        parts.append(f"run {run}")
    parts.append(f"temperature {_format_temperature(temperature)}")
    if bpf is not None:
        if not math.isfinite(bpf):
            raise ValueError(f"bpf must be finite or None, got {bpf}")
        parts.append(f"{bpf_text(bpf, is_bound)} {unit} ({split})")
    if seconds is not None:
        if not (math.isfinite(seconds) and seconds > 0):
            raise ValueError(f"seconds must be positive, got {seconds}")
        parts.append(f"{seconds:.2f} s")
    return " · ".join(parts)


def reference_player(dataset: str = "timit", split: str = "test", index: int = 0, seconds: float = 2.0,
                     sample_rate: int = 16000, root=None) -> AudioPlayer:
    """A real utterance at the players' level, to hear next to the models' samples.

    The ``index``-th utterance of :func:`wavelab.data.load_split` ``(dataset, split)``, from 50 ms before its first
    active frame (leading silence skipped, as :func:`rms_dbfs` gates it), cut to ``seconds``, normalised like every
    player and captioned ``"real speech · TIMIT test · dr1-fvmh0/sa1 · speaker dr1-fvmh0 (F) · 0.18-2.18 s"``.

    Args:
        dataset: ``"timit"`` or ``"librispeech"``.
        split: a split of ``dataset`` (see :data:`wavelab.data.SPLITS`).
        index: position in the split (sorted by utterance id).
        seconds: length, seconds (the utterance's remainder when shorter).
        sample_rate: Hz of the player; the corpora are 16 kHz, other rates are resampled (librosa).
        root: corpus folder (default: :func:`wavelab.data.data_root`).
    Returns:
        :class:`AudioPlayer`; its ``utterance`` attribute is the :class:`wavelab.data.Utterance`, ``start_s`` where the
        cut starts.
    Raises:
        ValueError: unknown dataset or split, non-positive ``seconds`` or ``sample_rate``.
        IndexError: ``index`` outside the split.
        wavelab.data.DataNotFoundError: no corpus found.
    """
    from ..data import load_split

    if not (math.isfinite(seconds) and seconds > 0):
        raise ValueError(f"seconds must be positive, got {seconds}")
    if not (isinstance(sample_rate, (int, np.integer)) and sample_rate > 0):
        raise ValueError(f"sample_rate must be a positive integer (Hz), got {sample_rate!r}")
    utts = load_split(dataset, split, root)
    if not -len(utts) <= index < len(utts):
        raise IndexError(f"{dataset}/{split} has {len(utts)} utterances; index {index} is outside it")
    utt = utts[index]
    x = utt.audio().astype(np.float64) / 32768.0
    _, counts, active = _active_frames(x, 16000)
    start = int(np.cumsum(np.append(0, counts))[np.argmax(active)]) if active.any() else 0
    start = max(0, start - int(0.05 * 16000))
    x = x[start:start + round(seconds * 16000)]
    if sample_rate != 16000:
        import librosa

        x = librosa.resample(x, orig_sr=16000, target_sr=int(sample_rate))
    speaker = utt.speaker
    corpus = "TIMIT" if dataset == "timit" else "LibriSpeech"
    t0, t1 = start / 16000, start / 16000 + len(x) / sample_rate
    caption = (f"real speech · {corpus} {split} · {utt.id} · speaker {speaker.id} ({speaker.sex}) · "
               f"{t0:.2f}-{t1:.2f} s")
    player = audio_player(x, int(sample_rate), caption)
    player.utterance = utt
    player.start_s = start / 16000
    return player


# ----------------------------------------------------------------------------------------------------------------------
# Generation and the listening room
# ----------------------------------------------------------------------------------------------------------------------


def generate(model, seconds: float, temperature: float = 1.0, seed: int = 0, sample_rate: int = 16000,
             progress: Progress = False, threads: int | None = 1) -> tuple[np.ndarray, float]:
    """Draw one unconditional sample of ``seconds`` seconds from ``model`` through its fast path (its incremental
    step where it has one), without autograd.

    Args:
        model: a wavelab model (any with ``sample``, ``bits`` and ``representation``).
        seconds: length, seconds of audio at ``sample_rate`` Hz (> 0).
        temperature: the sampling temperature (>= 0; 1 is the model's own distribution).
        seed: the seed of the sampling generator.
        sample_rate: Hz.
        progress: ``True`` for a tqdm bar, or a callable ``progress(done, total)``
            (:func:`wavelab.models.base.progress_bar`).
        threads: torch's intra-op threads while generating (restored after), ``None`` to leave them: a step of
            batch 1 is a string of small operations that a second thread only slows down, by a factor of 4 on a
            loaded 2-core machine.
    Returns:
        (float32 audio ``[round(seconds * sample_rate)]`` in [-1, 1], wall time in seconds).
    Raises:
        ValueError: non-positive length or negative temperature.
    """
    if not seconds > 0:
        raise ValueError(f"seconds must be positive, got {seconds}")
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    n = int(round(seconds * sample_rate))
    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(int(seed))
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        t0 = time.perf_counter()
        with torch.inference_mode():
            codes = model.sample(n, batch_size=1, temperature=temperature, generator=generator, progress=progress)
        wall = time.perf_counter() - t0
    finally:
        torch.set_num_threads(before)
    return codes_to_audio(codes[0], model.bits, model.representation), wall


def render_png(draw: Callable[[Any], None], figsize: tuple[float, float] = (8, 1.6), dpi: int = 100) -> bytes:
    """Draw a figure off-screen and return its PNG bytes.

    The figure is a ``matplotlib.figure.Figure`` on its own Agg canvas, never registered with pyplot: a widget
    callback may run on another thread than the notebook's cells (JupyterLab 4 handles widget messages on a kernel
    subshell, ``commsOverSubshells``), and pyplot's figures and the inline backend are shared state, so a figure
    drawn there could tear with one the main thread draws at the same time.

    Args:
        draw: called with the figure; adds the axes and plots (e.g. ``fig.subplots()``).
        figsize: inches.
        dpi: dots per inch of the PNG.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=dpi)
    FigureCanvasAgg(fig)
    draw(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()


def waveform_png(audio: np.ndarray, sample_rate: int = 16000, title: str = "",
                 figsize: tuple[float, float] = (8, 1.6)) -> bytes:
    """The waveform of float audio ``[T]`` on a fixed [-1, 1] axis against seconds, as PNG bytes
    (:func:`render_png`, so it can be drawn from any thread)."""
    x = _as_audio(audio)

    def draw(fig) -> None:
        ax = fig.subplots()
        ax.plot(np.arange(len(x)) / sample_rate, x, lw=0.5)
        ax.set_xlim(0, max(len(x), 1) / sample_rate)
        ax.set_ylim(-1, 1)
        ax.set_xlabel("time [s]")
        if title:
            ax.set_title(title, fontsize=9)
        fig.tight_layout()

    return render_png(draw, figsize)


def widget_mimebundle(widget, fallback_html: str, plain: str) -> dict[str, Any]:
    """A display bundle with the live widget and a static fallback.

    Args:
        widget: the ipywidgets widget (its ``application/vnd.jupyter.widget-view+json``, shown by JupyterLab).
        fallback_html: ``text/html`` shown where no widget manager runs (the HTML book, whose ``_config.yml`` gives
            ``text/html`` priority over the widget view).
        plain: ``text/plain``.
    Returns:
        ``{mime type: data}``; without the widget view when the widget is closed.
    """
    bundle = {"text/plain": plain, "text/html": fallback_html}
    view = (widget._repr_mimebundle_() or {}).get("application/vnd.jupyter.widget-view+json") \
        if callable(getattr(widget, "_repr_mimebundle_", None)) else None
    if view is not None:
        bundle["application/vnd.jupyter.widget-view+json"] = view
    return bundle


#: the longest one press of *Generate* should take, seconds: the room caps each model's length from its speed
PRESS_BUDGET_S = 30.0
#: samples each model generates when the room measures its speed
SPEED_PROBE_SAMPLES = 256


class ListeningRoom:
    """Sliders for temperature and length, a model picker, and a *Generate* button that plays a fresh sample.

    Every generated sample is played by :func:`audio_player` (normalised to :data:`LOUDNESS_DBFS`) with the caption
    ``"<model> · temperature 1.0 · seed 3 · 0.50 s"``, its raw waveform beside it.  While a sample is drawn the
    button is disabled and a progress bar shows the samples done, samples per second and the time left; the length
    slider of each model stops where a press would take :data:`PRESS_BUDGET_S` at the speed measured when the room
    was made.  Players and figures are widget values set from the callback (the waveform a PNG drawn off-screen,
    :func:`waveform_png`), so nothing is drawn through pyplot or ``display`` on the thread the callback runs on.
    Displayed, the room is the live widget in JupyterLab and, in the HTML book (no kernel), the ``fallback``
    players with a note that new samples need a running kernel.

    Args:
        models: display name -> trained model (any wavelab model with ``sample`` and ``bits``).
        max_seconds: upper end of the length slider (seconds of audio at ``sample_rate`` Hz), before the per-model
            cap.
        sample_rate: Hz.
        default_seconds: initial length, seconds (capped at the first model's limit).
        fallback: pre-generated players (:func:`audio_player` / :func:`reference_player` results, or anything with
            ``_repr_html_``) shown where no kernel runs.
        press_budget_s: the longest a press may take, seconds; ``None``: no per-model cap.
    Attributes:
        speeds: model name -> samples per second measured at construction (:data:`SPEED_PROBE_SAMPLES`, one thread).
        limits: model name -> the longest sample it may draw, seconds.
        last_player: the :class:`AudioPlayer` of the last :meth:`generate` (None before).
        last_png: the PNG bytes of the last waveform.
    Raises:
        ValueError: no models given.
        TypeError: a fallback item without ``_repr_html_``.
    """

    def __init__(self, models: Mapping[str, torch.nn.Module], max_seconds: float = 2.0, sample_rate: int = 16000,
                 default_seconds: float = 0.5, fallback: Sequence[Any] = (),
                 press_budget_s: float | None = PRESS_BUDGET_S):
        import ipywidgets as w

        if not models:
            raise ValueError("ListeningRoom needs at least one model")
        self.fallback = [fallback] if callable(getattr(fallback, "_repr_html_", None)) else list(fallback)
        for item in self.fallback:
            if not callable(getattr(item, "_repr_html_", None)):
                raise TypeError(f"fallback items must be players (audio_player results), got {type(item).__name__}")
        self.models = dict(models)
        self.sample_rate = sample_rate
        self.last_player: AudioPlayer | None = None
        self.last_png = b""
        self.speeds = {name: self._measure(m) for name, m in self.models.items()} if press_budget_s else {}
        self.limits = {name: self._limit(name, max_seconds, press_budget_s) for name in self.models}
        wide = {"description_width": "initial"}
        self.model_picker = w.Dropdown(options=list(self.models), description="model", style=wide)
        self.temperature = w.FloatSlider(value=1.0, min=0.0, max=1.5, step=0.05, description="temperature",
                                         style=wide)
        first = self.limits[self.model_picker.value]
        self.seconds = w.FloatSlider(value=min(default_seconds, first), min=0.05, max=first, step=0.05,
                                     description="length [s]", style=wide)
        self.seed = w.IntText(value=0, description="seed", style=wide)
        self.button = w.Button(description="Generate", button_style="primary", icon="play")
        self.progress = w.FloatProgress(value=0.0, min=0.0, max=1.0, description="", layout={"width": "60%"})
        self.status = w.HTML(self._limit_text())
        self.player = w.HTML()
        self.waveform = w.Image(format="png", layout={"max_width": "100%", "display": "none"})  # until a press
        self.button.on_click(lambda _: self.generate())
        self.model_picker.observe(lambda _: self._on_model(), names="value")
        self.widget = w.VBox([w.HBox([self.model_picker, self.seed]), self.temperature, self.seconds,
                              w.HBox([self.button, self.progress]), self.status, self.player, self.waveform])

    def _measure(self, model) -> float:
        """Samples per second of ``model`` at batch 1 on one thread, each press's start-up included (so a press's
        estimate is never short).  A first short draw compiles the fused loops (:mod:`wavelab.models.fused`) and
        fills the caches a press reuses, once per session."""
        generate(model, 16 / self.sample_rate, sample_rate=self.sample_rate)
        _, wall = generate(model, SPEED_PROBE_SAMPLES / self.sample_rate, sample_rate=self.sample_rate)
        return SPEED_PROBE_SAMPLES / max(wall, 1e-9)

    def _limit(self, name: str, max_seconds: float, budget_s: float | None) -> float:
        if not budget_s:
            return float(max_seconds)
        fits = budget_s * self.speeds[name] / self.sample_rate
        return float(max(0.05, min(max_seconds, math.floor(fits / 0.05) * 0.05)))

    def _limit_text(self) -> str:
        name = self.model_picker.value
        if name not in self.speeds:
            return ""
        return (f"{html.escape(name)} draws {self.speeds[name]:,.0f} samples/s here (one thread): at most "
                f"{self.limits[name]:.2f} s per press")

    def _on_model(self) -> None:
        limit = self.limits[self.model_picker.value]
        self.seconds.value = min(self.seconds.value, limit)
        self.seconds.max = limit
        self.status.value = self._limit_text()

    def _report(self, name: str, t0: float) -> Callable[[int, int], None]:
        """The progress callback of one press: the bar's fraction and a status line, at most every 0.2 s."""
        last = [0.0]

        def report(done: int, total: int) -> None:
            now = time.perf_counter()
            if now - last[0] < 0.2 and done < total:
                return
            last[0] = now
            rate = done / max(now - t0, 1e-9)
            self.progress.value = done / max(total, 1)
            self.status.value = (f"{html.escape(name)}: {done:,} of {total:,} · {rate:,.0f}/s · "
                                 f"{(total - done) / max(rate, 1e-9):.0f} s left")

        return report

    def generate(self) -> np.ndarray:
        """Generate with the current control values, show the player and the waveform, and return the raw audio
        ``[T]`` (before normalisation; the played version is ``last_player.audio``)."""
        name, temperature, seed = self.model_picker.value, self.temperature.value, self.seed.value
        seconds = min(self.seconds.value, self.limits[name])
        self.button.disabled = True
        t0 = time.perf_counter()
        try:
            audio, wall = generate(self.models[name], seconds, temperature, seed, self.sample_rate,
                                   progress=self._report(name, t0))
        finally:
            self.button.disabled = False
        self.seed.value += 1  # the next press draws a new sample
        caption = (f"{name} · temperature {_format_temperature(temperature)} · seed {seed} · "
                   f"{len(audio) / self.sample_rate:.2f} s")
        self.last_player = audio_player(audio, self.sample_rate, caption)
        self.last_png = waveform_png(self.last_player.audio, self.sample_rate, f"{name}, seed {seed} (as played)")
        self.player.value = self.last_player._repr_html_()
        self.waveform.value = self.last_png
        self.waveform.layout.display = ""
        self.progress.value = 1.0
        self.status.value = f"{name}: {len(audio):,} samples in {wall:.2f} s ({len(audio) / wall:,.0f} samples/s)"
        return audio

    def fallback_html(self) -> str:
        """The static HTML shown where no kernel runs: the fallback players and a note."""
        models = ", ".join(html.escape(name) for name in self.models)
        players = "".join(item._repr_html_() for item in self.fallback)
        note = f"Listening room ({models}): {html.escape(NO_KERNEL_NOTE)}"
        return (f'<div class="wavelab-fallback wavelab-listening-room">{players}'
                f'<p class="wavelab-fallback-note"><em>{note}</em></p></div>')

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict[str, Any]:
        plain = f"ListeningRoom(models={list(self.models)}, {len(self.fallback)} pre-generated players)"
        return widget_mimebundle(self.widget, self.fallback_html(), plain)
