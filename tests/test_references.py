"""Every reference the prose makes points at something that exists (read from the source).

* In ``jaxwvae/``, ``benchmarks/*.py``, ``experiments/*.py`` and ``tests/*.py``: each Sphinx role
  (``:func:``, ``:class:``, ``:mod:``, ``:meth:``, ``:attr:``, ``:data:``) and each double-backticked
  ``jaxwvae.`` path. A dotted target is imported up to its longest module and looked up attribute by
  attribute (a dataclass or NamedTuple field, an annotation or an attribute set on ``self`` counts as a
  member); an unqualified one is looked up in the class whose body holds it, then in its module's globals
  (its definitions and imports). The scripts and tests are read, not imported: their names resolve
  through their own definitions and imports.
* In README.md and BUILD.md: each path under a project folder exists, each ``jaxwvae.`` dotted name
  resolves, and each file a Layout row names exists in that row's folder.
"""

import ast
import dataclasses
import importlib
import inspect
import pathlib
import re
import textwrap

REPO = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = REPO / "jaxwvae"
SCRIPTS = sorted([*(REPO / "benchmarks").glob("*.py"), *(REPO / "experiments").glob("*.py"),
                  *(p for p in (REPO / "tests").glob("*.py") if p.name != "test_references.py")])
DOCS = ("README.md", "BUILD.md")

ROLE = re.compile(r":(func|class|mod|meth|attr|data):`(?:[^`<\n]*<)?~?([^`<>\n]+)>?`")
DOTTED = re.compile(r"``(jaxwvae(?:\.\w+)+)(?:\(\))?``")
TOP_FOLDERS = ("jaxwvae", "experiments", "benchmarks", "tests", "notebooks", "docs", ".ci")
DOC_PATH = re.compile(r"(?<![\w./-])((?:" + "|".join(map(re.escape, TOP_FOLDERS)) + r")/[\w.*/-]*)")
DOC_DOTTED = re.compile(r"(?<![\w./-])jaxwvae(?:\.\w+)+")
LAYOUT_ROW = re.compile(r"^\| `(jaxwvae/\w+/)` \|(.*)$", re.MULTILINE)
BARE_FILE = re.compile(r"`(\w+\.py)`")


def references(text: str):
    """``(line, role, target)`` for every role and ``jaxwvae.`` path in ``text``; ``role`` is ``""`` for a path."""
    found = [(m.start(), m.group(1), m.group(2)) for m in ROLE.finditer(text)]
    found += [(m.start(), "", m.group(1)) for m in DOTTED.finditer(text)]
    return [(text.count("\n", 0, at) + 1, role, target.removesuffix("()")) for at, role, target in sorted(found)]


def instance_attributes(cls: type) -> set[str]:
    """The names a class of the package assigns to ``self.NAME`` in its methods."""
    if not cls.__module__.startswith("jaxwvae"):
        return set()
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    return {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store)
            and isinstance(node.value, ast.Name) and node.value.id == "self"}


def has_member(obj, name: str) -> bool:
    """``obj.name`` exists, or ``name`` is a field of the class ``obj``: a dataclass or NamedTuple field, an
    annotation, or an attribute its methods set on ``self``."""
    if hasattr(obj, name):
        return True
    if not isinstance(obj, type):
        return False
    if dataclasses.is_dataclass(obj) and name in {f.name for f in dataclasses.fields(obj)}:
        return True
    return name in getattr(obj, "_fields", ()) or any(
        name in vars(c).get("__annotations__", {}) or name in instance_attributes(c) for c in obj.__mro__)


def lookup(obj, names: list[str]) -> bool:
    """Whether ``obj.names[0].names[1]...`` exists; a submodule not yet imported is imported."""
    for i, name in enumerate(names):
        if hasattr(obj, "__path__") and not hasattr(obj, name):
            try:
                importlib.import_module(f"{obj.__name__}.{name}")
            except ModuleNotFoundError:
                return False
        if not has_member(obj, name):
            return False
        if not hasattr(obj, name):  # a field without a class attribute: nothing further to follow
            return i == len(names) - 1
        obj = getattr(obj, name)
    return True


