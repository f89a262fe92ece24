"""What a person expects of each corpus case, checked on normalize's events or on the incidents of a run."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from core.model import Event, Incident
from shippers.corpus import CASES, ShipperCase

EXPECTED_EVENTS = Counter(c.workload for c in CASES if c.error)
"""Events per workload over the whole corpus: one per error case (a split stack trace is one event)."""


def check_events(case: ShipperCase, events: Iterable[Event]) -> None:
    """One document's events: exactly one, of the named workload, for an error; none otherwise."""
    events = list(events)
    if not case.error:
        assert not events, f"{case.id}: not an error, yet read as {[_seen(e) for e in events]}"
        return
    assert len(events) == 1, f"{case.id}: an error line, read as {len(events)} events"
    event = events[0]
    assert str(event.workload) == case.workload, (
        f"{case.id} ({case.shipper}): attributed to {event.workload}, a person names {case.workload}"
    )
    assert case.message in event.message, f"{case.id}: message read as {event.message[:120]!r}"


def check_incidents(case: ShipperCase, incidents: Iterable[Incident]) -> None:
    """A run's incidents: the case's line counted once, under the workload a person names; a line
    that is not an error not counted at all."""
    incidents = list(incidents)
    carrying = [i for i in incidents if any(case.message in sample for sample in i.samples)]
    if not case.error:
        assert not carrying, (
            f"{case.id}: not an error, yet counted under {sorted({str(i.workload) for i in carrying})}"
        )
        return
    assert carrying, f"{case.id} ({case.shipper}): the error was not counted at all"
    assert {str(i.workload) for i in carrying} == {case.workload}, (
        f"{case.id} ({case.shipper}): counted under {sorted({str(i.workload) for i in carrying})}, "
        f"a person names {case.workload}"
    )
    counted = sum(i.count for i in incidents if str(i.workload) == case.workload)
    assert counted == EXPECTED_EVENTS[case.workload], (
        f"{case.id}: {counted} events under {case.workload}, expected {EXPECTED_EVENTS[case.workload]}"
        + (f" (its {len(case.documents)} records are one event)" if not case.single else "")
    )


def check_only_named_workloads(incidents: Iterable[Incident]) -> None:
    """No incident under a workload no person would name (the CronJob, a bare Pod, the shipper)."""
    unexpected = sorted({str(i.workload) for i in incidents} - set(EXPECTED_EVENTS))
    assert not unexpected, f"incidents under workloads no case names: {unexpected}"


def _seen(event: Event) -> str:
    return f"{event.workload} {event.level} {event.message[:60]!r}"
