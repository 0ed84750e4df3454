"""One exception per concept: no two exception classes in labkit share a name (issue 14 found two
``AuthenticationError``s, the GCM tag failure and the capstone's login check, meaning different
things). Read from the source with ast, so a class defined anywhere in the package counts."""
from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "labkit"
EXCEPTION_BASES = {"Exception", "BaseException", "ValueError", "TypeError", "RuntimeError",
                   "KeyError", "LookupError", "ArithmeticError", "OSError", "Warning", "UserWarning"}


def exception_classes(sources: dict[str, str]) -> dict[str, list[str]]:
    """``{class name: [module, ...]}`` for every class that derives (within the given sources)
    from a built-in exception or warning."""
    bases, where = {}, defaultdict(list)
    for module, text in sources.items():
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ClassDef):
                names = {b.attr if isinstance(b, ast.Attribute) else getattr(b, "id", "") for b in node.bases}
                bases.setdefault(node.name, set()).update(names)
                where[node.name].append(module)

    def is_exception(name, seen=()):
        if name in EXCEPTION_BASES:
            return True
        return name not in seen and any(is_exception(b, seen + (name,)) for b in bases.get(name, ()))

    return {name: modules for name, modules in where.items() if is_exception(name)}


def test_exception_names_are_unique():
    sources = {str(p.relative_to(ROOT.parent)): p.read_text() for p in sorted(ROOT.rglob("*.py"))}
    found = exception_classes(sources)
    assert {"AuthenticationError", "ApiTokenRejected", "IntegrityError", "PaddingError"} <= set(found)
    duplicates = {name: modules for name, modules in found.items() if len(modules) > 1}
    assert not duplicates, f"one exception per concept: {duplicates}"


def test_the_check_finds_a_duplicate_through_a_base_class():
    """The attacker's test of the check: a second AuthenticationError derived from a local base."""
    found = exception_classes({
        "a.py": "class AuthenticationError(Exception):\n    pass\n",
        "b.py": "class ServiceError(RuntimeError):\n    pass\n"
                "class AuthenticationError(ServiceError):\n    pass\n",
        "c.py": "class Helper:\n    pass\n",
    })
    assert found["AuthenticationError"] == ["a.py", "b.py"] and "Helper" not in found
