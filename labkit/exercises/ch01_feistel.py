"""Exercises of chapter 01 (Feistel networks)."""
from labkit import feistel
from labkit.games import prp
from labkit.exercises import FunctionSpec, exercise, implement
from labkit.exercises.game_checks import check_adversary
from labkit.exercises.quiz import quiz


def exercise_network() -> feistel.Feistel:
    """The 2-round network of exercises 01.3 and 01.4: 8-bit halves, f1(x) = x AND 0x0f,
    f2(x) = 0x5a (both non-invertible)."""
    return feistel.Feistel([feistel.make_round_function("x and k", 0x0F, 8),
                            feistel.make_round_function("constant k", 0x5A, 8)], 8)


class ShownRoundFunction:
    """A round function of :data:`labkit.feistel.ROUND_FUNCTION_KINDS` that prints as its kind,
    key and width, so that feedback on a failing input says which function it was."""

    def __init__(self, kind: str, key: int, half_bits: int) -> None:
        self.kind, self.key, self.half_bits = kind, key, half_bits
        self._f = feistel.make_round_function(kind, key, half_bits)

    def __call__(self, x: int) -> int:
        return self._f(x)

    def __repr__(self) -> str:
        return f"<f = {self.kind!r}, k = {self.key:#x}, on {self.half_bits}-bit halves>"

    def __plain__(self) -> tuple[str, tuple]:
        """How it travels to a grader's sandbox as plain data: the labkit call that rebuilds it."""
        return "labkit.feistel:make_round_function", (self.kind, self.key, self.half_bits)


def _draw_round(rng) -> tuple[int, int, ShownRoundFunction]:
    """(left, right, f): random halves of a random width and a random round function of any kind,
    invertible or not (the construction must not care)."""
    half_bits = rng.randrange(4, 33)
    f = ShownRoundFunction(rng.choice(sorted(feistel.ROUND_FUNCTION_KINDS)),
                           rng.getrandbits(half_bits), half_bits)
    return rng.getrandbits(half_bits), rng.getrandbits(half_bits), f


def _as_halves(got, expected) -> bool:
    return tuple(int(v) for v in got) == expected


def _round_reference(left: int, right: int, f: ShownRoundFunction) -> tuple[int, int]:
    """(L1, R1) of a 1-round labkit.feistel network started from (left, right)."""
    net = feistel.Feistel([f], f.half_bits)
    return net.trace(net.join(left, right))[1]


def _round_inverse_reference(left: int, right: int, f: ShownRoundFunction) -> tuple[int, int]:
    """(L0, R0) such that one round maps it to (left, right): labkit's decryption circuit of a
    1-round network, applied to the output block R1 L1 (with its final swap)."""
    net = feistel.Feistel([f], f.half_bits)
    return net.split(net.decrypt(net.join(right, left)))


implement(
    "01.1",
    "one Feistel round: feistel_round(left, right, f) -> (new_left, new_right)",
    hint=("One half passes through unchanged and changes sides; the other half is masked with "
          "the round function of the half that passes.",
          "The new left half is the old right half; the new right half is the old left half XOR "
          "f applied to the old right half. Return the two as a tuple of ints."),
    spec=FunctionSpec("feistel_round", _round_reference, _draw_round, trials=200, equal=_as_halves,
                      hide=("labkit.feistel:Feistel",)),
    where="class",
)

implement(
    "01.2",
    "one Feistel round backwards: feistel_round_inverse(left, right, f) -> the halves before the round",
    hint=("You are given the halves after a round. One of them is a copy of a half before the "
          "round; you can evaluate f on it, which is all you need (never an inverse of f).",
          "The old right half is the given left half; the old left half is the given right half "
          "XOR f applied to the given left half."),
    spec=FunctionSpec("feistel_round_inverse", _round_inverse_reference, _draw_round, trials=200,
                      equal=_as_halves, hide=("labkit.feistel:Feistel",)),
    where="homework",
)


