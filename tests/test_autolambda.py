"""The automatic-λ study (jaxwvae.reports.autolambda) end to end at a small size: arms, selection, tests."""

import pytest

from jaxwvae.commands import autolambda_study
from jaxwvae.reports import autolambda
from jaxwvae.runs import rundir


def test_every_arm_is_a_grid_point_on_one_validation_split():
    config = autolambda.w_config({"seeds": (0, 1)})
    assert len(config.grid) == len(autolambda.ARMS) and config.validation_size == autolambda.VALIDATION_SIZE
    rules = [dict(p)["lambda_rule"] for p in config.grid]
    assert rules.count("fixed") == len(autolambda.FIXED) and {"arima", "pi", "geco"} <= set(rules)


@pytest.mark.slow  # seven small sweeps and their FIDs
def test_the_study_picks_the_best_fixed_lambda_on_validation_and_tests_every_rule(data_dir, tmp_path):
    argv = ["--seeds", "2", "--epochs", "2", "--train-size", "1000", "--test-size", "300", "--fid-samples", "300",
            "--feature-train-size", "1000", "--feature-epochs", "1", "--validation-size", "500",
            "--hidden", "32,16", "--latent-dim", "4", "--data-dir", str(data_dir), "--out", str(tmp_path),
            "--no-progress"]
    assert autolambda_study.main(argv) == 0
    report = rundir.read_json(tmp_path / "autolambda.json")
    arms = report["arms"]
    assert list(arms) == [*autolambda.ARMS, "pbt_fid", "pbt_elbo"] and all(a["n"] == 2 for a in arms.values())
    fixed = {k: a["validation_fid"]["mean"] for k, a in arms.items() if k.startswith("fixed")}
    assert report["best_fixed"] == min(fixed, key=fixed.get)  # chosen on validation, not test
    assert {(t["arm"], t["reference"]) for t in report["tests"]} >= {(a, "fixed1") for a in autolambda.AUTOMATIC}
    assert arms["geco"]["lam_final"]["mean"] >= 0.01 - 1e-6  # its lower bound holds
    assert (tmp_path / "autolambda_lambda.png").stat().st_size > 10_000
    assert (tmp_path / "mnist_w_arms" / "fid_validation-cnn-v1-epochs1-train_size1000.json").exists()
    for fitness in ("fid", "elbo"):  # each seed's PBT winner is the arm's value; compute counts every member
        arm = arms[f"pbt_{fitness}"]
        assert arm["n"] == 2 and arm["replica_steps"] == 6 * arms["fixed1"]["replica_steps"]
        assert len(report["pbt_schedules"][f"pbt_{fitness}"]["lam"]) == 2
    for objective, scale in (("kl", 1), ("wae", 10)):
        fair = report["fair"][objective]
        assert list(fair["grid"]) == [f"{float(v) * scale:g}" for v in autolambda.FIXED]
        assert fair["rows"]["default"]["label"].endswith(f"λ = {scale:g}")
        assert {t["setting"] for t in fair["tests"]} == {"default", "best fixed", "PBT"}
