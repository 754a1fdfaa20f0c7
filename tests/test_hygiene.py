"""Rules the test suite keeps, checked on its own sources.

No test module imports another test module: what several of them share lives in
helper modules (tests/helpers.py and the other ``*_helpers.py``) and fixtures in
tests/conftest.py, so that running, moving or deleting one test file never
changes another.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
PACKAGE = TESTS.name


def suite_test_modules() -> set[str]:
    """The names of the test modules (``test_*.py``) of the suite."""
    return {path.stem for path in TESTS.glob("test_*.py")}


def imported_test_modules(source: str, filename: str = "<source>") -> list[tuple[int, str]]:
    """``(line, module)`` for every import in ``source`` of a module of this suite
    named ``test_*``, written absolutely (``tests.test_x``) or relatively
    (``.test_x``, ``from . import test_x``)."""
    found = []
    for node in ast.walk(ast.parse(source, filename=filename)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            sep = "" if base.endswith(".") else "."
            names = [base, *(f"{base}{sep}{alias.name}" for alias in node.names)]
        else:
            continue
        for name in names:
            parts = name.lstrip(".").split(".")
            if not name.startswith(".") and parts[0] == PACKAGE:
                parts = parts[1:]  # tests.test_x
            elif not name.startswith(".") and parts[0] not in suite_test_modules():
                continue  # another package's module
            if parts and parts[0].startswith("test_"):
                found.append((node.lineno, name))
                break
    return found


@pytest.mark.parametrize(
    ("source", "imports_a_test_module"),
    [
        ("from tests.test_slurm import submit", True),
        ("from .test_slurm import submit", True),
        ("from . import test_slurm", True),
        ("from tests import test_slurm", True),
        ("import tests.test_slurm", True),
        ("import test_slurm", True),
        ("def f():\n    from .test_slurm import submit", True),
        ("from .helpers import run", False),
        ("from tests.helpers import test_data", False),
        ("from . import helpers", False),
        ("import pytest", False),
        ("from _pytest import test_like", False),
    ],
)
def test_the_check_finds_imports_of_test_modules(source: str, imports_a_test_module: bool) -> None:
    assert bool(imported_test_modules(source)) is imports_a_test_module


def test_no_test_module_imports_another_test_module() -> None:
    files = sorted(TESTS.glob("*.py"))
    assert Path(__file__).resolve() in files
    offences = [
        f"{path.relative_to(TESTS.parent)}:{line}: imports the test module {name}"
        for path in files
        for line, name in imported_test_modules(path.read_text(encoding="utf-8"), str(path))
    ]
    assert not offences, (
        "a test module is imported; move what is shared to a helper module "
        "(tests/helpers.py, tests/*_helpers.py) or a fixture to tests/conftest.py:\n"
        + "\n".join(offences)
    )
