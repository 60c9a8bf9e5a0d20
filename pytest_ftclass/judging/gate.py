"""The quality gate: does this run pass the team's bar?

Criteria, each giving a :class:`Verdict` per task (one case source asked of one
model) or for the whole run:

- ``--ft-min accuracy=0.95``, ``--ft-min "recall[spam]=0.98"``: a metric must be
  at least the bound; ``--ft-max log_loss=0.3`` at most;
- critical cases: every case marked critical must be predicted right (a
  critical case that errored counts as an error, not a misprediction);
- ``--ft-max-errors N``: at most N API or parse errors (0 when a gate is set);
- ``--ft-baseline OLD.json --ft-max-drop accuracy=0.01``: a metric may fall at
  most that far below the baseline run's value for the same case source; with
  ``--ft-significance 0.05`` a larger drop fails only when McNemar's exact test
  on the cases both runs share says the current model gets significantly fewer
  of them right (p < 0.05, one-sided);
- ``--ft-compare B [--ft-compare C ...] --ft-gate-compare``: fail when the
  model under test is significantly worse than a compared model on the same
  cases (McNemar's exact test, one-sided, its p-values Holm-corrected over the
  compared models of each source; ``--ft-significance``, 0.05 by default).
  The compared models' errors then count too: a comparison on errored answers
  says nothing.

The gate fails closed.  Once any criterion is set (not only critical cases), it
also fails when no case was scored, when the run asked only part of the suite
(unless ``--ft-allow-subset``) and when a baseline shares no case with the run.
Thresholds, drops and critical cases are judged on the models under test,
never on a ``--ft-compare`` model; its errors count only with
``--ft-gate-compare``.

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

from pytest_ftclass.judging.significance import paired

_BOUND = re.compile(
    r"^\s*(?P<metric>[A-Za-z_][\w./-]*(?:\[[^\]]+\])?)\s*=\s*(?P<value>[-+0-9.eE]+)\s*$"
)
_PER_CLASS = re.compile(r"^(?P<name>\w+)\[(?P<label>[^\]]+)\]$")
DEFAULT_SIGNIFICANCE = 0.05
#: The role of a model that is informational unless ``--ft-gate-compare`` (see the report).
COMPARISON = "comparison"
#: The role of a checkpoint of the ``--ft-job`` job: informational, always.
CHECKPOINT = "checkpoint"


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


def known_metric_names() -> list[str]:
    """Every metric name a bound may use (``LABEL`` stands for a class)."""
    from pytest_ftclass.judging.metrics import LEGACY_METRICS, PER_CLASS_METRICS, SCALAR_METRICS

    per_class = [f"{name}[LABEL]" for name in PER_CLASS_METRICS]
    return [*SCALAR_METRICS, *per_class, *LEGACY_METRICS]


def is_known_metric(name: str) -> bool:
    """Whether some report can have metric ``name``.

    >>> is_known_metric("macro_f1"), is_known_metric("recall[spam]"), is_known_metric("acuracy")
    (True, True, False)
    """
    from pytest_ftclass.judging.metrics import LEGACY_METRICS, PER_CLASS_METRICS, SCALAR_METRICS

    per_class = _PER_CLASS.match(name)
    if per_class:
        return per_class["name"] in PER_CLASS_METRICS
    return name in SCALAR_METRICS or name in LEGACY_METRICS


def unknown_labels(bounds: Iterable[Bound], labels: Iterable[str]) -> str | None:
    """A message naming the per-class bounds whose class no case has, or ``None``.

    >>> unknown_labels([Bound("recall[neutrl]", 0.9)], ["negative", "neutral"])
    "recall[neutrl]: no case has the label 'neutrl' (labels: negative, neutral)"
    """
    known = sorted(set(labels))
    problems = []
    for bound in bounds:
        per_class = _PER_CLASS.match(bound.metric)
        if per_class and per_class["label"] not in known:
            problems.append(f"{bound.metric}: no case has the label {per_class['label']!r}")
    if not problems:
        return None
    return f"{'; '.join(problems)} (labels: {', '.join(known) or 'none'})"


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
    baseline_name: str = "the baseline"
    significance: float | None = None
    gate_compare: bool = False
    allow_subset: bool = False

    @property
    def configured(self) -> bool:
        """Whether the user set a criterion (critical cases are set by the data)."""
        return bool(
            self.minimums
            or self.maximums
            or self.max_errors is not None
            or (self.baseline is not None and self.max_drops)
            or self.gate_compare
        )


@dataclass
class Verdict:
    """One criterion judged on one scope: ``passed`` when ``value op bound`` holds."""

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
    """The verdicts; ``active`` when there was anything to judge (a setting or critical cases)."""

    configured: bool
    verdicts: list[Verdict] = field(default_factory=list)

    @property
    def active(self) -> bool:
        return self.configured or bool(self.verdicts)

    @property
    def passed(self) -> bool:
        return all(v.passed for v in self.verdicts)

    @property
    def failures(self) -> list[Verdict]:
        return [v for v in self.verdicts if not v.passed]

    def to_dict(self) -> dict[str, Any]:
        return {
            "configured": self.configured,
            "active": self.active,
            "passed": self.passed,
            "verdicts": [v.to_dict() for v in self.verdicts],
        }


def evaluate_gate(report: Mapping[str, Any], config: GateConfig) -> GateResult:
    """Judge a report (the dict of :func:`pytest_ftclass.report.build_report`).

    Tasks and cases of the compared models (``role`` ``comparison`` in the
    report) are judged only with ``gate_compare``, and then for their errors
    (and as the yardstick of :func:`_compare`).
    """
    result = GateResult(configured=config.configured)
    compared = {t["model"] for t in report.get("models", []) if t.get("role") == COMPARISON}
    checkpoints = _checkpoint_models(report)
    tasks = [t for t in report.get("tasks", []) if t.get("model") not in compared | checkpoints]
    cases = [c for c in report.get("cases", []) if c.get("model") not in checkpoints]
    tested = [c for c in cases if c.get("model") not in compared]
    judged = cases if config.gate_compare else tested
    if config.configured:
        result.verdicts += _coverage(judged, report.get("selection") or {}, config)
    for bound in config.minimums:
        result.verdicts += _threshold(tasks, bound, at_least=True)
    for bound in config.maximums:
        result.verdicts += _threshold(tasks, bound, at_least=False)
    critical = [c for c in tested if c.get("critical")]
    if critical:
        missed = [c for c in critical if not c.get("error") and not _correct(c)]
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
    if config.configured or critical:
        budget = config.max_errors or 0
        errors = [c for c in judged if c.get("error")]
        detail = (
            f"{sum(1 for c in errors if c.get('critical'))} of them critical" if critical else ""
        )
        result.verdicts.append(
            Verdict(
                "errors",
                "run",
                float(len(errors)),
                float(budget),
                len(errors) <= budget,
                detail if errors and detail else "",
            )
        )
    if config.baseline is not None and config.max_drops:
        result.verdicts += _drops(tasks, cases, config)
    if config.gate_compare:
        result.verdicts += _compare(report, compared, config)
    return result


def _coverage(
    cases: Sequence[Mapping[str, Any]], selection: Mapping[str, Any], config: GateConfig
) -> list[Verdict]:
    """Fail closed: nothing scored, or a subset of the suite that was not allowed."""
    from pytest_ftclass.judging.coverage import describe_subset

    scored = sum(1 for c in cases if not c.get("error") and c.get("predicted") is not None)
    verdicts = [
        Verdict(
            "cases scored",
            "run",
            float(scored),
            1.0,
            scored > 0,
            "" if scored else _why_nothing_scored(cases),
            op=">=",
        )
    ]
    if selection.get("subset"):
        how = describe_subset(selection)
        verdicts.append(
            Verdict(
                "cases asked",
                "run",
                float(selection.get("asked", 0)),
                float(selection.get("planned", 0)),
                config.allow_subset,
                f"{how}; --ft-allow-subset judges a subset"
                if not config.allow_subset
                else f"{how}; a subset, allowed by --ft-allow-subset",
                op=">=",
            )
        )
    return verdicts


def _why_nothing_scored(cases: Sequence[Mapping[str, Any]]) -> str:
    if not cases:
        return "no case was asked: check ft_case_files, the case files and the selection"
    return f"no case was scored: all {len(cases)} asked ended in errors"


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
            detail = f"unknown metric (known: {', '.join(known_metric_names())})"
            verdicts.append(Verdict(bound.metric, scope, None, bound.value, False, detail, op))
            continue
        if value is None:
            detail = "not computable"
            verdicts.append(Verdict(bound.metric, scope, None, bound.value, False, detail, op))
            continue
        passed = value >= bound.value if at_least else value <= bound.value
        verdicts.append(Verdict(bound.metric, scope, value, bound.value, passed, "", op))
    return verdicts


def _checkpoint_models(report: Mapping[str, Any]) -> set[str]:
    """The models of a report that are checkpoints of its job: the gate never judges them."""
    return {m["model"] for m in report.get("models", []) if m.get("role") == CHECKPOINT}


def _correct(case: Mapping[str, Any]) -> bool:
    return not case.get("error") and case.get("predicted") == case.get("expected")


def _baseline_task(
    baseline: Mapping[str, Any], task: Mapping[str, Any]
) -> Mapping[str, Any] | None:
    """The baseline's task for the same source: the same model's, else its model under test's."""
    compared = {t["model"] for t in baseline.get("models", []) if t.get("role") == COMPARISON}
    compared |= _checkpoint_models(baseline)
    same_source = [
        t
        for t in baseline.get("tasks", [])
        if t.get("source") == task.get("source") and t.get("model") not in compared
    ]
    for candidate in same_source:
        if candidate.get("model") == task.get("model"):
            return candidate
    return same_source[0] if same_source else None


