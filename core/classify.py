"""Classification: map an event and its fingerprint to a problem class `CATEGORY:flow:error_class`.

The rules come from a YAML taxonomy (`core/data/taxonomy.yaml`, extendable by a user file), the flow
from a namespace/app mapping; the rule language and evaluation order are described in docs/taxonomy.md.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from core.model import Event, Fingerprint, ProblemClass

MESSAGE_PREFIX = 2048
"""Characters of the raw message that rules see (the template is seen whole)."""

MAX_ERROR_CLASS = 60
CACHE_LIMIT = 200_000
"""Cached decisions; far above the distinct problems of a day, it only guards against runaway input."""


K = TypeVar("K")
V = TypeVar("V")


class TaxonomyError(ValueError):
    """A taxonomy or flow-map file that cannot be used, with the file and what is wrong."""


# --- what a message tells: the signals rules match on ------------------------------------------

_HTTP_STATUS = re.compile(
    # One alternation, one group each: a single pass is several times faster than one regex per form.
    "|".join(
        f"(?:{form})"
        for form in (
            r"\bHTTP(?:/\d(?:\.\d)?)?(?:[ _-]?(?:error|status|code))?[\s:=]{0,3}([1-5]\d\d)\b",
            r"\bstatus(?:[ _-]?code)?[\"']?\s*[=:]?\s*([1-5]\d\d)\b",
            r"\bresponse[ _-]?code\W{0,3}([1-5]\d\d)\b",
            r"\breturned\s+(?:an?\s+)?(?:http\s+)?(?:status\s+)?(?:code\s+)?([1-5]\d\d)\b",
            r"\b([1-5]\d\d)\s+(?:Client|Server)\s+Error\b",
            r"\b([45]\d\d)[ _](?:Bad[ _]Request|Unauthorized|Forbidden|Not[ _]Found|Conflict"
            r"|Too[ _]Many[ _]Requests|Unprocessable[ _]Entity|Internal[ _]Server[ _]Error|Bad[ _]Gateway"
            r"|Service[ _]Unavailable|Gateway[ _]Time-?out|Request[ _]Time-?out)\b",
        )
    ),
    re.IGNORECASE,
)
_SQL_STATE = re.compile(r"\bSQL[ _]?STATE\W{0,3}([0-9A-Z]{5})\b", re.IGNORECASE)
_DB_ERROR = re.compile(r"\b(ORA-\d{5})\b")


@dataclass(frozen=True, slots=True)
class Codes:
    """The HTTP status codes, SQL states and vendor DB error codes written in a text."""

    http_status: frozenset[int] = frozenset()
    sql_state: frozenset[str] = frozenset()
    db_error: frozenset[str] = frozenset()

    @classmethod
    def find(cls, text: str) -> Codes:
        return cls(
            frozenset(int(m[m.lastindex or 0]) for m in _HTTP_STATUS.finditer(text)),
            frozenset(s.upper() for s in _SQL_STATE.findall(text)),
            frozenset(_DB_ERROR.findall(text)),
        )

    def __or__(self, other: Codes) -> Codes:
        return Codes(
            self.http_status | other.http_status,
            self.sql_state | other.sql_state,
            self.db_error | other.db_error,
        )

    def __le__(self, other: Codes) -> bool:
        return (
            self.http_status <= other.http_status
            and self.sql_state <= other.sql_state
            and self.db_error <= other.db_error
        )


@dataclass(frozen=True, slots=True)
class Signals:
    """What one message offers the rules."""

    text: str  # the template, a newline, then the first MESSAGE_PREFIX characters of the message
    exception: str | None
    codes: Codes  # found in the template or the message
    message_codes: Codes
    masked_codes: bool  # the message has codes its template lost to masking
    namespace: str
    app: str

    @classmethod
    def of(cls, event: Event, fp: Fingerprint) -> Signals:
        message = event.message[:MESSAGE_PREFIX]
        in_template, in_message = Codes.find(fp.template), Codes.find(message)
        return cls(
            text=f"{fp.template}\n{message}",
            exception=fp.exception_type or event.error_type,
            codes=in_template | in_message,
            message_codes=in_message,
            masked_codes=not in_message <= in_template,
            namespace=event.namespace,
            app=event.app,
        )


# --- rules -------------------------------------------------------------------------------------


def _exception_matches(pattern: str, exception: str) -> bool:
    # A pattern without a dot names a class however it is packaged: NullPointerException matches
    # java.lang.NullPointerException, and Outer$Inner nested classes by their inner name too.
    if fnmatchcase(exception, pattern):
        return True
    return "." not in pattern and fnmatchcase(re.split(r"[.$]", exception)[-1], pattern)


def _any_glob(patterns: tuple[str, ...], values: Iterable[str]) -> bool:
    return any(fnmatchcase(v, p) for v in values for p in patterns)


@dataclass(frozen=True, slots=True)
class Rule:
    """One taxonomy rule: the signals it recognises, where it applies, and the class it assigns.

    It matches when its scope (namespaces, apps) admits the event and any one of its matchers hits.
    """

    name: str
    category: str
    error_class: str
    severity: str = "medium"
    remediation: tuple[str, ...] = ()
    priority: int = 0
    exceptions: tuple[str, ...] = ()
    message: re.Pattern[str] | None = None
    http_status: frozenset[int] = frozenset()
    sql_state: tuple[str, ...] = ()
    db_error: tuple[str, ...] = ()
    k8s_reason: re.Pattern[str] | None = None
    namespaces: tuple[str, ...] = ()
    apps: tuple[str, ...] = ()

    def matches(self, s: Signals) -> bool:
        if self.namespaces and not _any_glob(self.namespaces, [s.namespace]):
            return False
        if self.apps and not _any_glob(self.apps, [s.app]):
            return False
        return (
            (s.exception is not None and any(_exception_matches(p, s.exception) for p in self.exceptions))
            or bool(self.http_status & s.codes.http_status)
            or _any_glob(self.sql_state, s.codes.sql_state)
            or _any_glob(self.db_error, s.codes.db_error)
            or (self.k8s_reason is not None and self.k8s_reason.search(s.text) is not None)
            or (self.message is not None and self.message.search(s.text) is not None)
        )


# --- the file format (validated at the boundary, then compiled into Rules) ---------------------


def _alternation(patterns: Iterable[str]) -> str:
    # One regex per rule: a single scan of the text instead of one per pattern.
    return "|".join(f"(?:{p})" for p in patterns)


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str | int) else value


class _MatchSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    exception: list[str] = []
    message: list[str] = []
    http_status: list[int | str] = []
    sql_state: list[str] = []
    db_error: list[str] = []
    k8s_reason: list[str] = []

    _lists = field_validator("*", mode="before")(_as_list)

    @field_validator("message")
    @classmethod
    def _regexes(cls, patterns: list[str]) -> list[str]:
        for p in [*patterns, _alternation(patterns)]:
            try:
                re.compile(p)
            except re.error as exc:
                raise ValueError(f"invalid regex {p!r}: {exc}") from None
        return patterns

    @field_validator("http_status")
    @classmethod
    def _statuses(cls, codes: list[int | str]) -> list[int | str]:
        for c in codes:
            _status_codes(c)
        return codes

    @field_validator("k8s_reason")
    @classmethod
    def _reasons(cls, reasons: list[str]) -> list[str]:
        for r in reasons:
            if not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", r):
                raise ValueError(f"kubernetes reason {r!r} must be one CamelCase word, e.g. OOMKilled")
        return reasons

    @model_validator(mode="after")
    def _not_empty(self) -> _MatchSpec:
        if not any(self.model_dump().values()):
            raise ValueError(
                "needs at least one of exception, message, http_status, sql_state, db_error, k8s_reason"
            )
        return self


class _RuleSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    category: str = Field(pattern=r"^[A-Z][A-Z0-9_]*$")
    error_class: str = Field(pattern=r"^[a-z0-9_]+$", max_length=MAX_ERROR_CLASS)
    severity: Literal["critical", "high", "medium", "low"] = "medium"
    priority: int = 0
    match: _MatchSpec
    namespaces: list[str] = []
    apps: list[str] = []
    remediation: list[str] = Field(default=[], max_length=3)

    _lists = field_validator("namespaces", "apps", "remediation", mode="before")(_as_list)


class _TaxonomyFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: Literal[1] = 1
    replace: bool = False
    rules: list[_RuleSpec] = []


def _status_codes(value: int | str) -> range:
    """503 → one code; "5xx" → 500–599; "500-504" → that inclusive range."""
    text = str(value).strip().lower()
    if m := re.fullmatch(r"([1-5])xx", text):
        first = int(m[1]) * 100
        return range(first, first + 100)
    if m := re.fullmatch(r"(\d{3})\s*-\s*(\d{3})", text):
        codes = range(int(m[1]), int(m[2]) + 1)
    elif re.fullmatch(r"\d{3}", text):
        codes = range(int(text), int(text) + 1)
    else:
        raise ValueError(f"http status {value!r} must be a code (503), a class (5xx) or a range (500-504)")
    if not codes or codes.start < 100 or codes.stop > 600:
        raise ValueError(f"http status {value!r} is outside 100-599")
    return codes


def _compile(spec: _RuleSpec) -> Rule:
    m = spec.match
    return Rule(
        name=spec.name,
        category=spec.category,
        error_class=spec.error_class,
        severity=spec.severity,
        remediation=tuple(spec.remediation),
        priority=spec.priority,
        exceptions=tuple(m.exception),
        # Case-insensitive: log wording varies in case between libraries and versions; multi-line so
        # that ^ can anchor at a stack trace's lines.
        message=re.compile(_alternation(m.message), re.IGNORECASE | re.MULTILINE) if m.message else None,
        http_status=frozenset(c for v in m.http_status for c in _status_codes(v)),
        sql_state=tuple(s.upper() for s in m.sql_state),
        db_error=tuple(m.db_error),
        # Kubernetes reasons are exact CamelCase words; case-sensitive keeps "oomkilled" prose out.
        k8s_reason=re.compile(rf"\b(?:{'|'.join(m.k8s_reason)})\b") if m.k8s_reason else None,
        namespaces=tuple(spec.namespaces),
        apps=tuple(spec.apps),
    )


_yaml = YAML(typ="rt", pure=True)


def _parse_yaml(text: str, source: str) -> Any:
    try:
        return _yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = _where(mark.line + 1 if mark else None)
        raise TaxonomyError(f"{source}:{where} not valid YAML: {exc.problem or exc.context}") from None
    except YAMLError as exc:
        raise TaxonomyError(f"{source}: not valid YAML: {exc}") from None


def _line_of(data: Any, loc: Sequence[int | str]) -> int | None:
    """The 1-based line of the deepest YAML node on a validation error's path, if the loader kept it."""
    line = None
    node = data
    for key in loc:
        lc = getattr(node, "lc", None)
        try:
            if lc is not None:
                line = (lc.key(key) if isinstance(key, str) else lc.item(key))[0] + 1
            node = node[key]
        except (KeyError, IndexError, TypeError):
            break
    return line


