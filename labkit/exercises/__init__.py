"""Exercise checks: immediate feedback for students; hints only when asked, never a solution.

``ex.check`` runs in the student's own kernel, so it is a quick self-check and nothing more: code
in the same process can change any verdict. Grades come from outside that process
(DESIGN.md, "The trust boundary"): implement exercises from :mod:`labkit.grading`, which runs the
same :class:`FunctionSpec` against the graded cell in a sandbox, the others from the challenge
service's signed receipts.

Each chapter registers its exercises in a module of this package (``ch01_feistel.py``, ...) with
:func:`exercise`. In a notebook::

    from labkit import exercises as ex
    ex.check("01.1", my_answer)     # prints "Correct" or "Not yet", returns True/False
    ex.hint("01.1")                  # the next hint level: the idea first, then the approach
    ex.solution("01.1")              # where the worked solution is: the instructor notebook

Checkers compute the expected answer with labkit itself (never a stored constant), so a check
cannot drift from the code it teaches. Attack, quiz and value answers are judged by the challenge
service (:mod:`labkit.challenges`, a separate process that holds the secrets, budgets and quiz
answers): it returns the verdict and, for a right answer, a receipt signed with its key, which
the check prints so that it stays in the answer cell's output for grading; so are the security
games, whose challengers the service hosts while the adversary runs here
(:mod:`labkit.exercises.game_checks`). Implement exercises are checked here, in the kernel: a quick
self-check only, with no receipt (graders run the graded cell elsewhere). Solutions are not
stored here (students can read labkit): they live only in the instructor notebooks, between
``### BEGIN SOLUTION`` and ``### END SOLUTION``, which the student copies (``make student``)
leave out.
"""
from __future__ import annotations

import ast
import dis
import functools
import html
import importlib
import os
import pkgutil
import random
import sysconfig
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from labkit import plain, progress
from labkit.challenges import client, wire

__all__ = ["Exercise", "exercise", "implement", "FunctionSpec", "check", "hint", "solution", "registry",
           "Registry", "get_exercise", "Feedback", "KINDS", "WHERE", "check_function", "Hint", "answers_fault"]

#: What an exercise asks for: code to write, an attack to run, a system to design (and defend),
#: an adversary to play a security game with, a value to compute, a concept question.
KINDS = ("implement", "attack", "design", "game", "value", "quiz")

#: Where an exercise is done: in the class session (its unit's at most 45 minutes, see
#: labkit-unit-timing) or as homework (the unit's graded nbgrader assignment).
WHERE = ("class", "homework")


@dataclass(frozen=True)
class Exercise:
    """One exercise: an id like ``"02.3"``, a one-line task, a checker, graded hints, a kind."""

    id: str
    title: str
    checker: Callable[[Any], bool | tuple[bool, str]]
    hints: tuple[str, ...]
    kind: str = "value"
    where: str = "class"
    remote: bool = False  # the checker itself asks the challenge service (attack, quiz, 09.5)
    #: An implement exercise's parts as data (:class:`FunctionSpec`): what the self-check here and
    #: the grader's sandbox (labkit.grading) both run.
    spec: Any = None

    @property
    def hint(self) -> str:
        """Every hint level, in order (what a student sees after asking for all of them)."""
        return "\n".join(self.hints)


@dataclass(frozen=True)
class Hint:
    """What :func:`hint` returns: one level of an exercise's hints; renders as a note in Jupyter."""

    exercise_id: str
    level: int
    levels: int
    text: str

    def __str__(self) -> str:
        more = (f' (ex.hint("{self.exercise_id}") again for the next level)'
                if self.level < self.levels else " (the last level)")
        return f"[{self.exercise_id}] Hint {self.level} of {self.levels}: {self.text}{more}"

    __repr__ = __str__

    def _repr_html_(self) -> str:
        return f'<div style="color:#0b5cad">💡 {html.escape(str(self))}</div>'


