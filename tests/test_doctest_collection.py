"""``--doctest-modules`` imports every module of jaxwvae: none may need an optional package to import."""

import os
import pathlib
import subprocess
import sys

import jaxwvae

PACKAGE = pathlib.Path(jaxwvae.__file__).parent
# the extras (tfds, plots, dev, bench): each is imported inside the function that needs it
OPTIONAL = ("tensorflow_datasets", "tensorflow", "matplotlib", "torch", "torchvision", "pytorch_fid", "nbformat",
            "nbclient")


def test_every_module_imports_without_the_optional_packages():
    modules = sorted(".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
                     for p in PACKAGE.rglob("*.py"))
    assert "jaxwvae.losses" in modules and "jaxwvae.reports.plots" in modules
    code = f"""
import importlib, importlib.abc, sys

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {OPTIONAL!r}:
            raise ImportError(f"{{name}} is optional")

sys.meta_path.insert(0, Block())
for name in {modules!r}:
    importlib.import_module(name)
print(len({modules!r}))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "JAX_PLATFORMS": "cpu"}, cwd=PACKAGE.parent)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split() == [str(len(modules))]
