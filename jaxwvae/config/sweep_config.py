"""Sweep configuration: one frozen dataclass with the paper's defaults, presets and validation."""

from __future__ import annotations

import dataclasses
import json
import math
import typing
from typing import NamedTuple

from jaxwvae import data
from jaxwvae.core import names
from jaxwvae.errors import ConfigError


class LamInit(NamedTuple):
    """Initial λ per replica: ``low == high`` for one value, else uniform on [low, high)."""

    low: float
    high: float

    @classmethod
    def parse(cls, text: str) -> LamInit:
        """``"1.0"`` or ``"uniform:LOW:HIGH"``; a ConfigError says what is wrong."""
        fix = "pass --lam 1.0 or --lam uniform:0:20"
        parts = str(text).split(":")
        try:
            if len(parts) == 1:
                low = high = float(parts[0])
            elif len(parts) == 3 and parts[0] == "uniform":
                low, high = float(parts[1]), float(parts[2])
            else:
                raise ValueError
        except ValueError:
            raise ConfigError(f"--lam {text!r} is not a number or uniform:LOW:HIGH; {fix}") from None
        if not (low >= 0 and high >= 0):
            raise ConfigError(f"--lam {text!r} is negative; λ weighs a distance and must be >= 0; {fix}")
        if high < low:
            raise ConfigError(f"--lam {text!r} has LOW > HIGH; write the range as uniform:{high:g}:{low:g}")
        if not all(map(math.isfinite, (low, high))):
            raise ConfigError(f"--lam {text!r} is not finite; {fix}")
        return cls(low, high)

    def __str__(self) -> str:
        return f"{self.low:g}" if self.low == self.high else f"uniform:{self.low:g}:{self.high:g}"


def _field(default, help: str, *, choices: tuple[str, ...] = (), per_replica: bool = False):
    """A config field whose meaning (``help``, also the flag's ``--help``) and valid names live with it.

    ``per_replica``: the value lives in each replica's state under the same name, so a grid
    (:mod:`jaxwvae.config.grid`) may vary it between the replicas of one program.
    """
    return dataclasses.field(default=default, metadata={"help": help, "choices": choices,
                                                        "per_replica": per_replica})


