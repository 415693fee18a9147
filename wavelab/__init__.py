"""wavelab: likelihood-based raw-audio models (WaveNet, LSTM, VRNN, SRNN, CW-VAE, WaveFlow, SaShiMi) on real speech.

The package holds every model, distribution, data reader, the training loop and evaluation; the book in ``book/``
imports from it.  See ``../shared/DESIGN.md`` for the layout.
"""

__version__ = "0.1.0"
