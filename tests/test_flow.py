"""Flow layers: exact inverses and exact log-determinants."""

import pytest
import torch

from espnet2_glow_wavegan.glow.flow import (
    ActNorm,
    AffineCoupling,
    GlowFlow,
    GroupedInvertibleConv1x1,
    squeeze,
    unsqueeze,
)

# float64 round trips through 12 blocks stay within ~1e-12; 1e-9 is the stated tolerance.
TOL = dict(atol=1e-9, rtol=0)


def randomise(module):
    """Move every layer away from its identity initialisation."""
    torch.manual_seed(1)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    for m in module.modules():
        if isinstance(m, ActNorm):
            m.initialized.fill_(True)
    return module


def test_squeeze_roundtrip_and_mask():
    x = torch.arange(2 * 3 * 8, dtype=torch.float64).view(2, 3, 8)
    mask = torch.ones(2, 1, 8, dtype=torch.float64)
    mask[1, :, 5:] = 0
    y, ymask = squeeze(x, mask)
    assert y.shape == (2, 6, 4) and ymask[1, 0].tolist() == [1, 1, 0, 0]
    back, _ = unsqueeze(y, ymask)
    assert torch.equal(back, x)
    with pytest.raises(ValueError):
        squeeze(x[:, :, :7], mask[:, :, :7])


@pytest.mark.parametrize("global_channels", [-1, 6])
def test_glow_flow_inverse_with_and_without_speaker(global_channels):
    torch.manual_seed(0)
    flow = randomise(GlowFlow(channels=8, blocks=3, hidden_channels=16, layers=2, global_channels=global_channels))
    flow = flow.double().eval()
    x = torch.randn(2, 8, 12, dtype=torch.float64)
    mask = torch.ones(2, 1, 12, dtype=torch.float64)
    mask[1, :, 8:] = 0
    x = x * mask
    g = torch.randn(2, global_channels, 1, dtype=torch.float64) if global_channels > 0 else None
    y, logdet = flow(x, mask, g=g)
    x_back, logdet_rev = flow(y, mask, g=g, reverse=True)
    torch.testing.assert_close(x_back, x, **TOL)
    torch.testing.assert_close(logdet_rev, -logdet, **TOL)
    if g is not None:  # the condition really enters the flow
        y_other, _ = flow(x, mask, g=g.flip(0))
        assert not torch.allclose(y_other, y)


def brute_force_logdet(layer, x, mask, g=None):
    """log |det J| of the layer's map over the valid entries, from autograd's full Jacobian."""
    valid = mask.expand_as(x).bool()

    def f(v):
        full = torch.zeros_like(x)
        full[valid] = v
        return layer(full, mask, g=g)[0][valid]

    jac = torch.autograd.functional.jacobian(f, x[valid])
    return torch.linalg.slogdet(jac)[1]


@pytest.mark.parametrize(
    "make",
    [
        lambda: ActNorm(4),
        lambda: GroupedInvertibleConv1x1(8, group_size=4),
        lambda: AffineCoupling(8, hidden_channels=8, kernel_size=3, layers=2, dropout_rate=0.0, global_channels=3),
        lambda: GlowFlow(channels=4, blocks=2, hidden_channels=8, kernel_size=3, layers=2, dropout_rate=0.0, global_channels=3),
    ],
    ids=["actnorm", "invconv", "coupling", "glow_flow"],
)
def test_logdet_matches_brute_force_jacobian(make):
    torch.manual_seed(0)
    layer = randomise(make()).double().eval()
    channels = 8 if not isinstance(layer, (ActNorm, GlowFlow)) else 4
    x = torch.randn(1, channels, 6, dtype=torch.float64)
    mask = torch.ones(1, 1, 6, dtype=torch.float64)
    mask[..., 4:] = 0  # padded frames are excluded from the determinant
    x = x * mask
    g = torch.randn(1, 3, 1, dtype=torch.float64)
    logdet = layer(x, mask, g=g)[1]
    torch.testing.assert_close(logdet[0], brute_force_logdet(layer, x, mask, g), atol=1e-8, rtol=1e-8)


def test_actnorm_data_dependent_init_runs_once():
    torch.manual_seed(0)
    norm = ActNorm(3).train()
    x = torch.randn(4, 3, 50) * torch.tensor([1.0, 5.0, 0.2]).view(1, 3, 1) + 7.0
    mask = torch.ones(4, 1, 50)
    y, _ = norm(x, mask)
    torch.testing.assert_close(y.mean(dim=(0, 2)), torch.zeros(3), atol=1e-4, rtol=0)
    torch.testing.assert_close(y.std(dim=(0, 2), unbiased=False), torch.ones(3), atol=1e-3, rtol=0)
    assert bool(norm.initialized) and "initialized" in norm.state_dict()
    before = norm.log_scale.detach().clone()
    norm(x * 3, mask)
    assert torch.equal(norm.log_scale, before)
