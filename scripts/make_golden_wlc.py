"""Write this machine's golden ``.wlc`` file: the synthetic test signal :func:`golden_pcm` compressed with the shipped
codec model, named by the CPU kind (``tests/golden_wlc/<vendor>-<isa>.wlc``), and its entry in
``tests/golden_wlc/manifest.json`` (CPU, commit, model fingerprint, the PCM's SHA-256).

    .venv/bin/python scripts/make_golden_wlc.py          # once per CPU kind the project's machines have

``tests/test_portable.py`` decodes every golden file (also under forced-down dispatch) and re-encodes the signal here,
comparing the bytes: a file written on one CPU must decode, and be written, bit for bit on every other.

The signal is synthetic (the project commits no audio of the corpora) and made in integer arithmetic only, so every
machine makes the same samples: 1.9 s of 16 kHz "speech" (a glottal pulse train with a falling pitch through two
formant resonators, three vowels; a noise burst like a fricative; near-silence with dither), then 0.6 s of hard cases:
a loud clipped vowel, full-scale white noise (where the adaptive cascade's residual leaves int16 and wraps) and
digital silence.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
GOLDEN = REPO / "tests" / "golden_wlc"
#: two-pole resonators (Q14 coefficients ``2 r cos(2 pi F / fs)``, ``r**2``; r = exp(-pi B / fs)) for (F1, F2) of
#: /a/ (700, 1200 Hz), /i/ (300, 2300 Hz) and /e/ (500, 1800 Hz)
VOWELS = (((31046, 15877), (28629, 15753)), ((32160, 16002), (19814, 15630)), ((31700, 15940), (24385, 15691)))


def _lcg(state: int, n: int) -> tuple[np.ndarray, int]:
    """``n`` pseudo-random integers in ``[-32768, 32767]`` (Numerical Recipes' 32-bit LCG) and the next state."""
    out = np.empty(n, dtype=np.int64)
    for i in range(n):
        state = (1664525 * state + 1013904223) & 0xFFFFFFFF
        out[i] = (state >> 16) - 32768
    return out, state


def _vowel(n: int, formants, amplitude: int, period0: int, period1: int) -> np.ndarray:
    """A pulse train whose period glides from ``period0`` to ``period1`` samples, through two resonators in series
    (integer arithmetic), with a rising and falling envelope; int64 ``[n]``."""
    x = np.zeros(n, dtype=np.int64)
    t = 0
    while t < n:
        x[t] = amplitude
        t += period0 + (period1 - period0) * t // n
    for a1, a2 in formants:
        y = np.zeros(n, dtype=np.int64)
        for i in range(n):
            y[i] = x[i] + ((a1 * (y[i - 1] if i else 0) - a2 * (y[i - 2] if i > 1 else 0)) >> 14)
        x = y >> 2
    ramp = np.minimum(np.arange(n), np.arange(n)[::-1])
    return x * np.minimum(ramp, 800) // 800


def golden_pcm() -> np.ndarray:
    """The golden signal: int16 ``[40_000]`` (2.5 s at 16 kHz), the same on every machine (integers only)."""
    state = 12345
    parts = []
    for k, formants in enumerate(VOWELS):
        parts.append(_vowel(8000, formants, 6000 + 3000 * k, 130 - 10 * k, 110 - 10 * k))
    noise, state = _lcg(state, 3200)
    parts.append(noise * np.minimum(np.arange(3200), 400) // 400 // 16)  # fricative
    dither, state = _lcg(state, 3200)
    parts.append(dither >> 13)  # near-silence: +-4
    parts.append(np.clip(_vowel(6400, VOWELS[0], 60000, 90, 80), -32768, 32767))  # loud, clipped
    loud, state = _lcg(state, 1600)
    parts.append(loud)  # full-scale white noise
    parts.append(np.zeros(1600, dtype=np.int64))  # digital silence
    x = np.concatenate(parts)
    return np.clip(x, -32768, 32767).astype(np.int16)


def main() -> int:
    sys.path.insert(0, str(REPO))
    from wavelab.portable import encode, load_default_model
    from wavelab.runs import atomic_write_bytes, atomic_write_json, cpu_kind, git_commit, hardware_info

    model = load_default_model()
    pcm = golden_pcm()
    (data,), (ideal,) = encode(model, [pcm])
    kind = cpu_kind()
    GOLDEN.mkdir(parents=True, exist_ok=True)
    path = GOLDEN / f"{kind}.wlc"
    atomic_write_bytes(path, lambda f: f.write(data))
    manifest_path = GOLDEN / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {"files": {}}
    manifest["files"][path.name] = {
        "cpu_kind": kind, "cpu": hardware_info()["cpu"], "written_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                                   time.gmtime()),
        "commit": git_commit(REPO)["hash"], "model_fingerprint": model.fingerprint().hex(),
        "frames": len(pcm), "bytes": len(data), "ideal_bits": ideal,
        "pcm_sha256": hashlib.sha256(pcm.astype("<i2").tobytes()).hexdigest(),
        "signal": "scripts/make_golden_wlc.py golden_pcm()"}
    atomic_write_json(manifest, manifest_path)
    print(f"wrote {path} ({len(data):,} bytes, {8 * len(data) / len(pcm):.3f} bits/sample) and its manifest entry")
    return 0


if __name__ == "__main__":
    sys.exit(main())
