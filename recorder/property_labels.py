"""The values a session property takes as a metric label: bounded, so no client makes up series.

With an operator's list (`--metric-property-values customer=acme,globex`) a property's listed
values are labels and anything else is `other`. Without one, the first 50 values seen (64
characters at most) are labels and the rest `other`; the recorder seeds them from the database
at start, so a restart does not admit 50 more. A client's own value `other` is labelled `=other`
(and any value starting with `=` gets one more), so it never adds to the overflow's count.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from sqlalchemy import Engine

from handover.properties import metric_property_names, metric_property_values
from storage.properties import first_values

OTHER = "other"
PROPERTY_LABEL_VALUES = 50
PROPERTY_LABEL_CHARS = 64
_ESCAPE = "="


def label_text(value: str) -> str:
    """The label of a value a client sent: cut to the bound, and kept apart from `other`."""
    value = value[:PROPERTY_LABEL_CHARS]
    if value == OTHER or value.startswith(_ESCAPE):
        return _ESCAPE + value
    return value


class PropertyLabels:
    """Label values of the `--metric-properties` labels, one bounded set per property name."""

    def __init__(
        self,
        names: Sequence[str],
        allowed: Mapping[str, Iterable[str]] | None = None,
        seen: Mapping[str, Iterable[str]] | None = None,
    ) -> None:
        self.names = tuple(names)
        self._allowed = {name: frozenset(values) for name, values in (allowed or {}).items()}
        self._seen: dict[str, set[str]] = {name: set() for name in self.names}
        for name, values in (seen or {}).items():
            if name in self._seen and name not in self._allowed:
                for value in values:
                    self._admit(name, label_text(value))

    def _admit(self, name: str, label: str) -> str:
        seen = self._seen[name]
        if label in seen:
            return label
        if len(seen) < PROPERTY_LABEL_VALUES:
            seen.add(label)
            return label
        return OTHER

    def label(self, name: str, value: str) -> str:
        """The label of property `name` = `value` (empty when the session has no such property)."""
        if not value:
            return ""
        allowed = self._allowed.get(name)
        if allowed is not None:
            return label_text(value) if value in allowed else OTHER
        return self._admit(name, label_text(value))

    def values(self, properties: Mapping[str, str]) -> tuple[str, ...]:
        """A session's values for every property label, in the labels' order."""
        return tuple(self.label(name, properties.get(name, "")) for name in self.names)


def property_labels(engine: Engine, names_text: str, values_text: str) -> PropertyLabels:
    """The labels of `--metric-properties` and `--metric-property-values`, the first-come ones
    seeded with the values the database already holds, so that a restart admits no new ones."""
    allowed = metric_property_values(values_text)
    names = tuple(dict.fromkeys((*metric_property_names(names_text), *allowed)))
    with engine.connect() as connection:
        seen = {
            name: first_values(connection, name, PROPERTY_LABEL_VALUES)
            for name in names
            if name not in allowed
        }
    return PropertyLabels(names, allowed, seen)
