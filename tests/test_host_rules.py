"""Where λ moves, decided once, and the host λ rules behind one interface (each a ``HostRule``)."""

import types

import numpy as np
import pytest

from jaxwvae.config import SweepConfig
from jaxwvae.core import lambda_rule
from jaxwvae.engine.loop import Training, train_loop
from jaxwvae.engine.plan import make_plan
from jaxwvae.engine.program import device_rule
from jaxwvae.forecast.host import HostArima, HostRule, host_lambda, host_rule
from jaxwvae.forecast.statsmodels_rule import StatsmodelsRule

SEEDS = (0, 1, 2)


@pytest.mark.parametrize("forecaster, kind", [("host", HostArima), ("statsmodels", StatsmodelsRule)])
def test_each_host_adapter_is_a_host_rule(forecaster, kind):
    rule = host_rule(SweepConfig(seeds=SEEDS, forecaster=forecaster).resolved(), len(SEEDS))
    try:
        assert isinstance(rule, kind) and isinstance(rule, HostRule)
        t, lam = np.float32([0.5, -1.0, 2.0]), np.float32([0.01, 0.02, 3.0])
        lam_next, forecast = rule.update(t, lam)
        # One value seen: both estimators are in warm-up, where the forecast is the last value.
        np.testing.assert_array_equal(forecast, t)
        # The rule computes β from float32 per-replica hyperparameters, next_lambda here from Python floats
        # (float64 β): they may differ by one float32 ulp of λ (as in test_statsmodels_rule).
        np.testing.assert_allclose(lam_next, lambda_rule.next_lambda(lam, t, t, xp=np), rtol=2.5e-7, atol=0)
        # At T̂ = T, β = 1/2 - (1 + sign T̂)/2: λ falls by c/2 where T̂ > 0 (to λ_min = 0 for replica 0)
        # and rises where T̂ < 0.
        assert lam_next[0] == 0 and lam_next[1] > lam[1] and lam_next[2] < lam[2]
        assert all(isinstance(v, np.ndarray) for v in rule.state_dict().values())
    finally:
        rule.close()


def test_a_rule_without_close_is_not_a_host_rule():
    class Partial:
        def update(self, t_values, lam):
            return lam, t_values

        def state_dict(self):
            return {}

        def load_state_dict(self, state, t_history):
            pass

    assert not isinstance(Partial(), HostRule)


@pytest.mark.parametrize("changes", [dict(forecaster="device"), dict(forecaster="host", lambda_rule="fixed")])
def test_no_host_rule_when_lambda_moves_on_the_device_or_not_at_all(changes):
    config = SweepConfig(seeds=SEEDS, **changes).resolved()
    assert not host_lambda(config)
    with pytest.raises(ValueError, match="no host rule"):
        host_rule(config, len(SEEDS))


@pytest.mark.parametrize("changes, on_host, fused", [
    (dict(forecaster="device"), False, ("ArimaState",)),  # the adaptive rule fused into the step
    (dict(forecaster="host"), True, "NoState"),  # λ from the host: the step keeps λ (the fixed rule)
    (dict(forecaster="statsmodels"), True, "NoState"),
    (dict(forecaster="host", lambda_rule="fixed"), False, "NoState"),  # λ moves nowhere
    (dict(forecaster="host", lambda_rule="fixed", grid=((("lambda_rule", "arima"),),)), True, "NoState"),  # a point
])
def test_the_plan_holds_where_lambda_moves_and_the_step_follows_it(changes, on_host, fused):
    config = SweepConfig(seeds=SEEDS, steps_per_call=10, **changes).resolved()
    plan = make_plan(config, 2000, 1)
    assert plan.host_lambda == host_lambda(config) == on_host
    assert (plan.chunk, plan.remainder) == ((1, 0) if on_host else (10, 0))  # one step per call on the host
    state = device_rule(config, plan).init()  # the rules the step runs: a tuple of their states, or NoState
    names = tuple(type(s).__name__ for s in state) if isinstance(state, tuple) and not hasattr(state, "_fields") \
        else type(state).__name__
    assert names == fused


@pytest.mark.parametrize("forecaster, host, message", [
    ("host", None, "moves λ on the host but the run has no host rule"),
    ("device", object(), "moves λ on the device but the run has a host rule"),
])
def test_the_loop_refuses_a_host_rule_that_does_not_match_the_plan(forecaster, host, message):
    plan = make_plan(SweepConfig(seeds=SEEDS, forecaster=forecaster).resolved(), 2000, 1)
    training = Training(program=types.SimpleNamespace(plan=plan), states=None, images=None, history=None,
                        host=host, checkpoints=None, step=0, start=0.0, bar=None)
    with pytest.raises(ValueError, match=message):
        train_loop(training)