def _drops(
    tasks: Sequence[Mapping[str, Any]],
    cases: Sequence[Mapping[str, Any]],
    config: GateConfig,
) -> list[Verdict]:
    baseline = config.baseline or {}
    verdicts = []
    shared_any = False
    old_cases, new_cases = _correctness(baseline.get("cases", [])), _correctness(cases)
    for task in tasks:
        old_task = _baseline_task(baseline, task)
        pairs = [] if old_task is None else _shared(old_cases, old_task, new_cases, task)
        shared_any = shared_any or bool(pairs)
        for bound in config.max_drops:
            verdicts.append(_drop(task, old_task, pairs, bound, config.significance))
    if tasks and not shared_any:
        verdicts.append(
            Verdict(
                "cases shared with the baseline",
                "run",
                0.0,
                1.0,
                False,
                f"{config.baseline_name} shares no case (same source and id) with this run",
                op=">=",
            )
        )
    return verdicts


def _drop(
    task: Mapping[str, Any],
    old_task: Mapping[str, Any] | None,
    pairs: list[tuple[bool, bool]],
    bound: Bound,
    significance: float | None,
) -> Verdict:
    name = f"drop in {bound.metric} from the baseline"
    scope = task["task"]
    if old_task is None:
        return Verdict(name, scope, None, bound.value, True, "no baseline for this source (new)")
    if not pairs:
        return Verdict(name, scope, None, bound.value, False, "shares no case with the baseline")
    try:
        old = metric_value(old_task["metrics"], bound.metric)
        new = metric_value(task["metrics"], bound.metric)
    except KeyError:
        return Verdict(name, scope, None, bound.value, False, "unknown metric")
    if old is None or new is None:
        return Verdict(name, scope, None, bound.value, False, "not computable")
    drop = old - new
    passed = drop <= bound.value
    detail = f"baseline {old:.4g}, now {new:.4g}, {len(pairs)} shared cases"
    if not passed and significance is not None:
        comparison = paired(pairs)
        significant = comparison.b_significantly_worse(significance)
        passed = not significant
        detail += (
            f"; McNemar p={comparison.p_b_worse:.3g} "
            f"({'significant' if significant else 'not significant'} at {significance:g})"
        )
    return Verdict(name, scope, drop, bound.value, passed, detail)


