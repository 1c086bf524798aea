"""The memory estimate made before compiling, against what XLA reports after."""

import jax
import numpy as np
import pytest

from jaxwvae import config as config_lib
from jaxwvae import memory, sweep
from jaxwvae.errors import UserError


def test_param_count_matches_the_model():
    config = config_lib.paper_mnist(seeds=(0,), lambda_rule="fixed").resolved()
    engine = sweep.Engine(config, sweep.make_plan(config, 1000, 1), 784)
    params = engine.init_states().params
    n = sum(x.size for x in jax.tree_util.tree_leaves(params))
    assert memory.param_count(784, (512, 256), 20) == n


@pytest.mark.parametrize("seeds", [2, 6])
def test_estimate_is_within_25_percent_of_the_compiled_size(seeds):
    config = config_lib.paper_mnist(seeds=tuple(range(seeds)), lambda_rule="fixed").resolved()
    plan = sweep.make_plan(config, 3000, 1)
    engine = sweep.Engine(config, plan, 784)
    states = engine.init_states()
    engine.compile(states, engine.put_images(np.zeros((3000, 784), np.uint8)))
    compiled = sweep.compiled_bytes(engine.compiled_chunk.memory_analysis())
    estimate = memory.estimate(config, 3000, 784, seeds)
    assert 0.75 < estimate / compiled < 1.25, (estimate, compiled)


def test_a_sweep_that_cannot_fit_says_how_many_seeds_do():
    config = config_lib.paper_mnist().resolved()
    per = memory.replica_bytes(784, (512, 256), 20, 100, 60000)
    limit = int((60000 * 784 + 100.5 * per) / memory.SAFETY)  # room for 100 replicas on one device
    with pytest.raises(UserError, match=r"--seeds 1000: .* at most 100 seeds fit on 1 device\(s\)"):
        memory.check_fits(config, 60000, 784, 1000, limit=limit)
    assert memory.check_fits(config, 60000, 784, 100, limit=limit) > 0
