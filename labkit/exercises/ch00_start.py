"""Exercises of chapter 00 (notation)."""
from labkit import bits
from labkit.exercises import exercise
from labkit.exercises.quiz import quiz


@exercise(
    "00.1",
    "bits of 0xA5, most significant first",
    hint=("Write each hex digit as four bits; the lab reads a byte from its most significant bit.",
          "A is ten and 5 is five: write both as 4-bit binary numbers and put them side by side, "
          "as a list of eight 0s and 1s."),
    where="class",
)
def _bits_of_a5(answer):
    return list(map(int, answer)) == bits.bytes_to_bits(bytes([0xA5])).tolist()


@exercise(
    "00.2",
    "Hamming distance between 'lab' and 'lap'",
    hint=("The Hamming distance counts the bit positions where two equal-length strings differ.",
          "Only the last characters differ: look up the ASCII codes of 'b' and 'p', XOR them and "
          "count the 1 bits of the result."),
    where="class",
)
def _distance(answer):
    return int(answer) == bits.hamming_distance(b"lab", b"lap")


@exercise(
    "00.3",
    "index of the bit that flip_bit(b'\\x00\\x00', i) sets in 0x0080",
    hint=("Bit indices run from the most significant bit of byte 0 (index 0) to the least "
          "significant bit of the last byte.",
          "0x0080 is the two bytes 0x00 and 0x80; find which byte holds the set bit, then its "
          "position inside that byte, counting from the left."),
    where="class",
)
def _flip_index(answer):
    i = int(answer)
    return 0 <= i < 16 and bits.flip_bit(bytes(2), i) == bytes([0x00, 0x80])


# --- concept questions (kind "quiz"; the answers are the challenge service's, see quiz.py) ---

quiz(
    "00.4",
    "A student writes DES with bits stored least significant first in each byte, and copies the "
    "FIPS 46-3 tables (IP, E, P, PC-1) verbatim. What does it give on the standard's test "
    "vectors?",
    [
        "The right ciphertexts: DES does not depend on how bits are stored.",
        "Wrong ciphertexts: each table picks bits by the standard's order.",
        "The right ciphertexts, each byte written bit-reversed.",
        "The right ciphertexts for the all-zero key, wrong ones otherwise.",
    ],
    hint=("A table such as IP says 'output bit 1 is input bit 58': which bit is 58 in the "
          "student's storage?",
          "Follow one table entry through both orders: does the student's array hold the same key "
          "and plaintext bit at that position as the standard's?",
          "A permutation applied to the wrong bits is a different permutation, and the S-boxes "
          "then see different 6-bit inputs."),
    where="class",
)

quiz(
    "00.5",
    "FIPS 46-3's initial permutation begins 58, 50, 42, ...: output bit 1 is input bit 58. Which "
    "line implements that first entry on labkit's 0-based bit arrays?",
    [
        "out[0] = x[58], 0-based",
        "out[1] = x[58], 1-based",
        "out[0] = x[57]",
        "out[63] = x[6], counting from the right",
    ],
    hint=("FIPS 46-3 counts bits 1 to 64 from the left; labkit counts from 0, also from the left.",
          "Convert both numbers of the entry, the output position and the input position, the "
          "same way.",
          "A FIPS position p is labkit index p - 1."),
    where="class",
)

quiz(
    "00.6",
    "A cell draws an AES key with an unseeded numpy generator, prints the ciphertext of a fixed "
    "block and is marked # NBVAL_CHECK_OUTPUT. What happens in CI?",
    [
        "It fails: the printed ciphertext changes from run to run.",
        "It passes: AES is deterministic, the output fixed.",
        "It passes: nbval compares only the source of the cells.",
        "It fails only on a CPU with other floating-point paths.",
    ],
    hint=("What does a marked cell's output get compared with, and what changes between two runs "
          "of it?",
          "Follow the unseeded generator: is the key the same on the CI machine as when the "
          "notebook was executed and stored?"),
    where="class",
)
