"""The small CNN (:mod:`jaxwvae.evaluation.cnn`) trained as the paper's Table-2 classifier and as the FID network.

Section 4 of the paper trains "a separate 3-layer CNN" on real and
VAE-reconstructed images and reports its accuracy on 3,000 held-out test
images (Table 2). :func:`train` trains it for many classifier seeds at once
(one ``jit(vmap(fit))`` program, whole epochs in ``lax.scan`` on the
device-resident images), so every accuracy comes with a spread over seeds.
:func:`feature_params` trains the FID feature network once per dataset and
caches it on disk; :func:`features` gives its 128-d penultimate activations.

Images may be ``uint8`` in [0, 255] (divided by 255 on the device, batch by
batch, so the data stay compact) or floats in [0, 1] (e.g. decoder outputs),
shaped ``[n, 28, 28]``, ``[n, 28, 28, 1]`` or ``[n, 784]``.
"""

from __future__ import annotations

import functools
import logging
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import serialization
from jax import lax

from jaxwvae import data as data_lib
from jaxwvae.core.keys import DATA_STREAM, INIT_STREAM, stream
from jaxwvae.data.pixels import to_float
from jaxwvae.errors import DataError
from jaxwvae.evaluation.cnn import CNN, TABLE2_HIDDEN, Conv3x3, lead_shape
from jaxwvae.runs.rundir import atomic_write_bytes

__all__ = [
    "CNN",
    "Conv3x3",
    "TABLE2_HIDDEN",
    "TABLE2_EPOCHS",
    "BATCH_SIZE",
    "LEARNING_RATE",
    "FEATURE_HIDDEN",
    "FEATURE_SEED",
    "FEATURE_EPOCHS",
    "FEATURE_RECIPE_VERSION",
    "fit",
    "train",
    "logits",
    "features",
    "accuracy",
    "feature_params",
    "feature_cache_path",
]

_LOG = logging.getLogger(__name__)

# Suggested epochs for the Table-2 classifier on ~10,000 images (79 steps of 128 each): on
# MNIST, 96.6% (5 epochs) and 97.0% (10 epochs) on the first 3,000 test images, 3 seeds.
TABLE2_EPOCHS = 5
BATCH_SIZE = 128
LEARNING_RATE = 1e-3
FEATURE_HIDDEN = 128  # width of the FID feature layer
FEATURE_SEED = 0
FEATURE_EPOCHS = 3  # 1,407 steps: test accuracy 98.8% (MNIST), 90.4% (Fashion-MNIST)
# Bump when anything that changes the trained FID network changes (architecture,
# init, shuffling, optimiser, preprocessing): the cache file name carries it.
FEATURE_RECIPE_VERSION = "v1"

_EVAL_CHUNK = 512  # images per device call in logits/features (~100 MB of activations, one seed at a time)


def _check_batch(images) -> np.ndarray:
    """``images`` as a host array of one non-empty leading axis ``[n, ...]``."""
    images = np.asarray(images)
    if len(lead_shape(images.shape)) != 1 or len(images) == 0:
        raise ValueError(f"need a non-empty batch of images [n, 28, 28], [n, 28, 28, 1] or [n, 784], "
                         f"got shape {images.shape}")
    if images.dtype != np.uint8 and not np.issubdtype(images.dtype, np.floating):
        raise TypeError(f"images must be uint8 in [0, 255] or floats in [0, 1], got dtype {images.dtype}")
    return images


def _to_float(images):
    """``uint8`` pixels to float32 in [0, 1]; floating images are taken as already in [0, 1]."""
    if images.dtype == jnp.uint8:
        return to_float(images)
    if not jnp.issubdtype(images.dtype, jnp.floating):
        raise TypeError(f"images must be uint8 in [0, 255] or floats in [0, 1], got dtype {images.dtype}")
    return images.astype(jnp.float32)


# --------------------------------------------------------------------------- training


