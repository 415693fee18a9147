"""wavelab: likelihood-based raw-audio models (WaveNet, LSTM, VRNN, SRNN, CW-VAE, WaveFlow, SaShiMi) on real speech.

The package holds every model, distribution, data reader, the training loop and evaluation; the book in ``book/``
imports from it.  See ``DESIGN.md`` for the layout, the model contract and the path from a file to a table.
"""

__version__ = "0.1.0"
