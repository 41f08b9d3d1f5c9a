"""One exception tree: every failure Coalmine raises on purpose is a CoalmineError defined in
schemas/errors.py, and the CLI's one line for a failure the operator can fix comes from there."""

from __future__ import annotations

import ast
import builtins

import pytest

from schemas import errors
from tests.unit.test_layout import modules

BUILTIN_EXCEPTIONS = {
    name for name, value in vars(builtins).items()
    if isinstance(value, type) and issubclass(value, BaseException)
}  # fmt: skip


def test_no_module_but_the_tree_defines_an_exception() -> None:
    elsewhere = []
    for module, path in modules().items():
        if module == "schemas.errors":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                bases = {getattr(base, "id", getattr(base, "attr", "")) for base in node.bases}
                if bases & (BUILTIN_EXCEPTIONS | set(dir(errors))):
                    elsewhere.append(f"{module}.{node.name}")
    assert not elsewhere


def test_every_exception_of_the_tree_is_a_coalmine_error() -> None:
    classes = [v for v in vars(errors).values() if isinstance(v, type)]
    assert len(classes) > 20
    assert all(issubclass(c, errors.CoalmineError) for c in classes)


@pytest.mark.parametrize(
    "exc",
    [errors.SettingsError("COALMINE_ADMIN_TOKEN is unsafe"), errors.LogUnavailable("no broker")],
)
def test_it_describes_a_failure_the_operator_can_fix_in_its_own_words(exc: Exception) -> None:
    assert errors.describe(exc) == str(exc)


@pytest.mark.parametrize(
    "exc", [KeyError("x"), errors.InvalidBatch("bad"), errors.AppendFailed("late")]
)
def test_it_leaves_anything_else_its_traceback(exc: Exception) -> None:
    assert errors.describe(exc) is None


def test_each_failure_keeps_the_builtin_callers_catch() -> None:
    assert issubclass(errors.SettingsError, ValueError)
    assert issubclass(errors.QueryError, ValueError)
    assert issubclass(errors.AppendFailed, RuntimeError)