def fit(seed, images, labels, *, epochs: int | None = None, batch_size: int = BATCH_SIZE,
        learning_rate: float = LEARNING_RATE,
        hidden: int | None = TABLE2_HIDDEN, steps: int | None = None):
    """Train one :class:`CNN` from ``seed`` (int32 scalar: vmap over an array of seeds); returns its params.

    Adam on the mean cross-entropy, no augmentation or regularisation. The
    key is ``PRNGKey(seed)``: the init folds in ``INIT_STREAM``, epoch ``e``'s
    shuffle ``(DATA_STREAM, e)``, so a seed's run does not depend on the other
    seeds of a vmapped group.

    A training set whose size ``n`` is not a multiple of the batch size is not
    cut: each epoch takes ``ceil(n / batch_size)`` steps through the epoch's
    permutation, the last batch completed with the permutation's first images
    (fewer than ``batch_size`` images are seen twice in that epoch, none
    skipped). With ``n < batch_size`` the batch is the whole set. Small sets
    thus get few steps per epoch (1,000 images: 8): raise ``epochs`` for them.

    With ``steps`` instead of ``epochs`` the run is exactly ``steps`` Adam steps
    whatever the set's size (a fixed budget, so sets of different sizes compare
    at equal compute): the epochs' permutations follow one another and are cut
    into batches, the last epoch partly used.

    Args:
      seed: the classifier seed.
      images: ``[n, 28, 28]`` uint8 (or floats in [0, 1]), shared by all seeds.
      labels: ``[n]`` integer classes.
      epochs, batch_size, learning_rate, hidden: the recipe (``hidden``: see :class:`CNN`).
      steps: a fixed number of steps in place of ``epochs`` (give one of the two).
    """
    n = images.shape[0]
    batch = min(batch_size, n)
    per_epoch = -(-n // batch)
    model = CNN(hidden)
    key = jax.random.PRNGKey(seed)
    params = model.init(stream(key, INIT_STREAM), jnp.zeros((1, 28, 28), jnp.float32))
    tx = optax.adam(learning_rate)
    labels = labels.astype(jnp.int32)

    def loss_fn(params, x, y):
        return optax.softmax_cross_entropy_with_integer_labels(model.apply(params, x), y).mean()

    def step(carry, idx):
        params, opt_state = carry
        grads = jax.grad(loss_fn)(params, _to_float(images[idx]), labels[idx])
        updates, opt_state = tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), None

    def epoch(carry, e):
        order = jax.random.permutation(stream(key, DATA_STREAM, e), n)
        order = jnp.concatenate([order, order[: per_epoch * batch - n]]).reshape(per_epoch, batch)
        return lax.scan(step, carry, order)[0], None

    if steps is None:
        (params, _), _ = lax.scan(epoch, (params, tx.init(params)), jnp.arange(epochs))
        return params
    n_epochs = -(-steps * batch // n)
    orders = jax.vmap(lambda e: jax.random.permutation(stream(key, DATA_STREAM, e), n))(jnp.arange(n_epochs))
    batches = orders.reshape(-1)[: steps * batch].reshape(steps, batch)
    (params, _), _ = lax.scan(step, (params, tx.init(params)), batches)
    return params


def _check_data(images, labels):
    images = _check_batch(images)
    labels = np.asarray(labels)
    if labels.shape != (len(images),) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integers of shape [{len(images)}], "
                         f"got {labels.dtype} {labels.shape}")
    return images, labels


def train(seeds, images, labels, *, epochs: int | None = None, batch_size: int = BATCH_SIZE,
          learning_rate: float = LEARNING_RATE,
          hidden: int | None = TABLE2_HIDDEN, steps: int | None = None):
    """:func:`fit` for every seed at once, as one ``jit(vmap(fit))`` program.

    Args:
      seeds: ``[s]`` integer classifier seeds.
      images: ``[n, 28, 28]`` uint8 (or floats in [0, 1]); copied to the device once.
      labels: ``[n]`` integer classes.
      epochs, batch_size, learning_rate, hidden, steps: see :func:`fit` (give ``epochs`` or ``steps``).

    Returns:
      The parameters, every leaf with a leading seed axis ``[s, ...]``.
    """
    seeds = np.asarray(seeds)
    if seeds.ndim != 1 or len(seeds) == 0 or not np.issubdtype(seeds.dtype, np.integer):
        raise ValueError(f"seeds must be a non-empty 1-D sequence of integers, got {seeds!r}")
    if (epochs is None) == (steps is None):
        raise ValueError(f"give epochs or steps, not both or neither (got epochs={epochs}, steps={steps})")
    budget = epochs if steps is None else steps
    if budget < 1 or batch_size < 1:
        raise ValueError(f"epochs (or steps) and batch_size must be >= 1, got {budget}, {batch_size}")
    images, labels = _check_data(images, labels)
    program = _trainer(None if epochs is None else int(epochs), int(batch_size), float(learning_rate), hidden,
                       None if steps is None else int(steps))
    return program(jnp.asarray(seeds, jnp.int32), jnp.asarray(images), jnp.asarray(labels))


