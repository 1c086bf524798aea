"""PBT's fid fitness: each replica's FID against the validation images, grouped or not, deterministic."""

import jax
import jax.numpy as jnp
import numpy as np

from jaxwvae.core.models import VAE
from jaxwvae.evaluation import fid, fid_fitness, generate

PROJECTION = np.random.default_rng(0).normal(size=(784, 12))


def features(images_u8):
    """A stand-in feature network: a fixed random projection of the pixels (any function of the images works)."""
    return (np.asarray(images_u8, np.float64).reshape(len(images_u8), -1) / 255.0) @ PROJECTION


def test_each_replicas_fid_is_its_own_samples_against_the_validation_set(monkeypatch):
    model = VAE((16,), 4, 784)
    params = jax.vmap(lambda k: model.init(k, jnp.zeros((1, 784)), k))(jax.random.split(jax.random.key(0), 3))
    validation = np.random.default_rng(1).integers(0, 256, size=(200, 784), dtype=np.uint8)
    seeds = np.array([5, 6, 7])
    got = fid_fitness.validation_fid(model, validation, features, samples=150)(params, seeds)
    reference = fid.feature_stats(features(validation))
    images = generate.to_uint8(generate.sample_prior(model, params, seeds, 150))
    expected = [fid.frechet_distance(*fid.feature_stats(features(one)), *reference) for one in images]
    np.testing.assert_allclose(got, expected, rtol=1e-12)  # the same float64 computation
    assert len(set(np.round(got, 6))) == 3  # three different generators, three different distances
    monkeypatch.setattr(fid_fitness, "GROUP", 2)  # groups of 2 replicas: the same numbers
    np.testing.assert_array_equal(fid_fitness.validation_fid(model, validation, features, samples=150)(params, seeds),
                                  got)
