"""The nbgrader course: every unit converts, and the round trip grades real files from outside.

``labkit-nbgrader-course`` turns the instructor notebooks into nbgrader assignments. The round trip
runs nbgrader itself on unit 01 (two implement exercises, six graded by receipts):
``generate_assignment`` writes the student release, ``autograde`` scores submissions through
labkit.grading without executing them, and the gradebook must say: the solved copy with the
service's receipts gets full marks, a partly solved one exactly its points, and nothing else a
point: the untouched release, an empty submission full of kernel tricks (and the next student's
untouched copy after it), copied, edited and forged receipts.
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import nbformat
import pytest

from labkit import course, exercises

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = course.notebook_paths(ROOT / "notebooks")

from labkit_tools import make_student, nbgrader_course as tool  # noqa: E402


def _graded(nb) -> list:
    return [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]


def _answers(nb) -> dict[str, nbformat.NotebookNode]:
    return {c.metadata["nbgrader"]["grade_id"]: c for c in nb.cells
            if c.metadata.get("nbgrader", {}).get("solution")}


# -- conversion (pure, every unit) -------------------------------------------------------------
def test_check_calls_reads_only_top_level_checks():
    source = ('answer = ...\n### BEGIN SOLUTION\nfor guess in range(3):\n    if ex.check("04.4", guess):\n'
              '        answer = guess\n### END SOLUTION\nex.check("04.4", answer)')
    assert tool.check_calls(source) == [("04.4", "answer")]
    assert tool.check_calls('ex.check("01.3", my_attack)') == [("01.3", "my_attack")]
    with pytest.raises(tool.ConversionError, match="expected ex.check"):
        tool.check_calls("ex.check(exercise_id, answer)")


def test_exercise_cell_without_a_check_is_an_error():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("answer = ...\n### BEGIN SOLUTION\nanswer = 1\n### END SOLUTION")])
    with pytest.raises(tool.ConversionError, match="must end with ex.check"):
        tool.assignment_notebook(nb, name="demo")


def test_bad_markers_are_refused_as_make_student_refuses_them():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("### BEGIN SOLUTION\nx = 1")])
    with pytest.raises(tool.make_student.MarkerError, match="never closed"):
        tool.assignment_notebook(nb, name="demo")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_unit_converts_with_one_graded_test_per_exercise_cell(path):
    full = nbformat.read(path, as_version=4)
    source, points = tool.assignment_notebook(full, name=path.name)
    exercise_cells = tool.make_student.exercise_cells(full)
    graded = _graded(source)
    registry = exercises.registry()
    def graded_cells(where):
        return [i for i in exercise_cells if any(registry[eid].where in where and tool.gradable(registry[eid])
                                                 for eid, _ in tool.check_calls(full.cells[i].source))]

    assert len(graded) == len(graded_cells(("homework",)))
    assert points == sum(c.metadata.nbgrader.points for c in graded)
    every, _ = tool.assignment_notebook(full, name=path.name, graded=("class", "homework"))
    assert len(_graded(every)) == len(graded_cells(("class", "homework"))), "--grade-class-exercises"
    for cell in graded:
        assert cell.metadata.nbgrader.locked and "### BEGIN HIDDEN TESTS" in cell.source
        for exercise_id, _ in tool.check_calls(cell.source.replace(tool.GRADER_CHECK, "ex.check")):
            assert exercise_id in registry, f"{path.name}: hidden test checks unknown exercise {exercise_id}"
    ids = [c.metadata.nbgrader.grade_id for c in source.cells if "nbgrader" in c.metadata]
    assert len(ids) == len(set(ids)), "nbgrader needs unique grade ids"
    # the grader's reference to the checks is taken before any cell a student can edit
    assert source.cells[0].metadata.nbgrader.locked and tool.GRADER_CHECK in source.cells[0].source


# -- the round trip through nbgrader itself (unit 01), from the attacker's side -----------------
SERVICE = "test-service"


def _submit(course_dir: Path, student: str, assignment: str, nb) -> None:
    folder = course_dir / "submitted" / student / assignment
    folder.mkdir(parents=True)
    nbformat.write(nb, folder / f"{assignment}.ipynb")


def _with_receipts(nb, texts: dict[str, str]):
    """A copy of ``nb`` whose answer cells show the receipts ``{exercise: text}`` as the service's
    handle prints them (the answer cell keeps its receipt)."""
    nb = nbformat.from_dict(nb)
    for cell in _answers(nb).values():
        for exercise_id, _ in tool.check_calls(cell.source):
            if exercise_id in texts:
                cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=(
                    f"[{exercise_id}] Correct: accepted by the challenge service. Receipt:\n{texts[exercise_id]}\n"))]
                cell.execution_count = 1
    return nb


def _edited(receipt: str, **changes) -> str:
    """``receipt`` with its payload changed and the service's signature kept (an edited receipt)."""
    import base64
    import json

    prefix, body, signature = receipt.split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload.update(changes)
    raw = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    return ".".join([prefix, base64.urlsafe_b64encode(raw).rstrip(b"=").decode(), signature])