def _validation_message(exc: ValidationError, data: Any, source: str) -> str:
    problems = []
    for err in exc.errors(include_url=False):
        loc = [p for p in err["loc"] if isinstance(p, int | str)]
        path = ".".join(str(p) for p in loc) or "(top level)"
        problems.append(
            f"{source}:{_where(_line_of(data, loc))} {path}: {err['msg'].removeprefix('Value error, ')}"
        )
    return "\n".join(problems)


def _where(line: int | None) -> str:
    return f" line {line}:" if line else ""


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TaxonomyError(f"{path}: cannot read: {exc.strerror or exc}") from None


# --- the taxonomy ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Taxonomy:
    """The rules in evaluation order: by priority (higher first), then by position."""

    rules: tuple[Rule, ...]

    @property
    def categories(self) -> frozenset[str]:
        """Every category a problem can be given: the rules' and those `Classifier` falls back to."""
        return frozenset({r.category for r in self.rules} | {"APPLICATION", "UNCLASSIFIED"})

    @classmethod
    def default(cls) -> Taxonomy:
        """The taxonomy shipped in the package (`core/data/taxonomy.yaml`)."""
        return _default_taxonomy()

    @classmethod
    def load(cls, path: str | Path) -> Taxonomy:
        """A user file over the default: same-named rules replace, new rules come first, `replace: true`
        discards the default."""
        path = Path(path)
        spec = cls._spec(_read(path), str(path))
        rules = [_compile(r) for r in spec.rules]
        return cls._ordered(rules) if spec.replace else cls.default().extended(rules)

    @classmethod
    def from_yaml(cls, text: str, source: str = "<taxonomy>") -> Taxonomy:
        """Exactly the rules in `text`, without the default."""
        return cls._ordered([_compile(r) for r in cls._spec(text, source).rules])

    def extended(self, rules: Iterable[Rule]) -> Taxonomy:
        """This taxonomy with `rules` added: a rule with a known name takes that rule's place,
        the others are evaluated before the existing rules (a user's rule is the more specific)."""
        by_name = {r.name: r for r in rules}
        kept = [by_name.pop(r.name, r) for r in self.rules]
        return self._ordered([*by_name.values(), *kept])

    @classmethod
    def _ordered(cls, rules: list[Rule]) -> Taxonomy:
        return cls(tuple(sorted(rules, key=lambda r: -r.priority)))  # sorted() is stable

    @staticmethod
    def _spec(text: str, source: str) -> _TaxonomyFile:
        data = _parse_yaml(text, source)
        if data is None:
            raise TaxonomyError(f"{source}: the file is empty")
        if not isinstance(data, Mapping):
            raise TaxonomyError(f"{source}: the top level must be a mapping with a 'rules:' list")
        try:
            spec = _TaxonomyFile.model_validate(data)
        except ValidationError as exc:
            raise TaxonomyError(_validation_message(exc, data, source)) from None
        seen: set[str] = set()
        for i, rule in enumerate(spec.rules):
            if rule.name in seen:
                where = _where(_line_of(data, ["rules", i]))
                raise TaxonomyError(f"{source}:{where} rules.{i}.name: rule name {rule.name!r} is used twice")
            seen.add(rule.name)
        return spec


