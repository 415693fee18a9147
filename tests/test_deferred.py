"""Deferred weight gradients (wavelab.models.deferred): the same gradients as plain autograd, in every model whose
recurrent loop uses them, and the GRU update of torch.nn.GRUCell."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tests.test_cwvae import TINY as TINY_CWVAE
from tests.test_recurrent import sine_batch, tiny
from wavelab.models import build_model, deferred
from wavelab.models.deferred import DeferredGrads

torch.set_num_threads(1)


def _gradients(model, codes, lengths, flag: bool):
    """Loss and every parameter's gradient of one training forward/backward with the deferral on or off (the
    posterior noise drawn from the same seed)."""
    model.train()
    model.set_train_step(3)
    model.zero_grad(set_to_none=True)
    with deferred.enabled(flag):
        torch.manual_seed(1)
        loss = model(codes, lengths).loss()
        loss.backward()
    return float(loss.detach()), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def _cwvae():
    torch.manual_seed(0)
    return build_model("cwvae", **{**TINY_CWVAE, "L": 2})


@pytest.mark.parametrize("make", [lambda: tiny("vrnn"), lambda: tiny("srnn"), _cwvae], ids=["vrnn", "srnn", "cwvae"])
def test_deferred_weight_gradients_equal_plain_autograds(make):
    model = make()
    codes = sine_batch(B=3, T=400)
    lengths = torch.tensor([400, 350, 301])  # padding: some steps' outputs never reach the loss
    loss_plain, plain = _gradients(model, codes, lengths, False)
    loss_deferred, fast = _gradients(model, codes, lengths, True)
    assert loss_deferred == pytest.approx(loss_plain, rel=1e-6)
    assert plain.keys() == fast.keys() and len(plain) == len(list(model.parameters()))
    for name, g in plain.items():
        scale = g.abs().max().item() + 1e-12
        assert (fast[name] - g).abs().max().item() <= 1e-4 * scale, name


def test_gru_cell_is_torchs_and_steps_outside_the_loss_get_no_gradient():
    torch.manual_seed(0)
    cell, head = nn.GRUCell(5, 7), nn.Linear(7, 3)
    xs, h0 = torch.randn(2, 6, 5, requires_grad=True), torch.randn(2, 7)

    def run(flag):
        cell.zero_grad(), head.zero_grad()
        xs.grad = None
        with deferred.enabled(flag):
            dg = DeferredGrads(cell, head)
            h, x = dg.enter(h0, xs)
            outs = []
            for x_t in dg.per_step(x):
                h = dg.gru_cell(cell, x_t, h)
                outs.append(dg.linear(head, h))
            # the last two steps' outputs are not in the loss: their gradients must not be counted
            torch.stack(outs[:4]).pow(2).sum().backward()
        return h.detach(), [p.grad.clone() for p in (*cell.parameters(), *head.parameters())], xs.grad.clone()

    h_plain, g_plain, x_plain = run(False)
    h_fast, g_fast, x_fast = run(True)
    torch.testing.assert_close(h_fast, h_plain, rtol=1e-6, atol=1e-6)
    for a, b in zip(g_fast, g_plain):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(x_fast, x_plain, rtol=1e-5, atol=1e-6)
    assert x_fast[:, 4:].abs().max() == 0  # steps after the last one in the loss get nothing


def test_without_gradients_the_layers_run_as_they_are_and_under_autocast_in_float32():
    layer = nn.Linear(4, 4)
    with torch.no_grad():
        assert not DeferredGrads(layer).active
    with deferred.enabled(False):
        assert not DeferredGrads(layer).active
    x = torch.randn(3, 4, requires_grad=True)
    assert DeferredGrads(layer).enter(x, None)[1] is None
    # under bf16 autocast the deferred layer computes in float32, and its gradients are float32 autograd's
    dg = DeferredGrads(layer)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        (h,) = dg.enter(x)
        y = dg.linear(layer, h.to(torch.bfloat16))
    assert dg.active and y.dtype == torch.float32
    y.pow(2).sum().backward()
    fast = [p.grad.clone() for p in layer.parameters()]
    layer.zero_grad()
    F.linear(x.to(torch.bfloat16).float(), layer.weight, layer.bias).pow(2).sum().backward()
    for a, b in zip(fast, [p.grad for p in layer.parameters()]):
        torch.testing.assert_close(a, b)
