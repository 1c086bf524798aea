"""benchmarks/peers.py's PyTorch peers (benchmarks/torch_peers.py) do the library's work: same loss, same gradients, per seed.

The Flax model's weights are copied into ``torch_peers.TorchVAE`` (a Dense kernel ``[in, out]`` is a
Linear weight ``[out, in]``) and both see the same batch and the same ε. float32 on both sides with
different summation orders: measured differences are <= 4e-7 of the scale, so 1e-5 (loss, T)
and 1e-4 (gradients) leave ample headroom, while a wrong term moves them far more (σ² for σ in
W2² moves this loss by 3e-3, at this init where the reconstruction term dominates it).
"""

import pathlib
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxwvae.core import objectives
from jaxwvae.core.models import VAE

torch = pytest.importorskip("torch")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "benchmarks"))
import torch_peers as peers  # noqa: E402

BATCH, LAM = 16, 0.7

pytestmark = pytest.mark.slow  # imports torch and builds the PyTorch peers (tens of seconds)


def _batch(seed):
    return np.random.default_rng(seed).integers(0, 256, (BATCH, 784), dtype=np.uint8).astype(np.float32) / 255.0


def _copy_into_torch(params):
    """A ``torch_peers.TorchVAE`` holding the Flax weights, and its Linear layers by part."""
    model = peers.TorchVAE()
    linears = {"encoder": [m for m in model.encoder if isinstance(m, torch.nn.Linear)],
               "decoder": [m for m in model.decoder if isinstance(m, torch.nn.Linear)]}
    with torch.no_grad():
        for part, layers in linears.items():
            for i, layer in enumerate(layers):
                dense = params["params"][part][f"Dense_{i}"]
                layer.weight.copy_(torch.tensor(np.asarray(dense["kernel"]).T))
                layer.bias.copy_(torch.tensor(np.asarray(dense["bias"])))
    return model, linears


def _rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.max(np.abs(a - b)) / np.max(np.abs(b))


def test_torch_loss_and_gradients_equal_flax():
    model = VAE()
    x = _batch(0)
    params = model.init(jax.random.PRNGKey(0), jnp.zeros((1, 784)), jax.random.PRNGKey(1))
    key_z = jax.random.PRNGKey(2)
    eps = jax.random.normal(key_z, (BATCH, 20))  # the draw VAE.__call__ makes from key_z

    def loss_fn(p):
        return objectives.elbo_w(x, model.apply(p, x, key_z), LAM, None)

    (loss, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)

    torch_model, linears = _copy_into_torch(params)
    t_loss, t_gap = peers.torch_loss(torch_model, torch.from_numpy(x), torch.tensor(np.asarray(eps)), LAM)
    t_loss.backward()

    assert abs(t_loss.item() - float(loss)) <= 1e-5 * abs(float(loss))
    assert abs(t_gap.item() - float(metrics["t_gap"])) <= 1e-5 * float(metrics["w2"])
    for part, layers in linears.items():
        for i, layer in enumerate(layers):
            dense = grads["params"][part][f"Dense_{i}"]
            assert _rel(layer.weight.grad.numpy().T, dense["kernel"]) < 1e-4, (part, i)
            assert _rel(layer.bias.grad.numpy(), dense["bias"]) < 1e-4, (part, i)


def test_vmapped_gradients_equal_each_seeds_own():
    """Peer (c)'s torch.func gradients of all seeds at once are peer (b)'s, seed by seed."""
    models = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        models.append(peers.TorchVAE())
    x = torch.from_numpy(np.stack([_batch(1), _batch(2)]))
    eps = torch.randn(2, BATCH, 20, generator=torch.Generator().manual_seed(3))
    params, grads_fn = peers.functional_grads(models)
    stacked = grads_fn({k: p.detach() for k, p in params.items()}, x, eps, LAM)
    for k, model in enumerate(models):
        peers.torch_loss(model, x[k], eps[k], LAM)[0].backward()
        for name, p in model.named_parameters():
            assert _rel(stacked[name][k], p.grad) < 1e-5, (k, name)
