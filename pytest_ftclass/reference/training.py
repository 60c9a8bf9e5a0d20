"""How the reference server fine-tunes: read a training file, then learn by mini-batch SGD.

No HTTP here: :mod:`pytest_ftclass.reference.fine_tuning` runs this in a job.

>>> import json
>>> lines = [{"prompt": f"{w} goal match\\n\\n###\\n\\n", "completion": " sport"} for w in "abcdef"]
>>> lines += [{"prompt": f"{w} shares profit\\n\\n###\\n\\n", "completion": " business"}
...           for w in "ghijkl"]
>>> examples = read_examples("".join(json.dumps(line) + "\\n" for line in lines).encode())
>>> settings = Hyperparameters.resolve({"n_epochs": 2, "batch_size": 4}, len(examples))
>>> settings
Hyperparameters(n_epochs=2, batch_size=4, learning_rate_multiplier=1.0)
>>> events = list(train(examples, [], settings, seed=7))
>>> steps = [e for e in events if isinstance(e, Step)]
>>> len(steps), steps[0].train_loss == round(math.log(2), 6)  # 2 epochs of 3 batches
(6, True)
>>> [e.step for e in events if isinstance(e, EpochEnd)]  # one checkpoint per epoch
[3, 6]
>>> events[-1].model.predict(["late goal"])
['sport']

Every step is one update on one batch: ``train_loss`` and ``train_accuracy`` are
the batch's cross-entropy and accuracy in the forward pass, before the update
(so step 1 of ``K`` classes always has loss ``ln K``).  The model is a
multinomial logistic regression (softmax) over TF-IDF features fitted on the
training texts; its learning rate is ``BASE_LEARNING_RATE`` times
``learning_rate_multiplier``.  The same examples, settings and seed give the
same steps and models, bit for bit.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_ftclass.cases.sources import request_text
from pytest_ftclass.reference.classifier import ReferenceClassifier

__all__ = [
    "BASE_LEARNING_RATE",
    "MIN_EXAMPLES",
    "EpochEnd",
    "Example",
    "Hyperparameters",
    "LinearTextModel",
    "Step",
    "TrainingFileError",
    "read_examples",
    "train",
]

BASE_LEARNING_RATE = 4.0
MIN_EXAMPLES = 10  # the real API refuses a training file with fewer
MAX_EPOCHS = 50
MAX_BATCH_SIZE = 256
METRIC_DIGITS = 6
CHAT_ROLES = ("system", "developer", "user", "assistant", "tool")


class TrainingFileError(ValueError):
    """A training or validation file the job cannot use; ``line`` is 1-based, if any."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


@dataclass(frozen=True)
class Example:
    """One line of a fine-tuning file: the text the model reads and the class it writes."""

    text: str
    label: str
    #: whitespace-separated words of the prompt (or messages) and completion
    tokens: int


def read_examples(data: bytes, *, minimum: int = 0) -> list[Example]:
    """The examples of a JSONL fine-tuning file, prompt/completion or chat, one format per file.

    A completion's class is its text without surrounding whitespace; a chat line's
    class is its last message, which must be the assistant's, and its text the
    other messages' contents joined by newlines (as the server reads a chat request).

    >>> read_examples(b'{"prompt": "a goal", "completion": " sport"}\\n')
    [Example(text='a goal', label='sport', tokens=3)]
    >>> read_examples(b'{"prompt": "a goal", "completion": " sport"}\\n{"prompt": 3}\\n')
    Traceback (most recent call last):
    ...
    pytest_ftclass.reference.training.TrainingFileError: Line 2: 'prompt' must be a string.
    """
    examples: list[Example] = []
    first_format: tuple[str, int] | None = None
    for number, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        try:
            line = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise TrainingFileError(f"Line {number} is not UTF-8 text.", number) from None
        except json.JSONDecodeError as err:
            raise TrainingFileError(
                f"Line {number} is not valid JSON ({err.msg}).", number
            ) from None
        if not isinstance(line, dict):
            raise TrainingFileError(f"Line {number} must be a JSON object.", number)
        kind = "chat" if "messages" in line else "prompt/completion"
        if first_format is None:
            first_format = (kind, number)
        elif first_format[0] != kind:
            raise TrainingFileError(
                f"Line {number} is in the {kind} format, but line {first_format[1]} is in the "
                f"{first_format[0]} format: use one format per file.",
                number,
            )
        if kind == "chat":
            examples.append(_chat_example(line["messages"], number))
        else:
            examples.append(_completion_example(line, number))
    if len(examples) < minimum:
        raise TrainingFileError(
            f"The file has {len(examples)} example(s), but must have at least {minimum}."
        )
    return examples


