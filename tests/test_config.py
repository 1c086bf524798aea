"""SweepConfig: defaults, resolution, validation messages, JSON round trip."""

import dataclasses

import pytest

from jaxwvae import config as config_lib
from jaxwvae import data
from jaxwvae.config import LamInit, SweepConfig
from jaxwvae.core import controllers, lambda_rule, names, objectives
from jaxwvae.errors import ConfigError


def test_defaults_are_the_papers_mnist_setting():
    c = SweepConfig()
    assert (c.dataset, c.objective, len(c.seeds), c.epochs, c.batch_size) == ("mnist", "w", 30, 15, 100)
    assert (c.lambda_c, c.arima_order) == (0.05, (1, 1, 0))


@pytest.mark.parametrize("objective, lam, rule", [("w", "1", "arima"), ("kl", "1", "fixed"), ("wae", "10", "fixed")])
def test_resolved_fills_objective_defaults(objective, lam, rule):
    c = SweepConfig(objective=objective).resolved()
    assert (c.lam, c.lambda_rule) == (lam, rule)


def test_lam_init_parses_values_and_ranges():
    assert LamInit.parse("2.5") == (2.5, 2.5)
    assert LamInit.parse("uniform:0:20") == (0.0, 20.0)
    assert str(LamInit.parse("uniform:0:20")) == "uniform:0:20"


@pytest.mark.parametrize("text, message", [
    ("-1", "negative"),
    ("uniform:-1:3", "negative"),
    ("uniform:5:1", "uniform:1:5"),
    ("abc", "not a number"),
    ("normal:0:1", "not a number or uniform"),
    ("inf", "not finite"),
])
def test_bad_lam_says_what_and_how(text, message):
    with pytest.raises(ConfigError, match=message) as e:
        LamInit.parse(text)
    assert "--lam" in str(e.value)


@pytest.mark.parametrize("changes, flag", [
    ({"dataset": "cifar"}, "--dataset 'cifar'"),
    ({"objective": "gan"}, "--objective 'gan'"),
    ({"seeds": ()}, "--seeds"),
    ({"seeds": (1, 1)}, "--seeds"),
    ({"seeds": (-1,)}, "--seeds"),
    ({"lambda_rule": "cosine"}, "--lambda-rule"),
    ({"objective": "kl", "lambda_rule": "arima"}, "--lambda-rule"),
    ({"forecaster": "gpu"}, "--forecaster"),
    ({"replica_loop": "pmap"}, "--replica-loop 'pmap': unknown replica loop"),
    ({"arima_order": (1, 1)}, "--arima-order"),
    ({"arima_order": (1, -1, 0)}, "--arima-order"),
    ({"arima_order": (1, 1, 1)}, "--arima-order"),  # device forecaster: no MA terms
    ({"lambda_c": 0.0}, "--lambda-c"),
    ({"epochs": 0}, "--epochs"),
    ({"batch_size": 500, "train_size": 100}, "--batch-size"),
    ({"train_size": 0}, "--train-size"),
    ({"latent_dim": 0}, "--latent-dim"),
    ({"hidden": ()}, "--hidden"),
    ({"learning_rate": -1.0}, "--learning-rate"),
    ({"steps_per_call": 0}, "--steps-per-call"),
])
def test_validate_names_the_flag_and_the_fix(changes, flag):
    with pytest.raises(ConfigError) as e:
        dataclasses.replace(SweepConfig(), **changes).validate()
    message = str(e.value)
    assert message.startswith(flag), message
    assert ";" in message  # what is wrong; how to fix it


def test_statsmodels_forecaster_accepts_moving_average_terms():
    SweepConfig(forecaster="statsmodels", arima_order=(1, 1, 1)).validate()


def test_json_round_trip():
    c = config_lib.smoke(seeds=(3, 7), hidden=(64, 32)).resolved()
    assert SweepConfig.from_json(c.to_json()) == c


def test_from_json_refuses_unknown_fields():
    with pytest.raises(ConfigError, match="unknown fields"):
        SweepConfig.from_json({"dataset": "mnist", "warp_speed": 9})


def test_presets_validate():
    for preset in config_lib.PRESETS.values():
        preset().resolved()


def test_reading_presets_are_the_studys_readings():
    from jaxwvae.config.readings import READINGS

    for preset, name in (("paper_section3", "section3"), ("paper_section4", "section4"),
                         ("paper_adaptive_slow", "c0.0005")):
        config = config_lib.PRESETS[preset]().resolved()
        for field, value in READINGS[name][1].items():
            assert getattr(config, field) == value, (preset, field)
    assert config_lib.paper_section3().resolved() == config_lib.paper_mnist().resolved()


# ---------------------------------------------------------------------- registries
def test_objective_table_pairs_each_name_with_its_function():
    assert tuple(objectives.OBJECTIVES) == names.OBJECTIVES
    assert [objectives.get(n).fn for n in ("w", "kl", "wae")] == [objectives.elbo_w, objectives.elbo_kl,
                                                                   objectives.wae_mmd]
    assert (objectives.get("w").default_lam, objectives.get("wae").default_lam) == (1.0, 10.0)


def test_every_lambda_rule_name_is_a_rule():
    for name in names.LAMBDA_RULES:
        home = lambda_rule if hasattr(lambda_rule, name) else controllers
        rule = getattr(home, name)()
        assert isinstance(rule, lambda_rule.LambdaRule), name


def test_fields_take_the_names_of_their_registries():
    choices = {f.name: f.metadata["choices"] for f in dataclasses.fields(SweepConfig) if f.metadata["choices"]}
    assert choices == {"dataset": data.DATASETS, "objective": names.OBJECTIVES, "lambda_rule": names.LAMBDA_RULES,
                       "forecaster": names.FORECASTERS, "replica_loop": names.REPLICA_LOOPS,
                       "pbt_fitness": names.PBT_FITNESS, "pi_quantity": controllers.QUANTITIES}
    for name, valid in choices.items():
        for value in valid:
            changes = {name: value} | ({"objective": "w", "pi_target": 25.0, "geco_kappa": 90.0}
                                       if name == "lambda_rule" else {})
            dataclasses.replace(SweepConfig(), **changes).validate()  # every registered name is accepted


def test_every_field_says_what_it_means():
    for f in dataclasses.fields(SweepConfig):
        assert f.metadata["help"].strip(), f.name


@pytest.mark.parametrize("changes, message", [
    ({"lambda_rule": "pi"}, "--pi-target None: the pi rule needs a set point"),
    ({"lambda_rule": "geco"}, "--geco-kappa None: the geco rule needs a reconstruction bound"),
    ({"lambda_rule": "pi", "pi_target": 20.0, "forecaster": "host"}, "runs in the compiled step"),
    ({"geco_alpha": 1.0}, "--geco-alpha 1.0: a moving average"),
    ({"pi_ki": -1.0}, "--pi-ki -1.0: must be a number >= 0"),
])
def test_controller_settings_are_checked(changes, message):
    with pytest.raises(ConfigError, match=message):
        config_lib.smoke(**changes).resolved()
