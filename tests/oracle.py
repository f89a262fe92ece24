"""The per-event analysis the hot path is compared with (tests/test_analysis.py): every document
flattened whole, one event at a time through fingerprint, classify and the aggregator, each message
fingerprinted with only the digits 1-9 blinded, as before zeros were; and the masker's rules as they
were written before every alternative started with its first character (tests/test_fingerprint.py).
Not used by the pipeline."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

from core import analysis
from core.aggregate import Aggregator
from core.analysis import RangeCounts
from core.fetch import PartFetch
from core.fingerprint import (
    _TLDS,
    _TOKEN_BREAK,
    _USER_STOPWORDS,
    _WHITESPACE,
    Fingerprinter,
    _cut,
    _significant,
)
from core.layout import Layout
from core.model import Event, Fingerprint, InputStats
from core.multiline import join_split_traces
from core.normalize import to_event, to_record


class Analyser(analysis.Analyser):
    """The pipeline's analyser with the per-event hot loop."""

    def _count(self, start: datetime, end: datetime, fetch: PartFetch) -> RangeCounts:
        counted = RangeCounts(Aggregator(start, end), InputStats(), {})
        docs = fetch(counted.stats)
        for event in normalize(docs, counted.stats, self.fields, self.max_message_bytes):
            fp = fingerprint(self.fingerprinter, event.message, event.error_type)
            problem = self.classifier.classify(event, fp)
            counted.classes.setdefault(problem.id, problem)
            counted.aggregator.add(event, fp, problem)
        return counted


_DIGITS_AS_ONE = bytes.maketrans(b"23456789", b"11111111")


def fingerprint(fingerprinter: Fingerprinter, message: str, error_type: str | None = None) -> Fingerprint:
    """A message's fingerprint as it was computed: the digits 1-9 blinded, no cache."""
    error_type = (error_type.strip() or None) if isinstance(error_type, str) else None
    text = _significant(message)
    if fingerprinter._digit_blind:
        blinded = text.encode("utf-8", "surrogatepass").translate(_DIGITS_AS_ONE)
        found = fingerprinter._fingerprint(blinded, error_type)
        if "1" not in found.template and "1" not in (found.exception_type or ""):
            return found
    return fingerprinter._fingerprint(text, error_type)


def normalize(
    docs: Iterable[Any], stats: InputStats, fields: Layout | None, max_bytes: int
) -> Iterator[Event]:
    """`core.normalize.normalize` with every document flattened whole, as before flattening kept to the
    objects the layouts' paths can lie in."""
    records = (record for doc in docs if (record := to_record(doc, stats, fields)) is not None)
    for record in join_split_traces(records, stats, max_bytes):
        event = to_event(record, stats, max_bytes)
        if event is not None:
            stats.accepted += 1
            yield event


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


class ReferenceMasker:
    """`Fingerprinter.mask` as it was: each rule one group of alternatives that start with their
    look-behinds, the plain-word run first, extra rules before the built-in ones."""

    def __init__(self, extra_patterns: Sequence[tuple[str, str]] = ()) -> None:
        alternatives = [
            rf"(?P<plain>(?<![=\w])(?:(?!{_KEYWORDS}\b)[A-Za-z]++[.:!?]?(?:[\s,;()\[\]{{}}]++|$))++)"
        ]
        self._placeholders: dict[str, str] = {}
        self._context_groups: set[str] = set()
        rules = [(name.upper(), pattern) for name, pattern in extra_patterns]
        for index, (name, pattern) in enumerate([*rules, *_BUILTIN_RULES]):
            alternatives.append(f"(?P<r{index}>{pattern})")
            self._placeholders[f"r{index}"] = f"<{name}>"
        for index, (name, prefix, variable) in enumerate(_CONTEXT_RULES):
            alternatives.append(f"(?P<c{index}>(?P<c{index}p>{prefix}){variable})")
            self._placeholders[f"c{index}"] = f"<{name}>"
            self._context_groups.add(f"c{index}")
        alternatives.append(f"(?P<generic>{_GENERIC_RULE[1]})")
        alternatives.append(r"(?P<word>[A-Za-z]++|[\s,;()\[\]{}.]++)")
        self._placeholders["generic"] = f"<{_GENERIC_RULE[0]}>"
        self._masker = re.compile("|".join(alternatives))

    def mask(self, text: str) -> str:
        return self._masker.sub(self._replace, _WHITESPACE.sub(" ", _cut(text)).strip())

    def _replace(self, match: re.Match[str]) -> str:
        group = match.lastgroup or "generic"
        if group in ("plain", "word"):
            return match.group()
        if group in self._context_groups:
            return match.group(f"{group}p") + self._placeholders[group]
        return self._placeholders[group]
