"""The shape of a run before anything is compiled: its data splits and how its steps fall into calls."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from jaxwvae import data
from jaxwvae.config import SweepConfig, grid
from jaxwvae.errors import UserError
from jaxwvae.forecast.host import host_lambda


def largest_divisor_at_most(n: int, cap: int) -> int:
    """The largest divisor of ``n`` that is ``<= cap`` (at least 1)."""
    return max(d for d in range(1, min(n, cap) + 1) if n % d == 0)


@dataclasses.dataclass(frozen=True)
class Plan:
    """The shape of a run, derived from its config and data."""

    n_train: int
    steps_per_epoch: int
    total_steps: int
    chunk: int  # steps per compiled call
    replicas: int  # real replicas: grid points x seeds
    padded: int  # replicas after padding to a multiple of the device count
    remainder: int  # steps of the epoch's last, shorter call (0: the chunk divides the epoch)
    host_lambda: bool  # λ moves on the host (jaxwvae.forecast.host.host_lambda): one step per call
    pbt_every: int = 0  # steps between PBT rounds (0: none); the chunk divides it, so rounds end calls

    @property
    def pbt_steps(self) -> tuple[int, ...]:
        """The steps after which a PBT round runs: every ``pbt_every``, before the last step."""
        return tuple(range(self.pbt_every, self.total_steps, self.pbt_every)) if self.pbt_every else ()

    def calls(self, first_batch: int):
        """``(first batch, steps)`` of the calls from ``first_batch`` to the end of an epoch."""
        return [(b, min(self.chunk, self.steps_per_epoch - b))
                for b in range(first_batch, self.steps_per_epoch, self.chunk)]


def make_plan(config: SweepConfig, n_train: int, n_devices: int) -> Plan:
    """The plan of ``config`` on ``n_train`` images and ``n_devices`` devices."""
    steps_per_epoch = n_train // config.batch_size
    on_host = host_lambda(config)
    cap = 1 if on_host else min(config.steps_per_call, steps_per_epoch)  # λ from the host: step by step
    if steps_per_epoch < 1:
        raise UserError(f"--batch-size {config.batch_size}: larger than the {n_train} training images; "
                        f"pass at most {n_train}")
    remainder = 0
    total = steps_per_epoch * config.epochs
    if config.pbt_every >= total:
        raise UserError(f"--pbt-every {config.pbt_every}: the run has only {total} steps, so no PBT round "
                        f"would happen (rounds come before the last step); pass at most {total - 1}")
    if config.pbt_every:  # every round falls at the end of a call
        chunk = largest_divisor_at_most(math.gcd(steps_per_epoch, config.pbt_every), cap)
    else:
        chunk = largest_divisor_at_most(steps_per_epoch, cap)
        if 2 * chunk <= cap:  # no divisor near the cap (e.g. 599 steps): full chunks and one shorter call
            chunk, remainder = cap, steps_per_epoch % cap
    replicas = grid.replica_count(config)
    padded = -(-replicas // n_devices) * n_devices
    return Plan(n_train, steps_per_epoch, steps_per_epoch * config.epochs, chunk, replicas, padded,
                remainder=remainder, host_lambda=on_host, pbt_every=config.pbt_every)


def load_split(config: SweepConfig, split: str) -> np.ndarray:
    """uint8 images ``[n, 784]`` of ``split``: ``train``, ``validation`` or ``test``.

    ``validation`` is the last ``validation_size`` images of the training split, the same for every
    replica and every ``train_size``; ``train`` is the first ``train_size`` (default: all) of the
    images before them; ``test`` the first ``test_size`` of the test split.
    """
    images, _ = data.load(config.dataset, "test" if split == "test" else "train", config.data_dir)
    images = images.reshape(len(images), -1)
    if split == "test":
        size, flag = config.test_size, "--test-size"
    else:
        held = config.validation_size
        if held >= len(images):
            raise UserError(f"--validation-size {held}: the training split has only {len(images)} images; "
                            f"hold out fewer")
        if split == "validation":
            return images[len(images) - held:]
        images, size, flag = images[:len(images) - held], config.train_size, "--train-size"
    if size is not None:
        if size > len(images):
            rest = f" after the {config.validation_size} validation images" if split == "train" and \
                config.validation_size else ""
            raise UserError(f"{flag} {size}: the {split} split has only {len(images)} images{rest}; "
                            f"pass at most that")
        images = images[:size]
    return images
