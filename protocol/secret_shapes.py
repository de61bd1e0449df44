"""Secrets recognised by name and by the shape of their value, for text a client tags sessions with.

A property (`Rtrec-Property-*`) is free text chosen by the client: anything a careless caller
puts there (an Azure key, a bearer token, `password=…`) would otherwise be stored, shown on the
dashboard, printed by `sessions --json` and exported as a metric label.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter

# `*key*`, `*secret*`, `*token*`, `*password*`, `authorization`…: a name that says "credential".
_SECRET_NAME_PARTS = (
    "key",
    "secret",
    "token",
    "password",
    "passwd",
    "pwd",
    "authorization",
    "cookie",
    "credential",
    "signature",
)

_SECRET_VALUE = re.compile(
    r"""
      (?<![A-Za-z0-9])(?:sk|rk|pk)-[A-Za-z0-9_\-]{6,}          # OpenAI (and similar) keys
    | (?<![A-Za-z0-9])ek_[A-Za-z0-9_\-]{6,}                    # OpenAI ephemeral keys
    | (?<![A-Z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Z0-9])       # AWS access key ids
    | (?<![A-Za-z0-9])gh[pousr]_[A-Za-z0-9]{20,}               # GitHub tokens
    | (?<![A-Za-z0-9])github_pat_[A-Za-z0-9_]{20,}
    | (?<![A-Za-z0-9])xox[abposr]-[A-Za-z0-9\-]{10,}           # Slack tokens
    | (?<![A-Za-z0-9])glpat-[A-Za-z0-9_\-]{20,}                # GitLab tokens
    | (?<![A-Za-z0-9])AIza[A-Za-z0-9_\-]{35}                   # Google API keys
    | \b(?:bearer|basic)\s+\S+                                 # an Authorization header's value
    | eyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*     # JWTs
    | (?<![0-9A-Fa-f\-])[0-9A-Fa-f]{32}(?![0-9A-Fa-f\-])       # Azure OpenAI keys: 32 hex digits
    | \b(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key)\s*[:=]
    """,
    re.IGNORECASE | re.VERBOSE,
)
# Words of a value that may be a random credential: runs of letters, digits and base64's `+/=`.
# Separators split them, so names and dates (`gpt-realtime-2025-08-28`) are read word by word.
_WORD = re.compile(r"[A-Za-z0-9+/=]+")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)
HIGH_ENTROPY_MIN_CHARS = 20
HIGH_ENTROPY_BITS_PER_CHAR = 3.5


def is_secret_name(name: str) -> bool:
    """A property or field name that says it holds a credential (`api_key`, `x_auth_token`)."""
    lowered = name.lower().replace("-", "_")
    return any(part in lowered for part in _SECRET_NAME_PARTS)


def _bits_per_char(word: str) -> float:
    counts = Counter(word)
    return -sum(n / len(word) * math.log2(n / len(word)) for n in counts.values())


def is_high_entropy(word: str) -> bool:
    """A long word mixing letters and digits with the spread of random characters (a key), not a
    name, a UUID or a sentence."""
    if len(word) < HIGH_ENTROPY_MIN_CHARS or _UUID.fullmatch(word):
        return False
    has_letter = any(c.isalpha() for c in word)
    has_digit = any(c.isdigit() for c in word)
    return has_letter and has_digit and _bits_per_char(word) >= HIGH_ENTROPY_BITS_PER_CHAR


def looks_secret(value: str) -> bool:
    """True when `value` holds a known key shape, a `password=`-style pair, or a random word."""
    if _SECRET_VALUE.search(value):
        return True
    return any(is_high_entropy(word) for word in _WORD.findall(value))


def without_control_characters(text: str) -> str:
    """`text` without C0/C1 control characters (NUL, escapes, newlines): a property is one line."""
    return "".join(c for c in text if unicodedata.category(c) != "Cc")
