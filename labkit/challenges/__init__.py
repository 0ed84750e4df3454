"""The challenge service and the handles the student's kernel holds (DESIGN.md, "The trust boundary").

Secrets, budgets, attempt counters and quiz answers live in the service, a separate process; the
kernel holds only handles that send queries and answers and receive plain data and signed receipts.

- :mod:`~labkit.challenges.client`: the kernel's side (starts the self-study service on first use,
  or talks to the class's service behind JupyterHub); :mod:`~labkit.challenges.wire`: the plain
  data that crosses the boundary.
- :mod:`~labkit.challenges.definitions`, ``defs_ciphers``, ``defs_models``, ``catalog``: one class
  per attack exercise, the service's side (secret, oracle, answer check, budget).
- :mod:`~labkit.challenges.core` (attempts, budgets, verdicts, receipts), ``db`` (SQLite or
  PostgreSQL), ``answers`` (the quiz key from the instructor notebooks, value checks),
  ``server`` (tornado handlers, the lecturer's page and CSV), ``__main__`` (``serve``,
  ``public-key``); :mod:`~labkit.challenges.receipts`: the signed receipt graders verify.
"""
