"""Output distributions over discrete audio.  Each gives ``num_params`` (channels a network must produce),
``log_prob(params [B, C, T], codes [B, T]) -> [B, T]`` in nats, ``sample(params, temperature, generator)``, and
``runs_log_prob``, the masses of runs of consecutive codes (for the codec)."""

from .categorical import Categorical
from .dmol import DiscretizedMixtureLogistics
from .precision import Float32Linear, float32_head

__all__ = ["Categorical", "DiscretizedMixtureLogistics", "Float32Linear", "float32_head"]
