"""White-box access to the challenge service's state, for tests only: the secret behind an attempt,
read from the service's database file as an instructor could (never from the kernel's memory)."""
from labkit.challenges import client, wire
from labkit.challenges.db import Database


def attempt_state(attempt_id: str) -> dict:
    """The stored state (the secret) of the attempt ``attempt_id``."""
    db = Database(f"sqlite:///{client.state_dir() / 'challenges.db'}")
    try:
        row = db.attempt(attempt_id)
    finally:
        db.close()
    assert row is not None, "no such attempt in the service's database"
    return wire.loads(row["state"])


def run_state(exercise: str) -> dict:
    """The state of this run's attempt of ``exercise`` (the one its ``*_challenge()`` hands out)."""
    return attempt_state(client.run_attempt(exercise).id)
