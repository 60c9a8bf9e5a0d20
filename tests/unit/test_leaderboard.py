"""Several fine-tunes at once: the leaderboard against scipy's binomial test and Holm by hand."""

from __future__ import annotations

import random

import pytest

from pytest_ftclass.judging.compare import compare_runs
from pytest_ftclass.judging.leaderboard import holm
from pytest_ftclass.results import CaseResult

LABELS = ["a", "b", "c"]


def run(model: str, right: list[bool], *, seed: int) -> list[CaseResult]:
    """One result per case id; ``right[i]`` says whether case i is answered right."""
    rng = random.Random(seed)
    out = []
    for i, ok in enumerate(right):
        expected = LABELS[i % 3]
        wrong = rng.choice([label for label in LABELS if label != expected])
        out.append(CaseResult(f"c{i}", f"v.cases.jsonl::c{i}", "v.cases.jsonl", model, "chat",
                              expected, expected if ok else wrong, labels=LABELS))  # fmt: skip
    return out


def holm_by_hand(p_values: list[float]) -> list[float]:
    """Holm's step-down adjustment, written out differently: reject while p_(i) ≤ α/(m − i + 1)."""
    m = len(p_values)
    ranked = sorted(enumerate(p_values), key=lambda item: item[1])
    adjusted = [0.0] * m
    largest = 0.0
    for step, (index, p) in enumerate(ranked):
        largest = max(largest, (m - step) * p)
        adjusted[index] = min(1.0, largest)
    return adjusted


def test_three_models_leaderboard_matches_scipy_and_holm() -> None:
    from scipy.stats import binomtest
    from sklearn.metrics import accuracy_score

    rng = random.Random(5)
    n = 240
    strong = [rng.random() < 0.92 for _ in range(n)]
    middle = [rng.random() < 0.85 for _ in range(n)]
    weak = [ok and rng.random() < 0.8 for ok in strong]  # the strong one's errors and more
    runs = {
        "ft:strong": run("ft:strong", strong, seed=1),
        "ft:middle": run("ft:middle", middle, seed=2),
        "ft:weak": run("ft:weak", weak, seed=3),
    }
    comparison = compare_runs(runs, alpha=0.05)
    (board,) = comparison["leaderboards"]
    assert board["n_shared"] == n

    right = {"ft:strong": strong, "ft:middle": middle, "ft:weak": weak}
    raw = []
    for pair in board["pairs"]:
        a, b = right[pair["model_a"]], right[pair["model_b"]]
        a_only = sum(x and not y for x, y in zip(a, b, strict=True))
        b_only = sum(y and not x for x, y in zip(a, b, strict=True))
        assert (pair["a_only"], pair["b_only"]) == (a_only, b_only)
        expected = binomtest(b_only, a_only + b_only, 0.5).pvalue if a_only + b_only else 1.0
        assert pair["p_value"] == pytest.approx(expected, rel=1e-9)
        raw.append(expected)
    assert len(board["pairs"]) == 3
    assert [p["p_holm"] for p in board["pairs"]] == pytest.approx(holm_by_hand(raw), rel=1e-9)

    # ranked by accuracy; the best against each other model
    accuracy = {
        model: accuracy_score([r.expected for r in results], [r.predicted for r in results])
        for model, results in runs.items()
    }
    ranked = sorted(accuracy, key=lambda m: -accuracy[m])
    assert [entry["model"] for entry in board["models"]] == ranked
    assert [entry["accuracy"] for entry in board["models"]] == pytest.approx(
        [accuracy[m] for m in ranked]
    )
    assert board["best"] == ranked[0] == "ft:strong"
    best = "ft:strong"
    for versus in board["best_against"]:
        (pair,) = [
            p for p in board["pairs"] if {p["model_a"], p["model_b"]} == {best, versus["model"]}
        ]
        wins = pair["a_only"] if pair["model_a"] == "ft:strong" else pair["b_only"]
        losses = pair["b_only"] if pair["model_a"] == "ft:strong" else pair["a_only"]
        assert versus["p_holm"] == pair["p_holm"]
        assert versus["significantly_better"] == (wins > losses and pair["p_holm"] < 0.05)
    # the weak model loses only cases the strong one gets right: clearly worse
    assert {v["model"]: v["significantly_better"] for v in board["best_against"]}["ft:weak"]
    # each compared model also against the reference (the first), as a pair
    assert [(p["model_a"], p["model_b"]) for p in comparison["pairs"]] == [
        ("ft:strong", "ft:middle"),
        ("ft:strong", "ft:weak"),
    ]


def test_holm_is_monotone_and_capped() -> None:
    assert holm([0.01, 0.02, 0.03, 0.5]) == pytest.approx([0.04, 0.06, 0.06, 0.5])
    assert holm([0.6, 0.9]) == [1.0, 1.0]
    assert holm_by_hand([0.01, 0.02, 0.03, 0.5]) == holm([0.01, 0.02, 0.03, 0.5])


def test_a_source_only_one_model_answered_has_no_leaderboard() -> None:
    only = run("ft:a", [True, False], seed=1)
    other = [CaseResult("x", "n", "w.jsonl", "ft:b", "chat", "a", "a", labels=LABELS)]
    assert compare_runs({"ft:a": only, "ft:b": other})["leaderboards"] == []
