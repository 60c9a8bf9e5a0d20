"""The quality gate: does this run pass the team's bar?

Criteria, each giving a :class:`Verdict` per task (one case source asked of one
model) or for the whole run:

- ``--ft-min accuracy=0.95``, ``--ft-min "recall[spam]=0.98"``: a metric must be
  at least the bound; ``--ft-max log_loss=0.3`` at most;
- critical cases: every case marked critical must be predicted right;
- ``--ft-max-errors N``: at most N API or parse errors (0 when a gate is set);
- ``--ft-baseline OLD.json --ft-max-drop accuracy=0.01``: a metric may fall at
  most that far below the baseline run's value for the same case source; with
  ``--ft-significance 0.05`` a larger drop fails only when McNemar's exact test
  on the cases both runs share says the current model gets significantly fewer
  of them right (p < 0.05, one-sided);
- ``--ft-compare B --ft-gate-compare``: fail when B is significantly worse than
  the main model on the same cases (same test and level, 0.05 by default).

Thresholds and drops apply to every task except those of the model named by
``--ft-compare``.

>>> bound = Bound.parse("recall[spam]=0.98")
>>> bound.metric, bound.value
('recall[spam]', 0.98)
>>> metric_value({"per_class": {"spam": {"recall": 0.99}}}, "recall[spam]")
0.99
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from .significance import paired

_BOUND = re.compile(
    r"^\s*(?P<metric>[A-Za-z_][\w./-]*(?:\[[^\]]+\])?)\s*=\s*(?P<value>[-+0-9.eE]+)\s*$"
)
_PER_CLASS = re.compile(r"^(?P<name>\w+)\[(?P<label>[^\]]+)\]$")
DEFAULT_SIGNIFICANCE = 0.05


@dataclass(frozen=True)
class Bound:
    """A metric name and a number, as in ``accuracy=0.95``."""

    metric: str
    value: float

    @classmethod
    def parse(cls, text: str) -> Bound:
        match = _BOUND.match(text)
        if not match:
            raise ValueError(
                f"expected METRIC=NUMBER (e.g. accuracy=0.95 or recall[spam]=0.9), got {text!r}"
            )
        try:
            value = float(match["value"])
        except ValueError:
            raise ValueError(f"{match['value']!r} is not a number in {text!r}") from None
        return cls(match["metric"], value)

    def __str__(self) -> str:
        return f"{self.metric}={self.value:g}"


def metric_value(metrics: Mapping[str, Any], name: str) -> float | None:
    """The value of metric ``name`` in a metrics dict; ``None`` when it could not be computed.

    Raises ``KeyError`` for a name the metrics do not know.  Names: any numeric
    key (``accuracy``, ``macro_f1``, ``log_loss`` …), ``error_rate``,
    ``precision[LABEL]`` / ``recall[LABEL]`` / ``f1[LABEL]``, and the legacy
    results-file names (``classification/auroc`` …).
    """
    per_class = _PER_CLASS.match(name)
    if per_class:
        table = metrics.get("per_class")
        if table is None:
            return None
        row = table.get(per_class["label"])
        if row is None or per_class["name"] not in row:
            raise KeyError(name)
        return _number(row[per_class["name"]])
    if name in metrics:
        return _number(metrics[name])
    legacy = metrics.get("legacy") or {}
    if name in legacy:
        return _number(legacy[name])
    if name == "error_rate":
        cases = metrics.get("n_cases") or 0
        return (metrics.get("n_errors") or 0) / cases if cases else None
    raise KeyError(name)


def known_metrics(metrics: Mapping[str, Any]) -> list[str]:
    names = [
        k for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
    ]
    names += list(metrics.get("legacy") or {})
    return sorted({*names, "error_rate", "precision[LABEL]", "recall[LABEL]", "f1[LABEL]"})


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


@dataclass(frozen=True)
class GateConfig:
    minimums: tuple[Bound, ...] = ()
    maximums: tuple[Bound, ...] = ()
    max_errors: int | None = None
    max_drops: tuple[Bound, ...] = ()
    baseline: Mapping[str, Any] | None = None
    significance: float | None = None
    compare_model: str | None = None
    gate_compare: bool = False

    @property
    def configured(self) -> bool:
        return bool(
            self.minimums
            or self.maximums
            or self.max_errors is not None
            or (self.baseline is not None and self.max_drops)
            or self.gate_compare
        )


@dataclass
class Verdict:
    criterion: str
    scope: str
    value: float | None
    bound: float | None
    passed: bool
    detail: str = ""
    op: str = "<="

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        """``FAIL accuracy = 0.9 (needs >= 0.91) [valid.cases.jsonl @ ft:m]``"""
        value = "n/a" if self.value is None else f"{self.value:.4g}"
        bound = "" if self.bound is None else f" (needs {self.op} {self.bound:g})"
        status = "ok  " if self.passed else "FAIL"
        detail = f": {self.detail}" if self.detail else ""
        return f"{status} {self.criterion} = {value}{bound} [{self.scope}]{detail}"


@dataclass
class GateResult:
    configured: bool
    verdicts: list[Verdict] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(v.passed for v in self.verdicts)

    @property
    def failures(self) -> list[Verdict]:
        return [v for v in self.verdicts if not v.passed]

    def to_dict(self) -> dict[str, Any]:
        return {
            "configured": self.configured,
            "passed": self.passed,
            "verdicts": [v.to_dict() for v in self.verdicts],
        }


def evaluate_gate(report: Mapping[str, Any], config: GateConfig) -> GateResult:
    """Judge a report (the dict of :func:`pytest_ftclass.report.build_report`)."""
    result = GateResult(configured=config.configured)
    tasks = [t for t in report.get("tasks", []) if t.get("model") != config.compare_model]
    cases = report.get("cases", [])
    for bound in config.minimums:
        result.verdicts += _threshold(tasks, bound, at_least=True)
    for bound in config.maximums:
        result.verdicts += _threshold(tasks, bound, at_least=False)
    critical = [c for c in cases if c.get("critical") and c.get("model") != config.compare_model]
    if critical:
        missed = [c for c in critical if not _correct(c)]
        result.verdicts.append(
            Verdict(
                "critical cases mispredicted",
                "run",
                float(len(missed)),
                0.0,
                not missed,
                ", ".join(c["case_id"] for c in missed[:10]),
            )
        )
    if config.configured:
        budget = config.max_errors or 0
        errors = [c for c in cases if c.get("error")]
        result.verdicts.append(
            Verdict("errors", "run", float(len(errors)), float(budget), len(errors) <= budget)
        )
    if config.baseline is not None:
        for bound in config.max_drops:
            result.verdicts += _drops(tasks, cases, config.baseline, bound, config.significance)
    if config.gate_compare and config.compare_model:
        result.verdicts += _compare(report, config)
    return result


def _threshold(
    tasks: Sequence[Mapping[str, Any]], bound: Bound, *, at_least: bool
) -> list[Verdict]:
    verdicts = []
    op = ">=" if at_least else "<="
    for task in tasks:
        metrics = task["metrics"]
        scope = task["task"]
        try:
            value = metric_value(metrics, bound.metric)
        except KeyError:
            detail = f"unknown metric (known: {', '.join(known_metrics(metrics))})"
            verdicts.append(Verdict(bound.metric, scope, None, bound.value, False, detail, op))
            continue
        if value is None:
            detail = "not computable"
            verdicts.append(Verdict(bound.metric, scope, None, bound.value, False, detail, op))
            continue
        passed = value >= bound.value if at_least else value <= bound.value
        verdicts.append(Verdict(bound.metric, scope, value, bound.value, passed, "", op))
    return verdicts


def _correct(case: Mapping[str, Any]) -> bool:
    return not case.get("error") and case.get("predicted") == case.get("expected")


def _baseline_task(
    baseline: Mapping[str, Any], task: Mapping[str, Any]
) -> Mapping[str, Any] | None:
    same_source = [t for t in baseline.get("tasks", []) if t.get("source") == task.get("source")]
    for candidate in same_source:
        if candidate.get("model") == task.get("model"):
            return candidate
    return same_source[0] if same_source else None


def _drops(
    tasks: Sequence[Mapping[str, Any]],
    cases: Sequence[Mapping[str, Any]],
    baseline: Mapping[str, Any],
    bound: Bound,
    significance: float | None,
) -> list[Verdict]:
    verdicts = []
    for task in tasks:
        old_task = _baseline_task(baseline, task)
        name = f"drop in {bound.metric} <="
        if old_task is None:
            verdicts.append(
                Verdict(name, task["task"], None, bound.value, True, "no baseline for this source")
            )
            continue
        try:
            old = metric_value(old_task["metrics"], bound.metric)
            new = metric_value(task["metrics"], bound.metric)
        except KeyError:
            verdicts.append(Verdict(name, task["task"], None, bound.value, False, "unknown metric"))
            continue
        if old is None or new is None:
            verdicts.append(Verdict(name, task["task"], None, bound.value, False, "not computable"))
            continue
        drop = old - new
        passed = drop <= bound.value
        detail = f"baseline {old:.4g}, now {new:.4g}"
        if not passed and significance is not None:
            comparison = paired(
                _shared_correctness(baseline.get("cases", []), cases, task, old_task)
            )
            p = comparison.p_b_worse
            significant = p < significance
            passed = not significant
            detail += (
                f"; McNemar p={p:.3g} on {comparison.n_shared} shared cases "
                f"({'significant' if significant else 'not significant'} at {significance:g})"
            )
        verdicts.append(Verdict(name, task["task"], drop, bound.value, passed, detail))
    return verdicts


def _shared_correctness(
    old_cases: Iterable[Mapping[str, Any]],
    new_cases: Iterable[Mapping[str, Any]],
    new_task: Mapping[str, Any],
    old_task: Mapping[str, Any],
) -> list[tuple[bool, bool]]:
    old = {
        c["case_id"]: _correct(c)
        for c in old_cases
        if c.get("source") == old_task.get("source") and c.get("model") == old_task.get("model")
    }
    return [
        (old[c["case_id"]], _correct(c))
        for c in new_cases
        if c.get("source") == new_task.get("source")
        and c.get("model") == new_task.get("model")
        and c["case_id"] in old
    ]


def _compare(report: Mapping[str, Any], config: GateConfig) -> list[Verdict]:
    alpha = config.significance if config.significance is not None else DEFAULT_SIGNIFICANCE
    verdicts = []
    cases = report.get("cases", [])
    main_tasks = [t for t in report.get("tasks", []) if t.get("model") != config.compare_model]
    for task in main_tasks:
        candidate = next(
            (
                t
                for t in report.get("tasks", [])
                if t.get("model") == config.compare_model and t.get("source") == task.get("source")
            ),
            None,
        )
        if candidate is None:
            continue
        comparison = paired(_shared_correctness(cases, cases, candidate, task))
        p = comparison.p_b_worse
        worse = comparison.a_only > comparison.b_only and p < alpha
        verdicts.append(
            Verdict(
                f"p-value that {config.compare_model} is worse",
                task.get("source", ""),
                p,
                alpha,
                not worse,
                f"{comparison.a_only} cases only {task['model']} gets right, "
                f"{comparison.b_only} only {config.compare_model}; McNemar one-sided p={p:.3g}",
                op=">=",
            )
        )
    return verdicts
