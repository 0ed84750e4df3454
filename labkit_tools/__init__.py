"""The lab's maintenance commands, installed as console scripts (``[project.scripts]``).

They serve the people who keep the lab, not the students: they read the clone (its ``notebooks/``,
``data/`` and ``notebooks/instructor/``) and are therefore a package beside ``labkit``, outside its
layering, which only the notebooks import. Each module has a ``main(argv=None) -> int`` built on
argparse, so ``labkit-NAME --help`` works and ``python -m labkit_tools.NAME`` runs the same thing:

=========================== ==================================================================
``labkit-execute-notebooks`` re-execute notebooks, keeping only the outputs nbval compares
``labkit-make-student``      student copies: solutions removed, checks kept
``labkit-nbgrader-course``   the nbgrader course: one assignment per unit, hidden tests
``labkit-build-book``        the static HTML book, student and instructor editions
``labkit-quiz-cells``        each concept question's markdown cell, written from labkit
``labkit-unit-timing``       class time of a unit; timing plans of the instructor notes
``labkit-notebook-memory``   peak memory of each unit in a fresh kernel
``labkit-server-start``      time and CPU from starting a student's server to a ready one
``labkit-table1-full``       regenerate the paper's Table 1 on 1000 keys (data/results)
=========================== ==================================================================
"""

#: console script name -> module of this package (the ``[project.scripts]`` table of pyproject.toml)
COMMANDS = {
    "labkit-execute-notebooks": "execute_notebooks",
    "labkit-make-student": "make_student",
    "labkit-nbgrader-course": "nbgrader_course",
    "labkit-build-book": "build_book",
    "labkit-quiz-cells": "quiz_cells",
    "labkit-unit-timing": "unit_timing",
    "labkit-notebook-memory": "notebook_memory",
    "labkit-server-start": "server_start",
    "labkit-table1-full": "table1_full",
}