@exercise(
    "01.3",
    "encrypt 0xc0de with the exercise network",
    hint=("Cut the 16-bit block into two 8-bit halves and run the two rounds in order, then mind "
          "the final swap.",
          "The left half is the high byte. Each round maps (L, R) to (R, L XOR f of R), with f1 "
          "keeping the low nibble of its input and f2 always giving 0x5a. After both rounds the "
          "output is R2 followed by L2, read as one 16-bit integer."),
    where="class",
)
def _encrypt(answer):
    return int(answer) == exercise_network().encrypt(0xC0DE)


@exercise(
    "01.4",
    "decrypt 0xbeef with the exercise network (its round functions are not invertible)",
    hint=("Going back through a round only evaluates a round function on a half you already "
          "know, so f1 and f2 never need an inverse.",
          "Undo the final swap, then undo round 2 and round 1 in that order with the backward "
          "round of 01.2; or run the same forward circuit with the round functions in reverse "
          "order. Encrypting your answer must give 0xbeef."),
    where="homework",
)
def _decrypt(answer):
    answer = int(answer)
    net = exercise_network()
    if net.encrypt(answer) != 0xBEEF:
        return False, f"encrypting {answer:#06x} gives {net.encrypt(answer):#06x}, not 0xbeef."
    return True, "encrypting it gives back 0xbeef"


@exercise(
    "01.5",
    "write a distinguisher that breaks 2-round Feistel (advantage > 0.7)",
    hint=("Two rounds are not enough to hide an input difference: choose two queries that agree "
          "on one half and differ on the other, and compare the outputs.",
          "Query (L, R) and (L', R) with the same right half and L != L'. After two rounds the "
          "right halves of the two outputs differ by exactly L XOR L'; a random permutation does "
          "that only with probability 2^-n. Answer True when you see it."),
    kind="attack",
    where="homework",
    remote=True,
)
def _distinguisher(answer):
    # the strong PRP game of 2-round Feistel, hosted by the challenge service (labkit.challenges.defs_games):
    # fresh networks, permutations and bits in every game, the distinguisher's rng fresh too
    if not callable(answer):
        return False, "the answer must be a function distinguisher(oracle, half_bits, rng) -> bool."
    return check_adversary(prp.feistel_adversary(answer), "01.5")


# --- concept questions (kind "quiz"; the answers are the challenge service's, see quiz.py) ---

quiz(
    "01.6",
    "One Feistel round maps (L, R) to (L', R') = (R, L xor f(R)) with f(x) = x AND k, which is "
    "not invertible. Which computation recovers (L, R)?",
    [
        "R = L' and L = R' xor f(L').",
        "R = L' and L = f^-1(R' xor L').",
        "None: AND loses bits, so L is lost.",
        "R = R' and L = L' xor f(R').",
    ],
    hint=("Which of L and R can you read off (L', R') directly?",
          "Once you have R, what do you need to remove from R' to get L: f(R), or f^-1 of "
          "something?"),
    where="homework",
)

quiz(
    "01.7",
    "A distinguisher says 'Feistel' with probability 0.1 facing the 2-round Feistel network and "
    "0.9 facing a random permutation. What is its advantage?",
    [
        "0: it is mostly wrong",
        "-0.8",
        "0.1",
        "0.8",
    ],
    hint=("The notebook defines the advantage as an absolute difference of two probabilities.",
          "Would flipping this distinguisher's answer give a useful one? What does that say about "
          "how much it tells the two worlds apart?"),
    where="homework",
)

quiz(
    "01.8",
    "A 3-round Feistel network has n = 32-bit halves (64-bit blocks) and random round functions. "
    "After about how many chosen plaintexts does the Luby-Rackoff bound q^2/2^n stop promising "
    "anything?",
    [
        "About 2^32, one query per value of a half.",
        "About 2^16, when q^2/2^n nears 1.",
        "About 2^64, the size of the block space.",
        "Never: 3 rounds are secure for every q.",
    ],
    hint=("The bound is useful only while it is well below 1.",
          "Solve q^2 / 2^32 = 1 for q."),
    where="homework",
)