@dataclasses.dataclass(frozen=True)
class SweepConfig:
    """Everything a sweep needs; the defaults are the paper's MNIST setting.

    Section 4's data, model and training (MNIST, the 3-layer MLP, batch 100, 15
    epochs, 30 seeds) with Section 3's adaptive λ as printed (λ₀ = 1, c = 0.05):
    the reading ``section3`` of :mod:`jaxwvae.config.readings`.

    Each field's ``metadata["help"]`` says what it means (the command line's ``--help`` reads it:
    ``--field-name`` sets ``field_name``); ``metadata["choices"]`` lists the names a field may take,
    from the registry that owns them (:mod:`jaxwvae.data`, :mod:`jaxwvae.core.names`).

    Fields left ``None`` are filled by :meth:`resolved` from the objective:
    λ from its registry default (1 for ``w`` and ``kl``, 10 for ``wae``), the
    λ rule ``arima`` for ``w`` (the paper's adaptive schedule), ``fixed`` otherwise.
    The optimiser is Adam at ``learning_rate`` (the paper names none). The λ rule's
    readings (``lambda_*``) are those of :mod:`jaxwvae.core.lambda_rule`. The fields marked
    ``per_replica`` keep their names in the replica's state
    (:class:`jaxwvae.replica.state.ReplicaState`, :class:`jaxwvae.core.lambda_rule.RuleHyper`).

    ``grid`` holds grid points, each a tuple of ``(field, value)`` pairs
    (``jaxwvae.config.grid``); the replicas are every point times every seed, all in
    one program. Empty: one point, the config itself.
    """

    dataset: str = _field("mnist", "the dataset", choices=data.DATASETS)
    objective: str = _field("w", "w (ELBO_W), kl (ELBO_KL) or wae (WAE-MMD)", choices=names.OBJECTIVES)
    seeds: tuple[int, ...] = _field(tuple(range(30)), "train seeds 0..N-1")
    lam: str | None = _field(None, "initial λ: a number, or uniform:LOW:HIGH drawn per replica "
                                   "(default: the objective's, 1 for w and kl, 10 for wae)", per_replica=True)
    lambda_rule: str | None = _field(None, "arima: the paper's adaptive λ (default for w); fixed: λ stays "
                                           "(default otherwise); pi: ControlVAE's PI controller of --pi-quantity; "
                                           "geco: GECO's reconstruction constraint", choices=names.LAMBDA_RULES,
                                     per_replica=True)
    forecaster: str = _field("device", "where the adaptive rule forecasts T: device (in the compiled step), "
                                       "host (NumPy) or statsmodels (the reference ARIMA)",
                             choices=names.FORECASTERS)
    arima_order: tuple[int, int, int] = _field((1, 1, 0), "p,d,q of the T forecaster")
    lambda_c: float = _field(0.05, "step size c of the λ rule", per_replica=True)
    lambda_min: float = _field(0.0, "lower bound of the adaptive λ", per_replica=True)
    lambda_max: float | None = _field(None, "upper bound of the adaptive λ (default: none)", per_replica=True)
    lambda_t_scale: float = _field(1.0, "1: T inside the rule's β; 2: the paper's printed 2T", per_replica=True)
    lambda_sign_zero: float = _field(1.0, "sign(0) in the rule's β: 1, 0 or -1", per_replica=True)
    pi_quantity: str = _field("kl", "pi: the quantity it steers: kl, w2 or t_gap", choices=names.PI_QUANTITIES)
    pi_target: float | None = _field(None, "pi: the set point of --pi-quantity, nats per image (required for pi)",
                                     per_replica=True)
    pi_kp: float = _field(0.01, "pi: the proportional gain (ControlVAE's value)", per_replica=True)
    pi_ki: float = _field(1e-4, "pi: the integral gain (ControlVAE's value)", per_replica=True)
    geco_kappa: float | None = _field(None, "geco: the reconstruction bound κ, nats per image (required for geco)",
                                      per_replica=True)
    geco_alpha: float = _field(0.99, "geco: the moving average's α (GECO's value)", per_replica=True)
    geco_step: float = _field(1e-3, "geco: the multiplier's step ν in λ <- λ exp(-ν Ĉ)", per_replica=True)
    refit_every: int = _field(1, "statsmodels: refit every k steps, extend between")
    epochs: int = _field(15, "epochs")
    batch_size: int = _field(100, "batch size")
    train_size: int | None = _field(None, "use the first N training images (default: all)")
    test_size: int | None = _field(None, "evaluate on the first N test images (default: all)")
    latent_dim: int = _field(20, "latent size m")
    hidden: tuple[int, ...] = _field((512, 256), "encoder widths")
    sigma_max: float | None = _field(None, "cap every σ of the encoder at this value; 1 is the paper's "
                                           "adjusted ReLU (default: none)", per_replica=True)
    learning_rate: float = _field(1e-3, "Adam step size", per_replica=True)
    data_dir: str | None = _field(None, "folder with the IDX files (else $JAXWVAE_DATA_DIR, cache, download)")
    steps_per_call: int = _field(100, "steps per compiled call")
    replica_loop: str = _field("auto", "vmap: batch the replicas (GPU/TPU); map: one after another in the same "
                                       "program (CPU); auto: map on a single CPU device, else vmap",
                               choices=names.REPLICA_LOOPS)
    checkpoint_every: int = _field(600, "steps between checkpoints; 0: none")
    validation_size: int = _field(0, "hold the last N training images out of training, for PBT's fitness "
                                     "(the same split for every replica)")
    pbt_every: int = _field(0, "population-based training: steps between rounds; 0: none. The replicas "
                               "of one seed across the grid's points form one population")
    pbt_fitness: str = _field("elbo", "PBT's fitness on the validation images, lower is better: elbo "
                                      "(rec + KL), rec, or fid (prior samples, Table 1's CNN features)",
                              choices=names.PBT_FITNESS)
    pbt_fraction: float = _field(0.25, "PBT: the bottom q of each population copies a member of its top q")
    pbt_resample: float = _field(0.25, "PBT: probability that an evolving value is redrawn from the grid's "
                                       "values instead of multiplied by 0.8 or 1.2")
    pbt_fields: tuple[str, ...] = _field((), "PBT: the fields it evolves, comma-separated (default: the "
                                             "grid's numeric fields)")
    grid: tuple[tuple[tuple[str, object], ...], ...] = _field(
        (), "vary a field between replicas (repeatable; replicas = product of the lists x seeds), "
            "e.g. --grid lambda_c=0.05,0.005 --grid lam=1,uniform:0:20")

    # ------------------------------------------------------------------ derived values
    def resolved(self) -> SweepConfig:
        """The same config with every ``None`` default filled in (validated first)."""
        self.validate()
        rule = self.lambda_rule or ("arima" if self.objective == "w" else "fixed")
        out = dataclasses.replace(self, lam=str(self.lam_init), lambda_rule=rule)
        out.validate()
        return out

    @property
    def lam_init(self) -> LamInit:
        """λ₀: ``lam``, or the objective's default weight when ``lam`` is None (as :meth:`resolved` fills it)."""
        if self.lam is not None:
            return LamInit.parse(self.lam)
        from jaxwvae.core import objectives

        return LamInit.parse(f"{objectives.get(self.objective).default_lam:g}")

    def to_json(self) -> dict:
        """A JSON-ready dict; grid points become ``{field: value}`` objects."""
        d = json.loads(json.dumps(dataclasses.asdict(self)))
        d["grid"] = [dict(point) for point in self.grid]
        return d

    @classmethod
    def from_json(cls, d: dict) -> SweepConfig:
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - fields
        if unknown:
            raise ConfigError(f"config has unknown fields {sorted(unknown)}; it was written by another version")
        d = dict(d)
        hints = typing.get_type_hints(cls)
        for name in d:  # JSON lists back to the tuples the annotations name (the grid's points below)
            if name != "grid" and typing.get_origin(hints[name]) is tuple and isinstance(d[name], list):
                d[name] = tuple(d[name])
        if "grid" in d:
            d["grid"] = tuple(tuple((k, v) for k, v in point.items()) for point in d["grid"])
        return cls(**d)

    # ------------------------------------------------------------------ validation
    def validate(self) -> None:
        """Raise ConfigError naming the flag, the bad value and the fix."""

        def bad(field: str, problem: str, fix: str):
            flag = "--" + field.replace("_", "-")
            value = getattr(self, field)
            raise ConfigError(f"{flag} {_show(value)}: {problem}; {fix}")

        for f in dataclasses.fields(self):  # the fields that name a registry entry
            choices, value = f.metadata["choices"], getattr(self, f.name)
            if choices and value is not None and value not in choices:
                bad(f.name, f"unknown {f.name.replace('_', ' ')}", f"choose one of {', '.join(choices)}")
        if len(self.seeds) == 0:
            bad("seeds", "a sweep needs at least one seed", "pass --seeds N with N >= 1 or --seed-list 0,1,2")
        if any((not isinstance(s, int)) or s < 0 or s >= 2**31 for s in self.seeds):
            bad("seeds", "seeds must be integers in [0, 2**31)", "pass --seed-list 0,1,2")
        if len(set(self.seeds)) != len(self.seeds):
            bad("seeds", "a seed appears twice", "list each seed once")
        if self.lam is not None:
            LamInit.parse(self.lam)
        if self.lambda_rule == "arima" and self.objective != "w":
            bad("lambda_rule", f"the adaptive rule weighs W2 and needs --objective w, not {self.objective}",
                "pass --lambda-rule fixed")
        if self.lambda_rule in ("pi", "geco") and self.forecaster != "device":
            bad("forecaster", f"the {self.lambda_rule} rule runs in the compiled step", "pass --forecaster device")
        if self.lambda_rule == "pi" and (self.pi_target is None or not math.isfinite(self.pi_target)):
            bad("pi_target", "the pi rule needs a set point", "pass e.g. --pi-target 25 (nats per image)")
        if self.lambda_rule == "geco" and (self.geco_kappa is None or not math.isfinite(self.geco_kappa)):
            bad("geco_kappa", "the geco rule needs a reconstruction bound", "pass e.g. --geco-kappa 90 (nats per image)")
        for name in ("pi_kp", "pi_ki", "geco_step"):
            if not (getattr(self, name) >= 0 and math.isfinite(getattr(self, name))):
                bad(name, "must be a number >= 0", "pass e.g. the default")
        if not (0 <= self.geco_alpha < 1):
            bad("geco_alpha", "a moving average's α must be in [0, 1)", "pass e.g. --geco-alpha 0.99")
        order = self.arima_order
        if len(order) != 3 or any((not isinstance(v, int)) or v < 0 for v in order) or order[0] + order[2] > 10 or order[1] > 2:
            bad("arima_order", "not an ARIMA order p,d,q of small non-negative integers (p + q <= 10, d <= 2)",
                "pass e.g. --arima-order 1,1,0")
        if self.forecaster in ("device", "host") and order[2] != 0:
            bad("arima_order", f"the {self.forecaster} forecaster fits ARIMA(p, d, 0) only",
                "use q = 0, or --forecaster statsmodels for moving-average terms")
        if self.forecaster == "statsmodels" and sum(order) == 0:
            bad("arima_order", "statsmodels needs at least one parameter", "pass e.g. --arima-order 1,1,0")
        if not (self.lambda_c > 0 and math.isfinite(self.lambda_c)):
            bad("lambda_c", "c must be a positive number", "pass e.g. --lambda-c 0.05 (the paper's value)")
        if not (self.lambda_min >= 0 and math.isfinite(self.lambda_min)):
            bad("lambda_min", "must be a number >= 0", "pass e.g. --lambda-min 0")
        if self.lambda_max is not None and not (math.isfinite(self.lambda_max) and self.lambda_max >= self.lambda_min):
            bad("lambda_max", f"must be a number >= --lambda-min {self.lambda_min:g}",
                "pass e.g. --lambda-max 20, or omit it for no upper bound")
        if self.lambda_t_scale not in (1, 2):
            bad("lambda_t_scale", "must be 1 (T inside β) or 2 (the paper's printed 2T)", "pass 1 or 2")
        if self.lambda_sign_zero not in (-1, 0, 1):
            bad("lambda_sign_zero", "sign(0) must be -1, 0 or 1", "pass 1 (the paper's prose), 0 or -1")
        if self.refit_every < 1:
            bad("refit_every", "must be >= 1", "pass --refit-every 1 to refit statsmodels every step")
        if self.epochs < 1:
            bad("epochs", "must be >= 1", "pass --epochs 15 (the paper's value)")
        if self.batch_size < 2:
            bad("batch_size", "must be >= 2", "pass --batch-size 100 (the paper's value)")
        if self.train_size is not None:
            if self.train_size < 1:
                bad("train_size", "must be >= 1", "omit it to train on the whole training split")
            if self.batch_size > self.train_size:
                bad("batch_size", f"is larger than --train-size {self.train_size}",
                    "pass a smaller --batch-size or a larger --train-size")
        if self.test_size is not None and self.test_size < 1:
            bad("test_size", "must be >= 1", "omit it to evaluate on the whole test split")
        if self.latent_dim < 1:
            bad("latent_dim", "must be >= 1", "pass e.g. --latent-dim 20")
        if not self.hidden or any(w < 1 for w in self.hidden):
            bad("hidden", "needs positive widths", "pass e.g. --hidden 512,256")
        if self.sigma_max is not None and not (self.sigma_max > 0 and math.isfinite(self.sigma_max)):
            bad("sigma_max", "must be a positive number", "pass --sigma-max 1 (the paper's adjusted ReLU), or omit it")
        if not (self.learning_rate > 0 and math.isfinite(self.learning_rate)):
            bad("learning_rate", "must be a positive number", "pass e.g. --learning-rate 1e-3")
        if self.steps_per_call < 1:
            bad("steps_per_call", "must be >= 1", "pass e.g. --steps-per-call 100")
        if self.checkpoint_every < 0:
            bad("checkpoint_every", "must be >= 0", "pass 0 to turn checkpoints off, or a number of steps")
        if self.validation_size < 0:
            bad("validation_size", "must be >= 0", "pass 0 (no validation split) or a number of images")
        if self.grid:
            from jaxwvae.config import grid

            grid.validate(self)
        if self.pbt_every or self.pbt_fields:
            from jaxwvae.config import pbt

            pbt.validate(self)