@cache
def _default_taxonomy() -> Taxonomy:
    resource = files("core") / "data" / "taxonomy.yaml"
    return Taxonomy.from_yaml(resource.read_text(encoding="utf-8"), "core/data/taxonomy.yaml")


# --- flows -------------------------------------------------------------------------------------

_ENVIRONMENT = re.compile(
    r"(?:prod|production|prd|preprod|test|tst|dev|develop|uat|qa|sit|stage|staging|stg|sandbox|sbx)\d*"
    r"|[dtpu]\d{1,2}"
)


def _slug(text: str) -> str:
    return re.sub(r"_+", "_", re.sub(r"[^a-z0-9]+", "_", text.lower())).strip("_")


def derive_flow(name: str) -> str:
    """The default flow of a namespace (or app): lower-case, `-`→`_`, environment markers stripped
    from both ends (`prod`, `test`, `dev`, `uat`, `d1`, `t2`, `dev3` …), e.g. `card-opening-prod`
    → `card_opening`. Empty when nothing else is left."""
    parts = _slug(name).split("_")
    while parts and _ENVIRONMENT.fullmatch(parts[-1]):
        parts.pop()
    while parts and _ENVIRONMENT.fullmatch(parts[0]):
        parts.pop(0)
    return "_".join(parts)


