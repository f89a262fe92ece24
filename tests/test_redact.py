"""Tests for core.redact: planted fake secrets never survive, ordinary log text does."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core import redact as redact_module
from core.redact import Redactor, iban_valid, luhn_valid, redact

# Every line plants one fake secret (the second element) that must not survive redaction.
PLANTED = [
    ("payment declined for card 4111 1111 1111 1111 at merchant 42", "4111 1111 1111 1111"),
    ("card=4111-1111-1111-1111 rejected", "4111-1111-1111-1111"),
    ("pan 5500005555555559 expired", "5500005555555559"),
    ("amex 378282246310005 limit", "378282246310005"),
    ("order 12 4111 1111 1111 1111 failed", "4111 1111 1111 1111"),
    ("card 4111 1111 1111 1111 12 times", "4111 1111 1111 1111"),
    ("transfer to GB82 WEST 1234 5698 7654 32 failed", "WEST 1234 5698"),
    ("iban=DE89370400440532013000;", "DE89370400440532013000"),
    ("účet CZ65 0800 0000 1920 0014 5399 blocked", "0800 0000 1920"),
    ("iban CZ6508000000192000145399 5678 booked", "CZ6508000000192000145399"),
    ("user alice.smith+test@example.com not found", "alice.smith+test@example.com"),
    ("notify bob@mail.example.co.uk failed", "bob@mail.example.co.uk"),
    (
        "token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0"
        ".dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U ok",
        "eyJzdWIiOiIxMjM0NTY3ODkwIn0",
    ),
    ("Authorization: Bearer abc123.def-456_ghi~", "abc123.def-456_ghi"),
    ("header authorization=Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA"),
    ("connect postgresql://app_user:S3cr3t!pw@db.example.com:5432/app", "S3cr3t!pw"),
    ("fetch https://svc:p@ss@word@api.example.com/x", "p@ss@word"),
    ("login password=hunter2 user=carol", "hunter2"),
    ("DB_PASSWORD=Tr0ub4dor&3 retry", "Tr0ub4dor"),
    ("passwd: correct-horse-battery", "correct-horse-battery"),
    ('{"user": "dave", "password": "pa\\"ss w0rd"}', 'pa\\"ss w0rd'),
    ("{'api_key': 'AKIAFAKEFAKEFAKE'}", "AKIAFAKEFAKEFAKE"),
    ("x-api-key: k-9f8e7d6c5b4a", "k-9f8e7d6c5b4a"),
    ("client_secret=cs_fake_0123456789&grant=client", "cs_fake_0123456789"),
    ("access_key=AKIA0000FAKE0000 region=eu", "AKIA0000FAKE0000"),
    ("refresh_token: rt.fake.value", "rt.fake.value"),
    ('"private_key": "-----BEGIN FAKE KEY-----"', "BEGIN FAKE KEY"),
    ("pwd=qwerty123", "qwerty123"),
    ("apikey=0123fakefake", "0123fakefake"),
    ("client called with secret: s3cr3t-value", "s3cr3t-value"),
    ('sample cut short {"password": "fake-pw-not-closed', "fake-pw-not-closed"),
]


@pytest.mark.parametrize(("line", "secret"), PLANTED)
def test_planted_secret_does_not_survive(line: str, secret: str) -> None:
    assert secret not in redact(line)


def test_whole_corpus_in_one_text_leaves_no_secret() -> None:
    redacted = redact("\n".join(line for line, _ in PLANTED))
    survivors = [secret for _, secret in PLANTED if secret in redacted]
    assert survivors == []


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("card 4111 1111 1111 1111 declined", "card [CARD] declined"),
        ("to GB82 WEST 1234 5698 7654 32.", "to [IBAN]."),
        ("mail alice@example.com", "mail [EMAIL]"),
        ("Authorization: Bearer abc.def", "Authorization: Bearer [TOKEN]"),
        ("Authorization: Basic dXNlcjpwYXNz", "Authorization: [SECRET]"),
        ("https://user:pw@db.example.com/x", "https://user:[SECRET]@db.example.com/x"),
        ('{"token": "abc", "n": 1}', '{"token": "[SECRET]", "n": 1}'),
        ("password=hunter2&user=x", "password=[SECRET]&user=x"),
        ("order 12 4111 1111 1111 1111 failed", "order 12 [CARD] failed"),
    ],
)
def test_placeholders_keep_the_surrounding_text(line: str, expected: str) -> None:
    assert redact(line) == expected


@pytest.mark.parametrize(
    "line",
    [
        "order 1234567890123 failed",  # 13 digits, not Luhn-valid: an id, not a card
        "Timeout after 30000 ms at 2026-02-09T10:15:32Z",
        "request 3f2b9c1e-8a7d-4c2b-9e1f-0a1b2c3d4e5f failed with HTTP 503",
        "GB00 WEST 1234 5698 7654 32 is not a valid IBAN",
        "Connection to db.example.com:5432 refused",
        "java.sql.SQLTransientConnectionException: HikariPool-1 - Connection is not available",
    ],
)
def test_ordinary_log_text_is_unchanged(line: str) -> None:
    assert redact(line) == line


def test_extra_patterns_are_redacted() -> None:
    redactor = Redactor(extra_patterns=[r"\bEMP-\d{6}\b", r"(?i)rodne cislo \d{6}/\d{4}"])
    assert redactor.redact("employee EMP-123456, rodne cislo 900101/1234") == (
        "employee [REDACTED], [REDACTED]"
    )


def test_invalid_extra_pattern_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="invalid redaction pattern"):
        Redactor(extra_patterns=["(unclosed"])


def test_checksums() -> None:
    assert luhn_valid("4111111111111111")
    assert not luhn_valid("4111111111111112")
    assert iban_valid("GB82WEST12345698765432")
    assert not iban_valid("GB83WEST12345698765432")


def _luhn_complete(prefix: str) -> str:
    check = next(d for d in "0123456789" if luhn_valid(prefix + d))
    return prefix + check


@given(
    body=st.text(alphabet="0123456789", min_size=12, max_size=18),
    before=st.sampled_from(["card ", "x=", "(", ""]),
    after=st.sampled_from([" ok", ")", ".", ""]),
    separator=st.sampled_from(["", " ", "-"]),
)
def test_any_luhn_valid_card_is_redacted(body: str, before: str, after: str, separator: str) -> None:
    number = _luhn_complete(body)
    grouped = separator.join(number[i : i + 4] for i in range(0, len(number), 4))
    redacted = redact(f"{before}{grouped}{after}")
    assert number not in redacted.replace(" ", "").replace("-", "")
    assert "[CARD]" in redacted


@given(st.text(max_size=200))
def test_redaction_is_idempotent(text: str) -> None:
    once = redact(text)
    assert redact(once) == once


@pytest.mark.parametrize("word", redact_module._SECRET_KEY_WORDS.split("|"))
def test_every_secret_key_word_holds_a_hint_so_the_quick_check_never_skips_a_pair(word: str) -> None:
    spelled = word.replace("[_-]?", "_").replace("s?", "s")
    assert any(hint in spelled for hint in redact_module._SECRET_KEY_HINTS), word
    assert redact(f"{spelled.upper()}=fake-value-1") == f"{spelled.upper()}=[SECRET]"


@pytest.mark.parametrize("key", ["PassWord", "pa\u017f\u017fword", "api_\u212aey"])  # long s, Kelvin sign
def test_the_quick_check_folds_case_as_the_pair_rule_does(key: str) -> None:
    assert redact(f"{key}=fake-value-1") == f"{key}=[SECRET]"


# The rules as they were before the quick checks and the first-character IBAN and card patterns: the
# reference the faster ones are compared with.
_IBAN_BEFORE = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b")
_CARD_BEFORE = re.compile(r"\b\d(?:[ -]?\d){12,18}\b")


def _redacted_as_before(text: str) -> str:
    m = redact_module
    text = m._URL_PASSWORD.sub(rf"\g<prefix>:{m.SECRET}@", text)
    text = m._BEARER.sub(rf"\g<scheme> {m.TOKEN}", text)
    folded = text.casefold()
    if any(hint in folded for hint in m._SECRET_KEY_HINTS):
        text = m._SECRET_PAIR.sub(m._redact_secret_pair, text)
    text = m._JWT.sub(m.JWT, text)
    text = m._EMAIL.sub(m.EMAIL, text)
    text = _IBAN_BEFORE.sub(m._redact_iban, text)
    return _CARD_BEFORE.sub(m._redact_card, text)


_SECRET_PIECES = (
    *(line for line, _ in PLANTED), "BEARER x", "bEaReR", "://", "u:p@h", "@", "eyJ", "eyJabcdef.eyJabcdef.",
    "GB82", "WEST", "1234", "4111", " ", "-", "_", "x", "é", "A", "1", ":", "=", ".", "K", "ſ",
)  # fmt: skip


@settings(max_examples=2000, deadline=None)
@given(st.lists(st.sampled_from(_SECRET_PIECES), max_size=12).map("".join), st.text(max_size=60))
def test_redaction_is_what_the_rules_gave_before_their_quick_checks(pieces: str, text: str) -> None:
    for line in (pieces, text, pieces + text):
        assert redact(line) == _redacted_as_before(line)


def test_redaction_after_each_character_is_what_the_rules_gave_before() -> None:
    # Whether a rule may start depends on the character before it: a letter, a digit, a separator.
    befores = ("", " ", "x", "1", "_", "-", ".", "=", ":", "/", "é", "ſ")
    lines = [
        f"{before}{line}{after}"
        for before in befores
        for line, _ in PLANTED
        for after in ("", "x", " 1", ".")
    ]
    lines += [f"{before}{secret}" for before in befores for _, secret in PLANTED]
    assert [redact(line) for line in lines] == [_redacted_as_before(line) for line in lines]
