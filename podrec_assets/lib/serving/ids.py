"""Which ids the HTTP API accepts: a path segment or JSON value that reaches MongoDB, Kafka or a file path.

Letters, digits and `_ - : @ + =`, starting with a letter or digit, at most MAX_ID_LENGTH characters (the event
contract's limit). No `$` (a MongoDB operator), no `.` (a dotted key or `..`), no `/`, no whitespace, no NUL. The
event contract itself accepts any string and stores it safely (stats hash their keys); the API is stricter because
its ids are also lookup keys and URL segments.
"""

from __future__ import annotations

import re

from podrec_assets.lib.ingestion.contract import MAX_ID_LENGTH

SAFE_ID = re.compile(rf"[A-Za-z0-9][A-Za-z0-9_\-:@+=]{{0,{MAX_ID_LENGTH - 1}}}")


def is_safe_id(value: object) -> bool:
    return isinstance(value, str) and SAFE_ID.fullmatch(value) is not None
