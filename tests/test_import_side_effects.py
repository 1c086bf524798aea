"""Importing the library changes nothing of the host program: its error hooks, environment and ``__main__``.

Every module under ``jaxwvae/`` is imported, one after another, in a fresh interpreter; after each
import ``sys.excepthook``, ``sys.unraisablehook``, ``os.environ`` and ``sys.modules["__main__"]`` must be
what they were before the first one.
"""

import json
import pathlib
import subprocess
import sys

import jaxwvae

PACKAGE = pathlib.Path(jaxwvae.__file__).parent

CHECK = """
import importlib, json, os, sys
def state():
    return {"sys.excepthook": sys.excepthook, "sys.unraisablehook": sys.unraisablehook,
            "sys.modules['__main__']": sys.modules["__main__"]}
before, environ = state(), dict(os.environ)
changed = {}
for name in json.loads(sys.argv[1]):
    importlib.import_module(name)
    now = state()
    what = [k for k in before if now[k] is not before[k]]
    what += [f"os.environ[{k!r}]" for k in sorted(set(environ) | set(os.environ)) if environ.get(k) != os.environ.get(k)]
    if what:
        changed[name] = what
        before, environ = now, dict(os.environ)  # name each change once, at the module that made it
print(json.dumps(changed))
"""


def modules() -> list[str]:
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def test_every_module_is_listed():
    names = modules()
    assert {"jaxwvae", "jaxwvae.losses", "jaxwvae.runs.checkpoint", "jaxwvae.cli"} <= set(names)
    assert len(names) == len(set(names)) > 40


def test_importing_every_module_leaves_hooks_environment_and_main_alone():
    proc = subprocess.run([sys.executable, "-c", CHECK, json.dumps(modules())], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    changed = json.loads(proc.stdout.strip().splitlines()[-1])
    assert changed == {}, "importing these modules changed the host program: " + "; ".join(
        f"{name}: {', '.join(what)}" for name, what in changed.items())
