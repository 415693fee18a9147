"""Model registry: one name per model family, so ``python -m wavelab train --model NAME`` and the book reach every
model the same way.  Each entry maps a name to ``(ConfigClass, ModelClass)``; see :mod:`wavelab.models.base` for the
contract."""

from __future__ import annotations

import dataclasses
from typing import Any

from .base import ModelOutput, length_mask

REGISTRY: dict[str, tuple[type, type]] = {}


def register(name: str, config_cls: type, model_cls: type) -> None:
    """Register ``model_cls`` (built from an instance of ``config_cls``) under ``name``."""
    REGISTRY[name] = (config_cls, model_cls)


def config_for(name: str, **overrides: Any):
    """The config dataclass for ``name`` with the paper's defaults and ``overrides`` applied.

    Raises:
        KeyError: unknown model name (the message lists the known ones).
        TypeError: an override that is not a field of the config.
    """
    if name not in REGISTRY:
        raise KeyError(f"unknown model {name!r}; known models: {sorted(REGISTRY)}")
    config_cls, _ = REGISTRY[name]
    fields = {f.name for f in dataclasses.fields(config_cls)}
    unknown = set(overrides) - fields
    if unknown:
        raise TypeError(f"{name} config has no field(s) {sorted(unknown)}; fields are {sorted(fields)}")
    return config_cls(**overrides)


def build_model(name: str, config=None, **overrides: Any):
    """Instantiate the model registered as ``name`` from ``config`` (or the paper's defaults plus ``overrides``)."""
    if config is None:
        config = config_for(name, **overrides)
    _, model_cls = REGISTRY[name]
    return model_cls(config)


def _register_builtin() -> None:
    from . import cwvae, lstm, sashimi, srnn, vrnn, waveflow, wavenet  # noqa: F401  (each registers itself)


_register_builtin()

__all__ = ["REGISTRY", "ModelOutput", "build_model", "config_for", "length_mask", "register"]
