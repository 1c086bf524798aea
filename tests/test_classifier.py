"""jaxwvae.evaluation.cnn and classifier: the CNN, training over seeds, chunked evaluation, the cached FID network."""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from jaxwvae import data
from jaxwvae.evaluation import classifier, cnn

N_TRAIN, N_TEST, SEEDS = 2000, 1000, (0, 1)
RECIPE = dict(epochs=1, batch_size=32, learning_rate=2e-3)  # 63 Adam steps: 86-89% on 1,000 MNIST test images


@pytest.fixture(scope="module")
def mnist(data_dir):
    x, y = data.load("mnist", "train", data_dir)
    xt, yt = data.load("mnist", "test", data_dir)
    return x[:N_TRAIN], y[:N_TRAIN], xt[:N_TEST], yt[:N_TEST]


@pytest.fixture(scope="module")
def group(mnist):
    x, y, _, _ = mnist
    return classifier.train(SEEDS, x, y, **RECIPE)


def reference_cnn(params, x):
    """The same network with lax.conv_general_dilated and reduce_window max pooling."""
    p = params["params"]
    h = x.reshape(-1, 28, 28, 1)
    for name in ("conv1", "conv2"):
        h = lax.conv_general_dilated(h, p[name]["kernel"], (1, 1), "SAME",
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                     precision=lax.Precision.HIGHEST)
        h = nn.max_pool(nn.relu(h + p[name]["bias"].reshape(1, 1, 1, -1)), (2, 2), strides=(2, 2))
    h = h.reshape(h.shape[0], -1)
    if "hidden" in p:
        h = nn.relu(h @ p["hidden"]["kernel"] + p["hidden"]["bias"].reshape(1, -1))
    return h @ p["out"]["kernel"] + p["out"]["bias"].reshape(1, -1)


@pytest.mark.parametrize("hidden, n_features, n_weight_layers", [(None, 3136, 3), (128, 128, 4)])
def test_cnn_shapes_layers_and_reference(hidden, n_features, n_weight_layers):
    model = cnn.CNN(hidden)
    params = model.init(jax.random.key(0), jnp.zeros((1, 28, 28)))
    kernels = [path for path, _ in jax.tree_util.tree_leaves_with_path(params) if path[-1].key == "kernel"]
    assert len(kernels) == n_weight_layers
    apply = jax.jit(model.apply, static_argnames="features")
    x = jax.random.uniform(jax.random.key(1), (6, 28, 28))
    out = apply(params, x)
    assert out.shape == (6, 10)
    for shaped in (x[..., None], x.reshape(6, 784), x.reshape(2, 3, 28, 28)):
        np.testing.assert_array_equal(apply(params, shaped).reshape(6, 10), out)
    assert apply(params, x, features=True).shape == (6, n_features)
    assert apply(params, x[0]).shape == (10,)
    reference = reference_cnn(params, x)
    # float32 sums of up to 3,136 products in another order (im2col matmuls against direct convolutions):
    # ~1e-6 of logits of size ~1
    np.testing.assert_allclose(out, reference, rtol=1e-5, atol=1e-5)
    lax_conv = jax.jit(cnn.CNN(hidden, im2col=False).apply)(params, x)
    np.testing.assert_allclose(lax_conv, reference, rtol=1e-5, atol=1e-5)


@pytest.mark.slow  # trains the CNN
def test_vmapped_training_beats_chance(mnist, group):
    _, _, xt, yt = mnist
    assert group["params"]["conv1"]["kernel"].shape == (len(SEEDS), 3, 3, 1, 32)
    assert "hidden" not in group["params"]  # the Table-2 classifier: 3 weight layers
    acc = classifier.accuracy(group, xt, yt)
    assert acc.shape == (len(SEEDS),)
    assert np.all(acc > 0.8), acc
    kernel = np.asarray(group["params"]["conv2"]["kernel"])
    assert not np.allclose(kernel[0], kernel[1])


@pytest.mark.slow  # trains the CNN
def test_seed_alone_equals_seed_in_group(mnist, group):
    x, y, _, _ = mnist
    alone = jax.jit(functools.partial(classifier.fit, **RECIPE))(SEEDS[1], x, y)
    in_group = jax.tree_util.tree_map(lambda a: a[1], group)
    # Same init and data order. Measured on CPU (jax 0.10, with and without XLA optimisations):
    # bitwise equal. The tolerance leaves room for batched and unbatched matrix products to
    # round differently on other backends (weights are ~1e-1, 63 steps).
    jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, rtol=0, atol=1e-6), alone, in_group)