def _show(value) -> str:
    if isinstance(value, tuple):
        return ",".join(map(str, value)) if value else "(empty)"
    return repr(value) if isinstance(value, str) else str(value)


# ---------------------------------------------------------------------- presets
def paper_mnist(**overrides) -> SweepConfig:
    """The paper's MNIST sweep: 30 seeds, ELBO_W with the adaptive λ, 15 epochs, batch 100.

    Command: ``python experiments/sweep.py --seeds 30``.
    """
    return dataclasses.replace(SweepConfig(), **overrides)


def paper_fashion(**overrides) -> SweepConfig:
    """The paper's Fashion-MNIST sweep: paper_mnist on Fashion-MNIST.

    Command: ``python experiments/sweep.py --seeds 30 --dataset fashion_mnist``.
    """
    return dataclasses.replace(SweepConfig(dataset="fashion_mnist"), **overrides)


def smoke(**overrides) -> SweepConfig:
    """A tiny CPU run (2 seeds, 2,000 images, 1 epoch) for tests and a first look."""
    base = SweepConfig(seeds=(0, 1), epochs=1, train_size=2000, test_size=1000, steps_per_call=10,
                       checkpoint_every=0)
    return dataclasses.replace(base, **overrides)


def reading(name: str, **overrides) -> SweepConfig:
    """The paper's MNIST sweep with the λ of reading ``name`` (``jaxwvae.config.readings``)."""
    from jaxwvae.config.readings import READINGS

    return dataclasses.replace(SweepConfig(objective="w", **READINGS[name][1]), **overrides)


def paper_section3(**overrides) -> SweepConfig:
    """Section 3's adaptive λ as printed (λ₀ = 1, c = 0.05; the same as ``paper_mnist``)."""
    return reading("section3", **overrides)


def paper_section4(**overrides) -> SweepConfig:
    """Section 4's reading: λ fixed per seed, drawn uniformly from [0, 20]; pick the best seed by FID."""
    return reading("section4", **overrides)


def paper_adaptive_slow(**overrides) -> SweepConfig:
    """The best faithful reading in the λ study (docs/results.md): Section 3's rule with c = 0.0005 (no collapse)."""
    return reading("c0.0005", **overrides)


PRESETS = {"paper_mnist": paper_mnist, "paper_fashion": paper_fashion, "smoke": smoke,
           "paper_section3": paper_section3, "paper_section4": paper_section4,
           "paper_adaptive_slow": paper_adaptive_slow}
