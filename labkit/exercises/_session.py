"""Per-run secrets of the attack exercises (issue 15: "attack exercises draw a fresh secret").

Each secret is drawn from the OS CSPRNG (:mod:`secrets`) the first time a challenge or its checker
asks for it, then kept for the rest of the run (the kernel), so the challenge a student attacks and
the check of the answer agree. Nothing is derived from a seed in the source, and no challenge
returns its secret: only the checkers read it here.
"""
from __future__ import annotations

import secrets
from typing import Any, Callable

_SECRETS: dict[str, Any] = {}


def session_secret(name: str, draw: Callable[[Callable[[int], bytes]], Any]) -> Any:
    """The secret ``name`` of this run: ``draw(secrets.token_bytes)`` on first use, the same value after."""
    if name not in _SECRETS:
        _SECRETS[name] = draw(secrets.token_bytes)
    return _SECRETS[name]


def new_run() -> None:
    """Forget every secret, as a fresh kernel would: the next challenge draws new ones."""
    _SECRETS.clear()
