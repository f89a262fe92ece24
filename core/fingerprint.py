"""Fingerprint stage: mask the variable parts of a log message and derive a stable key from the template.

The key is a pure function of (message, error_type) and of `MASKING_RULES_VERSION`: no state, no
input order, no clustering. Changing any masking rule changes keys, so every rule change must bump
`MASKING_RULES_VERSION` (the golden tests in tests/test_fingerprint.py catch accidental changes).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator, Sequence
from functools import lru_cache

from core.model import Fingerprint

MASKING_RULES_VERSION = 2
"""Part of every key: bump it whenever a rule below changes, since the registry is keyed on keys."""

MAX_TEMPLATE_CHARS = 2048
"""Only this much of a (single-line) message is masked: bounds the cost of huge messages."""

MAX_TRACE_CHARS = 65536
"""Only this much of a multi-line message is searched for a stack trace's exception line."""

KEY_HEX_CHARS = 16

CACHE_SIZE = 16384
"""Fingerprints remembered (by message with its digits blinded): as fast as four times more on a day
of logs (measured in docs/performance.md), and a quarter of the memory."""

_TLDS = (
    "com|net|org|edu|gov|mil|int|io|co|info|biz|dev|app|cloud|local|localdomain|internal|lan|svc|"
    "cluster|us|uk|de|fr|nl|eu|cn|hk|jp|ru|br|au|ca|om|"
    # more country codes, without those that are English words or file extensions (in, no, it, be, sh …)
    "ar|pl|tw|kr|mx|es|se|ch|cz|ro|hu|pt|za|nz|sg|tr|ua|vn|th|cl|gr|il|dk|fi|ie|kz|ir|pk|bg|sk|lt|lv|"
    "ee|hr|rs|ph|pe|ve|tv|cc|ws"
)
_USER_STOPWORDS = (
    "is|was|has|had|not|does|did|can|cannot|could|with|from|for|in|on|to|the|a|an|and|or|of|"
    "unknown|id|name|session|account|already|must|should|will|may|by|at|as"
)
# Characters that end a "token" for the generic digit rule: whitespace, brackets, quotes, separators.
_TOKEN_BREAK = r"\s()\[\]{}<>\"',;="
_TOKEN = rf"[^{_TOKEN_BREAK}]"


def _after(words: Sequence[str]) -> str:
    """Any of `words` with its first character already consumed: `(?:ser(?<=User)|ser(?<=user)…)`,
    each alternative starting with a character too."""
    return "(?:" + "|".join(f"{re.escape(word[1:])}(?<={re.escape(word)})" for word in words) + ")"


def _word(words: Sequence[str]) -> str:
    r"""`\b(?:words)`, starting with the class of the words' first characters."""
    first = "[" + "".join(sorted({re.escape(word[0]) for word in words})) + "]"
    return rf"{first}(?<!\w{first})" + _after(words)