class _FlowEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    namespace: str | None = None  # glob
    app: str | None = None  # glob
    namespace_regex: str | None = None
    app_regex: str | None = None
    flow: str | None = None  # absent: the regex's `flow` group, else derived from the match

    @model_validator(mode="after")
    def _check(self) -> _FlowEntry:
        if not (self.namespace or self.app or self.namespace_regex or self.app_regex):
            raise ValueError("needs one of namespace, app, namespace_regex, app_regex")
        for p in (self.namespace_regex, self.app_regex):
            if p is not None:
                try:
                    re.compile(p)
                except re.error as exc:
                    raise ValueError(f"invalid regex {p!r}: {exc}") from None
        if self.flow is None and not (self.namespace_regex or self.app_regex):
            raise ValueError("needs flow (only a regex entry may take the flow from its 'flow' group)")
        if self.flow is not None and not _slug(self.flow):
            raise ValueError(f"flow {self.flow!r} has no letters or digits")
        return self


class _FlowFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    flows: list[_FlowEntry] = []

    @field_validator("flows", mode="before")
    @classmethod
    def _shorthand(cls, flows: Any) -> Any:
        # {"card-opening-*": card_opening} is short for [{namespace: "card-opening-*", flow: card_opening}]
        if isinstance(flows, Mapping):
            return [{"namespace": pattern, "flow": flow} for pattern, flow in flows.items()]
        return flows