@dataclass(frozen=True)
class Feedback:
    """What :func:`check` returns: truthy when correct; renders as a coloured line in Jupyter."""

    exercise_id: str
    correct: bool
    message: str
    receipt: str | None = None  # the service's signed receipt for a right answer (graders verify it)

    def __bool__(self) -> bool:
        return self.correct

    def __str__(self) -> str:
        mark = "Correct" if self.correct else "Not yet"
        return f"[{self.exercise_id}] {mark}: {self.message}"

    __repr__ = __str__

    def _repr_html_(self) -> str:
        colour = "#1a7f37" if self.correct else "#b35900"
        icon = "✔" if self.correct else "✘"
        return (
            f'<div style="color:{colour};font-weight:600">{icon} [{html.escape(self.exercise_id)}] '
            f'{"Correct" if self.correct else "Not yet"}: {html.escape(self.message)}</div>'
        )


#: What :func:`check` says to the placeholder answer (``...`` or ``None``).
NOT_ANSWERED = "not answered yet: replace the ... with your answer (or write the body of the function)."

_REGISTRY: dict[str, Exercise] = {}


def exercise(id: str, title: str, *, hint: str | Sequence[str], where: str, kind: str = "value",
             remote: bool = False):
    """Decorator registering ``checker(answer) -> bool | (bool, message)`` as exercise ``id``.

    ``hint`` is a sequence of levels, the idea first, then the approach; no level may give the
    answer or a ready-made call. ``where`` (required) is ``"class"`` or ``"homework"``: the notebook
    shows it beside the exercise, the instructor notes time the class part with it, and the homework
    is the unit's graded assignment. ``remote=True``: the checker asks the challenge service and
    returns ``(ok, message, receipt)``. A value exercise without it is sent to the service, which
    runs this checker in its own process on the plain-data answer.
    """
    if kind not in KINDS:
        raise ValueError(f"exercise kind must be one of {KINDS}, got {kind!r}")
    if where not in WHERE:
        raise ValueError(f"exercise {id!r}: where must be one of {WHERE}, got {where!r}")
    hints = (hint,) if isinstance(hint, str) else tuple(hint)
    if not hints or not all(isinstance(h, str) and h.strip() for h in hints):
        raise ValueError(f"exercise {id!r}: hints must be non-empty strings")

    def register(checker):
        if id in _REGISTRY:
            raise ValueError(f"exercise {id!r} is registered twice")
        _REGISTRY[id] = Exercise(id, title, checker, hints, kind=kind, where=where, remote=remote)
        return checker

    return register


#: The calls that register an exercise in a chapter module, with the id as first argument.
_REGISTERING_CALLS = frozenset({"exercise", "implement", "quiz"})


@functools.cache
def _chapter_modules() -> dict[str, str]:
    """Exercise id -> the chapter module that registers it, read from the chapter modules' source.

    The ids are written once, in the registering calls (``exercise("02.3", ...)``,
    ``implement(...)``, ``quiz(...)``); reading them with :mod:`ast` lets the registry list every
    exercise without importing a chapter module, so a unit imports only the chapters it checks.
    """
    found: dict[str, str] = {}
    for info in pkgutil.iter_modules(__path__):
        module = f"{__name__}.{info.name}"
        path = Path(__path__[0]) / f"{info.name}.py"
        if not path.is_file():
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if not (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
                    and isinstance(node.args[0].value, str)):
                continue
            name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
            if name in _REGISTERING_CALLS:
                exercise_id = node.args[0].value
                if found.setdefault(exercise_id, module) != module:
                    raise RuntimeError(f"exercise {exercise_id!r} is registered in {found[exercise_id]} "
                                       f"and in {module}")
    return found


def get_exercise(exercise_id: str) -> Exercise:
    """The exercise ``exercise_id``, importing its chapter module on first use."""
    if exercise_id not in _REGISTRY:
        module = _chapter_modules().get(exercise_id)
        if module is None:
            known = ", ".join(sorted(_chapter_modules())) or "none"
            raise ValueError(f"unknown exercise {exercise_id!r}; known: {known}")
        importlib.import_module(module)
        if exercise_id not in _REGISTRY:
            raise RuntimeError(f"{module} names exercise {exercise_id!r} but did not register it")
    return _REGISTRY[exercise_id]


