"""Game exercise of chapter 08: the backdoor's undetectability holds only against a detector that
has seen no trigger (Goldwasser, Kim, Vaikuntanathan, Zamir, FOCS 2022).

The game, its runs and its threshold are the challenge service's (labkit.challenges.defs_games),
which hosts the challengers; the adversary runs in the kernel."""
from labkit.exercises import exercise
from labkit.exercises.game_checks import check_adversary


@exercise(
    "08.15",
    "tell the backdoored model from the clean one after seeing the owner's triggers (advantage > 0.3)",
    hint=("Undetectability was stated for a detector that has seen no trigger. You have seen some: "
          "what does the backdoored model do with them that the clean one does not?",
          "Each seen trigger comes with the target its owner signed, and the owner picked targets "
          "the bare classifier does not give. Ask the deployed model about the seen images and "
          "answer 1 when it obeys their targets."),
    kind="game",
    remote=True,
    where="class",
)
def _detection_game(answer):
    return check_adversary(answer, "08.15")