@dataclass(frozen=True, slots=True)
class FlowRoute:
    """One mapping entry: the first route whose patterns all match gives the flow."""

    flow: str | None = None
    namespace: str | None = None
    app: str | None = None
    namespace_regex: re.Pattern[str] | None = None
    app_regex: re.Pattern[str] | None = None

    def flow_for(self, namespace: str, app: str) -> str | None:
        if self.namespace is not None and not fnmatchcase(namespace, self.namespace):
            return None
        if self.app is not None and not fnmatchcase(app, self.app):
            return None
        found: str | None = self.flow
        for regex, value in ((self.namespace_regex, namespace), (self.app_regex, app)):
            if regex is None:
                continue
            m = regex.search(value)
            if m is None:
                return None
            if found is None:
                found = m.groupdict().get("flow") or derive_flow(m[0])
        return _slug(found) if found else None


@dataclass(frozen=True, slots=True)
class FlowMap:
    """Namespace/app → business flow: the first matching route, else derived from the namespace
    (or from the app when the namespace is only an environment name such as `production`)."""

    routes: tuple[FlowRoute, ...] = ()

    def flow_for(self, namespace: str, app: str) -> str:
        for route in self.routes:
            if flow := route.flow_for(namespace, app):
                return flow
        return derive_flow(namespace) or derive_flow(app) or "unknown"

    @classmethod
    def load(cls, path: str | Path) -> FlowMap:
        path = Path(path)
        text = _read(path)
        data = _parse_yaml(text, str(path))
        if data is None:
            raise TaxonomyError(f"{path}: the file is empty")
        return cls.from_config(data, str(path))

    @classmethod
    def from_config(cls, data: Mapping[str, Any], source: str = "<flows>") -> FlowMap:
        """From `{"flows": [...entries...]}` or the shorthand `{"flows": {"<namespace glob>": flow}}`."""
        if not isinstance(data, Mapping):
            raise TaxonomyError(f"{source}: the top level must be a mapping with a 'flows:' list or mapping")
        try:
            spec = _FlowFile.model_validate(data)
        except ValidationError as exc:
            raise TaxonomyError(_validation_message(exc, data, source)) from None
        return cls(
            tuple(
                FlowRoute(
                    flow=e.flow,
                    namespace=e.namespace,
                    app=e.app,
                    namespace_regex=re.compile(e.namespace_regex) if e.namespace_regex else None,
                    app_regex=re.compile(e.app_regex) if e.app_regex else None,
                )
                for e in spec.flows
            )
        )


# --- the classifier ----------------------------------------------------------------------------

_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_PLACEHOLDER = re.compile(r"<[^<>\s]*>")
_WORD_BREAK = re.compile(r"[^a-z]+")


def exception_error_class(exception_type: str) -> str:
    """`java.lang.NullPointerException` → `null_pointer_exception`: the name without its package, in
    snake case (a nested class keeps its outer one: `HttpClientErrorException$NotFound`)."""
    simple = exception_type.strip().rsplit(".", 1)[-1] or exception_type
    return _slug(_CAMEL_BOUNDARY.sub("_", simple))[:MAX_ERROR_CLASS].strip("_") or "exception"


