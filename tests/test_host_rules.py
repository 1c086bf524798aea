"""The host λ rules behind one interface: each adapter is a ``HostRule`` and moves λ by the paper's rule."""

import numpy as np
import pytest

from jaxwvae.config import SweepConfig
from jaxwvae.core import lambda_rule
from jaxwvae.engine.host_rules import HostArima, HostRule, host_rule
from jaxwvae.engine.statsmodels_rule import StatsmodelsRule

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
    assert host_rule(SweepConfig(seeds=SEEDS, **changes).resolved(), len(SEEDS)) is None