@functools.lru_cache(maxsize=None)
def _trainer(epochs, batch_size, learning_rate, hidden, steps):
    """``jit(vmap(fit))`` for one recipe, kept: a second call with the same shapes does not recompile."""
    one = functools.partial(fit, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                            hidden=hidden, steps=steps)
    return jax.jit(jax.vmap(one, in_axes=(0, None, None)))


# --------------------------------------------------------------------------- evaluation


def _hidden_of(params) -> int | None:
    p = params["params"]
    return int(p["hidden"]["kernel"].shape[-1]) if "hidden" in p else None


def _is_stacked(params) -> bool:
    return np.ndim(params["params"]["conv1"]["kernel"]) == 5


@functools.partial(jax.jit, static_argnames=("hidden", "features"))
def _apply_stacked(params, images, *, hidden, features):
    """One network after the other (``lax.map`` over the seed axis), each with ``lax`` convolutions."""
    model = CNN(hidden, im2col=False)
    x = _to_float(images)
    return lax.map(lambda p: model.apply(p, x, features=features), params)


def _outputs(params, images, *, features: bool) -> np.ndarray:
    """Logits or features of ``images`` ``[n, ...]``: ``[s, n, k]`` for stacked params, else ``[n, k]``."""
    images = _check_batch(images)
    stacked = _is_stacked(params)
    params = jax.device_put(params if stacked else jax.tree_util.tree_map(lambda a: a[None], params))
    hidden = _hidden_of(params)
    n = len(images)
    chunk = min(n, _EVAL_CHUNK)
    out = []
    for start in range(0, n, chunk):
        x = images[start:start + chunk]
        if len(x) < chunk:
            x = np.concatenate([x, np.zeros((chunk - len(x),) + x.shape[1:], x.dtype)])
        y = _apply_stacked(params, x, hidden=hidden, features=features)
        out.append(np.asarray(y)[:, : min(chunk, n - start)])
    out = np.concatenate(out, axis=1)
    return out if stacked else out[0]


def logits(params, images) -> np.ndarray:
    """Class logits, float32 ``[s, n, 10]`` for params stacked over seeds (:func:`train`), else ``[n, 10]``.

    One compiled program per chunk of 512 images (the last one zero-padded)
    runs the seeds one after the other (``lax.map``, not ``vmap``: batched
    kernels would make grouped convolutions or the im2col products, both ~3x
    slower on CPU), so memory does not grow with ``n`` or ``s`` beyond the
    ``[s, n, 10]`` result. 10,000 images x 30 seeds: ~50 s on 2 CPU cores.
    """
    return _outputs(params, images, features=False)


def features(params, images) -> np.ndarray:
    """Penultimate activations (see :class:`CNN`), float32 ``[s, n, d]`` or ``[n, d]``, as :func:`logits`.

    With :func:`feature_params` they are the 128-d FID features. With
    ``hidden=None`` they are 3,136-d: 30 seeds x 10,000 images are then 3.8 GB.
    """
    return _outputs(params, images, features=True)


def accuracy(params, images, labels) -> np.ndarray:
    """Fraction of ``images`` classified as ``labels``: float64 ``[s]`` for stacked params, else 0-d."""
    labels = np.asarray(labels)
    pred = np.argmax(logits(params, images), axis=-1)
    if labels.shape != pred.shape[-1:]:
        raise ValueError(f"labels must be [n] = {pred.shape[-1:]}, got shape {labels.shape}")
    return np.mean(pred == labels, axis=-1, dtype=np.float64)


