"""Grade a submitted notebook without running it: implement exercises in a sandbox, the rest by receipts.

A submission is a file, not a process: the grader reads it and never executes it, so nothing a
student's kernel did (patching ``ex.check``, ``Feedback.__bool__``, the registry, the files of
labkit, swallowing assertions) reaches a grade.

- **Implement and design exercises** (those with a FunctionSpec): the graded cell's source, without its
  ``ex.check`` lines and with only the import statements of the notebook's first code cell that it
  uses, runs in a :class:`~labkit.grading.sandbox.Sandbox`; the exercise's
  :class:`~labkit.exercises.FunctionSpec` then checks the sandboxed function from here, on fresh
  random inputs, comparing plain data. A graded cell must therefore be self-contained: its
  definitions in the cell, its modules imported in the first cell.
- **Every other exercise** is graded by a receipt of the challenge service
  (:mod:`labkit.challenges.receipts`): the answer cell printed it when the service accepted the
  answer; it counts only if it verifies under the course's pinned service key, for this student
  and this exercise. A copied, edited or forged receipt earns nothing.
"""
from __future__ import annotations

import ast
import logging
import re
from dataclasses import dataclass
from typing import Any, Iterable

from labkit import exercises
from labkit.challenges import receipts
from labkit.grading import scope
from labkit.grading.sandbox import LEFT_OUT, ConfinementError, Limits, Sandbox, SandboxError, StudentError

__all__ = ["Verdict", "RECEIPT_PATTERN", "graded_source", "notebook_imports", "needed_imports", "find_receipts",
           "sandbox_for", "grade_implement", "grade_receipt", "grade_exercise", "checks_of_test_cell"]

#: A receipt as it appears in a cell's output or source (labkit.challenges.receipts.PREFIX).
RECEIPT_PATTERN = re.compile(re.escape(receipts.PREFIX) + r"\.[A-Za-z0-9_-]{1,1500}\.[A-Za-z0-9_-]{1,200}")


@dataclass(frozen=True)
class Verdict:
    """The grade of one exercise: correct or not, why, and how it was decided."""

    exercise: str
    correct: bool
    message: str
    how: str  # "sandbox" or "receipt"
    confinement: str = ""  # for a sandbox verdict: what confined the graded cell

    def __str__(self) -> str:
        return f"[{self.exercise}] {'Correct' if self.correct else 'Not yet'} ({self.how}): {self.message}"


def _code_only(source: str) -> str:
    """A cell's source without IPython magics and shell escapes (which are not Python)."""
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())


def _is_ex_call(statement: ast.stmt) -> bool:
    call = statement.value if isinstance(statement, ast.Expr) else None
    while isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id in ("print", "display") \
            and call.args:
        call = call.args[0]
    return isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) \
        and isinstance(call.func.value, ast.Name) and call.func.value.id == "ex"


def graded_source(source: str) -> str:
    """What the sandbox runs of a graded cell: its source without the top-level ``ex.check`` /
    ``ex.hint`` lines (the self-check belongs to the kernel) and without magics.
    ``SyntaxError`` if the rest is not Python."""
    tree = ast.parse(_code_only(source))
    tree.body = [s for s in tree.body if not _is_ex_call(s)]
    return ast.unparse(tree)


def _left_out(module: str) -> bool:
    parts = module.split(".")
    return parts[0] == "labkit" and len(parts) > 1 and parts[1] in LEFT_OUT


def notebook_imports(cells: Iterable[Any]) -> list[tuple[str, set[str]]]:
    """The top-level import statements of the notebook's first code cell, as ``(source, names it
    binds)``, leaving out what the sandbox does not have (the checks, the challenge handles, the grader)."""
    first = next((c for c in cells if c.get("cell_type") == "code"
                  and c.get("metadata", {}).get("nbgrader", {}).get("grade_id") != "autograder-setup"), None)
    if first is None:
        return []
    try:
        tree = ast.parse(_code_only(first.get("source", "")))
    except SyntaxError:
        return []
    found = []
    for statement in tree.body:  # one statement per name: a module that fails leaves the others bound
        if isinstance(statement, ast.Import):
            for alias in statement.names:
                if not _left_out(alias.name):
                    found.append((ast.unparse(ast.Import(names=[alias])), {alias.asname or alias.name.split(".")[0]}))
        elif isinstance(statement, ast.ImportFrom) and not statement.level and not _left_out(statement.module or ""):
            for alias in statement.names:
                if alias.name != "*" and not _left_out(f"{statement.module}.{alias.name}"):
                    found.append((ast.unparse(ast.ImportFrom(module=statement.module, names=[alias], level=0)),
                                  {alias.asname or alias.name}))
    return found


def needed_imports(imports: list[tuple[str, set[str]]], cell: str) -> list[str]:
    """The import statements whose names the graded cell uses (so the sandbox imports no more)."""
    used = {n.id for n in ast.walk(ast.parse(cell)) if isinstance(n, ast.Name)}
    return [source for source, names in imports if names & used]


def checks_of_test_cell(source: str) -> list[tuple[str, str]]:
    """``(exercise id, answer expression)`` of each ``assert _grader_check("NN.k", expr)`` line of
    a locked autograder test cell (``labkit-nbgrader-course`` writes them)."""
    found = []
    for statement in ast.parse(source).body:
        test = statement.test if isinstance(statement, ast.Assert) else None
        if isinstance(test, ast.Call) and len(test.args) == 2 and isinstance(test.args[0], ast.Constant) \
                and isinstance(test.args[0].value, str):
            found.append((test.args[0].value, ast.get_source_segment(source, test.args[1])))
    return found


