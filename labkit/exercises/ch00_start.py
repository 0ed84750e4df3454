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
)
def _bits_of_a5(answer):
    return list(map(int, answer)) == bits.bytes_to_bits(bytes([0xA5])).tolist()


@exercise(
    "00.2",
    "Hamming distance between 'lab' and 'lap'",
    hint=("The Hamming distance counts the bit positions where two equal-length strings differ.",
          "Only the last characters differ: look up the ASCII codes of 'b' and 'p', XOR them and "
          "count the 1 bits of the result."),
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
)
def _flip_index(answer):
    i = int(answer)
    return 0 <= i < 16 and bits.flip_bit(bytes(2), i) == bytes([0x00, 0x80])


# --- concept questions (kind "quiz"; the answers are the challenge service's, see quiz.py) ---

quiz(
    '00.4',
    'Why does the lab number bits exactly as FIPS 46-3 and FIPS 197 do (most significant bit of the first byte first)?',
    [
     'Because numpy can only store bits in that order.',
     'Because any other order would make the ciphers weaker.',
     "Because the standards' tables (IP, E, P, PC-1, the AES byte layout) and their test vectors are written in that order, so the tables can be used verbatim and results compared bit for bit.",
     'Because it makes the ciphers faster on x86 processors.',
    ],
    hint=('Think about where the tables of bit positions in labkit.des come from.',
          'A table copied from a standard only works if the lab counts bits as the standard does; '
          'and test vectors are compared bit for bit.'),
)

quiz(
    '00.5',
    'FIPS 46-3 numbers the bits of a DES block 1 to 64 from the left. Which bit is `labkit` index 0?',
    [
     'FIPS bit 1, the most significant bit of the first byte.',
     'FIPS bit 64, the least significant bit of the last byte.',
     'FIPS bit 8, the least significant bit of the first byte.',
     'FIPS bit 0, which the standard reserves for parity.',
    ],
    hint=('labkit counts from 0, FIPS 46-3 counts from 1.',
          'Both count from the left: the first bit written, the most significant of the first byte.'),
)

quiz(
    '00.6',
    'Why does every notebook seed its random generators?',
    [
     'Seeding makes the generated keys secret.',
     'So that a cell gives the same numbers on every machine: stored outputs can be compared by CI (nbval) and a class can discuss the same values.',
     'Because numpy refuses to run without a seed.',
     'To make the ciphers deterministic; unseeded AES would be randomized.',
    ],
    hint=('What would nbval compare if the numbers changed at every run?',
          'Think of a class of thirty looking at one projected figure, and of CI comparing stored '
          'outputs: both need the same numbers on every machine.'),
)
