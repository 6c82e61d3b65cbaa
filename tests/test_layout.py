"""The package's import rules, read statically (``ast``) from every file of ``src/contrasent``.

The folders are the pipeline, and imports flow one way along it (the table is :data:`ALLOWED`)::

    cli -> training / search / evaluation -> data / losses -> models

``hardware`` (a leaf) and ``_moved`` may be imported from anywhere, the package face ``contrasent`` only
for ``__version__``. Modules import each other by their full path: never through the face
(``from contrasent import SentenceEncoder``), never a sibling through its own folder's ``__init__``, never
by an old path of :data:`contrasent._moved.MOVED`. The module graph, function-local imports included,
has no cycle; imports under ``if TYPE_CHECKING:`` never run, so the cycle check leaves them out (the other
rules do not). Also checked here: importing the config or the face loads no torch.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from contrasent._moved import MOVED

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "contrasent"

# folder -> the other folders its modules may import
ALLOWED: dict[str, set[str]] = {
    "cli": {"training", "search", "evaluation", "data", "losses", "models"},
    "training": {"data", "losses", "models"},
    "search": {"data", "models"},
    "evaluation": {"search", "data", "models"},
    "data": {"models"},
    "losses": set(),
    "models": set(),
}
# top-level modules; the two leaves may be imported from anywhere and import nothing of the package
FACE = "contrasent"
LEAVES = {"contrasent.hardware", "contrasent._moved"}
FACE_NAMES = {"__version__"}

@dataclass(frozen=True)
class Import:
    """One import of a package module: ``names`` are what ``from target import ...`` takes (not modules)."""

    source: str
    target: str
    names: tuple[str, ...]
    line: int
    type_checking: bool

    def __str__(self) -> str:
        taken = f" ({', '.join(self.names)})" if self.names else ""
        return f"{self.source}:{self.line} imports {self.target}{taken}"


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES: dict[str, Path] = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def import_nodes(
    node: ast.AST, type_checking: bool = False,
) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import statement in ``node`` (function bodies included), and whether only type checkers run it."""
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        yield node, type_checking
    elif isinstance(node, ast.If) and is_type_checking(node.test):
        for statement in node.body:
            yield from import_nodes(statement, True)
        for statement in node.orelse:
            yield from import_nodes(statement, type_checking)
    else:
        for child in ast.iter_child_nodes(node):
            yield from import_nodes(child, type_checking)


def resolve(source: str, node: ast.ImportFrom) -> str:
    """The absolute module path of ``from <node.module> import ...`` written in ``source``."""
    if node.level == 0:
        return node.module or ""
    package = source if MODULES[source].name == "__init__.py" else source.rpartition(".")[0]
    base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
    return f"{base}.{node.module}" if node.module else base


def imports_of(source: str) -> list[Import]:
    """The package imports of ``source``.

    ``from P import m`` targets ``P.m`` when that is a module (or an old path), else ``P`` taking ``m``.
    """
    tree = ast.parse(MODULES[source].read_text(encoding="utf-8"))
    found = []
    for node, type_checking in import_nodes(tree):
        targets: dict[str, tuple[str, ...]] = {}
        if isinstance(node, ast.Import):
            targets = {alias.name: () for alias in node.names}
        else:
            module = resolve(source, node)
            for alias in node.names:
                submodule = f"{module}.{alias.name}"
                if submodule in MODULES or submodule in MOVED:
                    targets[submodule] = ()
                else:
                    targets[module] = (*targets.get(module, ()), alias.name)
        found += [Import(source, target, names, node.lineno, type_checking)
                  for target, names in targets.items() if target.split(".")[0] == "contrasent"]
    return found


IMPORTS: list[Import] = [found for source in MODULES for found in imports_of(source)]
CHECKED: list[Import] = IMPORTS


