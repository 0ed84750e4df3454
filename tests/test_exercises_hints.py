"""Hints are graded (idea, then approach, then detail) and never hand over the solving call: no hint
of an implement or attack exercise names a labkit function that the exercise's own reference uses."""
from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import re
import sys

import pytest

import labkit
from labkit import exercises as ex

REGISTRY = ex.registry()
CODE = sorted(i for i, e in REGISTRY.items() if e.kind in ("implement", "attack"))

#: labkit functions a hint may name although the exercise's module uses them: building blocks the
#: student calls inside an answer they still write (never the reference that computes the answer).
BUILDING_BLOCKS = {"weights.dek_aad"}


def _labkit_modules() -> dict[str, object]:
    """Every labkit module by its short name (``gcm``, ``pitfalls``, ...; where two share one, such
    as ``des`` and ``neural.des``, the hint check below looks at both)."""
    modules = {}
    for info in pkgutil.walk_packages(labkit.__path__, "labkit."):
        if ".exercises" in info.name or info.name.endswith(("_kernel", "__main__")):
            continue
        try:
            module = importlib.import_module(info.name)
        except Exception:  # an optional backend that is not installed: nothing to name
            continue
        modules.setdefault(info.name.rsplit(".", 1)[1], []).append(module)
    return modules


MODULES = _labkit_modules()


def _callables(modules) -> set[str]:
    return {n for module in modules for n, v in vars(module).items() if not n.startswith("_")
            and callable(v) and getattr(v, "__module__", "").startswith("labkit")}


def reference_calls(exercise) -> set[tuple[str, str]]:
    """(module short name, function) of every labkit callable the checker of ``exercise`` uses,
    directly or through the module-level helpers it calls (its reference)."""
    module = sys.modules[exercise.checker.__module__]
    tree = ast.parse(inspect.getsource(module))
    aliases, names = {}, {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("labkit"):
            for alias in node.names:
                local = alias.asname or alias.name
                target = getattr(importlib.import_module(node.module), alias.name, None)
                if inspect.ismodule(target):
                    aliases[local] = target
                elif callable(target) and getattr(target, "__module__", "").startswith("labkit"):
                    names[local] = (node.module.rsplit(".", 1)[1], alias.name)
    functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    seen, todo, calls = set(), [exercise.checker.__name__], set()
    while todo:
        name = todo.pop()
        if name in seen or name not in functions:
            continue
        seen.add(name)
        for node in ast.walk(functions[name]):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
                module = aliases[node.value.id]
                if callable(getattr(module, node.attr, None)):
                    calls.add((module.__name__.rsplit(".", 1)[1], node.attr))
            elif isinstance(node, ast.Name):
                if node.id in names:
                    calls.add(names[node.id])
                todo.append(node.id)
    return calls


def _asked_name(exercise) -> str:
    """The function the student writes, when the title starts with one (``round_key(key, ...)``)."""
    match = re.match(r"(?:write |design the delivery: )?(\w+)\(", exercise.title)
    return match.group(1) if match else ""


def test_every_exercise_has_graded_hints():
    for exercise_id, exercise in REGISTRY.items():
        assert len(exercise.hints) >= 2, f"{exercise_id}: an idea, then an approach at least"
        assert len(set(exercise.hints)) == len(exercise.hints), exercise_id


def test_the_scanner_finds_the_references_it_guards():
    # the guard could not fail if it found nothing: these references are known
    assert ("gcm", "ghash") in reference_calls(REGISTRY["04.4"])
    assert ("des", "expand_key") in reference_calls(REGISTRY["02.1"])
    assert ("strategies", "probe_rows") in reference_calls(REGISTRY["06.6"])
    assert ("capstone_design", "attack_design") in reference_calls(REGISTRY["10.5"])


@pytest.mark.parametrize("exercise_id", CODE)
def test_no_hint_names_the_labkit_call_that_solves_the_exercise(exercise_id):
    exercise = REGISTRY[exercise_id]
    text = exercise.hint
    own = _asked_name(exercise)
    for module, name in reference_calls(exercise):
        if name == own:
            continue  # the student's function may share the reference's name
        assert f"{module}.{name}" not in text, (exercise_id, module, name)
        if "_" in name:  # an identifier no prose uses: named bare, it still points at the call
            assert not re.search(rf"\b{re.escape(name)}\b", text), (exercise_id, name)


@pytest.mark.parametrize("exercise_id", CODE)
def test_hints_name_no_labkit_function_but_building_blocks(exercise_id):
    for module, name in re.findall(r"\b(\w+)\.(\w+)\b", REGISTRY[exercise_id].hint):
        if module in MODULES and name in _callables(MODULES[module]):
            assert f"{module}.{name}" in BUILDING_BLOCKS, (exercise_id, f"{module}.{name}")


#: Helpers that hand over an exercise's answer (or rerun the code the notebook just showed): the
#: exercise asks the student to do that step, so neither its hints nor its text in the notebook
#: point at them.
ANSWER_HELPERS = {"10.6": ("unsafe_layout",), "08.5": ("AdaptiveTargetClaimant", "claim_UNSAFE")}


@pytest.mark.parametrize("exercise_id", sorted(ANSWER_HELPERS))
def test_the_student_does_the_step_a_helper_would_do(exercise_id):
    import nbformat

    from labkit import course

    root = __import__("pathlib").Path(__file__).resolve().parent.parent
    texts = [c.source for p in course.notebook_paths(root / "notebooks")
             for c in nbformat.read(p, as_version=4).cells
             if c.cell_type == "markdown" and c.source.startswith(f"**{exercise_id}**")]
    assert len(texts) == 1
    for helper in ANSWER_HELPERS[exercise_id]:
        assert helper not in REGISTRY[exercise_id].hint and helper not in texts[0], helper
