"""The package's layers: each folder imports only the folders below it (read from the source, not run).

    core  <-  data, devices  <-  config  <-  replica, runs, forecast  <-  engine, evaluation  <-  reports  <-  cli
          <-  commands  <-  __main__

``losses`` and ``errors`` sit under everything; ``losses.py`` imports nothing of the package. ``devices``
(processes, meshes, memory figures) imports only ``errors``; ``forecast`` (λ on the host, the reference
forecaster) only what is below ``config``. evaluation never imports training (replica, forecast, engine);
``core`` imports nothing of the package but itself and ``losses``. A module imports a name from the module
that defines it: no re-exports across modules. No test file imports another: the helpers they share live
in ``tests/conftest.py``.
"""

import ast
import pathlib

import pytest

import jaxwvae

PACKAGE = pathlib.Path(jaxwvae.__file__).parent
LAYERS = ("core", "data", "devices", "config", "replica", "runs", "forecast", "engine", "evaluation", "reports")
BELOW = {
    "losses": set(),
    "errors": set(),
    "core": {"losses"},
    "data": {"losses", "errors"},
    "devices": {"errors"},
    "config": {"losses", "errors", "core", "data"},
    "replica": {"losses", "errors", "core", "data", "config"},
    "runs": {"losses", "errors", "core", "config"},
    "forecast": {"losses", "errors", "core", "config"},
    "engine": {"losses", "errors", "core", "data", "devices", "config", "replica", "runs", "forecast"},
    "evaluation": {"losses", "errors", "core", "data", "devices", "config", "runs"},
    "reports": {"losses", "errors", "core", "data", "devices", "config", "replica", "runs", "forecast", "engine",
                "evaluation"},
    "cli": {"losses", "errors", "core", "data", "devices", "config", "replica", "runs", "forecast", "engine",
            "evaluation", "reports"},
}
BELOW["commands"] = BELOW["cli"] | {"cli"}
BELOW["__main__"] = {"commands"}


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
    assert imported(PACKAGE / "losses.py") == []


def test_the_checker_catches_an_upward_import(tmp_path):
    bad = PACKAGE / "core" / "_upward_probe.py"
    try:
        bad.write_text("def f():\n    from jaxwvae.engine import sweep\n")
        with pytest.raises(AssertionError, match="core.*imports jaxwvae.engine.*may import only"):
            test_imports_point_down(bad)
    finally:
        bad.unlink()


@pytest.mark.parametrize("statement", ["import jaxwvae.losses as losses", "from jaxwvae import losses"])
def test_losses_imports_both_ways_and_stays_light(statement):
    import subprocess
    import sys
    code = (f"import sys; {statement}; assert callable(losses.w2_squared); "
            "print(sorted(m for m in sys.modules if m.startswith('jaxwvae')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['jaxwvae', 'jaxwvae.losses']"


def test_the_package_keeps_no_aliases():
    assert not hasattr(jaxwvae, "__getattr__"), "jaxwvae/__init__.py must not alias modules"
    with pytest.raises(AttributeError):
        jaxwvae.sweep  # noqa: B018


def reexported(path: pathlib.Path) -> list[str]:
    """Names a folder's ``__init__.py`` imports at module level from another layer (a re-export across layers)."""
    layer = layer_of(path)
    out = []
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("jaxwvae."):
            if node.module.split(".")[1] != layer:
                out += [f"{node.module}.{a.name}" for a in node.names]
    return out


@pytest.mark.parametrize("path", sorted(PACKAGE.glob("*/__init__.py")), ids=lambda p: p.parent.name)
def test_no_folder_re_exports_another_layers_names(path):
    assert reexported(path) == [], f"{path.relative_to(PACKAGE)} re-exports names of another layer"


def test_the_re_export_check_can_fail(tmp_path):
    probe = PACKAGE / "config" / "_reexport_probe.py"
    probe.write_text("from jaxwvae.core.names import OBJECTIVES\n")
    try:
        assert reexported(probe) == ["jaxwvae.core.names.OBJECTIVES"]
    finally:
        probe.unlink()


TESTS = pathlib.Path(__file__).parent


def imported_test_files(source: str) -> list[str]:
    """The test files (``tests/test_*.py``) a test file's ``source`` imports; shared helpers live in conftest."""
    out = []
    for node in ast.walk(ast.parse(source)):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + ([f"{node.module}.{a.name}" for a in node.names] if node.module == "tests" else [])
        out += [n for n in names if n.removeprefix("tests.").startswith("test_")]
    return out


@pytest.mark.parametrize("path", sorted(TESTS.glob("test_*.py")), ids=lambda p: p.name)
def test_no_test_file_imports_another(path):
    assert imported_test_files(path.read_text()) == [], f"tests/{path.name}: import shared helpers from tests.conftest"


def test_the_test_import_check_can_fail():
    source = ("from tests.test_sweep import small\nimport tests.test_resume\nfrom tests import test_grid\n"
              "from test_cli import x\nfrom tests.conftest import load\n")
    assert imported_test_files(source) == ["tests.test_sweep", "tests.test_resume", "tests.test_grid", "test_cli"]
