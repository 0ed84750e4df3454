"""The check of a game exercise: the student's adversary plays fresh games of
:mod:`labkit.games`, and passes when it wins often enough that an adversary of advantage at most
the threshold would pass with probability at most 1e-6 (:func:`labkit.games.required_wins`)."""
from __future__ import annotations

from labkit import games


def check_adversary(answer, game: games.Game, *, runs: int, threshold: float) -> tuple[bool, str]:
    """``(ok, message)`` for an adversary ``answer(oracles) -> guess`` in ``runs`` fresh games."""
    if not callable(answer):
        return False, "the answer must be a function adversary(oracles) -> guess."
    needed = games.required_wins(game, runs, threshold)
    try:
        result = games.play(game, answer, runs)
    except Exception as err:  # show the student's own error, not a generic "could not check"
        return False, f"your adversary raised {type(err).__name__}: {err}"
    if result.wins >= needed:  # the same words on every pass (no measured numbers): stable output
        return True, (f"{game.name}: won at least {needed} of {runs} fresh games, so the advantage is "
                      f"above {threshold} (an adversary whose advantage is at most {threshold} passes "
                      "with probability at most 1e-6)")
    return False, (f"{result}; expected at least {needed} wins of {runs} (an advantage clearly "
                   f"above {threshold}).")
