"""Game exercise of chapter 08: the backdoor's undetectability holds only against a detector that
has seen no trigger (Goldwasser, Kim, Vaikuntanathan, Zamir, FOCS 2022)."""
from labkit.exercises import exercise
from labkit.exercises.game_checks import check_adversary
from labkit.games import backdoor

#: The 08.15 game on chapter 08c's CNN classifier (trained once per process, shared with the notebook).
DETECTION_GAME = backdoor.detection_game(seen=4, budget=16, arch="cnn")
RUNS, THRESHOLD = 48, 0.3


@exercise(
    "08.15",
    "tell the backdoored model from the clean one after seeing the owner's triggers (advantage > 0.3)",
    hint=("Undetectability was stated for a detector that has seen no trigger. You have seen some: "
          "what does the backdoored model do with them that the clean one does not?",
          "Each seen trigger comes with the target its owner signed, and the owner picked targets "
          "the bare classifier does not give. Ask the deployed model about the seen images and "
          "answer 1 when it obeys their targets."),
    kind="game",
    where="class",
)
def _detection_game(answer):
    return check_adversary(answer, DETECTION_GAME, runs=RUNS, threshold=THRESHOLD)