def resolves(dotted: str) -> bool:
    """Whether ``jaxwvae.a.b.c`` names a module or an attribute of one."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        name = ".".join(parts[:i])
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name is not None and name.startswith(e.name):
                continue
            raise
        return lookup(module, parts[i:])
    return False


def enclosing_classes(tree: ast.Module, line: int) -> list[list[str]]:
    """The qualified names (innermost first) of the classes whose body holds ``line``."""
    out = []

    def walk(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef):
                path = [*prefix, child.name]
                if child.lineno <= line <= child.end_lineno:
                    out.insert(0, path)
                walk(child, path)
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                walk(child, prefix)

    walk(tree, [])
    return out


def resolves_in_module(module_name: str, text: str, line: int, target: str) -> bool:
    """A reference in the imported module ``module_name``: qualified, or from the enclosing class or the globals."""
    if target.startswith("jaxwvae.") or target == "jaxwvae":
        return resolves(target)
    module = importlib.import_module(module_name)
    names = target.split(".")
    scopes = [names]
    scopes += [[*cls, *names] for cls in enclosing_classes(ast.parse(text), line)]
    return any(lookup(module, scope) for scope in sorted(scopes, key=len, reverse=True))


def script_names(path: pathlib.Path) -> dict[str, object]:
    """A script's top-level names: an ``ast`` definition, a dotted import target, or ``None`` (any value)."""
    names = {}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names[node.name] = node
        elif isinstance(node, ast.Assign):
            names.update((t.id, None) for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names[node.target.id] = None
        elif isinstance(node, ast.Import):
            names.update((a.asname or a.name.split(".")[0], a.name if a.asname else a.name.split(".")[0])
                         for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.update((a.asname or a.name, f"{node.module}.{a.name}") for a in node.names)
    return names


def class_members(node: ast.ClassDef) -> set[str]:
    out = set()
    for child in node.body:
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.add(child.name)
        elif isinstance(child, ast.Assign):
            out.update(t.id for t in child.targets if isinstance(t, ast.Name))
        elif isinstance(child, ast.AnnAssign) and isinstance(child.target, ast.Name):
            out.add(child.target.id)
    return out


def resolves_in_script(path: pathlib.Path, target: str) -> bool:
    """A reference in a script (read, not imported): through its definitions, its imports and sibling scripts."""
    if target.startswith("jaxwvae.") or target == "jaxwvae":
        return resolves(target)
    head, *rest = target.split(".")
    entry = script_names(path).get(head, False)
    if entry is False:
        return False
    if entry is None:
        return not rest
    if isinstance(entry, ast.ClassDef):
        return len(rest) <= 1 and (not rest or rest[0] in class_members(entry))
    if isinstance(entry, ast.AST):
        return not rest
    sibling = path.parent / f"{entry}.py"
    if sibling.exists():
        return not rest or resolves_in_script(sibling, ".".join(rest))
    return resolves(".".join([entry, *rest])) if entry.startswith("jaxwvae") else True


def module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def broken_in(path: pathlib.Path, text: str | None = None) -> list[str]:
    """``file:line: reference`` for each reference in ``path`` (or in ``text``, read as if it were ``path``)
    that does not resolve."""
    text = path.read_text() if text is None else text
    out = []
    for line, role, target in references(text):
        if path.is_relative_to(PACKAGE):
            ok = resolves_in_module(module_name(path), text, line, target)
        else:
            ok = resolves_in_script(path, target)
        if not ok:
            out.append(f"{path.relative_to(REPO)}:{line}: " + (f":{role}:`{target}`" if role else f"``{target}``"))
    return out


def test_every_code_reference_resolves():
    broken = [b for path in [*sorted(PACKAGE.rglob("*.py")), *SCRIPTS] for b in broken_in(path)]
    assert not broken, "references to nothing:\n" + "\n".join(broken)


def broken_in_doc(name: str, text: str) -> list[str]:
    """``file:line: reference`` for each path, dotted name or Layout row file in a Markdown ``text`` that is
    missing."""
    out = []

    def where(at):
        return f"{name}:{text.count(chr(10), 0, at) + 1}: "

    for m in DOC_PATH.finditer(text):
        path = m.group(1).rstrip(".,")
        if not (any(REPO.glob(path.rstrip("/"))) if "*" in path else (REPO / path).exists()):
            out.append(where(m.start()) + path)
    for m in DOC_DOTTED.finditer(text):
        if not resolves(m.group(0)):
            out.append(where(m.start()) + m.group(0))
    for row in LAYOUT_ROW.finditer(text):
        folder = REPO / row.group(1)
        for m in BARE_FILE.finditer(row.group(2)):
            if not (folder / m.group(1)).exists():
                out.append(where(row.start()) + f"{row.group(1)}{m.group(1)}")
    return out


def test_every_path_the_docs_name_exists():
    broken = [b for name in DOCS for b in broken_in_doc(name, (REPO / name).read_text())]
    assert not broken, "the docs name what does not exist:\n" + "\n".join(broken)


def test_the_checker_flags_what_does_not_resolve():
    probe = PACKAGE / "reports" / "stats.py"  # read as if this text were appended to it
    good = (":func:`jaxwvae.reports.stats.summary`, :func:`summary`, ``jaxwvae.engine.results``, "
            ":meth:`jaxwvae.config.SweepConfig.validate`, :attr:`jaxwvae.config.SweepConfig.seeds`, "
            ":attr:`jaxwvae.forecast.series.Series.failed`, :func:`the summary <jaxwvae.reports.stats.summary>`")
    bad = [":func:`jaxwvae.nope`", ":func:`nope`", "``jaxwvae.engine.nope``",
           ":meth:`SweepConfig.validate`",  # stats.py has no SweepConfig in its globals
           ":attr:`jaxwvae.forecast.series.Series.nope`"]
    text = probe.read_text() + f'\n"""Good: {good}.\n\nBad: {", ".join(bad)}."""\n'
    broken = broken_in(probe, text)
    assert [b.split(": ", 1)[1] for b in broken] == bad
    line = text.count("\n", 0, text.index("Bad:")) + 1
    assert all(b.startswith(f"jaxwvae/reports/stats.py:{line}: ") for b in broken)
    doc = ("`jaxwvae/engine/plan.py`, `experiments/nope.py`, `jaxwvae.engine.plan`, `jaxwvae.engine.nope`\n"
           "| `jaxwvae/engine/` | `sweep.py` (the run), `nope.py` | all of the above |\n")
    assert broken_in_doc("X.md", doc) == ["X.md:1: experiments/nope.py", "X.md:1: jaxwvae.engine.nope",
                                          "X.md:2: jaxwvae/engine/nope.py"]
