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

# Order matters: at one position the first alternative that matches wins, so specific shapes
# (key=value, URL, UUID, IP, timestamp) come before the generic "token containing a digit" rule.
_BUILTIN_RULES: tuple[tuple[str, str], ...] = (
    # everything right after "key=" is the value, whatever its shape
    (
        "VALUE",
        r"(?<=[\w\]]=)(?:\"[^\"\n]{0,256}\"|'[^'\n]{0,256}'|[^\s,;&()\[\]{}]*\{[^\s{}]*\}|[^\s,;&)\]}]+)",
    ),
    ("URL", r"(?<![\w+.-])[a-zA-Z][a-zA-Z0-9+.-]*+://[^\s\"'<>\])}]+"),
    ("EMAIL", r"(?<![\w.+-])[\w.+-]++@(?:[A-Za-z0-9-]++\.)++[A-Za-z]{2,}\b"),
    ("UUID", r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"),
    (
        "TS",
        r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?"
        r"|\b(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*,? +(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
        r"[a-z]* +\d{1,2} +\d{2}:\d{2}:\d{2}(?: +\d{4})?",
    ),
    ("DATE", r"\b\d{4}[-/]\d{1,2}[-/]\d{1,2}\b"),
    (
        "IP",
        r"\b(?:[0-9a-fA-F]{1,4}:){4,7}[0-9a-fA-F]{1,4}\b|\b\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?\b(?!\.?[\w-])",
    ),
    ("TIME", r"(?<![\w.:])\d{1,2}:\d{2}(?::\d{2})?(?:[.,]\d+)?\b"),
    # host:port where the host has a dot or a dash (so "retries:10" stays a word and a number)
    ("HOST", r"\b[A-Za-z0-9]\w*+(?:[.-]++\w++)++:\d{2,5}\b|\blocalhost:\d{2,5}\b"),
    ("HOST", rf"\b(?:[A-Za-z0-9][A-Za-z0-9-]*+\.)++(?:{_TLDS})(?::\d{{1,5}}\b|\b(?![.\w-]))"),
    # a path with its query string: "/servers/detail?all_tenants=True&host=x" is one request target
    ("PATH", r"(?<![\w.:/])(?:/[\w.@%+~*-]++){2,}/?(?:\?[^\s\"'<>]*+)?|\b[A-Za-z]:\\[^\s\"',;]++"),
    (
        "DURATION",
        r"(?<![\w.])[<>~]?\d+(?:\.\d+)?\s?(?:ns|us|µs|ms|s|sec|secs|seconds?|min|mins|minutes?|h|hrs?|hours?|"
        r"days?)\b",
    ),
    ("SIZE", r"(?<![\w.])\d+(?:\.\d+)?\s?(?:[KMGTP]i?B|B|bytes?)\b"),
    ("HEX", r"\b0[xX][0-9a-fA-F]+\b|\b[0-9a-fA-F]{16,}\b"),
    # a quoted token is a value, unless it is a plain word (constant, as unquoted); quoted text with
    # spaces (a request line, a sentence) is masked inside instead
    (
        "STR",
        r"(?<![\w\\])\"(?![A-Za-z_]*+\")[^\"\s]{0,256}\"|(?<![\w\\])'(?![A-Za-z_]*+')[^'\s]{0,256}'(?!\w)",
    ),
)
_CONTEXT_RULES: tuple[tuple[str, str, str], ...] = (
    # "onExtend:1514038530000", "invoke.12": a word naming the value stays, the value is masked
    ("NUM", rf"(?<![^{_TOKEN_BREAK}])(?:[A-Za-z_]++[:.])++", rf"(?=[^{_TOKEN_BREAK}]*\d)[^{_TOKEN_BREAK}]+"),
    # name, keyword prefix (kept), variable part (masked)
    ("USER", r"\b(?:[Uu]ser|[Uu]sername|login)\s+['\"]?", rf"(?!(?:{_USER_STOPWORDS})\b)[\w.@-]+"),
    (
        "HOST",
        r"\b(?:host|hostname|node|server|peer|from|to)[ =:]+",
        r"(?=[\w.-]*[A-Za-z])[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)++(?::\d{1,5})?(?![\w@.-])",
    ),
)
# Words that start a context rule or a weekday timestamp: the plain-word fast path must not eat them.
_KEYWORDS = "(?:[Uu]ser|[Uu]sername|login|host|hostname|node|server|peer|from|to|Mon|Tue|Wed|Thu|Fri|Sat|Sun)"
_GENERIC_RULE = (
    "NUM",
    rf"(?<![^{_TOKEN_BREAK}])[^{_TOKEN_BREAK}]*\d(?:[^{_TOKEN_BREAK}]*[^{_TOKEN_BREAK}.:])?",
)

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
        # A plain word followed by separators cannot start any rule (unless it is a context keyword
        # or a key=value value), so runs of them are consumed first, in one attempt: about 4x faster.
        alternatives: list[str] = [
            rf"(?P<plain>(?<![=\w])(?:(?!{_KEYWORDS}\b)[A-Za-z]++[.:!?]?(?:[\s,;()\[\]{{}}]++|$))++)"
        ]
        self._placeholders: dict[str, str] = {}
        self._context_groups: set[str] = set()
        rules = [(name.upper(), pattern) for name, pattern in extra_patterns]
        for index, (name, pattern) in enumerate([*rules, *_BUILTIN_RULES]):
            group = f"r{index}"
            try:
                re.compile(pattern)
            except re.error as error:
                raise ValueError(f"mask pattern {name!r}: {error}") from error
            alternatives.append(f"(?P<{group}>{pattern})")
            self._placeholders[group] = f"<{name}>"
        for index, (name, prefix, variable) in enumerate(_CONTEXT_RULES):
            group = f"c{index}"
            alternatives.append(f"(?P<{group}>(?P<{group}p>{prefix}){variable})")
            self._placeholders[group] = f"<{name}>"
            self._context_groups.add(group)
        alternatives.append(f"(?P<generic>{_GENERIC_RULE[1]})")
        # No rule can start inside a run of letters or of separators: consume them in one step too.
        alternatives.append(r"(?P<word>[A-Za-z]++|[\s,;()\[\]{}.]++)")
        self._placeholders["generic"] = f"<{_GENERIC_RULE[0]}>"
        self._masker = re.compile("|".join(alternatives))
        self._cached = lru_cache(maxsize=cache_size)(self._fingerprint)
        self._digit_blind = not any(_may_tell_digits_apart(pattern) for _, pattern in extra_patterns)

    def mask(self, text: str) -> str:
        """The message with every variable part replaced by a typed placeholder such as `<IP>`."""
        text = _WHITESPACE.sub(" ", _cut(text)).strip()
        return self._masker.sub(self._replace, text)

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
        group = match.lastgroup or "generic"
        if group in ("plain", "word"):
            return match.group()
        placeholder = self._placeholders[group]
        if group in self._context_groups:
            return match.group(f"{group}p") + placeholder
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