@pytest.mark.slow  # trains the CNN
def test_chunked_evaluation_matches_single_params(mnist, group, monkeypatch):
    _, _, xt, yt = mnist
    x, y = xt[:10], yt[:10]
    full = classifier.logits(group, x)
    assert full.shape == (len(SEEDS), 10, 10) and full.dtype == np.float32
    monkeypatch.setattr(classifier, "_EVAL_CHUNK", 3)  # chunks of 3 images, the last one padded
    # the same per-image operations in batches of another size: XLA may block the matmuls differently,
    # a few float32 ulps of logits of size ~1-10
    np.testing.assert_allclose(classifier.logits(group, x), full, rtol=1e-6, atol=1e-6)
    one = jax.tree_util.tree_map(lambda a: np.asarray(a[0]), group)
    np.testing.assert_allclose(classifier.logits(one, x.reshape(10, 784)), full[0], rtol=1e-6, atol=1e-6)
    assert classifier.features(one, x).shape == (10, 3136)
    floats = x.astype(np.float32) / 255
    # uint8 scaled inside vs outside the program: x / 255 may round differently by one ulp
    np.testing.assert_allclose(classifier.features(group, floats), classifier.features(group, x), atol=1e-6)
    assert classifier.accuracy(one, x, y) == np.mean(np.argmax(full[0], -1) == y)


@pytest.mark.slow  # trains the CNN
def test_feature_params_trains_once_and_caches(data_dir, tmp_path, monkeypatch):
    recipe = dict(train_size=200, epochs=1)  # 2 steps of 128: the second wraps around the permutation
    calls = []
    real_train = classifier.train

    def counting_train(*args, **kwargs):
        calls.append(kwargs)
        return real_train(*args, **kwargs)

    monkeypatch.setattr(classifier, "train", counting_train)
    params = classifier.feature_params("mnist", data_dir, cache_dir=tmp_path / "a", **recipe)
    assert len(calls) == 1 and calls[0]["hidden"] == classifier.FEATURE_HIDDEN
    path = classifier.feature_cache_path("mnist", cache_dir=tmp_path / "a", **recipe)
    assert path.is_file() and path.parent == tmp_path / "a" / "fid"
    assert classifier.FEATURE_RECIPE_VERSION in path.name and "n200-e1" in path.name
    assert path != classifier.feature_cache_path("mnist", cache_dir=tmp_path / "a")
    assert path != classifier.feature_cache_path("mnist", cache_dir=tmp_path / "a", train_size=200, epochs=2)

    def failing_train(*args, **kwargs):
        raise AssertionError("feature_params retrained despite its cache")

    monkeypatch.setattr(classifier, "train", failing_train)
    loaded = classifier.feature_params("mnist", data_dir, cache_dir=tmp_path / "a", **recipe)
    assert jax.tree_util.tree_structure(loaded) == jax.tree_util.tree_structure(params)
    jax.tree_util.tree_map(np.testing.assert_array_equal, loaded, params)

    # a damaged cache file is retrained and replaced; training again gives bitwise the same network
    monkeypatch.setattr(classifier, "train", counting_train)
    damaged = classifier.feature_cache_path("mnist", cache_dir=tmp_path / "b", **recipe)
    damaged.parent.mkdir(parents=True)
    damaged.write_bytes(path.read_bytes()[:100])
    again = classifier.feature_params("mnist", data_dir, cache_dir=tmp_path / "b", **recipe)
    assert len(calls) == 2
    jax.tree_util.tree_map(np.testing.assert_array_equal, again, params)
    assert damaged.read_bytes() == path.read_bytes()

    images, _ = data.load("mnist", "test", data_dir)
    feats = classifier.features(loaded, images[:5])
    assert feats.shape == (5, classifier.FEATURE_HIDDEN) and feats.dtype == np.float32
    assert np.all(feats >= 0) and np.all(np.isfinite(feats))


def test_rejects_bad_inputs(mnist):
    x, y, _, _ = mnist
    with pytest.raises(ValueError):
        classifier.train([], x, y, epochs=1)
    with pytest.raises(ValueError):
        classifier.train([0], x, y[:-1], epochs=1)
    with pytest.raises(ValueError):
        classifier.train([0], x.reshape(-1, 28 * 28)[:, :100], y, epochs=1)


@pytest.mark.slow  # trains the CNN
def test_a_step_budget_walks_the_epochs_in_order(mnist):
    """``steps`` = epochs x steps per epoch on a set that batches evenly trains exactly as ``epochs``."""
    x, y, _, _ = mnist
    x, y = x[:256], y[:256]  # 4 batches of 64 per epoch
    by_epochs = classifier.train([3], x, y, epochs=2, batch_size=64)
    by_steps = classifier.train([3], x, y, steps=8, batch_size=64)
    jax.tree_util.tree_map(lambda a, b: np.testing.assert_array_equal(a, b), by_epochs, by_steps)
    shorter = classifier.train([3], x, y, steps=7, batch_size=64)
    assert not all(jax.tree_util.tree_leaves(jax.tree_util.tree_map(np.array_equal, by_epochs, shorter)))
    with pytest.raises(ValueError, match="give epochs or steps"):
        classifier.train([3], x, y, epochs=1, steps=4)
