"""experiments/sweep.py: a real 2-seed run, and one clear line with exit status 2 for each bad input."""

import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from jaxwvae import cli

REPO = pathlib.Path(__file__).resolve().parents[1]
SMALL = ["--train-size", "2000", "--test-size", "500", "--epochs", "1", "--hidden", "64,32", "--latent-dim", "8",
         "--no-progress"]


def sweep_main(argv):
    return cli.run_main(cli.sweep_main, argv)


def test_two_seed_run_on_2000_images(data_dir, tmp_path, capsys):
    out = tmp_path / "run"
    assert sweep_main(["--seeds", "2", "--data-dir", str(data_dir), "--out", str(out), *SMALL]) == 0
    results = json.loads((out / "results.json").read_text())
    saved = json.loads((out / "config.json").read_text())
    assert [r["seed"] for r in results["runs"]] == [0, 1]
    assert saved["config"]["seeds"] == [0, 1] and saved["command"][0] == "sweep.py"
    assert saved["config"]["lambda_rule"] == "arima" and saved["config"]["lam"] == "1"
    with np.load(out / "history.npz") as h:
        assert h["loss"].shape == (2, 20)
    assert "2 replicas x 20 steps" in capsys.readouterr().out


def test_script_runs_as_a_subprocess(data_dir, tmp_path):
    proc = subprocess.run([sys.executable, str(REPO / "experiments" / "sweep.py"), "--seed-list", "3",
                           "--data-dir", str(data_dir), "--out", str(tmp_path / "r"), *SMALL],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "r" / "results.json").read_text())["runs"][0]["seed"] == 3


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "Traceback" not in err[0]
    return err[0]


@pytest.mark.parametrize("args, message", [
    (["--dataset", "cifar10"], "--dataset 'cifar10': unknown dataset"),
    (["--objective", "vae"], "--objective 'vae': unknown objective"),
    (["--seeds", "0"], "--seeds 0"),
    (["--lam", "-1"], "negative"),
    (["--lam", "uniform:20:0"], "uniform:0:20"),
    (["--arima-order", "1,1"], "--arima-order"),
    (["--arima-order", "1,1,1"], "ARIMA(p, d, 0)"),
    (["--batch-size", "3000"], "--batch-size 3000"),
    (["--objective", "kl", "--lambda-rule", "arima"], "--lambda-rule"),
    (["--seeds", "2", "--seed-list", "1,2"], "not both"),
    (["--train-size", "70000"], "--train-size 70000"),
])
def test_bad_input_gives_one_line_and_status_2(args, message, data_dir, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["--data-dir", str(data_dir), "--out", str(out), *SMALL, *args]
    assert sweep_main(argv) == 2
    line = one_error_line(capsys)
    assert line.startswith("error: ") and message in line, line
    assert not out.exists()  # nothing written


def test_missing_data_names_the_folder_and_the_fix(tmp_path, capsys):
    assert sweep_main(["--data-dir", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o"), *SMALL]) == 2
    line = one_error_line(capsys)
    assert "nowhere" in line and "--data-dir" in line
    assert not (tmp_path / "o").exists()


def test_unwritable_out(data_dir, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert sweep_main(["--data-dir", str(data_dir), "--out", str(blocker / "sub"), *SMALL]) == 2
    assert "cannot write there" in one_error_line(capsys)
    assert sweep_main(["--data-dir", str(data_dir), "--out", "/proc/jaxwvae-out", *SMALL]) == 2
    assert "cannot write there" in one_error_line(capsys)


def test_existing_out_is_never_overwritten_silently(data_dir, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["--seeds", "1", "--data-dir", str(data_dir), "--out", str(out), *SMALL]
    assert sweep_main(args) == 0
    before = (out / "results.json").read_bytes()
    capsys.readouterr()
    assert sweep_main(args) == 2
    assert "--overwrite" in one_error_line(capsys)
    assert (out / "results.json").read_bytes() == before
    assert sweep_main([*args, "--overwrite"]) == 0


def test_resume_refuses_another_config(data_dir, tmp_path, capsys):
    out = tmp_path / "run"
    assert sweep_main(["--seeds", "1", "--data-dir", str(data_dir), "--out", str(out), *SMALL]) == 0
    capsys.readouterr()
    assert sweep_main(["--resume", "--out", str(out), "--epochs", "3"]) == 2
    line = one_error_line(capsys)
    assert "another config" in line and "epochs" in line


def test_resume_needs_a_run(tmp_path, capsys):
    assert sweep_main(["--resume", "--out", str(tmp_path)]) == 2
    assert "holds no config.json" in one_error_line(capsys)


def test_argparse_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as e:
        sweep_main(["--seeds", "many"])
    assert e.value.code == 2
    assert "not an integer" in capsys.readouterr().err
