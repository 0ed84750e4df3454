"""Exercise of chapter 06, part 3 (06c · AES-256 and the second round): id 06.9."""
from __future__ import annotations

from labkit.challenges import client
from labkit.challenges.defs_models import TOY_QUERY_BUDGET  # 4 queries per bit of k1
from labkit.exercises import service_handles, exercise
from labkit.neural import spn


def toy_spn_challenge() -> client.Oracle:
    """This run's two-round toy SPN network (round keys fresh from the CSPRNG, in the challenge
    service) as a black box, to try your 06.9 attack on. Returns only an oracle handle."""
    return client.Oracle(service_handles.run("06.9"), "network", spn.TOY_BITS)


@exercise(
    "06.9",
    f"recover_second_round_key(oracle, k0): the 16-bit k1 of a fresh two-round toy SPN network, "
    f"given its first round key k0, in at most {TOY_QUERY_BUDGET} queries",
    hint=("Knowing k0, you can compute round 1 yourself on any real plaintext: you know exactly what "
          "reaches each XOR k1 neuron. Make two queries that bring it a and 2 - a at one coordinate "
          "and identical values everywhere else: they collide exactly when that key bit is 1.",
          "Offline (no query): for each S-box of round 1, try a small grid of real values (multiples "
          "of 1/2 between -1 and 2) on its 4 input bits, the other 12 bits 0, and compute your copy "
          "of round 1 on all of them. For each output coordinate q, group the rows by their outputs "
          "without q and find two whose values at q add up to 2. Then query each pair once.",
          "Your copy of round 1 can be the lab's compiled first round of the toy cipher for the key "
          "k0 (see the section above); compare outputs exactly, the grid values are dyadic."),
    kind="attack", remote=True,
    where="homework",
)
def _recover_second_round_key(answer):
    got, attempt, over = service_handles.run_on_fresh_attempt(  # fresh round keys in the service for every check
        "06.9", answer, spn.TOY_BITS, "recover_second_round_key(oracle, k0) returning k1 as an int",
        args=lambda public: (public["k0"],))
    if over:
        return False, over
    if isinstance(got, bool) or not isinstance(got, int):
        return False, f"recover_second_round_key must return k1 as an int, got {type(got).__name__}"
    return attempt.answer(int(got))