def template_error_class(template: str) -> str:
    """A readable, stable name for an unmatched template: its constant words in order, lower case,
    joined by `_` and cut after the last whole word that fits in MAX_ERROR_CLASS characters, e.g.
    `settlement_batch_aborted_for_merchant_after_reconciliation` (cut before `mismatch`).

    Placeholders and single letters (mostly leftovers of masked values) are left out, so neither the
    values nor the placeholder types a run happened to see (`<NUM>` or `<HEX>`) change it. Templates
    whose words agree up to the cut share a name (a taxonomy rule tells them apart)."""
    words = [w for w in _WORD_BREAK.split(_PLACEHOLDER.sub(" ", template).lower()) if len(w) > 1]
    if not words:
        return "unknown"
    name = words[0][:MAX_ERROR_CLASS]
    for word in words[1:]:
        if len(name) + 1 + len(word) > MAX_ERROR_CLASS:
            break
        name = f"{name}_{word}"
    return name


_UNMATCHED_REMEDIATION = (
    "No taxonomy rule matched: read a sample and add a rule for it (docs/taxonomy.md).",
)
_EXCEPTION_REMEDIATION = (
    "Find the throwing frame in a sample's stack trace and the change that introduced it.",
    "No taxonomy rule names this exception: add one if it deserves its own class.",
)


def _upper_slug(text: str) -> str:
    return _slug(text).upper() or "UNCLASSIFIED"


class Classifier:
    """Decides the problem class of each event; remembers the decision per (fingerprint, namespace, app).

    Rules are evaluated once per distinct problem, not per event. A fingerprint whose template masked
    a code the rules read (`HTTP <NUM>` for 401 and 503 alike) is remembered per code as well, so the
    decision never depends on which event came first.
    """

    def __init__(self, taxonomy: Taxonomy | None = None, flows: FlowMap | None = None) -> None:
        self.taxonomy = taxonomy if taxonomy is not None else Taxonomy.default()
        self.flows = flows if flows is not None else FlowMap()
        self.rule_evaluations = 0  # how many times a rule was tried: the real cost of classifying
        self._decided: dict[tuple[str, str, str, Codes | None], ProblemClass] = {}
        self._masked_codes: dict[str, None] = {}  # fingerprint keys whose templates masked codes

    def classify(self, event: Event, fp: Fingerprint) -> ProblemClass:
        # Finding codes costs a regex pass per event: only fingerprints known to need it pay for it.
        codes = Codes.find(event.message[:MESSAGE_PREFIX]) if fp.key in self._masked_codes else None
        key = (fp.key, event.namespace, event.app, codes)
        if (decided := self._decided.get(key)) is not None:
            return decided
        signals = Signals.of(event, fp)
        if signals.masked_codes and codes is None:
            _remember(self._masked_codes, fp.key, None)
            key = (fp.key, event.namespace, event.app, signals.message_codes)
        decided = self._decide(signals, fp.template)
        _remember(self._decided, key, decided)
        return decided

    def _decide(self, signals: Signals, template: str) -> ProblemClass:
        flow = self.flows.flow_for(signals.namespace, signals.app)
        for rule in self.taxonomy.rules:
            self.rule_evaluations += 1
            if rule.matches(signals):
                return ProblemClass(
                    category=_upper_slug(rule.category),
                    flow=flow,
                    error_class=_slug(rule.error_class)[:MAX_ERROR_CLASS],
                    severity=rule.severity,
                    remediation=rule.remediation,
                )
        if signals.exception:
            return ProblemClass(
                "APPLICATION",
                flow,
                exception_error_class(signals.exception),
                "medium",
                _EXCEPTION_REMEDIATION,
            )
        return ProblemClass(
            "UNCLASSIFIED", flow, template_error_class(template), "medium", _UNMATCHED_REMEDIATION
        )


def _remember(memory: dict[K, V], key: K, value: V) -> None:
    if len(memory) >= CACHE_LIMIT:
        del memory[next(iter(memory))]  # oldest first: dicts keep insertion order
    memory[key] = value
