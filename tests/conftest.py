"""Shared fixtures. Tests run on CPU with JAX's optimisations mostly off (fast compiles)."""

import os
import pathlib

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_numpy_rank_promotion", "raise")
jax.config.update("jax_disable_most_optimizations", True)

REPO = pathlib.Path(__file__).resolve().parents[1]


def _find_data_dir() -> pathlib.Path:
    """The IDX folders (mnist/, fashion_mnist/) the tests read: $JAXWVAE_TEST_DATA or ../shared/data."""
    candidates = [os.environ.get("JAXWVAE_TEST_DATA"), REPO.parent / "shared" / "data"]
    for c in candidates:
        if c and (pathlib.Path(c) / "mnist" / "train-labels-idx1-ubyte.gz").exists():
            return pathlib.Path(c)
    raise RuntimeError(
        "test data not found: set JAXWVAE_TEST_DATA to a folder holding mnist/ and fashion_mnist/ "
        "IDX files (the project's ../shared/data)"
    )


@pytest.fixture(scope="session")
def data_dir() -> pathlib.Path:
    return _find_data_dir()


@pytest.fixture
def key():
    return jax.random.key(0)
