"""S4 and S4D: structured state-space sequence layers with a convolution mode (training) and a recurrent mode
(generation).

Sources: Gu, Goel, Re 2022, "Efficiently modeling long sequences with structured state spaces" (S4; section 3,
algorithm 1, appendix C); Gu, Gupta, Goel, Re 2022, "On the parameterization and initialization of diagonal state
space models" (S4D: S4D-Lin initialisation, ZOH discretisation, Vandermonde kernel); Goel, Gu, Donahue, Re 2022, "It's
Raw! Audio generation with state-space models" (SaShiMi, section 3.2: the Hurwitz parameterisation
``A = Lambda - P P^*``).
Public reference code read for understanding (nothing copied): github.com/state-spaces/s4, ``models/s4/s4.py``, and
"The Annotated S4" (github.com/srush/annotated-s4).

Each of the ``H`` channels is a single-input single-output linear system with a state of size ``N`` (``d_state``)::

    x'(t) = A x(t) + B u(t),        y(t) = C x(t) + D u(t)

discretised with a step size ``Delta`` (one learnable ``log Delta`` per channel) into ``x_k = Abar x_{k-1} + Bbar u_k``,
``y_k = C x_k + D u_k``.  Unrolled, this is a causal convolution ``y = K * u + D u`` with the kernel
``K_k = C Abar^k Bbar`` (``k = 0 .. L-1``).

Conjugate symmetry.  ``A``, ``B`` and the kernel are real, so in the diagonalising basis the ``N`` states come in
complex-conjugate pairs.  Only one of each pair is stored (``N/2`` complex numbers per vector); every sum over the state
runs over the conjugate-extended ``N`` states, which for a vector ``v`` and its pair equals ``2 Re(sum over the stored
half)``.  Parameters are stored as real tensors (``[..., 2]`` real/imaginary pairs) and computations run in
complex64 (float32 model) or complex128 (float64 model).

S4 (``layer="s4"``, DPLR / NPLR).  ``A = Lambda - P P^*`` with ``Lambda`` diagonal (``N/2`` stored) and rank-1 ``P``.
Initialised from HiPPO-LegS in its normal-plus-low-rank form (:func:`hippo_legs_nplr`): ``A_LegS = V (Lambda - P P^*)
V^*`` with ``V`` unitary.  Stability (SaShiMi, section 3.2): ``Re(Lambda) = -exp(log_re) < 0`` by construction (clamped
away from 0 at 1e-4) and the low-rank term is tied (``P P^*`` instead of S4's ``P Q^*``).  Then ``A + A^* = 2 Re(Lambda)
- 2 P P^*`` is negative definite, so for any eigenpair ``A v = lambda v`` (``|v| = 1``),
``2 Re(lambda) = v^* (A + A^*) v < 0``: ``A`` is Hurwitz and the bilinear ``Abar`` has spectral radius < 1, so the
recurrence cannot blow up during generation.
Discretisation: bilinear, ``Abar = (I - Delta/2 A)^{-1} (I + Delta/2 A)``, ``Bbar = (I - Delta/2 A)^{-1} Delta B``.
Convolution mode (S4 algorithm 1): the truncated generating function ``sum_{k<L} K_k w^k`` evaluated at the ``L``-th
roots of unity ``w_j = exp(-2 pi i j / L)`` equals ``Ct (I - Abar w)^{-1} Bbar`` with ``Ct = C (I - Abar^L)``
(because ``w^L = 1``).  With ``a = 1 - w`` and ``b = Delta (1 + w) / 2``,
``(I - Abar w)^{-1} Bbar = Delta (a - b Lambda + b P P^*)^{-1} B``, a diagonal-plus-rank-1 inverse done with the
Woodbury identity, so four Cauchy sums ``r(u, v) = sum_n u_n v_n / (a - b Lambda_n)`` give

    Khat(w) = Delta [ r(Ct, B) - b r(Ct, P) r(P^*, B) / (1 + b r(P^*, P)) ],

and an inverse real FFT gives ``K``.  (This ``a, b`` form is the paper's ``2/(1+w)`` and ``z = 2(1-w)/(1+w)`` form
multiplied through, which stays finite at ``w = -1``.)
C convention: the layer learns ``Ct`` for its kernel length ``l_max`` (as S4 does).  The recurrent mode recovers
``C = Ct (I - Abar^L)^{-1}`` with dense ``N x N`` algebra (once per state set-up, in complex128), and a convolution over
``T > l_max`` samples uses ``Ct_T = C (I - Abar^T)``, so both modes describe the same infinite-impulse-response system
for any length.
Recurrent mode: ``x_k = (2/Delta - A)^{-1} [(2/Delta + A) x_{k-1} + 2 B u_k]``, applied with the DPLR structure
(diagonal products plus a Woodbury rank-1 correction): O(N) per channel and step.

S4D (``layer="s4d"``).  ``A = diag(Lambda)``, S4D-Lin initialisation ``Lambda_n = -1/2 + i pi n``, ``B = 1``,
``Re(Lambda) = -exp(log_re) < 0``, zero-order hold ``Abar = exp(Delta Lambda)``, ``Bbar = (Abar - 1) / Lambda * B``,
kernel ``K_k = 2 Re(sum_n C_n Bbar_n Abar_n^k)`` by a Vandermonde product; ``C`` is learned directly (no ``Ct``).

In both layers ``Lambda``, ``P`` and ``B`` are shared by the ``H`` channels (one SSM per layer, SaShiMi's
``n_ssm = 1``); ``C``, ``D`` and ``Delta`` are per channel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .fused import weights_key

LAYERS = ("s4", "s4d")
_RE_MIN = 1e-4  # smallest |Re(Lambda)|: keeps A strictly Hurwitz in floating point


def hippo_legs(N: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The HiPPO-LegS state matrix and input vector (Gu et al. 2020, HiPPO, theorem 2; S4 paper eq. 2), float64.

    ``A_nk = -sqrt((2n+1)(2k+1))`` for ``n > k``, ``-(n+1)`` for ``n = k``, 0 above the diagonal;
    ``B_n = sqrt(2n+1)``.

    Returns:
        ``(A [N, N], B [N])``.
    """
    q = torch.sqrt(2 * torch.arange(N, dtype=torch.float64) + 1)
    A = -torch.tril(q[:, None] * q[None, :], diagonal=-1) - torch.diag(torch.arange(N, dtype=torch.float64) + 1)
    return A, q.clone()