# Every alternative of every rule starts with the class of its first character, and what the rule
# requires before that character is checked just after it, by a look-behind one character wider:
# `\b\d` is `\d(?<!\w\d)`, `(?<![\w.])\d` is `\d(?<![\w.]\d)`. The same matches as the look-behind
# first, but the regex engine skips an alternative at a glance where its first character does not fit
# (it only does that for an alternative that starts with a character or a class), instead of
# entering each of them at every position: 1.4x faster, the same templates (docs/performance.md).
# The order is that of the rules: at one position the first alternative that matches wins, so
# specific shapes (key=value, URL, UUID, IP, timestamp) come before the generic "token containing a
# digit" rule.
_VALUE_HEAD = r"[\w\]]="
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_USER_WORDS = ("User", "user", "Username", "username", "login")
_HOST_WORDS = ("host", "hostname", "node", "server", "peer", "from", "to")
_BUILTIN_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    # everything right after "key=" is the value, whatever its shape
    (
        "VALUE",
        (
            rf"\"(?<={_VALUE_HEAD}\")[^\"\n]{{0,256}}\"",
            rf"'(?<={_VALUE_HEAD}')[^'\n]{{0,256}}'",
            rf"\{{(?<={_VALUE_HEAD}\{{)[^\s{{}}]*\}}",
            rf"[^\s,;&()\[\]{{}}](?<={_VALUE_HEAD}[^\s,;&()\[\]{{}}])[^\s,;&()\[\]{{}}]*\{{[^\s{{}}]*\}}",
            rf"[^\s,;&)\]}}](?<={_VALUE_HEAD}[^\s,;&)\]}}])[^\s,;&)\]}}]*",
        ),
    ),
    ("URL", (r"[a-zA-Z](?<![\w+.-][a-zA-Z])[a-zA-Z0-9+.-]*+://[^\s\"'<>\])}]+",)),
    ("EMAIL", (r"[\w.+-](?<![\w.+-][\w.+-])[\w.+-]*+@(?:[A-Za-z0-9-]++\.)++[A-Za-z]{2,}\b",)),
    (
        "UUID",
        (
            r"[0-9a-fA-F](?<!\w[0-9a-fA-F])[0-9a-fA-F]{7}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b",
        ),
    ),
    (
        "TS",
        (
            r"\d(?<!\w\d)\d{3}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?",
            _word(_WEEKDAYS) + r"[a-z]*,? +(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
            r"[a-z]* +\d{1,2} +\d{2}:\d{2}:\d{2}(?: +\d{4})?",
        ),
    ),
    ("DATE", (r"\d(?<!\w\d)\d{3}[-/]\d{1,2}[-/]\d{1,2}\b",)),
    (
        "IP",
        (
            r"[0-9a-fA-F](?<!\w[0-9a-fA-F])[0-9a-fA-F]{0,3}:(?:[0-9a-fA-F]{1,4}:){3,6}[0-9a-fA-F]{1,4}\b",
            r"\d(?<!\w\d)\d{0,2}(?:\.\d{1,3}){3}(?::\d{1,5})?\b(?!\.?[\w-])",
        ),
    ),
    ("TIME", (r"\d(?<![\w.:]\d)\d?:\d{2}(?::\d{2})?(?:[.,]\d+)?\b",)),
    # host:port where the host has a dot or a dash (so "retries:10" stays a word and a number)
    (
        "HOST",
        (
            r"[A-Za-z0-9](?<!\w[A-Za-z0-9])\w*+(?:[.-]++\w++)++:\d{2,5}\b",
            r"l(?<!\wl)ocalhost:\d{2,5}\b",
        ),
    ),
    (
        "HOST",
        (
            rf"[A-Za-z0-9](?<!\w[A-Za-z0-9])[A-Za-z0-9-]*+\.(?:[A-Za-z0-9][A-Za-z0-9-]*+\.)*+(?:{_TLDS})"
            r"(?::\d{1,5}\b|\b(?![.\w-]))",
        ),
    ),
    # a path with its query string: "/servers/detail?all_tenants=True&host=x" is one request target
    (
        "PATH",
        (
            r"/(?<![\w.:/]/)[\w.@%+~*-]++(?:/[\w.@%+~*-]++)+/?(?:\?[^\s\"'<>]*+)?",
            r"[A-Za-z](?<!\w[A-Za-z]):\\[^\s\"',;]++",
        ),
    ),
    (
        "DURATION",
        tuple(
            rf"{first}(?<![\w.]{first}){rest}(?:\.\d+)?\s?(?:ns|us|µs|ms|s|sec|secs|seconds?|min|mins|minutes?|h|"
            r"hrs?|hours?|days?)\b"
            for first, rest in (("[<>~]", r"\d+"), (r"\d", r"\d*"))
        ),
    ),
    ("SIZE", (r"\d(?<![\w.]\d)\d*(?:\.\d+)?\s?(?:[KMGTP]i?B|B|bytes?)\b",)),
    ("HEX", (r"0(?<!\w0)[xX][0-9a-fA-F]+\b", r"[0-9a-fA-F](?<!\w[0-9a-fA-F])[0-9a-fA-F]{15,}\b")),
    # a quoted token is a value, unless it is a plain word (constant, as unquoted); quoted text with
    # spaces (a request line, a sentence) is masked inside instead
    (
        "STR",
        (
            r"\"(?<![\w\\]\")(?![A-Za-z_]*+\")[^\"\s]{0,256}\"",
            r"'(?<![\w\\]')(?![A-Za-z_]*+')[^'\s]{0,256}'(?!\w)",
        ),
    ),
)
# name, keyword prefix (kept), variable part (masked)
_CONTEXT_RULES: tuple[tuple[str, str, str], ...] = (
    # "onExtend:1514038530000", "invoke.12": a word naming the value stays, the value is masked
    (
        "NUM",
        rf"[A-Za-z_](?<!{_TOKEN}[A-Za-z_])[A-Za-z_]*+[:.](?:[A-Za-z_]++[:.])*+",
        rf"(?={_TOKEN}*\d){_TOKEN}+",
    ),
    (
        "USER",
        _word(_USER_WORDS) + r"\s+['\"]?",
        rf"(?!(?:{_USER_STOPWORDS})\b)[\w.@-]+",
    ),
    (
        "HOST",
        _word(_HOST_WORDS) + r"[ =:]+",
        r"(?=[\w.-]*[A-Za-z])[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)++(?::\d{1,5})?(?![\w@.-])",
    ),
)
# Words that start a context rule or a weekday timestamp: the plain-word fast path must not eat them.
_KEYWORDS = (*_USER_WORDS, *_HOST_WORDS, *_WEEKDAYS)
_SEPARATORS = r"(?:[.:!?]?(?:[\s,;()\[\]{}]++|$))"
# A plain word followed by separators cannot start any rule (unless it is a context keyword or a
# key=value value), so runs of them are consumed first, in one attempt: about 4x faster. Its first
# word is spelled out, as every alternative starts with its first character.
_PLAIN = (
    rf"[A-Za-z](?<![=\w][A-Za-z])(?!{_after(_KEYWORDS)}\b)[A-Za-z]*+{_SEPARATORS}"
    rf"(?:(?!(?:{'|'.join(_KEYWORDS)})\b)[A-Za-z]++{_SEPARATORS})*+"
)
_GENERIC_RULE = (
    "NUM",
    # the token's first character, then a digit in the token: a later one, or that first character
    rf"{_TOKEN}(?<!{_TOKEN}{_TOKEN})(?:{_TOKEN}*\d|(?<=\d))(?:{_TOKEN}*[^{_TOKEN_BREAK}.:])?",
)
# No rule can start inside a run of letters or of separators: consume them in one step too.
_WORDS = (r"[A-Za-z]++", r"[\s,;()\[\]{}.]++")

