"""The ``jaxwvae`` command from a built wheel, installed apart from this checkout, and ``python -m jaxwvae``."""

import os
import pathlib
import shutil
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]


def test_python_m_jaxwvae_lists_the_commands_and_refuses_an_unknown_one():
    shown = subprocess.run([sys.executable, "-m", "jaxwvae", "--help"], capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0 and "table1" in shown.stdout and "lambda-study" in shown.stdout
    bare = subprocess.run([sys.executable, "-m", "jaxwvae"], capture_output=True, text=True, timeout=60)
    assert bare.returncode == 2 and "usage: jaxwvae COMMAND" in bare.stderr
    wrong = subprocess.run([sys.executable, "-m", "jaxwvae", "tabel1"], capture_output=True, text=True, timeout=60)
    assert wrong.returncode == 2 and wrong.stderr.count("\n") == 1 and "unknown command 'tabel1'" in wrong.stderr


@pytest.mark.slow  # builds a wheel
def test_the_wheel_installs_a_working_jaxwvae_command(tmp_path):
    source = tmp_path / "source"  # a copy: building writes build/ and *.egg-info beside the sources
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(".git", ".*venv*", "build", "*.egg-info", "runs",
                                                                "__pycache__", "dist", "docs", "notebooks"))
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(tmp_path / "dist"), str(source)], capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr[-3000:]
    wheel, = (tmp_path / "dist").glob("jaxwvae-*.whl")
    target = tmp_path / "site"
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target),
                              str(wheel)], capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stderr[-3000:]
    command = target / "bin" / "jaxwvae"
    assert command.exists(), sorted(p.name for p in target.iterdir())
    # away from the checkout, the wheel's package first on the path (the dependencies from this environment)
    env = {**os.environ, "PYTHONPATH": str(target), "JAX_PLATFORMS": "cpu"}
    where = subprocess.run([str(command), "sweep", "--help"], cwd=tmp_path, env=env, capture_output=True, text=True,
                           timeout=120)
    assert where.returncode == 0, where.stderr[-3000:]
    assert "usage: jaxwvae sweep" in where.stdout and "--pbt-every" in where.stdout
    origin = subprocess.run([sys.executable, "-c", "import jaxwvae.commands as c; print(c.__file__)"], cwd=tmp_path,
                            env=env, capture_output=True, text=True, timeout=60)
    assert origin.stdout.strip().startswith(str(target)), origin.stdout + origin.stderr
    for name in ("table1", "table2", "table3", "lambda-study", "forecast-agreement"):
        shown = subprocess.run([str(command), name, "--help"], cwd=tmp_path, env=env, capture_output=True, text=True,
                               timeout=120)
        assert shown.returncode == 0 and f"usage: jaxwvae {name}" in shown.stdout, (name, shown.stderr[-2000:])
