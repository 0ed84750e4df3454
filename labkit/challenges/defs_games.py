"""The security-game exercises, service side: the challengers of :mod:`labkit.games`, hosted here.

A game exercise's check plays ``runs`` fresh games of one :class:`labkit.games.Game` (Boneh and
Shoup, *A Graduate Course in Applied Cryptography*, ch. 2-6: attack games and advantage). The
student's adversary runs in the kernel, since it is their work; every challenger runs here: the
secret bit, the keys, the lazily sampled random functions and permutations, the per-game query
counts (the game's own budget, :func:`labkit.games.count_query`), the one guess per game
(:func:`labkit.games.finish_once`) and the verdict. The kernel sees the game's public parameters
and the oracles' replies, nothing else.

One attempt is one check: :meth:`GameChallenge.new_state` draws the ``runs`` games from the
CSPRNG; a query batch holds one step of each game still playing (``[game, oracle, args]``, or
``[game, "guess", [guess]]``), so a check costs as many round trips as its longest game asks
queries, not the sum over games; the answer closes the attempt and the verdict counts the wins. An
adversary whose advantage is at most the exercise's threshold passes with probability at most
1e-6 (:func:`labkit.games.required_wins`: its wins are dominated by a binomial, every game having
fresh secrets); a game without a guess is lost.

The live games (their lazy tables change with every query) stay in this process's memory, bound
to the attempt by a random session id; the database keeps each game's secret bit and keys as
drawn. A live session is never rebuilt from the database: if the service restarted or dropped it,
its games are refused and the student checks again (fresh games), so no count can be reset.
Memory is bounded per student and in all: a student's new check drops only that student's oldest
live session beyond :data:`MAX_SESSIONS_PER_STUDENT`, and when the service holds
:data:`MAX_SESSIONS` a new check is refused (check again in a minute) rather than dropping another
student's running one, so no student can end the checks of others.

The game modules are imported inside the functions that build each game, as in
:mod:`labkit.challenges.defs_models`: the catalog loads this module at the service's start, and
the network and backdoor games import torch (2.1 s of CPU and 243 MiB against 0.3 s and 44 MiB).
"""
from __future__ import annotations

import functools
import threading
import time
from collections import OrderedDict
from typing import Any, Callable

from labkit.challenges import wire
from labkit.challenges.definitions import Challenge, ChallengeError, register

__all__ = ["GameChallenge", "GAMES", "game_of", "GUESS", "MAX_SESSIONS", "MAX_SESSIONS_PER_STUDENT",
           "SESSION_SECONDS", "verdict_text"]

#: The op of a batch item that hands in a game's guess (no oracle has this name).
GUESS = "guess"
#: Live sessions: per student (a check runs one at a time; two let a second notebook check too), in
#: all, and how long one may last (a check takes seconds; an abandoned session is freed after that).
#: The largest session, 01.9 with all 100 games asked their 1,024 queries, holds 5.0 MiB (tracemalloc),
#: so the live games take at most about 1.3 GiB; a check's session is freed when it is answered.
MAX_SESSIONS_PER_STUDENT = 2
MAX_SESSIONS = 256
SESSION_SECONDS = 600.0
#: Exercises whose start warms a game up (default: its chapter's). 08.15's CNN trains for seconds:
#: only notebook 08c's exercises (08.12 to 08.14 come before it) start it, not notebook 08's.
WARM_WITH = {"08.15": ("08.12", "08.13", "08.14", "08.15")}


def _prf_0109():
    from labkit.games import prp

    return prp.prf_game("feistel", rounds=4, half_bits=8, budget=1024)


def _prp_0105():
    from labkit.games import prp

    return prp.prp_game("feistel", rounds=2, half_bits=16, strong=True, budget=64)


def _cpa_0414():
    from labkit.games import cpa

    return cpa.cpa_game("cbc-fixed-iv", budget=8)


def _simulation_0708():
    from labkit.games import networks

    return networks.simulation_game(naive=True, budget=64)


