"""Imports point down the layers: cli > features > execution > store > model.

Every module of the package is parsed with :mod:`ast`; every import of an
autojob module (at module level, inside functions, under ``TYPE_CHECKING``,
absolute or relative) is mapped to its layer through :data:`LAYERS`. A module
may import its own layer and the layers below it. The one exception is
:data:`SEED_METHODS`: the models' seed methods (``from_directory``,
``to_directory``, ``write_inputs``) read and write their directories through
the store, by function-level imports named there one by one.
"""

from __future__ import annotations

import ast
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "autojob"

#: The layers, lowest first, and the modules (or packages) each holds. A module
#: belongs to the layer of the longest name here that it is, or lies inside.
#: A new module outside every package named here must be added.
LAYERS: dict[str, tuple[str, ...]] = {
    "model": (
        "autojob",  # the package itself: SETTINGS and the version
        "autojob.__about__",
        "autojob.bases",
        "autojob.tasks",
        "autojob.study",
        "autojob.study_group",
        "autojob.task_group",
        "autojob.workflow",
        "autojob.sweep",
        "autojob.scheduler",
        "autojob.input_keys",
        "autojob.settings",
        "autojob.errors",
        "autojob.ids",
        "autojob.timefmt",
        "autojob.plugins",
    ),
    # the on-disk format: paths, atomic writes, reading and writing trees,
    # discovery, task state, locks, rendering scripts
    "store": ("autojob.store",),
    "execution": ("autojob.execution",),
    "features": (
        "autojob.create",
        "autojob.next",
        "autojob.harvest",
        "autojob.datasets",
        "autojob.report",
    ),
    "cli": ("autojob.cli",),
}
RANK = {layer: rank for rank, layer in enumerate(LAYERS)}

#: The only imports that point upward: a model's seed method and the store
#: module it reads or writes its directory with.
SEED_METHODS: dict[tuple[str, str], str] = {
    ("autojob.bases.task_base", "TaskBase.from_directory"): "autojob.store.load",
    ("autojob.bases.task_base", "TaskBase.write_inputs"): "autojob.store.write",
    ("autojob.task_group", "TaskGroup.from_directory"): "autojob.store.load",
    ("autojob.study", "Study.from_directory"): "autojob.store.load",
    ("autojob.study", "Study.to_directory"): "autojob.store.write",
    ("autojob.study_group", "StudyGroup.from_directory"): "autojob.store.load",
    ("autojob.study_group", "StudyGroup.to_directory"): "autojob.store.write",
}


@dataclass(frozen=True)
class Import:
    """One import of an autojob module."""

    module: str  # the importing module
    path: Path
    line: int
    scope: str  # the enclosing class and function names, dotted ("" at module level)
    imported: str


@dataclass(frozen=True)
class Violation:
    """An import that points upward."""

    module: str
    line: int
    imported: str

    def __str__(self) -> str:
        return (
            f"{self.module} (line {self.line}, {layer_of(self.module)}) imports "
            f"{self.imported} ({layer_of(self.imported)})"
        )


def layer_of(module: str) -> str:
    """The layer of ``module``, by the longest entry of :data:`LAYERS` holding it."""
    best, found = -1, ""
    for layer, names in LAYERS.items():
        for name in names:
            if (module == name or module.startswith(name + ".")) and len(name) > best:
                best, found = len(name), layer
    if not found:
        pytest.fail(f"{module} belongs to no layer: add it to LAYERS in {__file__}")
    return found


def module_names(package: Path) -> dict[str, Path]:
    """Every module of the package in ``package``, by its dotted name."""
    found = {}
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


