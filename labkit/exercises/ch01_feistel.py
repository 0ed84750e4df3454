"""Exercises of chapter 01 (Feistel networks)."""
from labkit import feistel
from labkit.exercises import exercise
from labkit.exercises.quiz import quiz


def exercise_network() -> feistel.Feistel:
    """The 2-round network of exercises 01.1 and 01.2: 8-bit halves, f1(x) = x AND 0x0f,
    f2(x) = 0x5a (both non-invertible)."""
    return feistel.Feistel([feistel.make_round_function("x and k", 0x0F, 8),
                            feistel.make_round_function("constant k", 0x5A, 8)], 8)


@exercise(
    "01.1",
    "encrypt 0x1234 with the exercise network",
    hint="Split 0x1234 into L0 = 0x12, R0 = 0x34; apply (L, R) -> (R, L ^ f(R)) twice, then swap "
         "the halves back: the output is R2 L2.",
)
def _encrypt(answer):
    return int(answer) == exercise_network().encrypt(0x1234)


@exercise(
    "01.2",
    "decrypt 0xbeef with the exercise network (its round functions are not invertible)",
    hint="Decryption is the same circuit with the round functions in reverse order: run "
         "Feistel([f2, f1], 8).encrypt on the ciphertext.",
)
def _decrypt(answer):
    answer = int(answer)
    net = exercise_network()
    if net.encrypt(answer) != 0xBEEF:
        return False, f"encrypting {answer:#06x} gives {net.encrypt(answer):#06x}, not 0xbeef."
    return True, "encrypting it gives back 0xbeef"


@exercise(
    "01.3",
    "write a distinguisher that breaks 2-round Feistel (advantage > 0.9)",
    hint="Query two plaintexts with the same right half R and different left halves L, L'. In two "
         "rounds, how do the right halves of the outputs differ?",
)
def _distinguisher(answer):
    if not callable(answer):
        return False, "the answer must be a function distinguisher(oracle, half_bits, rng) -> bool."
    adv = feistel.measure_advantage(answer, 2, half_bits=16, trials=200, seed=101)
    if adv.advantage > 0.9:
        return True, f"measured advantage {adv.advantage:.2f} against 2 rounds"
    return False, (f"measured advantage {adv.advantage:.2f} (accepts Feistel {adv.p_feistel:.2f}, "
                   f"random {adv.p_random:.2f}).")


# --- concept questions (kind "quiz"; answers stored as salted digests, see quiz.py) ---

quiz(
    '01.4',
    'Why can a Feistel network be decrypted even when its round functions are not invertible?',
    [
     'Because the key schedule inverts each round function.',
     'Because each round only XORs f(R) into the other half, and going back the decryptor knows R (it is the next L), so f is evaluated again, never inverted.',
     'Because the final swap undoes every round.',
     "It cannot: DES's round function is secretly a bijection.",
    ],
    "e6c83ce913c0ec410187fc2a5bcebeda9e601ce1eee38d2b9d4c05ead918541e",
    hint='Write one round backwards: which values do you need, and do you ever need f^{-1}?',
)

quiz(
    '01.5',
    'In the PRP distinguishing game, what is the advantage of a distinguisher D?',
    [
     'The probability that D outputs 1 when given the cipher.',
     'The number of queries D needs before it is sure.',
     '|Pr[D outputs 1 | cipher under a random key] - Pr[D outputs 1 | uniformly random permutation]|.',
     'The fraction of key bits D learns.',
    ],
    "6e1aeb9f58c242c07d0940fdbe5d66ad549b7e781e7e4ba68824453bbd47d5d8",
    hint='The game flips a coin between two worlds; advantage measures how differently D behaves in them.',
)

quiz(
    '01.6',
    'What does the q^2/2^n term in the Luby-Rackoff bound for 3 rounds account for?',
    [
     'The false-positive rate 2^-n of the one-round test, repeated q times.',
     'The chance that the q queries make two inputs of an inner round function collide, the event on which every distinguisher of 3 rounds relies; it has nothing to do with the 1- and 2-round tests.',
     'The probability of guessing the key in q tries.',
     'The number of rounds needed for CCA security.',
    ],
    "12220ebf7dc76e82d1c8613f272d9337109bd718dc9d33f7a676aa2ed6d9bec2",
    hint='The bound is about 3 rounds with random round functions: when do such rounds stop looking independent?',
)
