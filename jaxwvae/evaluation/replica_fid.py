"""FID of every replica of a finished run: prior samples against the test images, on a chosen feature network.

The features are those of the small CNN of :func:`jaxwvae.evaluation.classifier.feature_params`
(trained once per dataset and cached), or InceptionV3's with pytorch-fid's weights
(:mod:`jaxwvae.evaluation.inception`). A run's FIDs are cached in its folder, one file per
feature network.
"""

from __future__ import annotations

import pathlib

import jax

from jaxwvae import data
from jaxwvae.config import grid
from jaxwvae.evaluation import classifier, fid, generate
from jaxwvae.runs import rundir

FID_SAMPLES = 10_000
REPLICA_GROUP = 10  # replicas decoded at once (10 x 10,000 float32 images = 314 MB)


def test_feature_stats(dataset: str, data_dir, feature_fn, n: int):
    """Mean and covariance of the features of the first ``n`` test images."""
    test_images, _ = data.load(dataset, "test", data_dir)
    return fid.feature_stats(feature_fn(test_images[:n]))


def feature_function(dataset: str, data_dir, inception_weights=None, feature_recipe: dict | None = None):
    """``(name, images_u8 [n, 28, 28] -> features [n, d])``: the CNN features, or Inception's with weights.

    ``feature_recipe`` (e.g. ``{"train_size": 2000, "epochs": 1}``) shrinks the CNN's training for tests;
    the name then records it, so FIDs of different feature networks are never mixed.
    """
    if inception_weights is not None:
        from jaxwvae.evaluation import inception

        variables = inception.load_weights(inception_weights)
        return "inception", lambda images: inception.inception_features(variables, images[..., None] / 255.0)
    recipe = feature_recipe or {}
    params = classifier.feature_params(dataset, data_dir, **recipe)
    return feature_name(None, recipe), lambda images: classifier.features(params, images)


def feature_name(inception_weights=None, feature_recipe: dict | None = None) -> str:
    """The name FIDs on these features are stored under: ``inception``, or the CNN's recipe version and changes."""
    if inception_weights is not None:
        return "inception"
    recipe = feature_recipe or {}
    return "-".join([f"cnn-{classifier.FEATURE_RECIPE_VERSION}", *(f"{k}{v}" for k, v in sorted(recipe.items()))])


class FidScorer:
    """A table's FID settings for one dataset: the features' name at once; the network and test statistics
    (which train or load the feature CNN) only when a run's FIDs are first computed."""

    def __init__(self, dataset: str, data_dir, inception_weights=None, feature_recipe: dict | None = None,
                 n: int = FID_SAMPLES):
        self.dataset, self.data_dir, self.n = dataset, data_dir, n
        self.inception_weights, self.feature_recipe = inception_weights, feature_recipe
        self.name = feature_name(inception_weights, feature_recipe)
        self._ready = None

    def __call__(self, run_dir: pathlib.Path) -> list[float]:
        """FID of every replica of the finished run in ``run_dir`` (:func:`replica_fids`)."""
        if self._ready is None:
            _, fn = feature_function(self.dataset, self.data_dir, self.inception_weights, self.feature_recipe)
            self._ready = fn, test_feature_stats(self.dataset, self.data_dir, fn, self.n)
        fn, test_stats = self._ready
        return replica_fids(run_dir, fn, self.name, test_stats, self.n)


def replica_fids(out: pathlib.Path, feature_fn, feature_name: str, test_stats, n: int = FID_SAMPLES) -> list[float]:
    """FID of ``n`` prior samples of every replica against the test images (cached in ``fid_<features>.json``)."""
    cache = out / f"fid_{feature_name}.json"
    if cache.exists():
        stored = rundir.read_json(cache)
        if stored["n"] == n:
            return [rundir.number(v) for v in stored["fid"]]  # null: a replica without a finite FID
    config, model, params = generate.load_run(out)
    replica_seeds = grid.replica_seeds(config)
    values = []
    for start in range(0, len(replica_seeds), REPLICA_GROUP):
        seeds = replica_seeds[start:start + REPLICA_GROUP]
        group = jax.tree_util.tree_map(lambda x: x[start:start + len(seeds)], params)
        images = generate.to_uint8(generate.sample_prior(model, group, seeds, n))  # vmapped over the group
        values += [fid.frechet_distance(*fid.feature_stats(feature_fn(one)), *test_stats) for one in images]
    rundir.write_json(cache, {"n": n, "features": feature_name, "seeds": replica_seeds, "fid": values})
    return values


class ValidationFidScorer:
    """FID of every replica's prior samples against the run's validation images (as many samples as images),
    on the same features as :class:`FidScorer`: what a table selects on, never the test set. Cached in the
    run folder like :func:`replica_fids` (``fid_validation-<features>.json``)."""

    def __init__(self, dataset: str, data_dir, n: int, load_validation, feature_recipe: dict | None = None):
        """``load_validation() -> uint8 [n, ...]``: the validation images, loaded when first needed."""
        self.dataset, self.data_dir, self.feature_recipe = dataset, data_dir, feature_recipe
        self.load_validation = load_validation
        self.name = "validation-" + feature_name(None, feature_recipe)
        self.n = n

    def __call__(self, run_dir: pathlib.Path) -> list[float]:
        from jaxwvae.evaluation import fid_fitness

        cache = run_dir / f"fid_{self.name}.json"
        if cache.exists() and rundir.read_json(cache)["n"] == self.n:
            return [rundir.number(v) for v in rundir.read_json(cache)["fid"]]
        _, fn = feature_function(self.dataset, self.data_dir, None, self.feature_recipe)
        config, model, params = generate.load_run(run_dir)
        seeds = grid.replica_seeds(config)
        values = fid_fitness.validation_fid(model, self.load_validation(), fn)(params, seeds).tolist()
        rundir.write_json(cache, {"n": self.n, "features": self.name, "seeds": seeds, "fid": values})
        return values
