"""Every challenge the service serves, by exercise id (the definitions register themselves)."""
from __future__ import annotations

from labkit.challenges import defs_ciphers, defs_games, defs_models  # noqa: F401  (importing registers them)
from labkit.challenges.definitions import REGISTRY, Challenge

__all__ = ["get", "exercises", "all_challenges"]


def get(exercise: str) -> Challenge | None:
    """The challenge of ``exercise``, or None when that exercise holds no secret."""
    return REGISTRY.get(exercise)


def all_challenges() -> list[Challenge]:
    """Every challenge definition, ordered by exercise id."""
    return [REGISTRY[e] for e in sorted(REGISTRY)]


def exercises() -> list[str]:
    """The ids of every exercise whose secret the service holds."""
    return sorted(REGISTRY)