_PLACEHOLDER = re.compile(r"<[A-Z][A-Z0-9_]*>")
# In the key, adjacent placeholders are one variable part: "4111 1111 1111 1111", "a, b, c" and
# "5174 bytes (5.05 KB)" have variable lengths and optional annotations that should not split a template.
_PLACEHOLDER_RUN = re.compile(r"<\*>(?:[\s,]+<\*>|\s*\((?:<\*>)?\)|\s*\[(?:<\*>)?\])+")
_WHITESPACE = re.compile(r"\s+")
_LAST_BREAK = re.compile(r"\s\S*$")

_JAVA_FRAME = re.compile(
    r"^\s+at [\w$.<>/\[\]-]+\(.*\)\s*$|^\s*\.\.\. \d+ (?:more|common frames omitted)\s*$"
)
_JAVA_HEADER = re.compile(
    r'^\s*(?:Exception in thread "[^"]*" )?(?P<cause>Caused by: )?'
    r"(?P<type>(?:[a-zA-Z_$][\w$]*\.)+[A-Z][\w$]*)(?::\s*(?P<msg>.*))?$"
)
_PY_TRACEBACK = "Traceback (most recent call last):"
_PY_FINAL = re.compile(r"^(?P<type>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)(?::\s*(?P<msg>.*))?$")


