"""The challenge service and the handles the student's kernel holds (DESIGN.md, "The trust boundary").

Secrets, budgets, attempt counters and quiz answers live in the service, a separate process; the
kernel holds only handles that send queries and answers and receive plain data and signed receipts.
"""