def _detection_0815():
    from labkit.games import backdoor

    return backdoor.detection_game(seen=4, budget=16, arch="cnn")


#: exercise -> (the game's factory, runs per check, advantage threshold). The games are built on
#: first use (07.8 and 08.15 import torch; 08.15 trains chapter 08c's CNN once per process). 01.9's
#: budget, 1,024 queries, leaves a random function on 16 bits without a repeat with probability
#: about exp(-1024 * 1023 / 2^17) = e^-8, and costs a check 1,024 round trips to the service.
GAMES: dict[str, tuple[Callable[[], Any], int, float]] = {
    "01.5": (_prp_0105, 200, 0.7),
    "01.9": (_prf_0109, 100, 0.5),
    "04.14": (_cpa_0414, 100, 0.5),
    "07.8": (_simulation_0708, 60, 0.5),
    "08.15": (_detection_0815, 48, 0.3),
}


@functools.lru_cache(maxsize=None)
def game_of(exercise: str):
    """The :class:`labkit.games.Game` of a game exercise (built once per process)."""
    return GAMES[exercise][0]()


def verdict_text(game, runs: int, threshold: float, needed: int, wins: int | None) -> str:
    """The check's message: the same words on every pass (no measured numbers: stable output)."""
    if wins is not None and wins < needed:
        return (f"{game.name}: {wins} of {runs} fresh games won; expected at least {needed} wins of "
                f"{runs} (an advantage clearly above {threshold}).")
    return (f"{game.name}: won at least {needed} of {runs} fresh games, so the advantage is above "
            f"{threshold} (an adversary whose advantage is at most {threshold} passes with probability "
            "at most 1e-6)")


class _Session:
    """One check's live games, in this process only, and whose they are."""

    def __init__(self, states: list[dict], student: str):
        self.states, self.won, self.student = states, [None] * len(states), student
        self.lock, self.created = threading.Lock(), time.monotonic()


_SESSIONS: OrderedDict[str, _Session] = OrderedDict()
_SESSIONS_LOCK = threading.Lock()
_READY: set[str] = set()
_READY_LOCKS = {exercise: threading.Lock() for exercise in GAMES}  # one per game: 08.15's training blocks no other


def _keep(session_id: str, session: _Session) -> None:
    """Hold ``session``: expired sessions go first, then the student's own oldest beyond their share;
    a full service refuses it (never another student's session)."""
    with _SESSIONS_LOCK:
        now = time.monotonic()
        for old in [k for k, s in _SESSIONS.items() if now - s.created > SESSION_SECONDS]:
            del _SESSIONS[old]
        own = [k for k, s in _SESSIONS.items() if s.student == session.student]  # oldest first
        for old in own[:max(0, len(own) - MAX_SESSIONS_PER_STUDENT + 1)]:
            del _SESSIONS[old]
        if len(_SESSIONS) >= MAX_SESSIONS:
            raise ChallengeError(f"the service is running as many game checks as it holds ({MAX_SESSIONS}): "
                                 "check again in a minute")
        _SESSIONS[session_id] = session


def _session(state: dict, *, drop: bool = False) -> _Session:
    with _SESSIONS_LOCK:
        session = _SESSIONS.pop(state["session"], None) if drop else _SESSIONS.get(state["session"])
    if session is None:
        raise ChallengeError("the games of this check are no longer in the service (it restarted, or the "
                             "check took too long): check again, on fresh games")
    return session


def _secrets_of(game_state: dict) -> dict:
    """What the database keeps of a game as drawn: its bit, seed and keys (plain data)."""
    keep = {"b": game_state["b"], "seed": game_state["seed"]}
    for name in ("key", "fixed_iv", "nonce", "signing_seed"):
        if name in game_state:
            keep[name] = game_state[name]
    if "keys" in game_state:
        keep["keys"] = list(game_state["keys"])
    return keep


def _plain(value: Any) -> Any:
    """A reply as wire data: tuples as lists (the kernel turns lists back into tuples)."""
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


