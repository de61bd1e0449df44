"""Personal data in recorded text (`--redact-pii`): replaced by a typed placeholder before storage.

Detection is the maintained libraries' own: `phonenumbers` finds phone numbers, `python-stdnum`
checks card numbers (Luhn), IBANs and national ids. Regular expressions here only propose
candidates (runs of digits, an IBAN's shape) that those checks confirm, and find e-mail addresses.
Numbers spelled out in words ("four two four two") are not recognised.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import phonenumbers
from stdnum import iban, luhn
from stdnum.de import idnr
from stdnum.es import dni
from stdnum.it import codicefiscale
from stdnum.us import ssn

CARD = "[CARD]"
PHONE = "[PHONE]"
EMAIL = "[EMAIL]"
IBAN = "[IBAN]"
ID = "[ID]"
PLACEHOLDERS = (CARD, PHONE, EMAIL, IBAN, ID)
# Numbers without a country code are read as this region's (phonenumbers' default region).
DEFAULT_REGION = "US"

_EMAIL = re.compile(r"[\w.+'-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]){11,30}\b")
# 13 to 19 digits, grouped by spaces or dashes as people type and transcribers write them.
_CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
_NATIONAL_IDS: tuple[tuple[re.Pattern[str], Callable[[str], bool]], ...] = (
    (re.compile(r"(?<![\d-])\d{3}[- ]\d{2}[- ]\d{4}(?![\d-])"), ssn.is_valid),
    (re.compile(r"\b\d{8}[- ]?[A-Za-z]\b"), dni.is_valid),
    (re.compile(r"\b[A-Za-z]{6}\d{2}[A-Za-z]\d{2}[A-Za-z]\d{3}[A-Za-z]\b"), codicefiscale.is_valid),
    (re.compile(r"(?<![\d-])\d{2} ?\d{3} ?\d{3} ?\d{3}(?![\d-])"), idnr.is_valid),
)
# Cheap pre-check: text with neither digits nor `@` holds none of these.
_MAY_HOLD = re.compile(r"[\d@]")


def _confirmed(
    pattern: re.Pattern[str], valid: Callable[[str], bool], placeholder: str
) -> Callable[[str], str]:
    def replace(match: re.Match[str]) -> str:
        return placeholder if valid(match[0]) else match[0]

    return lambda text: pattern.sub(replace, text)


def _card(number: str) -> bool:
    digits = re.sub(r"\D", "", number)
    return 13 <= len(digits) <= 19 and luhn.is_valid(digits)


def _phones(text: str, region: str) -> str:
    spans = [
        (match.start, match.end)
        for match in phonenumbers.PhoneNumberMatcher(
            text, region, leniency=phonenumbers.Leniency.VALID
        )
    ]
    for start, end in reversed(spans):
        text = text[:start] + PHONE + text[end:]
    return text


def redact_pii(text: str, region: str = DEFAULT_REGION) -> str:
    """`text` with card numbers, IBANs, national ids, e-mail addresses and phone numbers replaced
    by `[CARD]`, `[IBAN]`, `[ID]`, `[EMAIL]` and `[PHONE]`; cards and IBANs first, so that the
    phone matcher never claims part of one."""
    if not _MAY_HOLD.search(text):
        return text
    text = _EMAIL.sub(EMAIL, text)
    text = _IBAN_CONFIRMED(text)
    text = _CARD_CONFIRMED(text)
    for confirm in _ID_CONFIRMED:
        text = confirm(text)
    return _phones(text, region)


_IBAN_CONFIRMED = _confirmed(_IBAN, iban.is_valid, IBAN)
_CARD_CONFIRMED = _confirmed(_CARD, _card, CARD)
_ID_CONFIRMED = tuple(_confirmed(pattern, valid, ID) for pattern, valid in _NATIONAL_IDS)

# A delta stream's tail that may be the start of a number or an address still being written:
# a run of digits with the separators people use (and an IBAN's two letters), or the last word.
_OPEN_TAIL = re.compile(r"(?:[A-Z]{2})?[+(]?\d[\d ()./-]*$|[^\s]*$")
MAX_HELD_CHARS = 64


def held_tail_start(text: str) -> int:
    """Where the part of `text` that a following delta may still turn into PII begins."""
    match = _OPEN_TAIL.search(text)
    start = match.start() if match else len(text)
    return max(start, len(text) - MAX_HELD_CHARS)
