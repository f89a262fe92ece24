"""Redaction of secrets and personal data in log text before it leaves the cluster (samples, templates)."""

from __future__ import annotations

import re
from collections.abc import Iterable

CARD = "[CARD]"
IBAN = "[IBAN]"
EMAIL = "[EMAIL]"
JWT = "[JWT]"
TOKEN = "[TOKEN]"
SECRET = "[SECRET]"
REDACTED = "[REDACTED]"

_PLACEHOLDER = re.compile(r"\[[A-Z]+\]")

# `user:password@` in any URL; the password runs to the last `@` before the host, because
# passwords may themselves contain `@`. Bounded repeats here and in _EMAIL keep the search linear.
_URL_PASSWORD = re.compile(
    r"(?P<prefix>\b[a-zA-Z][a-zA-Z0-9+.-]{0,30}://[^:/?#\s@]{0,256}):(?P<password>[^\s/?#]+)@"
)

_BEARER = re.compile(r"\b(?P<scheme>Bearer)\s+[A-Za-z0-9\-._~+/]+=*", re.IGNORECASE)

# A key that looks secret, optionally quoted (JSON, Python reprs), then `=` or `:`, then a quoted or
# bare value. A bare value may carry an HTTP auth scheme ("Authorization: Basic dXNlcjpwYXNz"). The
# look-behind lets a key start only where a token starts; with the bounded repeats that keeps the
# search linear. A quoted value may lack its closing quote when the sample was cut short.
_SECRET_KEY_WORDS = (
    r"password|passwd|pwd|passphrase|secret|token|api[_-]?key|access[_-]?key|private[_-]?key"
    r"|client[_-]?secret|authorization|credentials?|session[_-]?id"
)
_SECRET_PAIR = re.compile(
    r"(?<![A-Za-z0-9_.-])(?P<key>(?P<quote>[\"']?)[A-Za-z0-9_.-]{0,40}(?:"
    + _SECRET_KEY_WORDS
    + r")[A-Za-z0-9_.-]{0,40}(?P=quote))"
    r"(?P<sep>[ \t]*[:=][ \t]*)"
    r"(?:\"(?P<dq>(?:[^\"\\]|\\.)*)(?:\"|\Z)|'(?P<sq>(?:[^'\\]|\\.)*)(?:'|\Z)"
    r"|(?P<bare>(?:(?:Basic|Bearer|Digest|Negotiate|Token)\s+)?[^\s,;&\"'}\]]+\]?))",
    re.IGNORECASE,
)
# Every word above contains one of these: a line with none of them (most lines) has no secret pair,
# and looking for them costs a hundredth of trying the pair at every token.
_SECRET_KEY_HINTS = ("pass", "pwd", "secret", "token", "key", "authorization", "credential", "session")

# header.payload.signature, where header and payload are base64url JSON objects (`{"` → `eyJ`).
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*")

_EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")

# These two start with their first character, and check the word boundary before it just after it
# (`\b\d` is `\d(?<!\w\d)`): the regex engine then scans for that character at C speed instead of
# trying the whole pattern at every position, 2-3x faster on log lines.
_IBAN = re.compile(r"[A-Z](?<!\w[A-Z])[A-Z]\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b")

_CARD = re.compile(r"\d(?<!\w\d)(?:[ -]?\d){12,18}\b")
_DIGIT_GROUP = re.compile(r"\d+")


def luhn_valid(digits: str) -> bool:
    """True when a string of digits passes the Luhn check (payment card numbers do)."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def iban_valid(compact: str) -> bool:
    """True when an IBAN without spaces has a plausible length and a valid ISO 13616 mod-97 checksum."""
    if not 15 <= len(compact) <= 34:
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(char, 36)) for char in rearranged)) % 97 == 1


def _redact_secret_pair(match: re.Match[str]) -> str:
    key, sep = match["key"], match["sep"]
    if match["dq"] is not None:
        return f'{key}{sep}"{SECRET}"'
    if match["sq"] is not None:
        return f"{key}{sep}'{SECRET}'"
    # Leave values an earlier rule already replaced ("Authorization: Bearer [TOKEN]") so that
    # redacting twice gives the same text as redacting once.
    if _PLACEHOLDER.fullmatch(match["bare"].split()[-1]):
        return match[0]
    return f"{key}{sep}{SECRET}"


def _redact_iban(match: re.Match[str]) -> str:
    # The pattern is greedy; a valid IBAN may be followed by more groups of characters, so try the
    # longest prefix that ends at a group boundary first.
    text = match[0]
    ends = [i for i in range(len(text), 0, -1) if i == len(text) or text[i] == " "]
    for end in ends:
        if iban_valid(text[:end].replace(" ", "")):
            return IBAN + text[end:]
    return text


def _redact_card(match: re.Match[str]) -> str:
    # A run of digit groups may hold a card number beside other numbers ("order 12 4111 1111 1111
    # 1111"): take the longest span of whole groups with 13–19 digits that passes the Luhn check.
    text = match[0]
    groups = [(m.start(), m.end(), m[0]) for m in _DIGIT_GROUP.finditer(text)]
    for size in range(len(groups), 0, -1):
        for first in range(len(groups) - size + 1):
            span = groups[first : first + size]
            digits = "".join(group for _, _, group in span)
            if 13 <= len(digits) <= 19 and luhn_valid(digits):
                return text[: span[0][0]] + CARD + text[span[-1][1] :]
    return text


class Redactor:
    """Replaces secrets and personal data with placeholders; the patterns are compiled once."""

    def __init__(self, extra_patterns: Iterable[str] = ()) -> None:
        try:
            self._extra = [re.compile(pattern) for pattern in extra_patterns]
        except re.error as error:
            raise ValueError(f"invalid redaction pattern {error.pattern!r}: {error}") from None

    def redact(self, text: str) -> str:
        """Return `text` with every recognised secret replaced by its placeholder."""
        # Order matters: credentials with structure (URLs, auth headers, key=value) first, so that
        # the generic rules below do not eat half of them.
        # A rule is only tried on text holding a piece of text every match of it holds: most lines
        # have no "://", no "bearer" (in any case: only ASCII letters fold to those), no "eyJ", no "@".
        if "://" in text:
            text = _URL_PASSWORD.sub(rf"\g<prefix>:{SECRET}@", text)
        if "bearer" in text.lower():
            text = _BEARER.sub(rf"\g<scheme> {TOKEN}", text)
        folded = text.casefold()  # as IGNORECASE folds: "PASSWORD" and "paſſword" both hold "pass"
        if any(hint in folded for hint in _SECRET_KEY_HINTS):
            text = _SECRET_PAIR.sub(_redact_secret_pair, text)
        if "eyJ" in text:
            text = _JWT.sub(JWT, text)
        if "@" in text:
            text = _EMAIL.sub(EMAIL, text)
        text = _IBAN.sub(_redact_iban, text)
        text = _CARD.sub(_redact_card, text)
        for pattern in self._extra:
            text = pattern.sub(REDACTED, text)
        return text


DEFAULT_REDACTOR = Redactor()
"""The redactor without configured extra patterns."""


def redact(text: str) -> str:
    """Redact `text` with the built-in rules only (no configured extra patterns)."""
    return DEFAULT_REDACTOR.redact(text)