class GameChallenge(Challenge):
    """The server side of one game exercise (see the module docstring)."""

    oracles = ("play",)
    answers = "fresh"
    counted = False  # each game counts its own queries, in the live session (not a database row)

    @property
    def game(self):
        return game_of(self.exercise)

    @property
    def runs(self) -> int:
        return GAMES[self.exercise][1]

    @property
    def threshold(self) -> float:
        return GAMES[self.exercise][2]

    def needed(self) -> int:
        from labkit import games

        return games.required_wins(self.game, self.runs, self.threshold)

    def warms_with(self, exercise: str) -> bool:
        if self.exercise in WARM_WITH:
            return exercise in WARM_WITH[self.exercise]
        return super().warms_with(exercise)

    def prepare(self) -> None:
        """Build what every game shares (08.15's classifier) once, before the first game: the warm-up
        thread and a first attempt must not both train it."""
        with _READY_LOCKS[self.exercise]:
            if self.exercise not in _READY:
                self.game.new_game(lambda n: bytes(n))  # a throwaway game: only its shared setup stays
                _READY.add(self.exercise)

    def new_state(self, token, fresh):
        raise ChallengeError("a game's live session belongs to a student: the service calls new_attempt")

    def new_attempt(self, token, fresh, student):
        if not isinstance(student, str) or not student:
            raise ChallengeError("a game session needs the student it belongs to")
        self.prepare()
        game = self.game
        states = [game.new_game(token) for _ in range(self.runs)]
        session_id = token(18).hex()
        _keep(session_id, _Session(states, student))
        public = {"game": game.name, "kind": game.kind, "runs": self.runs, "oracles": list(game.oracles),
                  "public": _plain(dict(game.public)), "needed": self.needed(), "threshold": self.threshold}
        # one bytes field: the query path decodes the stored state on every batch, cheaply
        return {"session": session_id, "games": wire.dumps([_secrets_of(s) for s in states])}, public

    def rows(self, oracle, request):
        return len(request) if isinstance(request, list) else 1

    def query(self, state, oracle, request, memo):
        from labkit import games

        if not isinstance(request, list) or not request:
            raise ChallengeError("a game batch is a non-empty list of [game, oracle, args]")
        if len(request) > 4 * self.runs:
            raise ChallengeError(f"a game batch holds at most {4 * self.runs} items")
        session = _session(state)
        game, count = self.game, len(session.states)
        replies = []
        with session.lock:
            for item in request:
                if not (isinstance(item, list) and len(item) == 3 and type(item[0]) is int
                        and 0 <= item[0] < count and isinstance(item[1], str) and isinstance(item[2], list)):
                    raise ChallengeError(f"a batch item is [game 0..{count - 1}, oracle, args]")
                index, op, args = item
                try:
                    if op == GUESS:
                        replies.append(self._guess(session, index, args))
                    elif op not in game.oracles:
                        raise games.GameError(f"this game has the oracles {list(game.oracles)}, not {op!r}")
                    else:
                        replies.append([True, _plain(game.oracle(session.states[index], op, tuple(args)))])
                except games.GameError as err:
                    replies.append([False, str(err)])
                except (TypeError, ValueError) as err:  # a malformed query, refused as the game would
                    replies.append([False, f"{type(err).__name__}: {err}"])
        return replies

    def _guess(self, session: _Session, index: int, args: list) -> list:
        from labkit import games

        if len(args) != 1:
            raise games.GameError("a guess is one value")
        if session.states[index]["finished"]:
            raise games.GameError("this game already has its guess")
        try:
            session.won[index] = bool(self.game.finish(session.states[index], args[0]))
        except games.GameError:
            session.won[index] = False  # a malformed guess is a lost game (labkit.games.play)
        return [True, None]

    def check(self, state, answer):
        session = _session(state, drop=True)
        with session.lock:
            wins = sum(bool(w) for w in session.won)
        needed = self.needed()
        return wins >= needed, verdict_text(self.game, self.runs, self.threshold, needed, wins)


for _exercise in GAMES:
    register(type(f"Game_{_exercise.replace('.', '_')}", (GameChallenge,), {"exercise": _exercise}))
