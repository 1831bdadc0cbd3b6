"""The rows every benchmark reports: a figure with its spread, the floor measured in the same
run, the ratio to it and whether the target is met. Benchmarks report; they never fail."""

import math
import statistics
from dataclasses import asdict, dataclass, field


def summary(values: list[float]) -> dict:
    """median/min/max (and p95 when there are enough samples to mean something)."""
    ordered = sorted(values)
    out = {"median": statistics.median(ordered), "min": ordered[0], "max": ordered[-1], "n": len(ordered)}
    if len(ordered) >= 5:
        out["p95"] = percentile(ordered, 95)
    return out


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile: a value that was actually observed."""
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass
class Target:
    """`ratio <= value` (max_ratio), `ratio >= value` (min_ratio) or `median < value` (max_abs)."""

    kind: str
    value: float

    def text(self, unit: str) -> str:
        return {"max_ratio": f"<= {self.value}x", "min_ratio": f">= {self.value}x",
                "max_abs": f"< {self.value} {unit}"}[self.kind]

    def met(self, median: float, ratio: float | None) -> bool | None:
        if self.kind == "max_abs":
            return median < self.value
        if ratio is None:
            return None
        return ratio <= self.value if self.kind == "max_ratio" else ratio >= self.value


@dataclass
class Figure:
    benchmark: str
    name: str
    unit: str
    values: list[float]
    floor: list[float] | None = None  # samples of the floor, same unit
    floor_name: str = ""
    target: Target | None = None
    # Which of the figure's statistics the ratio and target use (p50 = median, or p95).
    stat: str = "median"
    extra: dict = field(default_factory=dict)

    def value(self) -> float:
        return summary(self.values).get(self.stat, statistics.median(self.values))

    def floor_value(self) -> float | None:
        """The floor's same statistic as the figure's (p95 against p95)."""
        if not self.floor:
            return None
        return summary(self.floor).get(self.stat, statistics.median(self.floor))

    def ratio(self) -> float | None:
        floor = self.floor_value()
        return self.value() / floor if floor else None

    def as_dict(self) -> dict:
        ratio = self.ratio()
        return {
            "benchmark": self.benchmark, "figure": self.name, "unit": self.unit, "stat": self.stat,
            **{k: _round(v) for k, v in summary(self.values).items()},
            "floor": _round(self.floor_value()), "floor_what": self.floor_name,
            "floor_samples": [_round(v) for v in self.floor or []],
            "ratio": _round(ratio), "target": asdict(self.target) if self.target else None,
            "target_text": self.target.text(self.unit) if self.target else "",
            "met": self.target.met(self.value(), ratio) if self.target else None,
            "samples": [_round(v) for v in self.values], "extra": self.extra,
        }


def _round(value: float | None) -> float | None:
    if value is None:
        return None
    return round(value, 3) if abs(value) < 100 else round(value, 1)


def markdown(rows: list[dict]) -> str:
    lines = ["| benchmark | figure | median | min | max | floor | ratio | target | met? |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        stat = "" if r["stat"] == "median" else f" ({r['stat']}: {r.get(r['stat'])})"
        met = {True: "yes", False: "**no**", None: "–"}[r["met"]]
        floor = f"{r['floor']} ({r['floor_what']})" if r["floor"] is not None else "–"
        lines.append(
            f"| {r['benchmark']} | {r['figure']} [{r['unit']}]{stat} | {r['median']} | {r['min']} | {r['max']} "
            f"| {floor} | {r['ratio'] if r['ratio'] is not None else '–'} | {r['target_text'] or '–'} | {met} |")
    return "\n".join(lines) + "\n"
