"""Output distributions over discrete audio.  Each gives ``num_params`` (channels a network must produce),
``log_prob(params [B, C, T], codes [B, T]) -> [B, T]`` in nats, and ``sample(params, temperature, generator)``."""

from .categorical import Categorical
from .dmol import DiscretizedMixtureLogistics
from .precision import Float32Linear, float32_head

__all__ = ["Categorical", "DiscretizedMixtureLogistics", "Float32Linear", "float32_head"]