class Registry(Mapping):
    """Every exercise by id, as a read-only mapping whose entries load on demand.

    The ids come from the chapter modules' source (:func:`_chapter_modules`); looking up an entry
    imports only that exercise's chapter module. So listing the ids (the progress view of unit 00)
    imports no chapter, and ``dict(registry())`` imports them all.
    """

    def __getitem__(self, exercise_id: str) -> Exercise:
        if exercise_id not in _chapter_modules():
            raise KeyError(exercise_id)
        return get_exercise(exercise_id)

    def __iter__(self) -> Iterator[str]:
        return iter(_chapter_modules())

    def __len__(self) -> int:
        return len(_chapter_modules())

    def __contains__(self, exercise_id: object) -> bool:
        return exercise_id in _chapter_modules()

    def __repr__(self) -> str:
        return f"<exercise registry: {len(self)} exercises, {len(_REGISTRY)} loaded>"


def registry() -> Registry:
    """All exercises by id (a read-only mapping; a lookup loads that exercise's chapter)."""
    return Registry()


#: Where labkit and the installed libraries live: code elsewhere (a notebook cell, a test) is the
#: student's, for telling a student's error from a checker's bug.
_LIBRARY_DIRS = tuple(sorted({os.path.realpath(d) + os.sep for d in (
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))),  # labkit/
    *(sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")),
)}))


def _is_library_code(filename: str) -> bool:
    return filename.startswith("<frozen") or os.path.realpath(filename).startswith(_LIBRARY_DIRS)


def answers_fault(err: Exception, checker: Callable) -> bool:
    """True when ``err`` is the answer's fault, not a bug of the checker.

    The answer's fault: a refusal on purpose, that is a ``TypeError`` or ``ValueError`` (how labkit
    and Python refuse an input of the wrong type or value, an answer of the wrong shape included)
    or one of labkit's own exceptions (a query budget exceeded, an integrity failure, the
    challenge service's answer); or any error raised in the student's own code (the innermost
    frame is neither labkit's, an installed library's nor the checker's). Anything else raised
    in labkit or a library (``NameError``, ``AttributeError``, ``KeyError``, ``IndexError``, ...)
    is a bug in the check, and must be seen as one.
    """
    if isinstance(err, (TypeError, ValueError)) or type(err).__module__.split(".")[0] == "labkit":
        return True
    tb = err.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return False
    code = tb.tb_frame.f_code
    return code is not getattr(checker, "__code__", None) and not _is_library_code(code.co_filename)


def check(exercise_id: str, answer: Any) -> Feedback:
    """Check ``answer`` for an exercise: a clear "Correct" or "Not yet".

    A quick self-check in the student's kernel, not a grade (see the module's docstring). An
    answer that raises (the student's function failing, an answer of the wrong shape refused)
    gets a "Not yet" naming the error; a bug in the checker itself is raised as it is, with its
    traceback, so that it is seen and fixed rather than taken for the student's mistake.

    ``...`` (Ellipsis, the placeholder of the student copies) or ``None`` is "not answered yet"
    and gets no hint. A check never shows the hint or the solution: hints come only when asked
    for with :func:`hint`.
    """
    ex = get_exercise(exercise_id)
    if answer is Ellipsis or answer is None or is_stub(answer):
        return Feedback(ex.id, False, NOT_ANSWERED)
    ask = f'(ex.hint("{ex.id}") gives a hint)'
    try:
        result = _served_value(ex, answer) if ex.kind == "value" and not ex.remote else ex.checker(answer)
    except Exception as err:
        if not answers_fault(err, ex.checker):
            raise
        return Feedback(ex.id, False, f"could not check that answer ({type(err).__name__}: {err}) {ask}")
    result = result if isinstance(result, tuple) else (bool(result), "")
    ok, message, receipt = (result + (None,))[:3]
    if ok:
        _record_progress(ex.id)
        if receipt:
            print(f"[{ex.id}] receipt (keep this output: it is what grading counts): {receipt}")
        return Feedback(ex.id, True, message or ex.title, receipt or None)
    return Feedback(ex.id, False, (message + " " if message else "") + ask)


def _served_value(ex: Exercise, answer: Any) -> tuple:
    """A value answer judged by the challenge service (the exercise's checker, run there on the
    plain data), with its receipt; an answer that is not plain data (a function, say) gets the
    in-kernel self-check, without a receipt."""
    if isinstance(answer, type):  # an exception class answers by its name
        answer = answer.__name__
    try:
        wire.encode(answer)
    except wire.WireError:
        ok, message = (lambda r: r if isinstance(r, tuple) else (bool(r), ""))(ex.checker(answer))
        return ok, (message + " " if message else "") + "(a self-check in this kernel: no receipt)", None
    return client.answer(ex.id, answer)


