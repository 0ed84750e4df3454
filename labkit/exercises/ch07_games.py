"""Game exercise of chapter 07: real-valued queries against the simulator of the protected network
(the paper's simulator argument, Gerault et al. ePrint 2025/288 Sec. 6, as a game).

The game, its runs and its threshold are the challenge service's (labkit.challenges.defs_games),
which hosts the challengers; the adversary runs in the kernel."""
from labkit.exercises import exercise
from labkit.exercises.game_checks import check_adversary


@exercise(
    "07.8",
    "tell the unclamped protected network from its simulator (advantage > 0.5)",
    hint=("The simulator only ever asks the cipher about bits; the real network computes in float64. "
          "Find a query whose real answer depends on something the simulator never sees.",
          "Use the trigger coordinate of 07.3's float64 twin on one bit of the all-zero point. The "
          "simulator rounds it to 1 and answers the cipher on that bit pattern, which differs from "
          "its answer on all zeros; the real first layer sees |2 - k|, which equals |0 - k| exactly "
          "when the key bit is 1. Try several bits; answer 1 when some answer equals the all-zero one."),
    kind="game",
    remote=True,
    where="homework",
)
def _simulation_game(answer):
    return check_adversary(answer, "07.8")