def _completion_example(line: Mapping[str, Any], number: int) -> Example:
    for key in ("prompt", "completion"):
        if key not in line:
            raise TrainingFileError(
                f"Line {number} has no {key!r}: each line needs 'prompt' and 'completion', "
                "or 'messages'.",
                number,
            )
        if not isinstance(line[key], str):
            raise TrainingFileError(f"Line {number}: {key!r} must be a string.", number)
    prompt, completion = str(line["prompt"]), str(line["completion"])
    label = completion.strip()
    if not label:
        raise TrainingFileError(f"Line {number}: the completion is empty.", number)
    return Example(prompt, label, len(prompt.split()) + len(completion.split()))


def _chat_example(messages: Any, number: int) -> Example:
    if not isinstance(messages, list) or not messages:
        raise TrainingFileError(f"Line {number}: 'messages' must be a non-empty list.", number)
    words = 0
    for index, message in enumerate(messages):
        where = f"Line {number}, message {index + 1}"
        if not isinstance(message, dict) or message.get("role") not in CHAT_ROLES:
            raise TrainingFileError(
                f"{where}: needs a 'role', one of {', '.join(CHAT_ROLES)}.", number
            )
        content = message.get("content")
        if not isinstance(content, str):
            raise TrainingFileError(f"{where}: 'content' must be a string.", number)
        words += len(content.split())
    last = messages[-1]
    if last["role"] != "assistant" or not str(last["content"]).strip():
        raise TrainingFileError(
            f"Line {number}: the last message must be the assistant's, holding the class.",
            number,
        )
    return Example(request_text(messages), str(last["content"]).strip(), words)


@dataclass(frozen=True)
class Hyperparameters:
    """The settings a job trains with, ``"auto"`` values resolved for ``n`` examples."""

    n_epochs: int
    batch_size: int
    learning_rate_multiplier: float

    @classmethod
    def resolve(cls, requested: Mapping[str, Any], n: int) -> Hyperparameters:
        """``"auto"`` (or absent) becomes 3 epochs, batches of about 0.2 % of the
        examples (1 to 256), a multiplier of 1; a batch larger than the file is the file.

        >>> Hyperparameters.resolve({"batch_size": "auto"}, 2000)
        Hyperparameters(n_epochs=3, batch_size=4, learning_rate_multiplier=1.0)
        """
        epochs = requested.get("n_epochs", "auto")
        batch = requested.get("batch_size", "auto")
        multiplier = requested.get("learning_rate_multiplier", "auto")
        return cls(
            n_epochs=3 if epochs == "auto" else int(epochs),
            batch_size=max(1, min(MAX_BATCH_SIZE, round(n * 0.002), n))
            if batch == "auto"
            else min(int(batch), max(n, 1)),
            learning_rate_multiplier=1.0 if multiplier == "auto" else float(multiplier),
        )

    def steps_per_epoch(self, n: int) -> int:
        return math.ceil(n / self.batch_size)

    def as_dict(self) -> dict[str, int | float]:
        return {
            "n_epochs": self.n_epochs,
            "batch_size": self.batch_size,
            "learning_rate_multiplier": self.learning_rate_multiplier,
        }


@dataclass(frozen=True)
class Step:
    """One training step: the batch's metrics, and the validation ones when measured."""

    step: int
    total_steps: int
    train_loss: float
    train_accuracy: float
    valid_loss: float | None = None
    valid_accuracy: float | None = None

    def csv_row(self) -> str:
        """``step,train_loss,train_accuracy,valid_loss,valid_mean_token_accuracy``."""
        cells: list[float | None] = [self.step, self.train_loss, self.train_accuracy]
        cells += [self.valid_loss, self.valid_accuracy]
        return ",".join("" if cell is None else str(cell) for cell in cells)


@dataclass(frozen=True)
class EpochEnd:
    """The model after an epoch (a checkpoint), with its metrics on the whole validation file."""

    epoch: int
    step: int
    model: ReferenceClassifier
    full_valid_loss: float | None
    full_valid_accuracy: float | None


class LinearTextModel:
    """Class scores ``tfidf(text) @ weights + bias``; what :class:`ReferenceClassifier` serves."""

    def __init__(self, vectorizer: Any, weights: Any, bias: Any, classes: Sequence[str]) -> None:
        self.vectorizer = vectorizer
        self.weights = weights
        self.bias = bias
        self.classes_ = list(classes)

    def decision_function(self, texts: Sequence[str]) -> Any:
        return self.vectorizer.transform(list(texts)) @ self.weights + self.bias


