"""Exercise of chapter 06, part 3 (06c · AES-256 and the second round): id 06.9."""
from __future__ import annotations

import secrets

from labkit.attacks.oracle import CountingOracle
from labkit.exercises import exercise
from labkit.exercises._session import session_secret
from labkit.exercises.ch06_attacks import attack_fresh_network

#: Query budget of exercise 06.9: 4 queries per bit of k1 (the mirror pairs need 2).
TOY_QUERY_BUDGET = 4 * 16


def _fresh_round_keys(draw) -> tuple[int, int, int]:
    raw = draw(6)
    return tuple(int.from_bytes(raw[i:i + 2], "big") for i in (0, 2, 4))


def toy_spn_challenge() -> CountingOracle:
    """This run's two-round toy SPN network (round keys fresh from the CSPRNG) as a black box, to try
    your 06.9 attack on. Returns only the counting oracle: the round keys stay inside."""
    from labkit.neural import spn

    keys = session_secret("06.9", _fresh_round_keys)
    return CountingOracle(spn.toy_spn_network(keys), spn.TOY_BITS)


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
    kind="attack",
    where="homework",
)
def _recover_second_round_key(answer):
    from labkit.neural import spn

    keys = _fresh_round_keys(secrets.token_bytes)  # fresh for every check: only this checker holds k1
    got, over = attack_fresh_network(answer, lambda: spn.toy_spn_network(keys), spn.TOY_BITS, TOY_QUERY_BUDGET,
                                     "recover_second_round_key(oracle, k0) returning k1 as an int", keys[0])
    if over:
        return False, over
    if isinstance(got, bool) or not isinstance(got, int):
        return False, f"recover_second_round_key must return k1 as an int, got {type(got).__name__}"
    wrong = bin((got ^ keys[1]) & 0xFFFF).count("1") + (not 0 <= got < 1 << 16) * 16
    if wrong:
        return False, f"{min(wrong, 16)} of the 16 bits of k1 are wrong (for a fresh network)."
    return True, f"k1 of a fresh toy network, recovered within the budget of {TOY_QUERY_BUDGET} queries"