def hippo_legs_nplr(N: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """HiPPO-LegS in normal-plus-low-rank form, one of each conjugate pair kept (S4 paper, section 3.3, theorem 1).

    With ``P_n = sqrt(n + 1/2)``, ``S = A + P P^T = -1/2 I + (skew-symmetric)``; the skew part is diagonalised by a
    Hermitian eigendecomposition of ``-i S``.  The eigenvalues ``Lambda = -1/2 + i w`` come in conjugate pairs; the
    ``N/2`` with ``w > 0`` are kept, with their eigenvectors ``V [N, N/2]``, and the full basis is ``[V, conj(V)]``.

    Args:
        N: state size, even and >= 2.
    Returns:
        complex128 ``(Lambda [N/2], P [N/2], B [N/2], V [N, N/2])`` such that, with ``Vf = [V, conj V]``,
        ``Lf = [Lambda, conj Lambda]``, ``Pf = [P, conj P]``: ``A_LegS = Vf (diag(Lf) - Pf Pf^*) Vf^*`` and
        ``B_LegS = Vf [B, conj B]``.
    Raises:
        ValueError: ``N`` odd or < 2.
    """
    if not isinstance(N, int) or N < 2 or N % 2:
        raise ValueError(f"hippo_legs_nplr: N (d_state) must be an even integer >= 2, got {N!r}")
    A, B = hippo_legs(N)
    P = torch.sqrt(torch.arange(N, dtype=torch.float64) + 0.5)
    skew = A + P[:, None] * P[None, :] + 0.5 * torch.eye(N, dtype=torch.float64)
    w, V = torch.linalg.eigh(-1j * skew.to(torch.complex128))  # skew = V diag(i w) V^*, w ascending
    V = V[:, N // 2:]  # w > 0 (the other half are the conjugates)
    Lambda = -0.5 + 1j * w[N // 2:].to(torch.complex128)
    Vh = V.conj().t()
    return Lambda, Vh @ P.to(torch.complex128), Vh @ B.to(torch.complex128), V


def _conj_full(v: torch.Tensor) -> torch.Tensor:
    """``[..., N/2]`` -> ``[..., N]``: append the conjugate of each stored state."""
    return torch.cat([v, v.conj()], dim=-1)


def _complex_param(value: torch.Tensor) -> nn.Parameter:
    """A complex tensor stored as a real ``[..., 2]`` parameter (so ``.double()`` / ``.float()`` convert it)."""
    return nn.Parameter(torch.view_as_real(value.to(torch.complex128)).float().contiguous())


def _as_complex(param: torch.Tensor) -> torch.Tensor:
    return torch.view_as_complex(param.contiguous())


def _init_log_dt(H: int, dt_min: float, dt_max: float) -> torch.Tensor:
    """``log Delta ~ U(log dt_min, log dt_max)`` per channel (S4 paper, appendix C.2)."""
    return torch.rand(H) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)


@dataclass
class S4State:
    """Recurrent-mode state of an :class:`S4Layer` for a batch.

    Attributes:
        x: complex ``[B, H, N/2]``, the stored half of the (conjugate-symmetric) state after the last step.
        params: the discrete system, fixed when the state was made (:meth:`S4Layer.default_state`); a state made
            before an optimizer step keeps the old weights.
    """

    x: torch.Tensor
    params: dict


class DPLRKernel(nn.Module):
    """S4's diagonal-plus-low-rank SSM ``A = Lambda - P P^*`` (see the module docstring for the maths).

    Args:
        H: channels.  N: state size (even).  l_max: the length ``L`` that the learned ``Ct = C (I - Abar^L)`` refers to.
        dt_min, dt_max: range of the initial step sizes.
    Parameters:
        ``log_re [1, N/2]`` and ``im [1, N/2]`` (``Lambda = -max(exp(log_re), 1e-4) + i im``), ``P, B [1, N/2, 2]``,
        ``C_tilde [H, N/2, 2]`` (``Ct`` for length ``l_max``), ``log_dt [H]``.
    """

    def __init__(self, H: int, N: int, l_max: int, dt_min: float = 1e-3, dt_max: float = 1e-1):
        super().__init__()
        self.H, self.N, self.l_max = H, N, l_max
        Lambda, P, B, _ = hippo_legs_nplr(N)
        self.log_re = nn.Parameter(torch.log(-Lambda.real).float()[None])
        self.im = nn.Parameter(Lambda.imag.float()[None])
        self.P = _complex_param(P[None])
        self.B = _complex_param(B[None])
        C = torch.randn(H, N // 2, dtype=torch.complex128) * 0.5**0.5  # unit-variance complex normal
        self.C_tilde = _complex_param(C)
        self.log_dt = nn.Parameter(_init_log_dt(H, dt_min, dt_max))

    def Lambda(self) -> torch.Tensor:
        """complex ``[1, N/2]``, ``Re < 0`` always (Hurwitz parameterisation)."""
        re = -torch.exp(self.log_re).clamp_min(_RE_MIN)
        return torch.complex(re, self.im)

    def dense(self, dtype: torch.dtype = torch.complex128) -> dict:
        """The full (conjugate-extended) continuous and bilinear-discrete system as dense matrices.

        Returns:
            dict with ``A [1, N, N]``, ``Abar [H, N, N]``, ``Bbar [H, N]``, ``C_tilde [H, N]`` (full, complex
            ``dtype``) and ``dt [H]``; differentiable.
        """
        Lf = _conj_full(self.Lambda()).to(dtype)
        Pf = _conj_full(_as_complex(self.P)).to(dtype)
        Bf = _conj_full(_as_complex(self.B)).to(dtype)
        A = torch.diag_embed(Lf) - Pf[..., :, None] * Pf.conj()[..., None, :]  # [1, N, N]
        dt = torch.exp(self.log_dt).to(dtype)[:, None, None]
        eye = torch.eye(self.N, dtype=dtype, device=A.device)
        left = 2.0 / dt * eye - A  # (2/Delta)(I - Delta/2 A)
        Abar = torch.linalg.solve(left, 2.0 / dt * eye + A)
        Bbar = torch.linalg.solve(left, 2.0 * Bf.expand(self.H, -1)[..., None])[..., 0]
        return {"A": A, "Abar": Abar, "Bbar": Bbar, "C_tilde": _conj_full(_as_complex(self.C_tilde)).to(dtype),
                "dt": dt[:, 0, 0].real}

    def recurrent_C(self, dense: dict | None = None) -> torch.Tensor:
        """``C = Ct (I - Abar^l_max)^{-1}``, full ``[H, N]`` complex128: the output matrix of the recurrent system.

        ``dense``: the output of :meth:`dense` if already computed."""
        d = dense if dense is not None else self.dense()
        dtype = d["Abar"].dtype
        eye = torch.eye(self.N, dtype=dtype, device=d["Abar"].device)
        M = eye - torch.linalg.matrix_power(d["Abar"], self.l_max)
        return torch.linalg.solve(M.transpose(-1, -2), d["C_tilde"][..., None])[..., 0]  # C M = Ct

    def _c_tilde(self, L: int) -> torch.Tensor:
        """``Ct_L`` (stored half ``[H, N/2]``, model dtype): the parameter for ``L = l_max``, else
        ``C (I - Abar^L)``."""
        Ct = _as_complex(self.C_tilde)
        if L == self.l_max:
            return Ct
        d = self.dense()
        eye = torch.eye(self.N, dtype=torch.complex128, device=Ct.device)
        C = self.recurrent_C(d)
        Ct_L = (C[:, None, :] @ (eye - torch.linalg.matrix_power(d["Abar"], L)))[:, 0]
        return Ct_L[:, : self.N // 2].to(Ct.dtype)

    def kernel(self, L: int) -> torch.Tensor:
        """Convolution kernel ``K [H, L]`` (real, model dtype), ``K_k = C Abar^k Bbar``, by S4's algorithm 1.

        The kernel is computed at length ``max(L, l_max)`` (FFT size) and truncated to ``L``.
        """
        Lk = max(L, self.l_max)
        Ct = self._c_tilde(Lk)
        Lam = self.Lambda()
        dt = torch.exp(self.log_dt)
        cdtype = Ct.dtype
        j = torch.arange(Lk // 2 + 1, device=dt.device, dtype=dt.dtype)
        w = torch.exp(torch.complex(torch.zeros_like(j), -2 * math.pi * j / Lk))  # roots of unity [F]
        a = (1 - w)[None, :, None]  # [1, F, 1]
        b = (dt[:, None].to(cdtype) * (1 + w)[None, :] / 2)[..., None]  # [H, F, 1]
        R = 1.0 / (a - b * _conj_full(Lam)[:, None, :])  # Cauchy denominators [H, F, N]
        Cf, Bf = _conj_full(Ct), _conj_full(_as_complex(self.B))
        Pf = _conj_full(_as_complex(self.P))
        W = torch.stack([Cf * Bf, Cf * Pf, (Pf.conj() * Bf).expand_as(Cf), (Pf.conj() * Pf).expand_as(Cf)], -1)
        r = R @ W  # [H, F, 4]: r(Ct, B), r(Ct, P), r(P*, B), r(P*, P)
        b = b[..., 0]
        Khat = dt[:, None] * (r[..., 0] - b * r[..., 1] * r[..., 2] / (1 + b * r[..., 3]))
        return torch.fft.irfft(Khat, n=Lk)[:, :L]

    @torch.no_grad()
    def step_params(self) -> dict:
        """Discrete system for O(N) stepping: ``E = 2/Delta + Lambda``, ``Dinv = 1/(2/Delta - Lambda)``, ``P``, ``B``,
        the Woodbury denominator ``1 + P^* Dinv P`` (real ``[H]``) and the recovered ``C`` (all ``[H, N/2]``)."""
        Ct = _as_complex(self.C_tilde)
        Lam = self.Lambda()
        dt = torch.exp(self.log_dt)[:, None]
        P, B = _as_complex(self.P), _as_complex(self.B)
        Dinv = 1.0 / (2.0 / dt - Lam)
        denom = 1.0 + 2.0 * (P.conj() * Dinv * P).sum(-1).real
        C = self.recurrent_C()[:, : self.N // 2].to(Ct.dtype)
        return {"E": 2.0 / dt + Lam, "Dinv": Dinv, "P": P, "B": B, "denom": denom, "C": C}

    @staticmethod
    def step_state(u: torch.Tensor, x: torch.Tensor, p: dict) -> torch.Tensor:
        """``x_k = (2/Delta - A)^{-1} [(2/Delta + A) x_{k-1} + 2 B u_k]`` for ``u [B, H]``, ``x [B, H, N/2]``."""
        s = 2.0 * (p["P"].conj() * x).sum(-1).real  # P^* x over the full state, [B, H]
        v = p["E"] * x - p["P"] * s[..., None] + 2.0 * p["B"] * u[..., None]
        Dv = p["Dinv"] * v
        q = 2.0 * (p["P"].conj() * Dv).sum(-1).real / p["denom"]
        return Dv - p["Dinv"] * p["P"] * q[..., None]


class DiagKernel(nn.Module):
    """S4D's diagonal SSM with S4D-Lin initialisation and zero-order hold (see the module docstring).

    Parameters: ``log_re, im [1, N/2]``, ``B [1, N/2, 2]``, ``C [H, N/2, 2]``, ``log_dt [H]``.
    """

    def __init__(self, H: int, N: int, l_max: int, dt_min: float = 1e-3, dt_max: float = 1e-1):
        super().__init__()
        self.H, self.N, self.l_max = H, N, l_max
        n = torch.arange(N // 2, dtype=torch.float32)
        self.log_re = nn.Parameter(torch.full((1, N // 2), math.log(0.5)))
        self.im = nn.Parameter((math.pi * n)[None])
        self.B = _complex_param(torch.ones(1, N // 2, dtype=torch.complex128))
        self.C = _complex_param(torch.randn(H, N // 2, dtype=torch.complex128) * 0.5**0.5)
        self.log_dt = nn.Parameter(_init_log_dt(H, dt_min, dt_max))

    def Lambda(self) -> torch.Tensor:
        """complex ``[1, N/2]``, ``Re < 0`` always."""
        return torch.complex(-torch.exp(self.log_re).clamp_min(_RE_MIN), self.im)

    def discrete(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """ZOH: ``(Abar, Bbar, C)``, each complex ``[H, N/2]``."""
        Lam = self.Lambda()
        dtA = torch.exp(self.log_dt)[:, None] * Lam
        Abar = torch.exp(dtA)
        Bbar = (Abar - 1.0) / Lam * _as_complex(self.B)
        return Abar, Bbar, _as_complex(self.C)

    def kernel(self, L: int) -> torch.Tensor:
        """Kernel ``K [H, L]``, ``K_k = 2 Re(sum_n C_n Bbar_n Abar_n^k)`` (Vandermonde product)."""
        Lam = self.Lambda()
        dtA = torch.exp(self.log_dt)[:, None] * Lam  # [H, N/2]
        _, Bbar, C = self.discrete()
        k = torch.arange(L, device=dtA.device, dtype=self.log_dt.dtype)
        V = torch.exp(dtA[..., None] * k)  # [H, N/2, L]
        return 2.0 * torch.einsum("hn,hnl->hl", C * Bbar, V).real

    @torch.no_grad()
    def step_params(self) -> dict:
        Abar, Bbar, C = self.discrete()
        return {"Abar": Abar, "Bbar": Bbar, "C": C}

    @staticmethod
    def step_state(u: torch.Tensor, x: torch.Tensor, p: dict) -> torch.Tensor:
        """``x_k = Abar x_{k-1} + Bbar u_k`` for ``u [B, H]``, ``x [B, H, N/2]``."""
        return p["Abar"] * x + p["Bbar"] * u[..., None]


class S4Layer(nn.Module):
    """An S4 (DPLR) or S4D (diagonal) layer over ``H`` independent channels: ``y = K * u + D u``.

    Args:
        H: channels (``d_model`` of the block using it).
        d_state: ``N``, state size per channel (even; 64 in S4 and SaShiMi).
        l_max: kernel length ``L`` the layer is set up for (the training sequence length); longer inputs work too
            (see the module docstring), shorter ones use the first ``T`` kernel taps.
        layer: ``"s4"`` (DPLR, HiPPO-LegS init, bilinear) or ``"s4d"`` (diagonal, S4D-Lin init, ZOH).
        dt_min, dt_max: range of the initial step sizes ``Delta`` (0.001, 0.1).
    Raises:
        ValueError: a non-positive or odd ``d_state``, non-positive ``H`` / ``l_max``, unknown ``layer``, or
            ``0 < dt_min <= dt_max`` violated.
    """

    def __init__(self, H: int, d_state: int = 64, l_max: int = 1024, layer: str = "s4",
                 dt_min: float = 1e-3, dt_max: float = 1e-1):
        super().__init__()
        if not isinstance(H, int) or H < 1:
            raise ValueError(f"S4Layer: H must be a positive integer, got {H!r}")
        if not isinstance(d_state, int) or d_state < 2 or d_state % 2:
            raise ValueError(f"S4Layer: d_state must be an even integer >= 2 (states come in conjugate pairs), "
                             f"got {d_state!r}")
        if not isinstance(l_max, int) or l_max < 1:
            raise ValueError(f"S4Layer: l_max must be a positive integer, got {l_max!r}")
        if layer not in LAYERS:
            raise ValueError(f"S4Layer: layer must be one of {LAYERS}, got {layer!r}")
        if not 0 < dt_min <= dt_max:
            raise ValueError(f"S4Layer: need 0 < dt_min <= dt_max, got dt_min={dt_min}, dt_max={dt_max}")
        self.H, self.N, self.l_max, self.layer = H, d_state, l_max, layer
        kernel_cls = DPLRKernel if layer == "s4" else DiagKernel
        self.ssm = kernel_cls(H, d_state, l_max, dt_min, dt_max)
        self.D = nn.Parameter(torch.randn(H))

    def extra_repr(self) -> str:
        return f"H={self.H}, d_state={self.N}, l_max={self.l_max}, layer={self.layer!r}"

    def kernel(self, L: int) -> torch.Tensor:
        """Real convolution kernel ``K [H, L]`` with ``K_k = C Abar^k Bbar`` (without the ``D`` skip term)."""
        if not isinstance(L, int) or L < 1:
            raise ValueError(f"S4Layer.kernel: L must be a positive integer, got {L!r}")
        return self.ssm.kernel(L)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        """Convolution mode: ``u [B, T, H] -> y [B, T, H]``, ``y_t = sum_{k <= t} K_k u_{t-k} + D u_t`` (causal).

        Computed with FFTs of size ``2T`` in float32 (float64 for a float64 model), with autocast off.

        Raises:
            ValueError: ``u`` is not ``[B, T, H]`` with ``T >= 1``.
        """
        if u.dim() != 3 or u.shape[-1] != self.H or u.shape[1] < 1:
            raise ValueError(f"S4Layer: u must have shape [B, T, {self.H}] with T >= 1, got {tuple(u.shape)}")
        dtype = self.D.dtype
        with torch.autocast(device_type=u.device.type, enabled=False):
            u = u.to(dtype)
            T = u.shape[1]
            K = self.ssm.kernel(T)  # [H, T]
            n = 2 * T
            y = torch.fft.irfft(torch.fft.rfft(u, n=n, dim=1) * torch.fft.rfft(K.t(), n=n, dim=0), n=n, dim=1)[:, :T]
            return y + u * self.D

    def default_state(self, batch_size: int) -> S4State:
        """Zero recurrent state for ``batch_size`` sequences, with the discrete system set up from the current weights.

        Raises:
            ValueError: ``batch_size < 1``.
        """
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"S4Layer.default_state: batch_size must be a positive integer, got {batch_size!r}")
        params = self.step_params()
        x = torch.zeros(batch_size, self.H, self.N // 2, dtype=params["C"].dtype, device=self.D.device)
        return S4State(x=x, params=params)

    def step_params(self) -> dict:
        """The discrete system of the current weights (the kernel's ``step_params`` and ``D``).

        Computing it takes a matrix power and a solve per channel (about 0.1 s per layer of the 16-bit SaShiMi), so
        it is kept until a parameter changes: the key is every parameter's storage and version counter, which an
        optimizer step, ``load_state_dict`` or a move to another device or dtype changes.  Treat the result as
        read-only."""
        key = weights_key(self)
        cached = self.__dict__.get("_step_cache")
        if cached is None or cached[0] != key:
            params = self.ssm.step_params()
            params["D"] = self.D.detach().clone()
            cached = self.__dict__["_step_cache"] = (key, params)
        return cached[1]

    @torch.no_grad()
    def step(self, u: torch.Tensor, state: S4State) -> tuple[torch.Tensor, S4State]:
        """Recurrent mode, one time step: ``u_t [B, H] -> (y_t [B, H], next state)``, ``y_t = C x_t + D u_t``.

        O(N) work per channel (DPLR structure or diagonal).  Unrolled over a sequence it equals :meth:`forward` up
        to float rounding.

        Raises:
            ValueError: ``u`` does not have shape ``[B, H]`` matching the state.
        """
        B = state.x.shape[0]
        if u.shape != (B, self.H):
            raise ValueError(f"S4Layer.step: u must have shape [{B}, {self.H}] (the state's batch), "
                             f"got {tuple(u.shape)}")
        p = state.params
        u = u.to(p["D"].dtype)
        x = self.ssm.step_state(u, state.x, p)
        y = 2.0 * (p["C"] * x).sum(-1).real + p["D"] * u
        return y, S4State(x=x, params=p)


__all__ = ["DPLRKernel", "DiagKernel", "LAYERS", "S4Layer", "S4State", "hippo_legs", "hippo_legs_nplr"]