# --------------------------------------------------------------------------- the FID network


def feature_cache_path(dataset: str, *, cache_dir=None, train_size: int | None = None,
                       epochs: int = FEATURE_EPOCHS, batch_size: int = BATCH_SIZE,
                       learning_rate: float = LEARNING_RATE) -> pathlib.Path:
    """Where :func:`feature_params` keeps its network: ``<cache>/fid/<dataset>-cnn-<version>-<recipe>.msgpack``.

    The name holds :data:`FEATURE_RECIPE_VERSION` and every recipe argument.
    """
    root = pathlib.Path(cache_dir if cache_dir is not None else data_lib.default_cache_dir()).expanduser()
    size = "all" if train_size is None else str(int(train_size))
    name = (f"{dataset}-cnn-{FEATURE_RECIPE_VERSION}-h{FEATURE_HIDDEN}-s{FEATURE_SEED}-n{size}-e{int(epochs)}"
            f"-b{int(batch_size)}-lr{float(learning_rate)!r}.msgpack")
    return root / "fid" / name


def feature_params(dataset: str, data_dir=None, *, cache_dir=None, train_size: int | None = None,
                   epochs: int = FEATURE_EPOCHS, batch_size: int = BATCH_SIZE, learning_rate: float = LEARNING_RATE):
    """The FID feature network of ``dataset``: one :class:`CNN` (hidden 128, seed 0), trained once and cached.

    The first call trains it on the first ``train_size`` images of the
    training split (None: all 60,000) and writes its parameters atomically to
    :func:`feature_cache_path`, whose name holds the recipe version and every
    argument of the recipe, so a changed recipe never reads stale weights.
    Later calls read that file (a damaged one is retrained and replaced).
    The default recipe (3 epochs of 60,000) reaches 98.8% test accuracy on
    MNIST and 90.4% on Fashion-MNIST, in ~1.5 min on 2 CPU cores.

    Args:
      dataset: "mnist" or "fashion_mnist".
      data_dir: the IDX folder, as for :func:`jaxwvae.data.load`.
      cache_dir: cache root (None: ``jaxwvae.data.default_cache_dir()``); also the data cache.
      train_size, epochs, batch_size, learning_rate: the recipe (reduce them in tests).

    Returns:
      Single (unstacked) params as NumPy arrays, for :func:`features`.
    """
    if dataset not in data_lib.DATASETS:
        raise DataError(f"unknown dataset {dataset!r}; valid: {', '.join(data_lib.DATASETS)}")
    recipe = dict(version=FEATURE_RECIPE_VERSION, dataset=dataset, hidden=FEATURE_HIDDEN, seed=FEATURE_SEED,
                  train_size=-1 if train_size is None else int(train_size), epochs=int(epochs),
                  batch_size=int(batch_size), learning_rate=float(learning_rate))
    path = feature_cache_path(dataset, cache_dir=cache_dir, train_size=train_size, epochs=epochs,
                              batch_size=batch_size, learning_rate=learning_rate)
    if path.is_file():
        try:
            stored = serialization.msgpack_restore(path.read_bytes())
            if stored["recipe"] == recipe:
                return stored["params"]
            _LOG.warning("%s holds another recipe (%s); retraining", path, stored["recipe"])
        except Exception as e:  # a damaged file: msgpack raises many types
            _LOG.warning("cannot read %s (%s: %s); retraining", path, type(e).__name__, e)
    images, labels = data_lib.load(dataset, "train", data_dir, cache_dir=cache_dir)
    if train_size is not None:
        images, labels = images[:train_size], labels[:train_size]
    _LOG.info("training the FID feature CNN for %s on %d images, %d epochs", dataset, len(images), epochs)
    stacked = train([FEATURE_SEED], images, labels, epochs=epochs, batch_size=batch_size,
                    learning_rate=learning_rate, hidden=FEATURE_HIDDEN)
    params = jax.tree_util.tree_map(lambda a: np.asarray(a[0]), stacked)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, serialization.msgpack_serialize({"recipe": recipe, "params": params}))
    return params
