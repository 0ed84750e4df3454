"""Game exercise of chapter 01: the PRF game against a Feistel network on small blocks
(Boneh-Shoup ch. 4, the PRP/PRF switching lemma)."""
from labkit.exercises import exercise
from labkit.exercises.game_checks import check_adversary
from labkit.games import prp

#: The 01.9 game: 4 random rounds (a strong PRP by Luby-Rackoff) on 16-bit blocks, 2,048 queries.
PRF_GAME = prp.prf_game("feistel", rounds=4, half_bits=8, budget=2048)
RUNS, THRESHOLD = 100, 0.5


@exercise(
    "01.9",
    "win the PRF game against 4-round Feistel on 16-bit blocks (advantage > 0.5)",
    hint=("A permutation and a random function differ in one visible way: one of them never maps "
          "two inputs to the same output.",
          "Among q outputs of a random function on n bits, two are equal with probability about "
          "1 - exp(-q^2 / 2^(n+1)). Ask enough distinct inputs that a repeat is almost sure for a "
          "function, then answer 1 (the Feistel network) only if no output repeated."),
    kind="game",
    where="homework",
)
def _prf_game(answer):
    return check_adversary(answer, PRF_GAME, runs=RUNS, threshold=THRESHOLD)