class Fingerprinter:
    """Masks messages with built-in rules plus optional extra `(name, regex)` rules and keys them.

    Extra rules win over built-in ones at the same position and replace their match by `<NAME>`;
    they change keys, so configure them once and keep them.
    """

    def __init__(self, extra_patterns: Sequence[tuple[str, str]] = (), cache_size: int = CACHE_SIZE) -> None:
        # A rule's alternatives end with one empty group, named after the rule: what `_replace` reads
        # matched, and the fewer groups a pattern has, the less each match costs. A plain word and a
        # run of letters or separators match without any group: they stay as they are.
        # Without extra rules nothing starts at a space, so the plain run takes the spaces before it
        # too: one match instead of two after each placeholder (an extra rule might start there).
        alternatives: list[str] = [_PLAIN if extra_patterns else rf"\s*+{_PLAIN}"]
        placeholders: dict[str, str] = {}  # a rule's group → its placeholder
        prefix_ends: dict[str, str] = {}  # a context rule's group → the group ending its kept prefix
        for index, (name, pattern) in enumerate((name.upper(), pattern) for name, pattern in extra_patterns):
            try:
                re.compile(pattern)
            except re.error as error:
                raise ValueError(f"mask pattern {name!r}: {error}") from error
            alternatives.append(f"(?:{pattern})(?P<x{index}>)")
            placeholders[f"x{index}"] = f"<{name}>"
        for index, (name, patterns) in enumerate(_BUILTIN_RULES):
            alternatives.append(f"(?:{'|'.join(patterns)})(?P<r{index}>)")
            placeholders[f"r{index}"] = f"<{name}>"
        for index, (name, prefix, variable) in enumerate(_CONTEXT_RULES):
            alternatives.append(f"{prefix}(?P<c{index}p>){variable}(?P<c{index}>)")
            placeholders[f"c{index}"] = f"<{name}>"
            prefix_ends[f"c{index}"] = f"c{index}p"
        alternatives.append(f"{_GENERIC_RULE[1]}(?P<generic>)")
        placeholders["generic"] = f"<{_GENERIC_RULE[0]}>"
        alternatives.extend(_WORDS)
        self._masker = re.compile("|".join(alternatives))
        # By group number, which the replacement reads (`Match.lastindex`): (placeholder, the number
        # of the group ending a kept prefix, or 0).
        number = self._masker.groupindex
        self._rules: dict[int, tuple[str, int]] = {
            number[group]: (placeholder, number[prefix_ends[group]] if group in prefix_ends else 0)
            for group, placeholder in placeholders.items()
        }
        self._cached = lru_cache(maxsize=cache_size)(self._fingerprint)
        self._digit_blind = not any(_may_tell_digits_apart(pattern) for _, pattern in extra_patterns)

    def mask(self, text: str) -> str:
        """The message with every variable part replaced by a typed placeholder such as `<IP>`."""
        text = _cut(text)
        # Only a space is whitespace in printable text: without two in a row, every run is one space.
        if "  " in text or not text.isprintable():
            text = _WHITESPACE.sub(" ", text)
        return self._masker.sub(self._replace, text.strip())

    def fingerprint(self, message: str, error_type: str | None = None) -> Fingerprint:
        """The fingerprint of one message; `error_type` (e.g. ECS `error.type`) joins the key."""
        if isinstance(message, bytes):
            message = message.decode("utf-8", errors="replace")
        elif not isinstance(message, str):
            message = "" if message is None else str(message)
        error_type = (error_type.strip() or None) if isinstance(error_type, str) else None
        text = _significant(message)
        if self._digit_blind:
            # Blinded as UTF-8 bytes: 6x faster than str.translate, and digits are single bytes there.
            raw = text.encode("utf-8", "surrogatepass")
            blind = _NONZERO_AS_ONE if b"0x" in raw or b"0X" in raw else _DIGITS_AS_ONE
            found = self._cached(raw.translate(blind), error_type)
            if "1" not in found.template and "1" not in (found.exception_type or ""):
                return found
        return self._cached(text, error_type)

    def _fingerprint(self, message: str | bytes, error_type: str | None) -> Fingerprint:
        if isinstance(message, bytes):  # a digit-blinded message
            message = message.decode("utf-8", "surrogatepass")
        exception_type, text = _exception_line(message)
        template = self.mask(text)
        if exception_type:
            template = f"{exception_type}: {template}" if template else exception_type
        else:
            exception_type = error_type
        return Fingerprint(
            key=_key(exception_type, template), template=template, exception_type=exception_type
        )

    def _replace(self, match: re.Match[str]) -> str:
        index = match.lastindex
        if index is None:  # a plain word, a run of letters or of separators
            return match[0]
        placeholder, prefix_end = self._rules[index]
        if prefix_end:
            return match.string[match.start() : match.start(prefix_end)] + placeholder
        return placeholder


