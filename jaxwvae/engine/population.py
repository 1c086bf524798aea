"""Population-based training inside the run: the fitness on the validation images and the compiled round.

Every ``pbt_every`` steps (:attr:`jaxwvae.engine.plan.Plan.pbt_steps`) the loop asks
:meth:`Population.fitness` for each replica's validation fitness (lower is better) and runs
:meth:`Population.round`, one compiled function over the stacked, sharded states: truncation
selection within each population, a gather of the whole replica state (parameters, Adam's
moments, λ, the λ rule's state, every per-replica hyperparameter) and the perturbation of the
evolving fields (:mod:`jaxwvae.core.pbt`, :mod:`jaxwvae.config.pbt`). Parameters never leave the
devices. A diverged member's fitness is NaN, the worst of its population: it is replaced at the
round, and the donor's healthy ``diverged_step`` lifts its freeze.

Both calls are compiled on abstract states when the run is built, before any state exists, and
:attr:`Population.bytes_per_device` is XLA's figure of the larger one, for the memory check
(:func:`jaxwvae.devices.memory.with_pbt`). The ``fid`` fitness runs outside these calls, a group of
replicas at a time (:mod:`jaxwvae.evaluation.fid_fitness`), and is not counted.

Keys: population ``j``'s draws come from its seed's key (``PRNGKey(seed_j)``, stream
``PBT_STREAM``, the round's index), so a seed's populations do not depend on which other seeds
share the sweep, and a resumed run draws the same.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxwvae.config import SweepConfig
from jaxwvae.config import pbt as pbt_config
from jaxwvae.core import pbt
from jaxwvae.devices import distributed, memory
from jaxwvae.engine.program import Program
from jaxwvae.replica.state import hyperparameter, with_hyperparameter

# A fitness the caller supplies (``--pbt-fitness fid``): (stacked params, seed per replica) -> [replicas].
FitnessFn = Callable[[object, np.ndarray], np.ndarray]


def round_names(fields) -> list[str]:
    """The per-round columns a run keeps: ``pbt_fitness``, ``pbt_donor``, each field before and after."""
    return ["pbt_fitness", "pbt_donor", *(f"pbt_before_{f}" for f in fields), *(f"pbt_{f}" for f in fields)]


def _round(states, fitness, round_index, *, seeds, members, fields: tuple, specs: dict, fraction: float):
    """One round over the stacked states: select within each population, copy whole states, perturb the fields."""
    healthy = states.diverged_step < 0
    fitness = jnp.where(healthy & jnp.isfinite(fitness), fitness, jnp.nan)
    select_keys, explore_keys = pbt.round_keys(jax.vmap(jax.random.PRNGKey)(seeds), round_index)
    donor, replaced = pbt.select_donors(select_keys, fitness, members, fraction=fraction)
    before = {f: hyperparameter(states, f) for f in fields}
    states = pbt.exploit(states, donor)
    values = {f: hyperparameter(states, f) for f in fields}
    keys = pbt.member_keys(explore_keys, members, fitness.shape[0])
    after = pbt.explore_fields(keys, values, replaced, specs)
    for f in fields:
        states = with_hyperparameter(states, f, after[f])
    record = {"pbt_fitness": fitness, "pbt_donor": pbt.donor_record(donor, replaced).astype(jnp.float32),
              **{f"pbt_before_{f}": before[f] for f in fields}, **{f"pbt_{f}": after[f] for f in fields}}
    return states, record


@dataclasses.dataclass(frozen=True, eq=False)
class Population:
    """The populations of one run, their fitness and their compiled round."""

    config: SweepConfig
    program: Program
    validation_u8: np.ndarray
    members: np.ndarray  # [populations, members] replica indices (core.pbt.seed_populations)
    fields: tuple[str, ...]  # the evolving fields, in the order their draws are keyed
    external: FitnessFn | None  # the fid fitness, from the evaluation layer
    compiled_round: Callable = dataclasses.field(repr=False)  # (states, fitness, k) -> (states, record)
    evaluate: Callable | None = dataclasses.field(repr=False)  # (states, images) -> metrics; None for fid
    bytes_per_device: int | None = None  # XLA's figure of the larger of the round and the evaluation

    @classmethod
    def build(cls, config: SweepConfig, program: Program, validation_u8, fitness_fn: FitnessFn | None = None):
        """The run's populations, their round and evaluation compiled on ``program``'s abstract states.

        ``fitness_fn`` is required for ``pbt_fitness='fid'`` (and used only then).
        """
        if config.pbt_fitness == "fid" and fitness_fn is None:
            raise ValueError("pbt_fitness='fid' needs the fitness function of jaxwvae.evaluation.fid_fitness")
        members = pbt.seed_populations(len(config.grid), len(config.seeds))
        fields = pbt_config.evolving_fields(config)
        specs = {}
        for f in fields:
            low, high = pbt_config.BOUNDS[f]
            choices = pbt_config.choices(config, f)
            specs[f] = {"low": low, "high": high, "resample": config.pbt_resample,
                        **({"choices": np.asarray(choices, np.float32)} if choices else {})}
        fn = jax.jit(lambda states, fitness, k: _round(
            states, fitness, k, seeds=jnp.asarray(config.seeds, jnp.int32), members=members, fields=fields,
            specs=specs, fraction=config.pbt_fraction), donate_argnums=0,
            out_shardings=program.sharded)  # as the calls take them: XLA alone would replicate the gather
        fitness = jax.ShapeDtypeStruct((program.plan.padded,), jnp.float32, sharding=program.sharded)
        compiled = fn.lower(program.abstract_states, fitness, jax.ShapeDtypeStruct((), jnp.int32)).compile()
        sizes = [memory.compiled_bytes(compiled.memory_analysis())]
        validation_u8 = np.asarray(validation_u8)
        evaluate = None
        if config.pbt_fitness != "fid":
            evaluate, size = program.evaluation(len(validation_u8), validation_u8.shape[1])
            sizes.append(size)
        sizes = [v for v in sizes if v is not None]
        return cls(config, program, validation_u8, members, fields, fitness_fn if evaluate is None else None,
                   compiled, evaluate, max(sizes) if sizes else None)

    def fitness(self, states) -> np.ndarray:
        """Each replica's validation fitness, float32 ``[padded replicas]``: lower is better, NaN if none."""
        if self.external is not None:
            values = self.external(states.params, self.program.table["seed"])
        else:
            metrics = self.evaluate(states, self.validation_u8)
            values = metrics["rec"] + (metrics["kl"] if self.config.pbt_fitness == "elbo" else 0.0)
        return np.asarray(values, np.float32)

    def round(self, states, round_index: int):
        """``(states, record)`` after round ``round_index``; ``record`` maps :func:`round_names` to host arrays."""
        fitness = distributed.put(self.fitness(states), self.program.sharded)
        states, record = self.compiled_round(states, fitness, jnp.int32(round_index))
        return states, distributed.to_host(record)

    def settings(self) -> dict:
        """The ``pbt`` block's settings (results.json)."""
        return {"every": self.config.pbt_every, "fitness": self.config.pbt_fitness,
                "fraction": self.config.pbt_fraction, "resample": self.config.pbt_resample,
                "fields": list(self.fields), "validation_size": len(self.validation_u8),
                "populations": int(self.members.shape[0]), "members": int(self.members.shape[1]),
                "truncation": pbt.truncation_size(int(self.members.shape[1]), self.config.pbt_fraction),
                "bounds": {f: [_num(v) for v in pbt_config.BOUNDS[f]] for f in self.fields}}


def _num(v: float):
    return v if math.isfinite(v) else None


def population_of(config: SweepConfig, replicas: int) -> np.ndarray:
    """Each real replica's population (its seed's index), point-major layout."""
    return np.tile(np.arange(len(config.seeds)), max(1, len(config.grid)))[:replicas]

