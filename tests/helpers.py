"""Shared test doubles."""

from __future__ import annotations

import math

import torch


def mean_se(values) -> tuple[float, float]:
    """Mean and standard error of the mean of ``values`` (float64)."""
    v = torch.tensor([float(x) for x in values], dtype=torch.float64)
    return float(v.mean()), float(v.std() / math.sqrt(len(v)))


def seeded(seed: int) -> torch.Generator:
    """A CPU generator seeded with ``seed``."""
    return torch.Generator().manual_seed(seed)


def check_iw_bound_against_elbo(model, codes, lengths, K: int, name: str, draws: int = 20, **iw_kwargs) -> None:
    """Assert that ``model.iw_bound`` combines its ``K`` one-sample weights as ``-log (1/K) sum_k w_k`` (exactly: with
    ``chunk=1`` it draws the same noise as ``K`` calls with ``K = 1``), that Jensen holds draw by draw, and that over
    ``draws`` seeded draws ``-L_K`` lies below both ``-L_1`` and the analytic-KL ``-ELBO`` by more than 3 standard
    errors of the difference (Burda et al. 2016)."""
    with torch.no_grad():
        iw_k = model.iw_bound(codes, lengths, K, generator=seeded(3), chunk=1, **iw_kwargs)
        g = seeded(3)
        singles = torch.stack([model.iw_bound(codes, lengths, 1, generator=g, **iw_kwargs)
                               for _ in range(K)]).double()  # [K, B]
        torch.testing.assert_close(iw_k.double(), -(torch.logsumexp(-singles, 0) - math.log(K)), rtol=1e-6, atol=1e-3)
        assert bool((iw_k.double() < singles.mean(0)).all())  # Jensen, draw by draw
        elbo = [model(codes, lengths, generator=seeded(100 + r)).nll.double().sum() for r in range(draws)]
        iw1 = [model.iw_bound(codes, lengths, 1, generator=seeded(200 + r)).double().sum() for r in range(draws)]
        iwk = [model.iw_bound(codes, lengths, K, generator=seeded(300 + r)).double().sum() for r in range(draws)]
    (e, se_e), (i1, se_1), (ik, se_k) = mean_se(elbo), mean_se(iw1), mean_se(iwk)
    se_gap, se_gap1 = math.hypot(se_e, se_k), math.hypot(se_1, se_k)
    print(f"{name}: -ELBO {e:.2f}, -L_1 {i1:.2f}, -L_{K} {ik:.2f} nats; -ELBO - (-L_{K}) = {e - ik:.2f} "
          f"({(e - ik) / se_gap:.1f} se), -L_1 - (-L_{K}) = {i1 - ik:.2f} ({(i1 - ik) / se_gap1:.1f} se)")
    assert e - ik > 3 * se_gap and i1 - ik > 3 * se_gap1