def find_receipts(cells: Iterable[Any]) -> list[str]:
    """Every receipt-shaped string in the cells' outputs and sources (where it came from does not
    matter: a receipt is bound to its student and exercise by the service's signature)."""
    found: list[str] = []

    def scan(text: Any) -> None:
        if isinstance(text, list):
            text = "".join(str(t) for t in text)
        if isinstance(text, str):
            for match in RECEIPT_PATTERN.findall(text):
                if match not in found and len(found) < 1000:
                    found.append(match)

    for cell in cells:
        scan(cell.get("source", ""))
        for output in cell.get("outputs", []) or []:
            scan(output.get("text", ""))
            for value in (output.get("data") or {}).values():
                scan(value)
    return found


def grade_receipt(exercise_id: str, found: Iterable[str], *, public_key: bytes | None, student: str) -> Verdict:
    """Correct if one of the ``found`` receipts verifies for ``student`` and ``exercise_id`` under
    the service's ``public_key`` (raw 32 bytes); nothing else counts."""
    if not public_key:
        return Verdict(exercise_id, False, "no challenge service key is configured for this course, so no "
                                           "receipt can be verified", "receipt")
    problems = set()
    for text in found:
        try:
            receipt = receipts.verify_receipt(text, bytes(public_key), student=student, exercise=exercise_id)
        except receipts.ReceiptError as err:
            problems.add(str(err))
            continue
        return Verdict(exercise_id, True, f"receipt of the challenge service ({receipt.attempts} attempt(s))",
                       "receipt")
    relevant = sorted(p for p in problems if "another exercise" not in p)
    why = f" ({'; '.join(relevant)})" if relevant else ""
    return Verdict(exercise_id, False, f"no valid receipt of the challenge service for this exercise{why}",
                   "receipt")


def sandbox_for(exercise_id: str, cell: str, answer: str, *, imports: tuple[str, ...] = (),
                limits: Limits = Limits()) -> Sandbox:
    """The (unstarted) sandbox that grades ``exercise_id``: its labkit holds only the exercise's
    scope (labkit.grading.scope) without the reference and its equivalents, and the cryptographic
    libraries only where the exercise builds on them."""
    spec = exercises.registry()[exercise_id].spec
    held = scope.scope_of(exercise_id)
    return Sandbox(cell, answer, imports=imports, hide=tuple(spec.hide) + held.cut, export=spec.export,
                   limits=limits, keep=held.modules, deny=() if held.crypto else scope.CRYPTO_LIBRARIES)


def grade_implement(exercise_id: str, cell: str, answer: str, *, imports: list[tuple[str, set[str]]] = (),
                    limits: Limits = Limits()) -> Verdict:
    """Run the graded cell in a sandbox and check its function with the exercise's spec.

    Raises :class:`~labkit.grading.sandbox.ConfinementError` (no verdict) where the kernel offers
    no Landlock or seccomp and ``limits.allow_unconfined`` is off: a machine fault is not a grade."""
    spec = exercises.registry()[exercise_id].spec
    try:
        source = graded_source(cell)
        needed = needed_imports(list(imports), source)
    except SyntaxError as err:
        return Verdict(exercise_id, False, f"the graded cell is not valid Python ({err.msg}, line {err.lineno})",
                       "sandbox")
    box = sandbox_for(exercise_id, source, answer, imports=tuple(needed), limits=limits)
    try:
        with box:
            confinement = box.describe_confinement()
            if not box.confined:
                logging.getLogger("labkit.grading").warning("grading %s UNCONFINED: %s", exercise_id, confinement)
            candidate = box.answer()
            if spec.rebuild is not None:
                candidate = exercises._function(spec.rebuild)(candidate)
            result = spec.run(candidate)
    except ConfinementError:
        raise
    except StudentError as err:
        return _sandbox_verdict(exercise_id, False, f"the graded cell raised {err.kind}: {err} (run on its own, "
                                "with the first cell's imports)" + _missing(box), box)
    except SandboxError as err:
        return _sandbox_verdict(exercise_id, False, str(err), box)
    except Exception as err:  # a malformed answer (e.g. a circuit description that is not one)
        return _sandbox_verdict(exercise_id, False, f"could not check the answer ({type(err).__name__}: {err})",
                                box)
    ok, message = result if isinstance(result, tuple) else (bool(result), "")
    message = message or ("correct" if ok else "not correct")
    return _sandbox_verdict(exercise_id, bool(ok), message if ok else message + _missing(box), box)


def _missing(box: Sandbox) -> str:
    """Which of the notebook's imports the sandbox does not offer this exercise (they hold its answer)."""
    if not box.import_problems:
        return ""
    return "; not available to this exercise's graded cell: " + "; ".join(box.import_problems)[:600]


def _sandbox_verdict(exercise_id: str, correct: bool, message: str, box: Sandbox) -> Verdict:
    """A sandbox verdict; one graded without kernel confinement says so in its message."""
    if box.confinement and not box.confined:
        message += f" [graded WITHOUT kernel confinement: {box.describe_confinement()}]"
    return Verdict(exercise_id, correct, message, "sandbox", box.describe_confinement() if box.confinement else "")


def grade_exercise(exercise_id: str, *, cell: str, answer: str, imports: list[tuple[str, set[str]]] = (),
                   found_receipts: Iterable[str] = (), public_key: bytes | None = None, student: str = "",
                   limits: Limits = Limits()) -> Verdict:
    """One exercise of a submission: in the sandbox if it is an implement exercise, else by receipt."""
    try:
        spec = exercises.registry()[exercise_id].spec
    except KeyError:
        return Verdict(exercise_id, False, "unknown exercise", "none")
    if spec is not None:  # implement and design exercises: the student's code, checked in the sandbox
        return grade_implement(exercise_id, cell, answer, imports=imports, limits=limits)
    return grade_receipt(exercise_id, found_receipts, public_key=public_key, student=student)