# The rules treat the digits alike (each character class holds all of them or none; only `0x` names a
# digit), so a message's fingerprint is that of the message with them written as 1 whenever no such
# digit survives into its template or exception type: messages that differ only in numbers are masked
# once and share one cache entry. A message holding `0x` keeps its zeros, the rest are blinded too: a
# day of the demo masks 4 117 distinct messages instead of 5 882 with 1-9 alone. The two kinds of
# blinded message never meet in the cache: only the second holds a 0.
_DIGITS_AS_ONE = bytes.maketrans(b"0123456789", b"1111111111")
_NONZERO_AS_ONE = bytes.maketrans(b"23456789", b"11111111")


def _may_tell_digits_apart(pattern: str) -> bool:
    """True when an extra rule might treat two digits differently (it names one)."""
    return any(c in pattern for c in "0123456789") or "\\N{" in pattern


def _cut(text: str) -> str:
    """The first MAX_TEMPLATE_CHARS characters of `text`, without a token the limit cuts in two: the
    rest of it is not seen, so what is left (`blk_-` of `blk_-4154362211643572668`) says nothing."""
    if len(text) <= MAX_TEMPLATE_CHARS or text[MAX_TEMPLATE_CHARS].isspace():
        return text[:MAX_TEMPLATE_CHARS]
    head = text[:MAX_TEMPLATE_CHARS]
    last_break = _LAST_BREAK.search(head)
    return head[: last_break.start()] if last_break else head


def _significant(message: str) -> str:
    """The part of `message` its fingerprint depends on: the masked prefix of a single line (and the
    character after it, which tells whether the limit cuts a token), the searched prefix of a multi-line
    message. A short cache key, and the same fingerprint."""
    if "\n" not in message:
        return message[: MAX_TEMPLATE_CHARS + 1]
    head = message[:MAX_TRACE_CHARS]
    return head if "\n" in head else message


def canonical(template: str) -> str:
    """The template with every placeholder written `<*>` and runs of them merged: what the key is
    made of, so two templates that differ only in placeholder types (`<IP>` vs `<HOST>`) are equal."""
    return _PLACEHOLDER_RUN.sub("<*>", _PLACEHOLDER.sub("<*>", template))


def _key(exception_type: str | None, template: str) -> str:
    payload = f"v{MASKING_RULES_VERSION}\x1f{exception_type or ''}\x1f{canonical(template)}"
    # surrogatepass: any str has a key, also one with a lone surrogate; valid text encodes as before.
    data = payload.encode("utf-8", "surrogatepass")
    return hashlib.blake2b(data, digest_size=KEY_HEX_CHARS // 2).hexdigest()


def _exception_line(message: str) -> tuple[str | None, str]:
    """(exception type, message text) of a stack trace, else (None, the message itself).

    Python: the final `Type: message` line after the last traceback (the exception that was raised).
    Java: the root cause (the last `Caused by:`), else the first exception header; frames never count.
    """
    if "\n" not in message:
        return None, message
    head = message[:MAX_TRACE_CHARS]
    if _PY_TRACEBACK in head:
        return _python_final(head)
    lines = head.splitlines()
    if not any(_JAVA_FRAME.match(line) or line.startswith("Caused by: ") for line in lines):
        return None, message
    root: re.Match[str] | None = None
    for line in lines:
        header = _JAVA_HEADER.match(line)
        if header and (root is None or header.group("cause")):
            root = header
    if root is None:
        return None, lines[0]
    return root.group("type"), root.group("msg") or ""


def _python_final(text: str) -> tuple[str | None, str]:
    tail = text[text.rindex(_PY_TRACEBACK) + len(_PY_TRACEBACK) :]
    final = ""
    for line in tail.splitlines():
        if line.strip() and not line[0].isspace():
            final = line.strip()
    match = _PY_FINAL.match(final)
    if match is None:
        return None, final
    return match.group("type"), match.group("msg") or ""


_DEFAULT = Fingerprinter()


def fingerprint(message: str, error_type: str | None = None) -> Fingerprint:
    """The fingerprint of one message with the default rules."""
    return _DEFAULT.fingerprint(message, error_type)


def fingerprint_lines(lines: Iterable[str]) -> Iterator[str]:
    """One key per input line, in order (the `log-analyzer fingerprint` filter: messages in, keys out)."""
    for line in lines:
        yield _DEFAULT.fingerprint(line.rstrip("\r\n")).key
