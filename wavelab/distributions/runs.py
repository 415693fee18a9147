"""Runs of consecutive codes: the unit in which :mod:`wavelab.coding` asks a distribution for probability mass
(``runs_log_prob`` of :class:`~wavelab.distributions.DiscretizedMixtureLogistics` and
:class:`~wavelab.distributions.Categorical`)."""

from __future__ import annotations

import torch


def check_runs(start: torch.Tensor, width: int, count: int, num_bins: int) -> None:
    """Check that ``count`` runs of ``width`` codes from each ``start`` lie in the codes ``[0, num_bins - 1]``.

    Raises:
        ValueError: ``width`` or ``count`` below 1, or a run outside the codes.
    """
    if width < 1 or count < 1:
        raise ValueError(f"runs_log_prob needs width >= 1 and count >= 1, got width={width}, count={count}")
    if start.numel() and (int(start.min()) < 0 or int(start.max()) + width * count > num_bins):
        raise ValueError(f"runs_log_prob: runs of {count} x {width} codes from start in [{int(start.min())}, "
                         f"{int(start.max())}] leave the codes [0, {num_bins - 1}]")
