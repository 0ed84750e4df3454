"""nbgrader's autograde, with grades from the sandbox and from receipts instead of the student's kernel.

``nbgrader autograde`` normally executes the submitted notebook and scores each locked test cell by
whether it raised: everything then happens in a kernel the student's code controls. With the
course's ``nbgrader_config.py`` (written by ``labkit-nbgrader-course``)::

    from labkit.grading import autograde as labkit_autograde
    c.Autograde.sanitize_preprocessors = labkit_autograde.SANITIZE
    c.Autograde.autograde_preprocessors = labkit_autograde.AUTOGRADE
    c.GradeOutsideKernel.service_public_key = "<64 hex digits>"

the submission is never executed. :class:`CollectReceipts` runs first, on the file as submitted,
and keeps every receipt-shaped string (nbgrader's own ``ClearOutput`` then clears the outputs);
after nbgrader has put the locked test cells back from the course's source (``OverwriteCells``),
:class:`GradeOutsideKernel` reads from each test cell which exercises it grades and grades them
with :mod:`labkit.grading.notebook`: implement exercises in a sandbox, the others by receipts
verified under the pinned service key for the submission's student id. It writes the verdicts as
the test cell's output in the form nbgrader scores (an error for no points, a number for partial
points, plain text for full points). The grader process imports labkit from the lecturer's
installation, never from the submission, and runs no student code.
"""
from __future__ import annotations

import nbformat
from nbconvert.preprocessors import ClearMetadataPreprocessor
from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata, ClearOutput, DeduplicateIds,
                                    IgnorePattern, LimitOutput, NbGraderPreprocessor, OverwriteCells,
                                    OverwriteKernelspec, SaveAutoGrades)
from traitlets import Bool, Float, Int, Unicode

from labkit.grading.notebook import checks_of_test_cell, find_receipts, grade_exercise, notebook_imports
from labkit.grading.sandbox import Limits

__all__ = ["CollectReceipts", "GradeOutsideKernel", "SANITIZE", "AUTOGRADE", "METADATA_KEY", "public_key_from_hex"]

#: Where :class:`CollectReceipts` leaves the receipts for :class:`GradeOutsideKernel` (notebook metadata).
METADATA_KEY = "labkit_grading"


def public_key_from_hex(text: str) -> bytes | None:
    """The service's raw Ed25519 public key from its 64 hex digits (``None`` when not configured)."""
    text = (text or "").strip()
    if not text:
        return None
    key = bytes.fromhex(text)
    if len(key) != 32:
        raise ValueError("the challenge service's public key is 32 bytes (64 hex digits)")
    return key


class CollectReceipts(NbGraderPreprocessor):
    """Sanitize step, before ``ClearOutput``: keep the submission's receipt strings (and drop any
    metadata of the same name the submission brought along)."""

    def preprocess(self, nb, resources):
        nb.metadata[METADATA_KEY] = {"receipts": find_receipts(nb.cells)}
        return nb, resources


def _is_test_cell(cell) -> bool:
    meta = cell.metadata.get("nbgrader", {})
    return cell.cell_type == "code" and meta.get("grade") and not meta.get("solution") \
        and str(meta.get("grade_id", "")).startswith("check-")


class GradeOutsideKernel(NbGraderPreprocessor):
    """Autograde step in place of ``Execute``: set each locked test cell's output from the verdicts."""

    service_public_key = Unicode("", help="The challenge service's Ed25519 public key, 64 hex digits: "
                                          "receipts verify under it or earn nothing.").tag(config=True)
    cpu_seconds = Int(Limits.cpu_seconds, help="CPU seconds of one graded cell's sandbox.").tag(config=True)
    memory_bytes = Int(Limits.memory_bytes, help="Address space of one graded cell's sandbox.").tag(config=True)
    call_seconds = Float(Limits.call_seconds, help="Wall-clock seconds per call into the sandbox.").tag(config=True)
    total_seconds = Float(Limits.total_seconds, help="Wall-clock seconds of one graded cell in all.").tag(config=True)
    allow_unconfined = Bool(False, help="Grade where the kernel offers no Landlock or seccomp (only the audit hook "
                                        "and the limits then confine the graded cell; each verdict says so). "
                                        "Off: autograde stops with ConfinementError there.").tag(config=True)

    def preprocess(self, nb, resources):
        student = resources["nbgrader"]["student"]
        public_key = public_key_from_hex(self.service_public_key)
        if public_key is None:
            self.log.warning("c.GradeOutsideKernel.service_public_key is not set: receipts earn nothing")
        found = nb.metadata.pop(METADATA_KEY, {}).get("receipts", [])
        limits = Limits(cpu_seconds=self.cpu_seconds, memory_bytes=self.memory_bytes, call_seconds=self.call_seconds,
                        total_seconds=self.total_seconds, allow_unconfined=self.allow_unconfined)
        imports = notebook_imports(nb.cells)
        answers = {c.metadata["nbgrader"].get("grade_id"): c for c in nb.cells
                   if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("solution")}
        for cell in nb.cells:
            if not _is_test_cell(cell):
                continue
            answer_cell = answers.get("answer-" + cell.metadata.nbgrader.grade_id[len("check-"):])
            verdicts = [grade_exercise(eid, cell=answer_cell.source if answer_cell is not None else "",
                                       answer=expr, imports=imports, found_receipts=found,
                                       public_key=public_key, student=student, limits=limits)
                        for eid, expr in checks_of_test_cell(cell.source)]
            cell.outputs = _outputs(verdicts, float(cell.metadata.nbgrader.get("points", len(verdicts))))
            self.log.info("%s %s: %s", student, cell.metadata.nbgrader.grade_id,
                          "; ".join(str(v) for v in verdicts))
        return nb, resources


def _outputs(verdicts, points: float) -> list:
    """The test cell's outputs in the form nbgrader's ``determine_grade`` scores."""
    text = "\n".join(str(v) for v in verdicts) or "no exercise to grade"
    outputs = [nbformat.v4.new_output("stream", name="stdout", text=text + "\n")]
    solved = sum(v.correct for v in verdicts)
    if not verdicts or solved == 0:
        outputs.append(nbformat.v4.new_output("error", ename="NotSolved", evalue="no exercise of this cell is solved",
                                              traceback=[text]))
    elif solved < len(verdicts):
        score = points * solved / len(verdicts)
        outputs.append(nbformat.v4.new_output("execute_result", data={"text/plain": repr(score)}, execution_count=None))
    return outputs


#: nbgrader's sanitize steps with :class:`CollectReceipts` in front.
SANITIZE = [CollectReceipts, ClearOutput, DeduplicateIds, OverwriteKernelspec, OverwriteCells, CheckCellMetadata]
#: nbgrader's autograde steps with :class:`GradeOutsideKernel` in place of ``Execute``.
AUTOGRADE = [GradeOutsideKernel, IgnorePattern, ClearMetadataPreprocessor, LimitOutput, SaveAutoGrades,
             AssignLatePenalties, CheckCellMetadata]