class _Imports(ast.NodeVisitor):
    """Collects the autojob imports of one module with their scopes."""

    def __init__(self, module: str, path: Path, modules: dict[str, Path]) -> None:
        self.module = module
        self.path = path
        self.modules = modules
        self.is_package = path.name == "__init__.py"
        self.scope: list[str] = []
        self.found: list[Import] = []

    def _scoped(self, node: ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.scope.append(node.name)
        self.generic_visit(node)
        self.scope.pop()

    visit_ClassDef = visit_FunctionDef = visit_AsyncFunctionDef = _scoped  # noqa: N815

    def _add(self, node: ast.stmt, imported: str) -> None:
        if imported == "autojob" or imported.startswith("autojob."):
            scope = ".".join(self.scope)
            self.found.append(Import(self.module, self.path, node.lineno, scope, imported))

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(node, alias.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = self._base(node)
        for alias in node.names:
            submodule = f"{base}.{alias.name}"
            self._add(node, submodule if submodule in self.modules else base)

    def _base(self, node: ast.ImportFrom) -> str:
        """The module ``from X import ...`` names, relative imports resolved."""
        if not node.level:
            return node.module or ""
        parts = self.module.split(".")
        keep = len(parts) - node.level + (1 if self.is_package else 0)
        base = ".".join(parts[:keep])
        return f"{base}.{node.module}" if node.module else base


def find_imports(package: Path) -> list[Import]:
    """Every import of an autojob module in the package in ``package``."""
    modules = module_names(package)
    found = []
    for module, path in modules.items():
        visitor = _Imports(module, path, modules)
        visitor.visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
        found.extend(visitor.found)
    return found


def _allowed(item: Import) -> bool:
    return SEED_METHODS.get((item.module, item.scope)) == item.imported


def upward_imports(package: Path) -> list[Violation]:
    """The imports in ``package`` that point to a higher layer, except the seed methods'."""
    return [
        Violation(item.module, item.line, item.imported)
        for item in find_imports(package)
        if RANK[layer_of(item.imported)] > RANK[layer_of(item.module)] and not _allowed(item)
    ]


def test_imports_point_down_the_layers() -> None:
    violations = upward_imports(PACKAGE)
    assert not violations, "imports pointing upward:\n" + "\n".join(map(str, violations))


def test_every_module_has_a_layer() -> None:
    for module in module_names(PACKAGE):
        assert layer_of(module) in LAYERS


def test_every_seed_method_allowed_is_used() -> None:
    used = {(i.module, i.scope, i.imported) for i in find_imports(PACKAGE)}
    stale = [key for key, target in SEED_METHODS.items() if (*key, target) not in used]
    assert not stale, f"SEED_METHODS names imports that no longer exist: {stale}"


# -- the check can fail -----------------------------------------------------------

APPENDED = {
    "module level": ("store/atomic.py", "from autojob.execution import claims\n"),
    "relative": ("store/atomic.py", "from ..execution import claims\n"),
    "type checking": (
        "store/atomic.py",
        "import typing\nif typing.TYPE_CHECKING:\n    from autojob.execution import claims\n",
    ),
    "in a function": (
        "execution/claims.py",
        "def _late() -> None:\n    from autojob.harvest import harvesting\n",
    ),
}
IMPORTED = {
    "module level": "autojob.execution.claims",
    "relative": "autojob.execution.claims",
    "type checking": "autojob.execution.claims",
    "in a function": "autojob.harvest.harvesting",
}


@pytest.mark.parametrize("case", sorted(APPENDED))
def test_an_upward_import_is_reported(tmp_path: Path, case: str) -> None:
    copy = tmp_path / "autojob"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    relpath, text = APPENDED[case]
    target = copy / relpath
    before = target.read_text(encoding="utf-8")
    target.write_text(before + text, encoding="utf-8")
    line = before.count("\n") + text.count("\n")  # the import is the last line added
    module = "autojob." + relpath.removesuffix(".py").replace("/", ".")
    assert upward_imports(copy) == [Violation(module, line, IMPORTED[case])]


def test_a_seed_method_may_not_reach_above_the_store(tmp_path: Path) -> None:
    copy = tmp_path / "autojob"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    study = copy / "study.py"
    text = study.read_text(encoding="utf-8")
    seed_import = "        from autojob.store.write import write_study  # noqa: PLC0415\n"
    assert seed_import in text
    study.write_text(text.replace(seed_import, seed_import.replace("store", "next")), "utf-8")
    line = text[: text.index(seed_import)].count("\n") + 1
    assert upward_imports(copy) == [Violation("autojob.study", line, "autojob.next.write")]