#: An empty submission's kernel tricks (issue 22): each faked 6/6 when the kernel graded; here the
#: submission is never executed, so they earn nothing, and the marker file proves nothing ran.
KERNEL_TRICKS = """
from labkit import exercises as _ex
type(_ex.check("01.3", 0)).__bool__ = lambda self: True
_ex.check.__code__ = (lambda exercise_id, answer: True).__code__
_ex._REGISTRY.clear()
get_ipython().set_custom_exc((AssertionError,), lambda *args, **kwargs: None)
open(_ex.__file__, "a").write("\\n_REGISTRY = {}  # every check passes now\\n")
open(MARKER, "w").write("the submission was executed")
"""


@pytest.fixture(scope="module")
def unit01(tmp_path_factory):
    """Unit 01 released by ``nbgrader generate_assignment`` once for this module's tests (it takes
    seconds): ``(course folder, notebook path, the service's key, a stranger's key)``."""
    from Crypto.PublicKey import ECC

    from labkit import ed25519

    path = ROOT / "notebooks" / "01_feistel.ipynb"
    course_dir = tmp_path_factory.mktemp("unit01") / "course"
    service_key, stranger_key = ECC.generate(curve="Ed25519"), ECC.generate(curve="Ed25519")
    # every exercise graded (class ones too), so both implement exercises of unit 01 face a trick
    assert tool.main(["--course", str(course_dir), "--grade-class-exercises", "--service-public-key",
                      ed25519.public_key_bytes(service_key).hex(), str(path)]) == 0
    yield course_dir, path, service_key, stranger_key
    shutil.rmtree(course_dir)


def test_make_student_copy_has_the_code_cells_of_nbgrader_release(unit01, tmp_path):
    """``labkit-make-student`` and ``nbgrader generate_assignment`` make the same student code: the
    release's cells minus the grader's own (setup, hidden-test cells) equal the student copy's."""
    course_dir, path, _, _ = unit01
    assert make_student.main(["--out", str(tmp_path), str(path)]) == 0
    copy = nbformat.read(tmp_path / path.name, as_version=4)
    release = nbformat.read(course_dir / "release" / path.stem / path.name, as_version=4)
    def graders(cell) -> bool:  # the cells labkit-nbgrader-course adds: the setup and the hidden tests
        return cell.metadata.get("nbgrader", {}).get("grade_id", "").startswith(("autograder-setup", "check-"))

    released = [c for c in release.cells if not graders(c)]
    assert len(released) < len(release.cells)
    assert [c.cell_type for c in released] == [c.cell_type for c in copy.cells]
    code = [(r.source, s.source) for r, s in zip(released, copy.cells) if s.cell_type == "code"]
    assert len(code) > 10 and all(r == s for r, s in code), [pair for pair in code if pair[0] != pair[1]][:1]
    assert sum(make_student.CODE_STUB in s for _, s in code) >= len(make_student.exercise_cells(
        nbformat.read(path, as_version=4))), "every exercise cell has its stub"
    assert all(not c.get("outputs") for c in released + copy.cells if c.cell_type == "code")


