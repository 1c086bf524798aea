"""The package's layers: each folder imports only the folders below it (read from the source, not run).

    core  <-  data  <-  config  <-  replica, runs  <-  engine, evaluation  <-  reports  <-  cli

``errors`` sits under everything. evaluation never imports training (replica, engine); the math
(``core``) imports nothing of the package but itself; ``core/losses.py`` imports nothing at all.
"""

import ast
import importlib
import pathlib

import pytest

import jaxwvae

PACKAGE = pathlib.Path(jaxwvae.__file__).parent
LAYERS = ("core", "data", "config", "replica", "runs", "engine", "evaluation", "reports")
BELOW = {
    "errors": set(),
    "core": set(),
    "data": {"errors"},
    "config": {"errors", "core", "data"},
    "replica": {"errors", "core", "config"},
    "runs": {"errors", "core", "config"},
    "engine": {"errors", "core", "data", "config", "replica", "runs"},
    "evaluation": {"errors", "core", "data", "config", "runs"},
    "reports": {"errors", "core", "data", "config", "replica", "runs", "engine", "evaluation"},
    "cli": {"errors", "core", "data", "config", "replica", "runs", "engine", "evaluation", "reports"},
}


def layer_of(module_path: pathlib.Path) -> str:
    parts = module_path.relative_to(PACKAGE).with_suffix("").parts
    return parts[0]


def imported(path: pathlib.Path) -> list[tuple[int, str]]:
    """``(line, target)`` for every package import in ``path``, nested ones included; target is dotted."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            out.append((node.lineno, "<relative>"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "jaxwvae":
            if node.module == "jaxwvae":
                out += [(node.lineno, f"jaxwvae.{a.name}") for a in node.names]
            else:
                out.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "jaxwvae"]
    return out


def sources():
    return sorted(p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py" or p.parent != PACKAGE)


def test_every_module_lives_in_a_layer():
    for path in sources():
        layer = layer_of(path)
        assert layer in BELOW, f"{path.relative_to(PACKAGE)} is outside the layers {sorted(BELOW)}"


@pytest.mark.parametrize("path", sources(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_down(path):
    layer = layer_of(path)
    allowed = BELOW[layer] | {layer}
    for line, target in imported(path):
        assert target != "<relative>", f"{path.name}:{line}: use absolute imports"
        parts = target.split(".")
        assert len(parts) > 1, f"{path.name}:{line}: import a module, not the package"
        head = parts[1]
        assert head in BELOW, (f"{path.relative_to(PACKAGE)}:{line} imports {target}: the flat names are "
                               f"aliases for users; inside the package import from its layer folder")
        assert head in allowed, (f"{path.relative_to(PACKAGE)}:{line} ({layer}) imports {target} ({head}); "
                                 f"{layer} may import only {sorted(allowed)}")


def test_the_math_imports_nothing_of_the_package():
    assert imported(PACKAGE / "core" / "losses.py") == []


def test_the_checker_catches_an_upward_import(tmp_path):
    bad = PACKAGE / "core" / "_upward_probe.py"
    try:
        bad.write_text("def f():\n    from jaxwvae.engine import sweep\n")
        with pytest.raises(AssertionError, match="core.*imports jaxwvae.engine.*may import only"):
            test_imports_point_down(bad)
    finally:
        bad.unlink()


@pytest.mark.parametrize("name", sorted(jaxwvae._HOMES))
def test_the_flat_names_users_type_still_work(name):
    module = getattr(jaxwvae, name)
    assert module is importlib.import_module(f"jaxwvae.{jaxwvae._HOMES[name]}.{name}")


def test_from_jaxwvae_import_losses_stays_light():
    import subprocess
    import sys
    code = "import sys; from jaxwvae import losses; print(sorted(m for m in sys.modules if m.startswith('jaxwvae')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['jaxwvae', 'jaxwvae.core', 'jaxwvae.core.losses']"
