"""Game exercise of chapter 07: real-valued queries against the simulator of the protected network
(the paper's simulator argument, Gerault et al. ePrint 2025/288 Sec. 6, as a game)."""
from labkit.exercises import exercise
from labkit.exercises.game_checks import check_adversary
from labkit.games import networks

SIMULATION_GAME = networks.simulation_game(naive=True, budget=64)
RUNS, THRESHOLD = 60, 0.5


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
    where="homework",
)
def _simulation_game(answer):
    return check_adversary(answer, SIMULATION_GAME, runs=RUNS, threshold=THRESHOLD)
