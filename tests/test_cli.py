"""experiments/sweep.py: a real 2-seed run, and one clear line with exit status 2 for each bad input."""

import dataclasses
import gzip
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from jaxwvae import cli
from jaxwvae.commands import sweep as sweep_command
from jaxwvae.config import SweepConfig

REPO = pathlib.Path(__file__).resolve().parents[1]
SMALL = ["--train-size", "2000", "--test-size", "500", "--epochs", "1", "--hidden", "64,32", "--latent-dim", "8",
         "--no-progress"]


def sweep_main(argv):
    return cli.run_main(sweep_command.main, argv)


@pytest.mark.slow  # trains a sweep
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


@pytest.mark.slow  # trains a sweep
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


@pytest.mark.slow  # trains a sweep
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


@pytest.mark.slow  # trains a sweep
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


def test_argparse_errors_are_one_line_and_status_2(capsys):
    assert sweep_main(["--seeds", "many"]) == 2
    line = one_error_line(capsys)
    assert line.startswith("error: argument --seeds: 'many' is not an integer") and "--help" in line


# ---------------------------------------------------------------------- bad input, widened (issue 14)
def idx_bytes(arr, magic=None, count=None):
    """A uint8 array as an IDX file (magic 0x0800 | ndim unless given; the header's first size ``count`` if given)."""
    arr = np.asarray(arr, np.uint8)
    magic = (0x0800 | arr.ndim) if magic is None else magic
    shape = (len(arr) if count is None else count, *arr.shape[1:])
    return magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in shape) + arr.tobytes()


SYNTHETIC = ["--train-size", "300", "--test-size", "100"]  # the whole of each synthetic split