def test_release_and_autograde_round_trip(unit01, tmp_path):
    from labkit.challenges import receipts

    course_dir, path, service_key, stranger_key = unit01
    assignment = path.stem
    source = nbformat.read(course_dir / "source" / assignment / path.name, as_version=4)
    release = nbformat.read(course_dir / "release" / assignment / path.name, as_version=4)
    full_marks = sum(c.metadata.nbgrader.points for c in _graded(source))
    registry = exercises.registry()
    checked = [eid for cell in _graded(source)
               for eid in re.findall(rf'{tool.GRADER_CHECK}\("([0-9]+\.[0-9]+)"', cell.source)]
    implement = [eid for eid in checked if registry[eid].kind == "implement"]
    by_receipt = [eid for eid in checked if registry[eid].kind != "implement"]
    assert full_marks == len(checked) and implement and by_receipt

    # the release: no solution, no hidden test, no stored output
    solutions = [line for cell in _answers(source).values()
                 for line in cell.source.split("### BEGIN SOLUTION")[1].split("### END SOLUTION")[0].splitlines()
                 if line.strip()]
    released = "\n".join(c.source for c in release.cells)
    assert not any(line in released.splitlines() for line in solutions)
    assert "HIDDEN TESTS" not in released and "assert " + tool.GRADER_CHECK not in released
    assert all(not c.get("outputs") for c in release.cells if c.cell_type == "code")

    def signed(student, exercise_ids, key=service_key):
        return {eid: receipts.sign_receipt(key, student=student, exercise=eid, attempts=1, service=SERVICE)
                for eid in exercise_ids}

    marker = tmp_path / "executed.txt"
    labkit_checks = Path(exercises.__file__)
    before = labkit_checks.read_bytes()
    # full marks: the instructor's solutions (graded in the sandbox) and the service's receipts
    _submit(course_dir, "solved", assignment, _with_receipts(source, signed("solved", by_receipt)))
    _submit(course_dir, "untouched", assignment, release)
    # partly solved: one implement answer and two receipts
    partial = _with_receipts(release, signed("partial", by_receipt[:2]))
    for grade_id, cell in _answers(partial).items():
        if tool.check_calls(cell.source)[0][0] == implement[0]:
            cell.source = _answers(source)[grade_id].source
    _submit(course_dir, "partial", assignment, partial)
    # an empty submission full of kernel tricks and sandbox tricks; then the next, untouched copy
    tricks = nbformat.from_dict(release)
    first = next(c for c in tricks.cells if c.cell_type == "code" and not c.metadata.get("nbgrader", {}).get("locked"))
    first.source += "\nMARKER = " + repr(str(marker)) + "\n" + KERNEL_TRICKS
    for cell in _answers(tricks).values():
        eid = tool.check_calls(cell.source)[0][0]
        if eid == implement[0]:  # an answer that equals everything
            cell.source = ("class Yes(tuple):\n    def __eq__(self, other):\n        return True\n\n"
                           f"def {registry[eid].spec.name}(*args):\n    return Yes()\n")
        elif eid in implement:  # an answer that rewrites the grader's checks from the sandbox
            cell.source = (f"def {registry[eid].spec.name}(*args):\n"
                           f"    open({str(labkit_checks)!r}, 'a').write('_REGISTRY = {{}}')\n")
        else:
            cell.source += "\nanswer = 'labkit-receipt-v1.eyJ9.AAAA'  # a receipt-shaped string"
    _submit(course_dir, "a_tricks", assignment, tricks)
    _submit(course_dir, "b_next", assignment, release)
    # receipts that are not this student's, edited, or signed by another key
    _submit(course_dir, "copier", assignment, _with_receipts(release, signed("solved", by_receipt)))
    edited = {eid: _edited(signed("editor", [by_receipt[0]])[by_receipt[0]], exercise=eid) for eid in by_receipt[1:]}
    edited[by_receipt[0]] = _edited(signed("solved", [by_receipt[0]])[by_receipt[0]], student="editor")
    _submit(course_dir, "editor", assignment, _with_receipts(release, edited))
    _submit(course_dir, "forger", assignment, _with_receipts(release, signed("forger", by_receipt, stranger_key)))

    tool.autograde(course_dir, assignment)
    scores = tool.grades(course_dir, assignment)
    assert scores["solved"] == (full_marks, full_marks)
    assert scores["partial"] == (3, full_marks)
    for student in ("untouched", "a_tricks", "b_next", "copier", "editor", "forger"):
        assert scores[student] == (0, full_marks), student
    assert not marker.exists(), "autograde executed a submission"
    assert labkit_checks.read_bytes() == before, "a submission changed the grader's labkit"

    # the verdicts are in the graded copy, with the reason
    graded = nbformat.read(course_dir / "autograded" / "a_tricks" / assignment / path.name, as_version=4)
    text = "\n".join(o.get("text", "") for c in _graded(graded) for o in c.outputs)
    assert "not plain data" in text and "sandbox: writing" in text and "no valid receipt" in text


def test_a_malformed_service_key_is_refused(tmp_path, capsys):
    assert tool.main(["--course", str(tmp_path / "c"), "--no-release", "--service-public-key", "abcd",
                      str(ROOT / "notebooks" / "01_feistel.ipynb")]) == 1
    assert "32 bytes" in capsys.readouterr().err