def folder(module: str) -> str | None:
    """The pipeline folder of ``module`` (``models``, ``cli``, ...); None for the top-level modules."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and (PACKAGE / parts[1]).is_dir() else None


def test_every_folder_and_top_level_module_has_a_rule() -> None:
    folders = {path.name for path in PACKAGE.iterdir() if (path / "__init__.py").is_file()}
    assert folders == set(ALLOWED)
    assert {module for module in MODULES if folder(module) is None} == {FACE, *LEAVES}


def test_every_package_import_names_an_existing_module() -> None:
    missing = [str(found) for found in IMPORTS if found.target not in MODULES and found.target not in MOVED]
    assert not missing, "\n".join(missing)


def test_imports_follow_the_pipeline_direction() -> None:
    wrong = []
    for found in CHECKED:
        source, target = folder(found.source), folder(found.target)
        if found.source in LEAVES:
            wrong.append(f"{found}: {found.source} is a leaf and imports nothing of the package")
        elif source is not None and target is not None and target != source and target not in ALLOWED[source]:
            wrong.append(f"{found}: {source}/ may import {sorted(ALLOWED[source]) or 'only itself'}")
    assert not wrong, "\n".join(wrong)


def test_nothing_is_imported_through_a_package_face_or_an_old_path() -> None:
    wrong = []
    for found in CHECKED:
        own_folder = ".".join(found.source.split(".")[:2])
        own_folder_face = found.target == own_folder != found.source
        if found.target in MOVED:
            wrong.append(f"{found}: an old path; import {MOVED[found.target]}")
        elif found.target == FACE and found.source != FACE and (not found.names or set(found.names) - FACE_NAMES):
            wrong.append(f"{found}: through the package face; import from the defining module")
        elif own_folder_face and set(found.names) - defined_in(own_folder):
            wrong.append(f"{found}: a sibling through its folder's __init__; import from the defining module")
    assert not wrong, "\n".join(wrong)


def defined_in(module: str) -> set[str]:
    """The names ``module`` defines itself (assignments, functions, classes), not the ones it imports."""
    names = set()
    for node in ast.parse(MODULES[module].read_text(encoding="utf-8")).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {target.id for target in targets if isinstance(target, ast.Name)}
    return names


def module_graph(imports: list[Import]) -> dict[str, set[str]]:
    """module -> the modules importing it runs: the target, and each of its packages the source is not inside."""
    graph: dict[str, set[str]] = {module: set() for module in MODULES}
    for found in imports:
        if found.type_checking or found.target not in MODULES:
            continue
        parts = found.target.split(".")
        runs = {".".join(parts[:end]) for end in range(2, len(parts) + 1)}
        graph[found.source] |= {module for module in runs
                                if module != found.source and not found.source.startswith(module + ".")}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as ``[a, b, ..., a]``, or None when it is acyclic (depth-first search)."""
    done: set[str] = set()
    for start in sorted(graph):
        if start in done:
            continue
        path, stack = [start], [iter(sorted(graph[start]))]
        while stack:
            following = next(stack[-1], None)
            if following is None:
                done.add(path.pop())
                stack.pop()
            elif following in path:
                return [*path[path.index(following):], following]
            elif following not in done:
                path.append(following)
                stack.append(iter(sorted(graph[following])))
    return None


def test_the_module_graph_has_no_cycle() -> None:
    cycle = find_cycle(module_graph(CHECKED))
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_finder_finds_a_cycle_through_a_function_local_import() -> None:
    lazy_back = Import("contrasent.models.hub", "contrasent.models.encoder", (), 1, type_checking=False)
    forward = Import("contrasent.models.encoder", "contrasent.models.hub", (), 1, type_checking=False)
    assert find_cycle(module_graph([lazy_back, forward])) == [
        "contrasent.models.encoder", "contrasent.models.hub", "contrasent.models.encoder"]
    only_for_types = Import("contrasent.models.hub", "contrasent.models.encoder", (), 1, type_checking=True)
    assert find_cycle(module_graph([only_for_types, forward])) is None


def test_importing_a_module_runs_the_packages_around_it() -> None:
    graph = module_graph([Import("contrasent.evaluation.retrieval", "contrasent.search.topk", (), 1, False)])
    assert graph["contrasent.evaluation.retrieval"] == {"contrasent.search", "contrasent.search.topk"}


def test_the_face_loads_each_public_name_from_its_defining_module() -> None:
    import contrasent

    assert set(contrasent._LAZY) | FACE_NAMES == set(contrasent.__all__)
    for name, module in contrasent._LAZY.items():
        assert getattr(contrasent, name).__module__ == module, name


@pytest.mark.parametrize("statement", [
    "import contrasent",
    "import contrasent.models.config",
    "from contrasent import EncoderConfig; EncoderConfig(pooling='cls').replace(head=True).to_json_string()",
], ids=["face", "config", "EncoderConfig-used"])
def test_settings_load_without_torch(statement: str) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    code = f"import sys; {statement}; print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], check=False, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
