"""Game exercise of chapter 04: IND-CPA against CBC with a fixed IV (Boneh-Shoup ch. 5).

The game, its runs and its threshold are the challenge service's (labkit.challenges.defs_games),
which hosts the challengers; the adversary runs in the kernel."""
from labkit.exercises import exercise
from labkit.exercises.game_checks import check_adversary


@exercise(
    "04.14",
    "win the IND-CPA game against AES-CBC with a fixed IV (advantage > 0.5)",
    hint=("The oracle encrypts whichever message the secret bit picks, as often as you like: what "
          "does a deterministic scheme do with the same message twice?",
          "Ask for a pair whose two messages are equal, then a pair that keeps the first message "
          "and changes the second. If the bit is 0 both answers encrypt the same message with the "
          "same IV; compare them and answer the bit."),
    kind="game",
    remote=True,
    where="homework",
)
def _cpa_game(answer):
    return check_adversary(answer, "04.14")
