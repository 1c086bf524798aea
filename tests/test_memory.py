"""The memory check: XLA's analysis of the chunk (and of PBT's calls) compiled on abstract arguments, before anything
is allocated."""

import jax
import numpy as np
import pytest

from jaxwvae import config as config_lib
from jaxwvae.config import grid
from jaxwvae.devices import memory
from jaxwvae.engine import sweep
from jaxwvae.engine.plan import load_split, make_plan
from jaxwvae.engine.population import Population
from jaxwvae.engine.program import Program
from jaxwvae.errors import UserError


def program_for(seeds: int, n_train: int = 3000, **changes):
    config = config_lib.paper_mnist(seeds=tuple(range(seeds)), lambda_rule="fixed", steps_per_call=5,
                                    **changes).resolved()
    return Program.compile(config, make_plan(config, n_train, 1), 784)


@pytest.mark.slow  # compiles the paper's model for a sweep
def test_compiling_on_abstract_arguments_allocates_no_state():
    program = program_for(4)
    # one device: nothing but the compiled executables exist; the states are created afterwards
    assert set(program.calls) == {5} and program.bytes_per_device > 0
    live = sum(x.nbytes for x in jax.live_arrays())
    assert live < 50_000_000, live  # 4 replicas' state is ~52 MB: it was not allocated


@pytest.mark.slow  # compiles the paper's model for a sweep
@pytest.mark.parametrize("seeds", [2, 6])
def test_compiled_bytes_cover_the_state_and_grow_with_the_replicas(seeds):
    program = program_for(seeds)
    states = program.init_states()
    state_bytes = sum(x.nbytes for x in jax.tree_util.tree_leaves(states))
    need = program.bytes_per_device
    assert need > state_bytes + 3000 * 784  # the state, the images and the step's temporaries
    assert need < 3 * state_bytes + 3000 * 784 + 20_000_000  # and not wildly more (2x state ~ temporaries)


@pytest.mark.slow  # compiles the paper's model for a sweep
def test_a_sweep_that_cannot_fit_says_how_many_replicas_do():
    need, shared = program_for(10, n_train=60000).bytes_per_device, 60000 * 784
    per = (need - shared) / 10
    limit = int((shared + 4.5 * per) / memory.SAFETY)  # room for 4 of the 10 replicas
    with pytest.raises(UserError, match=r"^10 replicas: .* at most 4 replicas fit on 1 device\(s\)"):
        memory.check_fits(need, replicas=10, shared=shared, limit=limit)
    memory.check_fits(need, replicas=10, shared=shared, limit=int(need / memory.SAFETY) + 1)  # fits: no error
    memory.check_fits(need, replicas=10, shared=shared, limit=None)  # CPU reports no limit: nothing checked


def test_grid_points_count_as_replicas():
    config = config_lib.paper_mnist(seeds=(0, 1), grid=((("lambda_c", 0.1),), (("lambda_c", 0.2),),
                                                        (("lambda_c", 0.3),)),
                                    hidden=(32,), latent_dim=4, steps_per_call=5).resolved()  # a small model
    plan = make_plan(config, 3000, 1)
    assert plan.replicas == grid.replica_count(config) == 6
    states = jax.eval_shape(Program.compile(config, plan, 784).init_states)
    assert states.params["params"]["encoder"]["Dense_0"]["kernel"].shape[0] == 6


@pytest.mark.parametrize("n_train, cap, chunk, remainder", [
    (59900, 100, 100, 99),  # 599 steps (prime): 5 calls of 100 and one of 99
    (60000, 100, 100, 0),  # 600 steps: 6 calls of 100
    (2000, 7, 5, 0),  # 20 steps: a divisor near the cap (5 of at most 7)
    (2300, 10, 10, 3),  # 23 steps (prime): 2 calls of 10 and one of 3
])
def test_plan_uses_full_chunks_and_one_remainder(n_train, cap, chunk, remainder):
    config = config_lib.paper_mnist(seeds=(0,), steps_per_call=cap).resolved()
    plan = make_plan(config, n_train, 1)
    assert (plan.chunk, plan.remainder) == (chunk, remainder)
    calls = plan.calls(0)
    assert sum(n for _, n in calls) == plan.steps_per_epoch
    assert [b for b, _ in calls] == list(np.cumsum([0] + [n for _, n in calls[:-1]]))
    assert all(n == chunk for _, n in calls[:-1])


def test_pbt_calls_count_in_the_memory_check(data_dir, tmp_path, monkeypatch):
    # 5,000 validation images (3.9 MB, an argument of the elbo fitness) against 1,000 training images: the
    # fitness, not the chunk, is the run's largest call, and a limit the chunk alone fits in is refused.
    config = config_lib.smoke(seeds=(0, 1), grid=((("lam", "0.5"),), (("lam", "2"),)), hidden=(32,), latent_dim=4,
                              train_size=1000, validation_size=5000, pbt_every=5, steps_per_call=5, lambda_rule="fixed",
                              data_dir=str(data_dir)).resolved()
    train_u8, validation_u8 = load_split(config, "train"), load_split(config, "validation")
    plan = make_plan(config, len(train_u8), 1)
    program = Program.compile(config, plan, 784)
    population = Population.build(config, program, validation_u8)
    state_bytes = sum(x.size * x.dtype.itemsize for x in jax.tree_util.tree_leaves(program.abstract_states))
    assert population.bytes_per_device >= state_bytes + validation_u8.nbytes
    resident = train_u8.nbytes + plan.padded * plan.n_train * 4
    need = memory.with_pbt(program.bytes_per_device, population.bytes_per_device, resident)
    assert need > program.bytes_per_device
    limit = int(program.bytes_per_device / memory.SAFETY) + 1  # room for the chunk, not for the fitness
    memory.check_fits(program.bytes_per_device, replicas=plan.padded, shared=train_u8.nbytes, limit=limit)
    monkeypatch.setattr(memory, "device_limit", lambda: limit)
    with pytest.raises(UserError, match=r"^4 replicas: the sweep needs"):
        sweep.run(config, tmp_path / "run", progress=False)