def is_stub(answer: Any) -> bool:
    """True for a function the student has not written yet: its body does nothing but return None
    (``...`` or ``pass``, maybe under a docstring), as the student copies leave implement exercises."""
    code = getattr(answer, "__code__", None)
    if code is None:
        return False
    steps = [(i.opname, i.argval) for i in dis.get_instructions(code)
             if i.opname not in ("RESUME", "NOP", "CACHE")]
    return steps in ([("LOAD_CONST", None), ("RETURN_VALUE", None)], [("RETURN_CONST", None)])


def _record_progress(exercise_id: str) -> None:
    """Remember a passed exercise for the landing notebook's progress view (labkit.progress)."""
    try:
        progress.record(exercise_id)
    except Exception:  # progress is a convenience: it must never break a check
        pass


_HINTS_SHOWN: dict[str, int] = {}


def hint(exercise_id: str, level: int | None = None) -> Hint:
    """The next hint level of an exercise (the first call gives level 1, the idea; the next, the
    approach; ...), or level ``level`` when given. Hints come only when asked for."""
    ex = get_exercise(exercise_id)
    if level is None:
        level = min(_HINTS_SHOWN.get(ex.id, 0) + 1, len(ex.hints))
    elif not 1 <= level <= len(ex.hints):
        raise ValueError(f"exercise {ex.id} has hint levels 1 to {len(ex.hints)}, not {level}")
    _HINTS_SHOWN[ex.id] = max(_HINTS_SHOWN.get(ex.id, 0), level)
    return Hint(ex.id, level, len(ex.hints), ex.hints[level - 1])


def solution(exercise_id: str) -> str:
    """Where the worked solution of an exercise is: labkit stores none, so a student reading the
    package finds no answers; the instructor notebook holds it between the solution markers."""
    chapter = get_exercise(exercise_id).id.split(".")[0]
    return (f"The worked solution of {exercise_id} is in the instructor copy of chapter {chapter}'s "
            "notebook (notebooks/ in the lab's repository), between ### BEGIN SOLUTION and "
            "### END SOLUTION; student copies leave it out. Try ex.hint first.")


