"""Game exercise of chapter 01: the PRF game against a Feistel network on small blocks
(Boneh-Shoup ch. 4, the PRP/PRF switching lemma).

The game, its runs and its threshold are the challenge service's (labkit.challenges.defs_games),
which hosts the challengers; the adversary runs in the kernel."""
from labkit.exercises import exercise
from labkit.exercises.game_checks import check_adversary


@exercise(
    "01.9",
    "win the PRF game against 4-round Feistel on 16-bit blocks (advantage > 0.5)",
    hint=("A permutation and a random function differ in one visible way: one of them never maps "
          "two inputs to the same output.",
          "Among q outputs of a random function on n bits, two are equal with probability about "
          "1 - exp(-q^2 / 2^(n+1)). Ask enough distinct inputs that a repeat is almost sure for a "
          "function, then answer 1 (the Feistel network) only if no output repeated."),
    kind="game",
    remote=True,
    where="homework",
)
def _prf_game(answer):
    return check_adversary(answer, "01.9")