def _correctness(cases: Iterable[Mapping[str, Any]]) -> dict[tuple[Any, Any], dict[Any, bool]]:
    """Each task's cases in one pass: ``(source, model)`` → case id → answered right."""
    by_task: dict[tuple[Any, Any], dict[Any, bool]] = {}
    for case in cases:
        task = (case.get("source"), case.get("model"))
        by_task.setdefault(task, {})[case["case_id"]] = _correct(case)
    return by_task


def _shared(
    by_task_a: Mapping[tuple[Any, Any], Mapping[Any, bool]],
    task_a: Mapping[str, Any],
    by_task_b: Mapping[tuple[Any, Any], Mapping[Any, bool]],
    task_b: Mapping[str, Any],
) -> list[tuple[bool, bool]]:
    """``(A right, B right)`` for each case both tasks answered, in B's order."""
    a = by_task_a.get((task_a.get("source"), task_a.get("model")), {})
    b = by_task_b.get((task_b.get("source"), task_b.get("model")), {})
    return [(a[case_id], right) for case_id, right in b.items() if case_id in a]


def _compare(report: Mapping[str, Any], compared: set[str], config: GateConfig) -> list[Verdict]:
    """The model under test against each compared model, per source (Holm over the compared)."""
    from pytest_ftclass.judging.leaderboard import holm

    alpha = config.significance if config.significance is not None else DEFAULT_SIGNIFICANCE
    verdicts = []
    checkpoints = _checkpoint_models(report)
    tasks = [t for t in report.get("tasks", []) if t.get("model") not in checkpoints]
    by_task = _correctness(report.get("cases", []))
    for task in tasks:
        if task.get("model") in compared:
            continue
        rivals = [
            t for t in tasks if t.get("model") in compared and t.get("source") == task.get("source")
        ]
        counts = [paired(_shared(by_task, rival, by_task, task)) for rival in rivals]
        adjusted = holm([c.p_b_worse for c in counts])
        for rival, comparison, p in zip(rivals, counts, adjusted, strict=True):
            # A is the compared model, B the model under test: B must not be significantly worse
            worse = comparison.a_only > comparison.b_only and p < alpha
            holm_note = (
                f", Holm-corrected over {len(rivals)} compared models" if len(rivals) > 1 else ""
            )
            verdicts.append(
                Verdict(
                    f"p-value that {task['model']} is worse than {rival['model']}",
                    task.get("source", ""),
                    p,
                    alpha,
                    not worse,
                    f"{comparison.b_only} cases only {task['model']} gets right, "
                    f"{comparison.a_only} only {rival['model']}; McNemar one-sided "
                    f"p={comparison.p_b_worse:.3g}{holm_note}",
                    op=">=",
                )
            )
    return verdicts
