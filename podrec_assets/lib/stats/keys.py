"""Safe MongoDB field names and document ids for values that come from listeners' events and the catalog.

A field name in MongoDB must not start with `$` (an operator) and a `.` inside it is a path separator, so a
device called "a.b" would become a nested field and one called "$where" an error. Every dynamic key podrec
writes (event types, devices, months, rating stars) goes through `safe_key`; values (user ids, show names) are
stored as plain field values, where any string is fine, and ids built from them are hashes (`affinity_id`).
"""

from __future__ import annotations

import hashlib
import re

import orjson

# Longest key `safe_key` returns (the sanitized part is cut so that the hash suffix still fits).
MAX_KEY_LENGTH = 64
HASH_SUFFIX_HEX = 12
_SAFE = re.compile(r"[A-Za-z0-9_-]+")
_UNSAFE_CHAR = re.compile(r"[^A-Za-z0-9_-]")
# What `safe_key` appends to a changed name. A name that already ends like this is changed too, so a changed
# name can never equal a name that was kept as it is.
_SUFFIX = re.compile(rf"__[0-9a-f]{{{HASH_SUFFIX_HEX}}}\Z")


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def safe_key(name: str) -> str:
    """`name` as a MongoDB field name made of [A-Za-z0-9_-] only, at most `MAX_KEY_LENGTH` characters.

    Names that are already safe and short are kept unchanged ("play", "2025-01", "ios"). Any other name (with
    `$`, `.`, spaces, non-ASCII, empty, too long) becomes its sanitized, truncated form plus `__` and 12 hex
    digits of its sha256, so two different names only share a key if their hashes collide (48 bits)."""
    if _SAFE.fullmatch(name) and len(name) <= MAX_KEY_LENGTH and not _SUFFIX.search(name):
        return name
    kept = _UNSAFE_CHAR.sub("_", name)[: MAX_KEY_LENGTH - HASH_SUFFIX_HEX - 2]
    return f"{kept}__{_digest(name)[:HASH_SUFFIX_HEX]}"


def affinity_id(user_id: str, dimension: str, value: str) -> str:
    """The `_id` of a user_affinities document: 32 hex digits of the sha256 of the canonical JSON of the
    triple.

    JSON keeps the three parts apart (no separator a value could contain), and a hash keeps the id short and
    free of `$` and `.` whatever the user id or show name is. (orjson: compact, UTF-8, the same bytes every
    time.)"""
    return hashlib.sha256(orjson.dumps([user_id, dimension, value])).hexdigest()[:32]


def rating_id(user_id: str, episode_id: str) -> str:
    """The `_id` of a user_episode_ratings document: as `affinity_id`, for the pair."""
    return hashlib.sha256(orjson.dumps(["rating", user_id, episode_id])).hexdigest()[:32]
