"""Model registry: one name per model family, so ``python -m wavelab train --model NAME`` and the book reach every
model the same way.  :data:`REGISTRY` is a literal mapping of names to ``(ConfigClass, ModelClass)``; every model
subclasses :class:`~wavelab.models.base.WavelabModel` and every config :class:`~wavelab.models.base.ModelConfig`
(see :mod:`wavelab.models.base` for the contract, checked over the whole registry by ``tests/test_contract.py``)."""

from __future__ import annotations

import dataclasses
from typing import Any

from .base import CapabilityError, ModelConfig, ModelOutput, WavelabModel, length_mask
from .cwvae import CWVAE, CWVAEConfig
from .lstm import LSTMConfig, LSTMModel
from .sashimi import SaShiMi, SaShiMiConfig
from .srnn import SRNN, SRNNConfig
from .vrnn import VRNN, VRNNConfig
from .waveflow import WaveFlow, WaveFlowConfig, WaveGlowConfig
from .wavenet import WaveNet, WaveNetConfig

REGISTRY: dict[str, tuple[type[ModelConfig], type[WavelabModel]]] = {
    "wavenet": (WaveNetConfig, WaveNet),
    "lstm": (LSTMConfig, LSTMModel),
    "vrnn": (VRNNConfig, VRNN),
    "srnn": (SRNNConfig, SRNN),
    "cwvae": (CWVAEConfig, CWVAE),
    "waveflow": (WaveFlowConfig, WaveFlow),
    "waveglow": (WaveGlowConfig, WaveFlow),
    "sashimi": (SaShiMiConfig, SaShiMi),
}
#: the model ``python -m wavelab train`` trains when none is named (the paper's best model)
DEFAULT_MODEL = "wavenet"


class UnknownModelError(KeyError):
    """A model name that is not in :data:`REGISTRY`; the message lists the known names."""

    def __str__(self) -> str:
        return str(self.args[0])


def check_model_name(name: str) -> str:
    """``name`` if it is a registry name.

    Raises:
        UnknownModelError: (a ``KeyError``) an unknown name; the message lists the known ones.
    """
    if name not in REGISTRY:
        raise UnknownModelError(f"unknown model {name!r}; known models: {', '.join(sorted(REGISTRY))}")
    return name


def registry_name(model: WavelabModel | type[ModelConfig]) -> str:
    """The registry name of a model instance (the entry whose model and config classes it has: WaveFlow and
    WaveGlow share a model class, their config classes tell them apart) or of a config class; the class name for
    one that is not registered."""
    for name, (config_cls, model_cls) in REGISTRY.items():
        if model is config_cls or (type(model) is model_cls and type(getattr(model, "config", None)) is config_cls):
            return name
    return model.__name__ if isinstance(model, type) else type(model).__name__


def _entry(name: str) -> tuple[type[ModelConfig], type[WavelabModel]]:
    """``REGISTRY[name]``; raises :class:`UnknownModelError` listing the known names for an unknown one."""
    return REGISTRY[check_model_name(name)]


def config_for(name: str, **overrides: Any):
    """The config dataclass for ``name`` with the paper's defaults and ``overrides`` applied.

    Raises:
        KeyError: unknown model name (the message lists the known ones).
        TypeError: an override that is not a field of the config.
    """
    config_cls, _ = _entry(name)
    fields = {f.name for f in dataclasses.fields(config_cls)}
    unknown = set(overrides) - fields
    if unknown:
        raise TypeError(f"{name} config has no field(s) {sorted(unknown)}; fields are {sorted(fields)}")
    return config_cls(**overrides)


def quick_config(name: str, **overrides: Any):
    """The config of ``name`` in its quick (tiny) form: ``config_cls.quick_overrides()`` with ``overrides`` on top.

    Raises:
        KeyError / TypeError: as :func:`config_for`.
    """
    return config_for(name, **{**_entry(name)[0].quick_overrides(), **overrides})


def display_name(name: str) -> str:
    """How tables and findings name registry model ``name`` (its config class's ``display_name``); any other name
    (a baseline's) is returned as it is."""
    return REGISTRY[name][0].display_name if name in REGISTRY else name


def run_label(name: str, config: dict[str, Any] | None) -> str:
    """The label that tells a run's row of the papers apart: the registry name and what its config class's
    ``label_suffix`` adds (e.g. ``"wavenet"``, ``"lstm s=64"``, ``"cwvae s=64 L=2"``); a baseline's name as it is."""
    return name + (REGISTRY[name][0].label_suffix(config or {}) if name in REGISTRY else "")


def key_fields(name: str) -> tuple[str, ...]:
    """The config fields a table shows for registry model ``name`` (its config class's ``key_fields``); ``()`` for
    any other name."""
    return REGISTRY[name][0].key_fields if name in REGISTRY else ()


def build_model(name: str, config=None, **overrides: Any) -> WavelabModel:
    """Instantiate the model registered as ``name`` from ``config`` (or the paper's defaults plus ``overrides``).

    Raises:
        KeyError: unknown model name.
    """
    _, model_cls = _entry(name)
    return model_cls(config if config is not None else config_for(name, **overrides))


__all__ = ["DEFAULT_MODEL", "REGISTRY", "CapabilityError", "ModelConfig", "ModelOutput", "WavelabModel", "build_model",
           "config_for",
           "UnknownModelError", "check_model_name", "display_name", "key_fields", "length_mask", "quick_config",
           "registry_name", "run_label"]
