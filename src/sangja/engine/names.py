"""Container names: checked as Docker checks them, and generated as Docker makes them
(`adjective_surname`, the surname of a scientist or engineer).  The word lists are
sangja's own."""

from __future__ import annotations

import os

from sangja.engine.errors import InvalidArgument

_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_CHARS = _ALNUM | frozenset("_.-")

ADJECTIVES = (
    "agile", "amused", "ardent", "bold", "brave", "bright", "busy", "calm", "careful",
    "cheerful", "clever", "cool", "curious", "daring", "dazzling", "eager", "earnest", "elated",
    "epic", "fervent", "fond", "friendly", "gallant", "gentle", "glad", "graceful", "happy",
    "hardy", "honest", "hopeful", "humble", "jolly", "keen", "kind", "lively", "loyal",
    "lucid", "merry", "mighty", "modest", "nimble", "noble", "patient", "peaceful", "plucky",
    "polite", "proud", "quick", "quiet", "radiant", "ready", "relaxed", "serene", "sharp",
    "shy", "silly", "sleepy", "smart", "snappy", "steady", "stoic", "sunny", "swift", "tender",
    "thirsty", "tidy", "upbeat", "vibrant", "vigilant", "warm", "wise", "witty", "zealous",
)  # fmt: skip

SURNAMES = (
    "agnesi", "ampere", "archimedes", "avogadro", "babbage", "banach", "bardeen", "bohr",
    "boltzmann", "boole", "brahe", "cantor", "carnot", "cauchy", "cerf", "chandrasekhar",
    "cori", "curie", "darwin", "dijkstra", "dirac", "euclid", "euler", "faraday", "fermat",
    "fermi", "feynman", "franklin", "galileo", "galois", "gauss", "germain", "goedel",
    "hamilton", "hawking", "heisenberg", "hilbert", "hodgkin", "hopper", "huygens", "hypatia",
    "jacobi", "joule", "kelvin", "kepler", "knuth", "kovalevskaya", "lagrange", "lamarr",
    "laplace", "leibniz", "liskov", "lovelace", "maxwell", "meitner", "mendel", "mirzakhani",
    "newton", "noether", "ohm", "pascal", "pasteur", "pauli", "planck", "poincare", "ramanujan",
    "riemann", "ritchie", "rutherford", "sagan", "shannon", "somerville", "tesla", "thompson",
    "torvalds", "turing", "volta", "wiles", "wozniak", "yalow", "yonath", "zuse",
)  # fmt: skip


def generate() -> str:
    a, b = int.from_bytes(os.urandom(4), "big"), int.from_bytes(os.urandom(4), "big")
    return f"{ADJECTIVES[a % len(ADJECTIVES)]}_{SURNAMES[b % len(SURNAMES)]}"


def check(name: str) -> str:
    """A name as given (Docker accepts a leading '/') -> the name, or InvalidArgument."""
    if name.startswith("/"):
        name = name[1:]
    if not name or name[0] not in _ALNUM or not _CHARS.issuperset(name) or len(name) > 128:
        raise InvalidArgument(
            f'Invalid container name ("{name}"), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed'
        )
    return name