def synthetic_data(folder, *, n_train=300, n_test=100):
    """A small MNIST-shaped data folder; returns {name: path} of its four files."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    paths = {}
    for name, n in (("train", n_train), ("t10k", n_test)):
        paths[f"{name}-images-idx3-ubyte"] = folder / f"{name}-images-idx3-ubyte"
        paths[f"{name}-images-idx3-ubyte"].write_bytes(idx_bytes(rng.integers(0, 256, (n, 28, 28))))
        paths[f"{name}-labels-idx1-ubyte"] = folder / f"{name}-labels-idx1-ubyte"
        paths[f"{name}-labels-idx1-ubyte"].write_bytes(idx_bytes(rng.integers(0, 10, n)))
    return paths


def _truncated_gz(tmp_path, data_dir, out):
    paths = synthetic_data(tmp_path / "data")
    raw = paths["train-images-idx3-ubyte"]
    gz = gzip.compress(raw.read_bytes())
    raw.unlink()
    raw.with_name(raw.name + ".gz").write_bytes(gz[: len(gz) // 2])  # a download cut short
    return [*SYNTHETIC, "--data-dir", str(tmp_path / "data"), "--out", str(out)], "corrupt or truncated gzip"


def _wrong_magic(tmp_path, data_dir, out):
    paths = synthetic_data(tmp_path / "data")
    paths["t10k-labels-idx1-ubyte"].write_bytes(idx_bytes(np.zeros(100), magic=0x12340801))
    return [*SYNTHETIC, "--data-dir", str(tmp_path / "data"), "--out", str(out)], "is not an IDX file: magic number 0x12340801"


def _wrong_count(tmp_path, data_dir, out):
    paths = synthetic_data(tmp_path / "data")
    images = np.zeros((300, 28, 28))
    paths["train-images-idx3-ubyte"].write_bytes(idx_bytes(images, count=400))  # header 400, body 300
    return [*SYNTHETIC, "--data-dir", str(tmp_path / "data"), "--out", str(out)], "truncated IDX file"


def _labels_do_not_match(tmp_path, data_dir, out):
    paths = synthetic_data(tmp_path / "data")
    paths["train-labels-idx1-ubyte"].write_bytes(idx_bytes(np.zeros(250)))
    return [*SYNTHETIC, "--data-dir", str(tmp_path / "data"), "--out", str(out)], "300 images but"


def _read_only_out(tmp_path, data_dir, out):
    if os.geteuid() != 0:
        folder = tmp_path / "read-only"
        folder.mkdir()
        folder.chmod(0o555)
        return ["--data-dir", str(data_dir), "--out", str(folder / "run")], "cannot write there"
    # root writes into a chmod 555 folder regardless, and a read-only mount needs privileges a test
    # should not use: sysfs refuses to create a folder even for root, the honest stand-in.
    return ["--data-dir", str(data_dir), "--out", "/sys/jaxwvae-out"], "cannot write there"


def _another_version(tmp_path, data_dir, out):
    out.mkdir()
    (out / "config.json").write_text(json.dumps({"config": {"seeds": [0], "hyperdrive": 3}, "command": []}))
    return ["--resume", "--out", str(out)], "written by another version"


def _another_version_layout(tmp_path, data_dir, out):
    out.mkdir()
    (out / "config.json").write_text(json.dumps({"settings": {"seeds": [0]}}))
    return ["--resume", "--out", str(out)], "written by another version"


def _config_not_json(tmp_path, data_dir, out):
    out.mkdir()
    (out / "config.json").write_text('{"config": {"seeds": [0, 1')  # cut short by a full disk
    return ["--resume", "--out", str(out)], "not a JSON file"


def _flags(*args, message):
    def setup(tmp_path, data_dir, out):
        return ["--data-dir", str(data_dir), "--out", str(out), *args], message
    return setup


BAD_INPUT = {
    "truncated .gz": _truncated_gz,
    "IDX wrong magic": _wrong_magic,
    "IDX wrong count": _wrong_count,
    "labels do not match images": _labels_do_not_match,
    "read-only --out": _read_only_out,
    "--resume of another version": _another_version,
    "--resume of another version's layout": _another_version_layout,
    "--resume of a torn config.json": _config_not_json,
    "--train-size larger than the split": _flags("--train-size", "70000", message="--train-size 70000"),
    "--test-size larger than the split": _flags("--test-size", "20000", message="--test-size 20000"),
    "duplicate seeds": _flags("--seed-list", "3,1,3", message="a seed appears twice"),
    "zero epochs": _flags("--epochs", "0", message="--epochs 0"),
    "negative batch size": _flags("--batch-size", "-5", message="--batch-size -5"),
    "zero train size": _flags("--train-size", "0", message="--train-size 0"),
    "negative seed count": _flags("--seeds", "-2", message="--seeds -2"),
    "zero steps per call": _flags("--steps-per-call", "0", message="--steps-per-call 0"),
    "non-numeric count": _flags("--epochs", "ten", message="argument --epochs: 'ten' is not an integer"),
    "non-numeric rate": _flags("--learning-rate", "fast", message="'fast' is not a number"),
    "non-numeric seed list": _flags("--seed-list", "1,b", message="'1,b' is not a comma-separated list"),
    "non-numeric λ": _flags("--lam", "big", message="--lam 'big' is not a number"),
    "unknown preset": _flags("--preset", "huge", message="argument --preset: invalid choice: 'huge'"),
    "unknown replica loop": _flags("--replica-loop", "pmap", message="--replica-loop 'pmap': unknown replica loop"),
}


def snapshot(folder):
    """Every file under ``folder`` with its bytes (None if the folder does not exist)."""
    if not folder.exists():
        return None
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("kind", list(BAD_INPUT))
def test_bad_input_widened_is_one_line_status_2_nothing_written(kind, data_dir, tmp_path, capsys):
    out = tmp_path / "out"
    args, message = BAD_INPUT[kind](tmp_path, data_dir, out)
    target = pathlib.Path(args[args.index("--out") + 1])
    before = snapshot(target)
    extra = [] if "--resume" in args else SMALL
    assert sweep_main([*extra, *args]) == 2
    line = one_error_line(capsys)
    assert line.startswith("error: ") and message in line, line
    assert snapshot(target) == before  # nothing created, nothing changed


# ---------------------------------------------------------------------- flags from the config's fields
def test_every_config_field_has_exactly_one_flag():
    actions = sweep_command.parser()._actions
    for f in dataclasses.fields(SweepConfig):  # no field is left out
        flag = "--" + f.name.replace("_", "-")
        setting = [a for a in actions if a.dest == f.name]
        assert [a.option_strings for a in setting] == [[flag]], f.name
        assert setting[0].help.startswith(f.metadata["help"].replace("%", "%%")), f.name
    options = [o for a in actions for o in a.option_strings]
    assert len(options) == len(set(options))


def test_flags_parse_into_their_fields():
    argv = ["--dataset", "fashion_mnist", "--objective", "kl", "--seed-list", "3,7", "--lam", "uniform:0:20",
            "--lambda-rule", "fixed", "--forecaster", "host", "--arima-order", "2,1,0", "--lambda-c", "0.5",
            "--lambda-min", "0.1", "--lambda-max", "20", "--lambda-t-scale", "2", "--lambda-sign-zero", "-1",
            "--refit-every", "5", "--epochs", "2", "--batch-size", "10", "--train-size", "100", "--test-size", "50",
            "--latent-dim", "4", "--hidden", "8,4", "--sigma-max", "1", "--learning-rate", "0.01", "--data-dir", "d",
            "--steps-per-call", "7", "--replica-loop", "map", "--checkpoint-every", "0", "--grid", "lambda_c=1,2",
            "--pi-quantity", "w2", "--pi-target", "20", "--pi-kp", "0.1", "--pi-ki", "0.01", "--geco-kappa", "90",
            "--geco-alpha", "0.9", "--geco-step", "0.01", "--validation-size", "500", "--pbt-every", "100",
            "--pbt-fitness", "rec", "--pbt-fraction", "0.5", "--pbt-resample", "0.1", "--pbt-fields", "lam,lambda_c"]
    given = cli.given_fields(sweep_command.parser().parse_args(argv))
    assert set(given) == {f.name for f in dataclasses.fields(SweepConfig)}  # every field has a flag that sets it
    assert given["seeds"] == (3, 7) and given["arima_order"] == (2, 1, 0) and given["hidden"] == (8, 4)
    assert given["lambda_max"] == 20.0 and given["lambda_sign_zero"] == -1.0 and given["sigma_max"] == 1.0
    assert given["refit_every"] == 5 and given["data_dir"] == "d" and given["grid"] == ((("lambda_c", 1.0),),
                                                                                        (("lambda_c", 2.0),))
    assert given["pbt_fields"] == ("lam", "lambda_c") and given["pbt_every"] == 100 and given["pi_target"] == 20.0
    assert cli.given_fields(sweep_command.parser().parse_args([])) == {}  # flags not given keep the preset's value


def test_help_shows_the_registries_and_the_defaults():
    text = sweep_command.parser().format_help()
    assert "--objective {w,kl,wae}" in text and "--dataset {mnist,fashion_mnist}" in text
    assert "--forecaster {device,host,statsmodels}" in text and "--replica-loop {auto,vmap,map}" in text
    assert "(default 512,256)" in text and "(default 30)" in text and "(default 0.05)" in text


SCRIPTS = sorted((REPO / "experiments").glob("*.py"))


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_help_of_every_script_runs(script):
    proc = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage:")


def test_no_flag_has_two_meanings():
    """argparse refuses a flag defined twice unless a parser resolves the conflict by replacing one."""
    for path in [*SCRIPTS, *(REPO / "benchmarks").glob("*.py"), *(REPO / "jaxwvae").rglob("*.py")]:
        assert "conflict_handler" not in path.read_text(), path


def test_table2_classifier_test_size_is_its_own_flag():
    proc = subprocess.run([sys.executable, str(REPO / "experiments" / "table2.py"), "--help"], capture_output=True,
                          text=True, timeout=120)
    assert "--classifier-test-size" in proc.stdout
    assert "evaluate on the first N test images" in proc.stdout  # --test-size: the sweeps', as in sweep.py


def test_command_line_imports_no_jax():
    """The registries' names come from jaxwvae.core.names, so building the parser stays light."""
    code = "import sys, jaxwvae.commands.sweep as s; s.parser(); sys.exit('jax' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
