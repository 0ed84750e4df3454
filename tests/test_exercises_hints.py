"""Hints are graded (idea, then approach, then detail) and never hand over the solving call: no hint
of an implement or attack exercise names a labkit function that the exercise's own reference uses."""
from __future__ import annotations

import importlib
import inspect
import pkgutil
import re

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


def _code_names(code) -> set[str]:
    """Every global or attribute name a function's code (and the code nested in it) uses."""
    names = set(code.co_names)
    for const in code.co_consts:
        if inspect.iscode(const):
            names |= _code_names(const)
    return names


def _roots(exercise) -> list:
    """The functions that compute an exercise's answer: its spec's parts, or its checker."""
    spec = exercise.spec
    if spec is None:
        return [exercise.checker]
    return [f for f in (spec.reference, spec.draw, spec.checker) if f is not None]


def reference_calls(exercise) -> set[tuple[str, str]]:
    """(module short name, function) of every labkit callable the reference or checker of
    ``exercise`` uses, directly or through the chapter module's helpers it calls."""
    calls, seen, todo = set(), set(), _roots(exercise)
    while todo:
        function = todo.pop()
        if id(function) in seen:
            continue
        seen.add(id(function))
        home = getattr(function, "__module__", "") or ""
        if home.startswith("labkit") and ".exercises" not in home:
            calls.add((home.rsplit(".", 1)[1], function.__name__))  # the reference is a labkit function
            continue
        code = getattr(function, "__code__", None)
        if code is None:
            continue
        names = _code_names(code)
        for name in names:
            value = function.__globals__.get(name)
            if inspect.ismodule(value) and value.__name__.startswith("labkit"):
                for attribute in names:
                    target = getattr(value, attribute, None)
                    if callable(target) and getattr(target, "__module__", "").startswith("labkit"):
                        calls.add((value.__name__.rsplit(".", 1)[1], attribute))
            elif callable(value) and getattr(value, "__module__", "").startswith("labkit"):
                if ".exercises" in value.__module__:
                    todo.append(value)  # a helper of the chapter module: follow it
                else:
                    calls.add((value.__module__.rsplit(".", 1)[1], name))
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
