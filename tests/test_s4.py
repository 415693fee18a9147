"""Tests of wavelab.models.s4: HiPPO-LegS NPLR form, the Hurwitz parameterisation, the Cauchy/Woodbury kernel against
matrix powers, convolution mode against recurrent mode, causality, shapes and errors."""

import pytest
import torch

from wavelab.models.s4 import S4Layer, hippo_legs, hippo_legs_nplr

torch.set_num_threads(1)


def layer(layer="s4", H=3, N=8, l_max=16, seed=0) -> S4Layer:
    torch.manual_seed(seed)
    return S4Layer(H, N, l_max=l_max, layer=layer).double()


def unroll(m: S4Layer, u: torch.Tensor) -> torch.Tensor:
    """Run ``u [B, T, H]`` through the recurrent mode step by step."""
    state = m.default_state(u.shape[0])
    ys = []
    for t in range(u.shape[1]):
        y, state = m.step(u[:, t], state)
        ys.append(y)
    return torch.stack(ys, dim=1)


def test_hippo_legs_nplr_reconstructs_the_hippo_matrix():
    N = 8
    A, B = hippo_legs(N)
    assert A[3, 1] == -(7 * 3) ** 0.5 and A[2, 2] == -3 and A[1, 3] == 0 and B[4] == 3
    Lam, P, Bt, V = hippo_legs_nplr(N)
    assert Lam.shape == P.shape == Bt.shape == (N // 2,) and V.shape == (N, N // 2)
    torch.testing.assert_close(Lam.real, torch.full((N // 2,), -0.5, dtype=torch.float64))
    assert (Lam.imag > 0).all()
    Vf = torch.cat([V, V.conj()], 1)
    torch.testing.assert_close(Vf.conj().t() @ Vf, torch.eye(N, dtype=torch.complex128))  # unitary
    Lf, Pf, Bf = (torch.cat([v, v.conj()]) for v in (Lam, P, Bt))
    A_rec = Vf @ (torch.diag(Lf) - Pf[:, None] * Pf.conj()[None, :]) @ Vf.conj().t()
    torch.testing.assert_close(A_rec, A.to(torch.complex128))
    torch.testing.assert_close(Vf @ Bf, B.to(torch.complex128))
    with pytest.raises(ValueError, match="even"):
        hippo_legs_nplr(7)


@pytest.mark.parametrize("kind", ["s4", "s4d"])
@pytest.mark.parametrize("l_max,T", [(16, 16), (16, 9), (8, 21), (7, 30)])
def test_convolution_mode_equals_recurrent_mode(kind, l_max, T):
    m = layer(kind, l_max=l_max)
    u = torch.randn(2, T, 3, dtype=torch.float64)
    y_conv = m(u)
    assert y_conv.shape == (2, T, 3)
    torch.testing.assert_close(unroll(m, u), y_conv, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("kind", ["s4", "s4d"])
def test_convolution_equals_recurrence_in_float32_at_paper_state_size(kind):
    torch.manual_seed(1)
    m = S4Layer(4, 64, l_max=256, layer=kind)
    u = torch.randn(1, 200, 4)
    y_conv = m(u)
    assert y_conv.dtype == torch.float32
    torch.testing.assert_close(unroll(m, u), y_conv, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("L", [16, 5, 40])
def test_cauchy_woodbury_kernel_equals_matrix_powers(L):
    m = layer("s4", l_max=16)
    d = m.ssm.dense()
    C = m.ssm.recurrent_C(d)  # full [H, N]
    Abar_k = torch.eye(8, dtype=torch.complex128).expand(3, 8, 8)
    naive = []
    for _ in range(L):
        naive.append((C[:, None, :] @ Abar_k @ d["Bbar"][..., None])[:, 0, 0])
        Abar_k = Abar_k @ d["Abar"]
    naive = torch.stack(naive, -1)
    assert naive.imag.abs().max() < 1e-10  # the conjugate-extended system is real
    torch.testing.assert_close(m.kernel(L), naive.real, rtol=1e-9, atol=1e-10)
    # the learned C~ is C (I - Abar^L) for L = l_max: the truncated generating function at the roots of unity
    Ct = C[:, None, :] @ (torch.eye(8, dtype=torch.complex128) - torch.linalg.matrix_power(d["Abar"], 16))
    torch.testing.assert_close(Ct[:, 0], d["C_tilde"])


def test_s4d_kernel_equals_powers_of_the_diagonal_system():
    m = layer("s4d", l_max=12)
    Abar, Bbar, C = m.ssm.discrete()
    k = torch.arange(12, dtype=torch.float64)
    naive = 2 * (C[..., None] * Bbar[..., None] * Abar[..., None] ** k).sum(1).real
    torch.testing.assert_close(m.kernel(12), naive)
    # ZOH: Abar = exp(Delta Lambda)
    dt = torch.exp(m.ssm.log_dt)[:, None]
    torch.testing.assert_close(Abar, torch.exp(dt * m.ssm.Lambda()))


def test_parameterised_A_stays_hurwitz_under_random_perturbation():
    m = layer("s4", N=16)
    gen = torch.Generator().manual_seed(0)
    for trial in range(5):
        with torch.no_grad():
            for p in (m.ssm.log_re, m.ssm.im, m.ssm.P, m.ssm.log_dt):
                p.add_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * 3.0)
            if trial == 4:
                m.ssm.log_re.fill_(-60.0)  # Re(Lambda) would underflow to 0: the clamp keeps it < 0
        d = m.ssm.dense()
        eig = torch.linalg.eigvals(d["A"])
        assert (eig.real < 0).all(), f"trial {trial}: max Re(eig) = {eig.real.max()}"
        assert (torch.linalg.eigvals(d["Abar"]).abs() < 1).all()  # bilinear maps the left half-plane into the disk
    # tying the low-rank term matters: Lambda + P P^* (an untied P Q^* with Q = -P) is not Hurwitz for a large P
    Lf = torch.cat([m.ssm.Lambda(), m.ssm.Lambda().conj()], -1)[0]
    P = torch.full((16,), 3.0, dtype=torch.complex128)
    assert torch.linalg.eigvals(torch.diag(Lf) + P[:, None] * P.conj()[None]).real.max() > 0
    s4d = layer("s4d", N=16)
    with torch.no_grad():
        s4d.ssm.log_re.add_(torch.randn(s4d.ssm.log_re.shape, generator=gen, dtype=torch.float64) * 30)
    assert (s4d.ssm.Lambda().real < 0).all()


@pytest.mark.parametrize("kind", ["s4", "s4d"])
def test_output_at_t_depends_only_on_inputs_up_to_t(kind):
    m = layer(kind, l_max=32)
    u = torch.randn(1, 32, 3, dtype=torch.float64)
    base = m(u)
    for t in (0, 13, 30):
        changed = u.clone()
        changed[:, t + 1:] += torch.randn_like(changed[:, t + 1:])
        out = m(changed)
        torch.testing.assert_close(out[:, : t + 1], base[:, : t + 1], rtol=0, atol=1e-12)
        assert not torch.allclose(out[:, t + 1], base[:, t + 1])


def test_long_inputs_extend_the_same_system_and_gradients_flow():
    m = layer("s4", l_max=8)
    # a kernel longer than l_max starts with the l_max kernel (same C, longer truncation)
    torch.testing.assert_close(m.kernel(30)[:, :8], m.kernel(8), rtol=1e-9, atol=1e-10)
    u = torch.randn(2, 20, 3, dtype=torch.float64)
    m(u).square().sum().backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def test_shapes_and_errors():
    m = layer("s4")
    state = m.default_state(2)
    assert state.x.shape == (2, 3, 4) and state.x.dtype == torch.complex128
    y, state = m.step(torch.randn(2, 3, dtype=torch.float64), state)
    assert y.shape == (2, 3) and y.dtype == torch.float64
    assert layer("s4").float().default_state(1).x.dtype == torch.complex64
    with pytest.raises(ValueError, match="d_state"):
        S4Layer(3, 7)
    with pytest.raises(ValueError, match="layer"):
        S4Layer(3, 8, layer="s5")
    with pytest.raises(ValueError, match="l_max"):
        S4Layer(3, 8, l_max=0)
    with pytest.raises(ValueError, match="H"):
        S4Layer(0, 8)
    with pytest.raises(ValueError, match="dt_min"):
        S4Layer(3, 8, dt_min=0.2, dt_max=0.1)
    with pytest.raises(ValueError, match=r"u must have shape \[B, T, 3\]"):
        m(torch.randn(2, 10, 4, dtype=torch.float64))
    with pytest.raises(ValueError, match="u must have shape"):
        m.step(torch.randn(3, 3, dtype=torch.float64), state)
    with pytest.raises(ValueError, match="batch_size"):
        m.default_state(0)
