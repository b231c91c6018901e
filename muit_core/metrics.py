"""The metrics a sweep scores and the laws are fitted to: one entry each.

Every stage reads a metric's facts here: the sweep (what it writes in `higher_is_better`), the
fits (direction, the bounds a fitted law must respect) and the reports. A metric not listed
(a user's own column) takes its direction from the results table and has no bounds.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MetricInfo:
    """What the project knows about one metric.

    Attributes:
        name: the key in results tables (`metric` column) and `--metric`.
        higher_is_better: the metric's direction.
        lowest: the smallest value it can take (None: unbounded below).
        highest: the largest value it can take (None: unbounded above).
        unit: what its values are, for labels.
    """

    name: str
    higher_is_better: bool
    lowest: float | None
    highest: float | None
    unit: str

    def out_of_range(self, value: float) -> bool:
        """Whether `value` lies outside what the metric can take."""
        return (self.lowest is not None and value < self.lowest) or (
            self.highest is not None and value > self.highest
        )


METRICS: dict[str, MetricInfo] = {
    m.name: m
    for m in (
        MetricInfo("heldout_ce", False, 0.0, None, "nats/token"),  # mean response-token CE
        MetricInfo("chrf", True, 0.0, 100.0, "chrF"),  # sacrebleu corpus chrF
        MetricInfo("bleu", True, 0.0, 100.0, "BLEU"),  # sacrebleu corpus BLEU
    )
}
"""The sweep's metrics, keyed by name."""