def train(
    examples: Sequence[Example],
    validation: Sequence[Example],
    settings: Hyperparameters,
    *,
    seed: int,
    valid_every: int = 10,
) -> Iterator[Step | EpochEnd]:
    """Train, yielding every :class:`Step` and, after each epoch's last step, an :class:`EpochEnd`.

    Validation metrics (when ``validation`` is given) are measured on the next
    batch of the validation file every ``valid_every`` steps and at each epoch's
    end, after that step's update; at each epoch's end also on the whole file.
    A validation class unknown to the training file counts as wrong, with the
    probability ``exp(-LOSS_CAP)``.
    """
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer

    classes = sorted({example.label for example in examples})
    if len(classes) < 2:
        raise TrainingFileError(
            f"The training file has one class ({classes[0]!r}); the reference model "
            "needs at least two."
            if classes
            else "The training file has no examples."
        )
    index = {label: position for position, label in enumerate(classes)}
    vectorizer = TfidfVectorizer(sublinear_tf=True, dtype=np.float64)
    features = vectorizer.fit_transform([example.text for example in examples]).tocsr()
    targets = np.array([index[example.label] for example in examples])
    valid_texts = [example.text for example in validation]
    valid_features = vectorizer.transform(valid_texts).tocsr() if valid_texts else None
    valid_targets = np.array([index.get(example.label, -1) for example in validation], dtype=int)

    weights = np.zeros((features.shape[1], len(classes)))
    bias = np.zeros(len(classes))
    rate = BASE_LEARNING_RATE * settings.learning_rate_multiplier
    rng = np.random.default_rng(seed)
    valid_order = rng.permutation(len(validation))
    valid_next = 0
    per_epoch = settings.steps_per_epoch(len(examples))
    total = settings.n_epochs * per_epoch
    step = 0
    for epoch in range(1, settings.n_epochs + 1):
        order = rng.permutation(len(examples))
        shuffled, shuffled_targets = features[order], targets[order]
        for start in range(0, len(examples), settings.batch_size):
            step += 1
            stop = start + settings.batch_size
            batch, answers = shuffled[start:stop], shuffled_targets[start:stop]
            log_probs = _log_softmax(batch @ weights + bias)
            loss, accuracy = _loss_and_accuracy(log_probs, answers)
            _descend(weights, bias, batch, log_probs, answers, rate)
            valid_loss = valid_accuracy = None
            epoch_end = stop >= len(examples)
            if valid_features is not None and (step % valid_every == 0 or epoch_end):
                picked = valid_order[
                    np.arange(valid_next, valid_next + settings.batch_size) % len(validation)
                ]
                valid_next = (valid_next + settings.batch_size) % len(validation)
                valid_loss, valid_accuracy = _loss_and_accuracy(
                    _log_softmax(valid_features[picked] @ weights + bias), valid_targets[picked]
                )
            yield Step(step, total, loss, accuracy, valid_loss, valid_accuracy)
        full_loss = full_accuracy = None
        if valid_features is not None:
            full_loss, full_accuracy = _loss_and_accuracy(
                _log_softmax(valid_features @ weights + bias), valid_targets
            )
        model = LinearTextModel(vectorizer, weights.copy(), bias.copy(), classes)
        yield EpochEnd(
            epoch,
            step,
            ReferenceClassifier(model, classes, n_train=len(examples)),
            full_loss,
            full_accuracy,
        )


LOSS_CAP = 30.0  # the loss of a class the model cannot write


def _descend(
    weights: Any, bias: Any, batch: Any, log_probs: Any, answers: Any, rate: float
) -> None:
    """One step down the batch's mean cross-entropy, in place.

    The gradient of a word's weights is zero unless the batch holds the word, so
    only those rows change: a step costs the batch's size, not the vocabulary's.
    """
    import numpy as np

    errors = np.exp(log_probs)
    errors[np.arange(len(answers)), answers] -= 1.0
    errors *= rate / len(answers)
    example_of_entry = np.repeat(np.arange(len(answers)), np.diff(batch.indptr))
    np.subtract.at(weights, batch.indices, batch.data[:, None] * errors[example_of_entry])
    bias -= errors.sum(axis=0)


def _log_softmax(scores: Any) -> Any:
    import numpy as np

    scores = np.asarray(scores, dtype=np.float64)
    shifted = scores - scores.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def _loss_and_accuracy(log_probs: Any, answers: Any) -> tuple[float, float]:
    """Mean cross-entropy and accuracy; an answer of ``-1`` is a class the model lacks."""
    import numpy as np

    known = answers >= 0
    picked = np.where(known, log_probs[np.arange(len(answers)), np.maximum(answers, 0)], -LOSS_CAP)
    loss = float(np.mean(np.minimum(-picked, LOSS_CAP)))
    accuracy = float(np.mean(np.argmax(log_probs, axis=1) == answers))
    return round(loss, METRIC_DIGITS), round(accuracy, METRIC_DIGITS)
