"""Reading an exposition back: prometheus_client's own text parser, into a lookup."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


class Scrape:
    """The samples of one exposition page, by name and labels."""

    def __init__(self, page: bytes) -> None:
        #: Family name -> its type ("gauge", "counter", "histogram").
        self.types: dict[str, str] = {}
        #: (sample name, sorted label items) -> value.
        self.samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        for family in text_string_to_metric_families(page.decode()):
            self.types[family.name] = family.type
            for sample in family.samples:
                key = (sample.name, tuple(sorted(sample.labels.items())))
                assert key not in self.samples, f"duplicate series {key}"
                self.samples[key] = sample.value

    def get(self, name: str, **labels: str | int) -> float | None:
        """The value of the series ``name{labels}``, None if absent."""
        key = (name, tuple(sorted((k, str(v)) for k, v in labels.items())))
        return self.samples.get(key)

    def value(self, name: str, **labels: str | int) -> float:
        """The value of the series ``name{labels}``, which must be present."""
        found = self.get(name, **labels)
        assert found is not None, f"no series {name}{labels}"
        return found

    def series(self, name: str) -> list[dict[str, str]]:
        """The label sets of every series named ``name``."""
        return [dict(labels) for sample, labels in self.samples if sample == name]