def _show(value: Any) -> str:
    """A short, exact rendering of a test input or output for feedback (bytes as hex)."""
    if isinstance(value, (bytes, bytearray)):
        return f"bytes.fromhex('{bytes(value).hex()}')"
    if isinstance(value, tuple):
        return "(" + ", ".join(_show(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    if isinstance(value, list) and len(value) <= 64:
        return "[" + ", ".join(_show(v) for v in value) + "]"
    text = repr(value)
    return text if len(text) <= 400 else text[:400] + " ..."


def check_function(candidate: Any, reference: Callable[..., Any], draw: Callable[[Any], tuple],
                   *, trials: int = 50, name: str = "your function",
                   equal: Callable[[Any, Any], bool] | None = None) -> tuple[bool, str]:
    """Run ``candidate`` on ``trials`` fresh random inputs against an independent ``reference``.

    ``draw(rng)`` makes one argument tuple from a :class:`random.Random` seeded by the OS (so the
    inputs are new on every check and cannot be tuned for). What the candidate returns must be
    plain data (:mod:`labkit.plain`): it is copied into exact builtin types before ``equal(got,
    expected)`` (default :func:`labkit.plain.plain_equal`, labkit's answer deciding the type) looks
    at it, so an object whose ``__eq__`` says yes to everything is refused, not believed. On the
    first mismatch the feedback names the input, what the candidate returned and what was
    expected, never the reference's code. ``candidate`` may be the student's function or the
    grader's handle on it in a sandbox (labkit.grading): the same check runs in both.
    """
    if not callable(candidate):
        return False, f"the answer must be a function (def ...), got {type(candidate).__name__}."
    rng = random.Random()  # seeded from os.urandom: fresh inputs on every check
    for _ in range(trials):
        args = draw(rng)
        expected = reference(*args)
        shown = ", ".join(_show(a) for a in args)
        try:
            got = candidate(*args)
        except Exception as err:
            kind = getattr(err, "kind", type(err).__name__)
            return False, f"{name}({shown}) raised {kind}: {err}; expected {_show(expected)}."
        try:
            got = plain.to_plain(got)
        except plain.PlainDataError as err:
            return False, f"{name}({shown}) returned something that is not plain data ({err}); expected {_show(expected)}."
        try:
            ok = bool(equal(got, expected)) if equal else plain.plain_equal(expected, got)
        except Exception:
            ok = False
        if not ok:
            return False, f"{name}({shown}) returned {_show(got)}; expected {_show(expected)}."
    return True, f"{name} agrees with the reference on {trials} fresh random inputs"


@dataclass(frozen=True)
class FunctionSpec:
    """An implement exercise as data, the one definition its two checks share.

    ``name`` is the function the student writes; ``draw(rng)`` one tuple of inputs (plain data, or
    labkit objects that know how to travel as plain data); ``reference`` labkit's answer on them;
    ``equal(got, expected)`` the comparison (default: :func:`labkit.plain.plain_equal`), ``trials``
    how many fresh inputs; ``new_draw()``, when given, makes a fresh ``draw`` for every check (one
    that needs fresh keys). ``hide`` names the reference as ``"labkit.module:name"``: the grader's
    read-only copy of labkit leaves those out, so a graded cell cannot import its answer.
    ``checker(candidate)`` replaces the plain trial loop where an exercise needs more (further
    attacks after the trials, an answer that is a pair of functions), and ``export`` /
    ``rebuild`` (``"labkit.module:function"``) turn an answer that is an object, not a function,
    into plain data and back (a circuit as its gates), in the kernel as in the grader.

    The in-kernel ``ex.check`` runs :meth:`run` on the student's function: a quick self-check.
    Grades come from labkit.grading, which runs the same :meth:`run` with a handle on the student's
    function in a sandboxed process, outside the student's kernel (DESIGN.md, "The trust boundary").
    """

    name: str
    reference: Callable[..., Any] | None = None
    draw: Callable[[Any], tuple] | None = None
    trials: int = 50
    equal: Callable[[Any, Any], bool] | None = None
    hide: tuple[str, ...] = ()
    checker: Callable[[Any], Any] | None = None
    export: str | None = None
    rebuild: str | None = None
    new_draw: Callable[[], Callable[[Any], tuple]] | None = None


    def run(self, candidate: Any) -> bool | tuple[bool, str]:
        """Check ``candidate`` (the student's function, or the grader's handle on it)."""
        if self.checker is not None:
            return self.checker(candidate)
        draw = self.new_draw() if self.new_draw is not None else self.draw
        return check_function(candidate, self.reference, draw, trials=self.trials, name=self.name,
                              equal=self.equal)

    def exported(self, answer: Any) -> Any:
        """``answer`` as the checker sees it: for an object answer (``export``), its plain data
        rebuilt by labkit (so no method of the student's object is ever called by the check)."""
        if self.export is None:
            return answer
        return _function(self.rebuild)(plain.to_plain(_function(self.export)(answer)))


def _function(target: str) -> Callable:
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def implement(id: str, title: str, *, hint: str | Sequence[str], spec: FunctionSpec, where: str,
              kind: str = "implement") -> FunctionSpec:
    """Register an implement (or design) exercise from its :class:`FunctionSpec`; the self-check is
    ``spec.run``, and the grader's sandbox runs the same spec."""
    if kind not in ("implement", "design"):
        raise ValueError(f"exercise {id!r}: a FunctionSpec exercise is an implement or design exercise, not {kind!r}")
    if not isinstance(spec, FunctionSpec):
        raise TypeError("an implement exercise needs a FunctionSpec")
    if spec.checker is None and (spec.reference is None or (spec.draw is None and spec.new_draw is None)):
        raise ValueError(f"exercise {id!r}: a FunctionSpec needs a reference and a draw, or a checker")

    def self_check(answer):
        return spec.run(spec.exported(answer))

    exercise(id, title, hint=hint, where=where, kind=kind)(self_check)
    _REGISTRY[id] = Exercise(id, title, self_check, _REGISTRY[id].hints, kind=kind, where=where, spec=spec)
    return spec
