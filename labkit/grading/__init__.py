"""Grading outside the student's process (DESIGN.md, "The trust boundary").

- :mod:`labkit.grading.sandbox`: run a graded cell in a fresh, limited process with a read-only
  labkit that lacks the exercise's reference, and call its function with plain data.
- :mod:`labkit.grading.notebook`: grade a submitted notebook from its file: implement exercises
  through the sandbox and the exercise's own spec, the others by the challenge service's receipts.
- :mod:`labkit.grading.autograde`: the same as nbgrader preprocessors, for ``nbgrader autograde``.

The in-kernel ``ex.check`` stays a quick self-check for the student; no grade comes from it.
"""
from labkit.grading.notebook import Verdict, find_receipts, grade_exercise, grade_implement, grade_receipt
from labkit.grading.sandbox import Limits, Sandbox, SandboxError, StudentError

__all__ = ["Verdict", "find_receipts", "grade_exercise", "grade_implement", "grade_receipt", "Limits", "Sandbox",
           "SandboxError", "StudentError"]
