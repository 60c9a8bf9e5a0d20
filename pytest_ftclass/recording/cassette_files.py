"""Cassette files read and written safely: checked on load, written whole, redacted.

A cassette that cannot be read, or lacks the shape vcrpy writes, is a
:class:`BrokenCassette` naming the file and what is wrong; an interaction
whose response is not an answer worth replaying is *corrupt*
(:func:`corruption_of`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_ftclass.recording.atomic import atomic_write_text

if TYPE_CHECKING:
    from pytest_ftclass.recording.redaction import Redactor
    from pytest_ftclass.results import Prediction


class BrokenCassette(Exception):
    """A cassette file that cannot be used: ``path`` and what is wrong with it (``problem``).

    >>> str(BrokenCassette(Path("c/x.json"), "not valid JSON at byte 812"))
    'cassette c/x.json cannot be used: not valid JSON at byte 812'
    """

    def __init__(self, path: Path, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"cassette {path} cannot be used: {problem}")

    def predictions(self, case_ids: Iterable[str], *, told: str) -> dict[str, Prediction]:
        """An error for each of ``case_ids``: the whole story for case ``told``, a pointer else.

        So a broken cassette is explained once, however many cases it holds.
        """
        from pytest_ftclass.results import Prediction

        full = (
            f"{self}; fix the file, or delete it and record it again (pytest --ft-record-mode=once)"
        )
        pointer = f"cassette {self.path} cannot be used (why: see case {told!r})"
        return {
            case_id: Prediction.failed(full if case_id == told else pointer) for case_id in case_ids
        }


def read_cassette(path: Path) -> dict[str, Any]:
    """The cassette at ``path`` as a dict, checked: raises :class:`BrokenCassette` saying why not.

    The file must be UTF-8 JSON, an object whose ``interactions`` is a list of
    objects each with a ``request`` (``method``, ``uri``, ``body``,
    ``headers``) and a ``response`` (``status`` with its ``code``,
    ``headers``, ``body``).  A missing file raises ``FileNotFoundError``.

    >>> import tempfile
    >>> broken = Path(tempfile.mkdtemp()) / "x.json"
    >>> _ = broken.write_text('{"interactions": [')
    >>> read_cassette(broken)
    Traceback (most recent call last):
    ...
    pytest_ftclass.recording.cassette_files.BrokenCassette: ... not valid JSON at byte 18 (...)
    """
    if path.is_dir():
        raise BrokenCassette(path, "a directory is in its place")
    if not path.exists():
        raise FileNotFoundError(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise BrokenCassette(path, f"it cannot be read ({err.strerror or err})") from None
    if not raw.strip():
        raise BrokenCassette(path, "the file is empty")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise BrokenCassette(path, f"not UTF-8 at byte {err.start}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        at = len(text[: err.pos].encode("utf-8"))
        raise BrokenCassette(path, f"not valid JSON at byte {at} ({err.msg})") from None
    except (ValueError, RecursionError) as err:
        raise BrokenCassette(path, f"not valid JSON ({err})") from None
    interactions = data.get("interactions") if isinstance(data, dict) else None
    if not isinstance(interactions, list):
        found = "a JSON object" if isinstance(data, dict) else f"JSON {type(data).__name__}"
        raise BrokenCassette(path, f"no interactions list ({found} without one)")
    for number, interaction in enumerate(interactions, start=1):
        problem = _interaction_problem(interaction)
        if problem is not None:
            raise BrokenCassette(path, f"interaction {number} {problem}")
    return data


def _interaction_problem(interaction: Any) -> str | None:
    """What keeps a cassette's interaction from being replayed at all, or ``None``."""
    if not isinstance(interaction, dict):
        return "is not a JSON object"
    request, response = interaction.get("request"), interaction.get("response")
    if not isinstance(request, dict):
        return "has no request"
    if not isinstance(response, dict):
        return "has no response"
    fields = ("method", "uri", "body", "headers")
    for name in fields:
        if name not in request:
            return f"has a request without {name}"
    for name in request:
        if name not in fields:
            return f"has a request with an unknown field {name!r}"
    if not isinstance(request["method"], str) or not isinstance(request["uri"], str):
        return "has a request whose method or uri is not a string"
    if not isinstance(request["headers"], dict):
        return "has a request whose headers are not an object"
    if not isinstance(request["body"], (str, type(None))):
        return "has a request whose body is not a string"
    status = response.get("status")
    if not isinstance(status, dict) or type(status.get("code")) is not int:
        return "has a response without a status code"
    headers = response.get("headers")
    if not isinstance(headers, dict):
        return "has a response without headers"
    values = headers.values()
    if not all(isinstance(v, list) and all(isinstance(i, str) for i in v) for v in values):
        return "has a response whose header values are not lists of strings"
    body = response.get("body")
    if not isinstance(body, dict) or "string" not in body:
        return "has a response without a body"
    if not isinstance(body["string"], (str, type(None))):
        return "has a response whose body is not a string"
    return None


def corruption_of(response: Any) -> str | None:
    """Why a recorded response is no answer to replay (an error status, no answer in its body).

    >>> corruption_of({"status": {"code": 500}, "body": {"string": "{}"}})
    'recorded with status 500'
    >>> corruption_of({"status": {"code": 200}, "body": {"string": None}})
    'its body is not an answer'
    """
    from pytest_ftclass.recording.batch_traffic import is_batch_api_body
    from pytest_ftclass.recording.job_traffic import is_fine_tuning_body

    code = response.get("status", {}).get("code", 200) if isinstance(response, dict) else None
    if not isinstance(code, int):
        return "it has no status code"
    if code >= 400:
        return f"recorded with status {code}"
    body = response.get("body")
    string = body.get("string") if isinstance(body, dict) else None
    if not (is_answer_body(string) or is_batch_api_body(string) or is_fine_tuning_body(string)):
        return "its body is not an answer"
    return None


def corrupt_message(path: Path, number: int, response: Any) -> str:
    """What to say of interaction ``number`` of the cassette at ``path``: no answer to replay."""
    return (
        f"cassette {path}: corrupt interaction {number} ({corruption_of(response)}); "
        "record it again by running pytest with --ft-record-mode=new_episodes"
    )


class CassetteFiles:
    """vcrpy persister: reads a checked cassette (or its older name), writes atomically.

    ``legacy`` maps the path of a cassette to the path earlier versions gave
    it, read when the cassette itself does not exist; writing always goes to
    the cassette's own path.  ``redactor`` replaces the run's secret values
    once more in the text written (the recorder's filters did the rest).
    """

    def __init__(self, redactor: Redactor | None = None) -> None:
        self.legacy: dict[Path, Path] = {}  # a cassette's path → its older name
        self.redactor = redactor

    def source_of(self, path: Path) -> Path:
        """The file the cassette at ``path`` is read from: itself, or its older name."""
        legacy = self.legacy.get(path)
        if legacy is not None and not path.exists() and legacy.exists():
            return legacy
        return path

    def load_cassette(self, cassette_path: str | Path, serializer: Any) -> Any:
        from vcr.persisters.filesystem import CassetteNotFoundError
        from vcr.request import Request
        from vcr.serializers import compat

        try:
            data = read_cassette(self.source_of(Path(cassette_path)))
        except FileNotFoundError:
            raise CassetteNotFoundError() from None
        interactions = data["interactions"]
        requests = [Request._from_dict(i["request"]) for i in interactions]
        responses = [compat.convert_to_bytes(i["response"]) for i in interactions]
        if data.get("metadata"):
            return requests, responses, data["metadata"]
        return requests, responses

    def save_cassette(
        self, cassette_path: str | Path, cassette_dict: dict[str, Any], serializer: Any
    ) -> None:
        from vcr.serialize import serialize

        data = serialize(cassette_dict, serializer)
        if self.redactor is not None:
            data = self.redactor.values(data)
        atomic_write_text(Path(cassette_path), data)


def is_answer_body(body: Any) -> bool:
    """Whether a response body is worth recording: a JSON object with a ``choices`` list.

    A 200 whose body is cut off, not JSON, or without ``choices`` is a failed
    interaction, kept out of the cassette like a 429 or a 500 (replaying it would
    freeze a passing glitch into every later run).

    >>> [is_answer_body(b) for b in (b'{"choices": []}', b'{"choices": [{"te', b"{}")]
    [True, False, False]
    """
    from pytest_ftclass.recording.batch_traffic import json_of

    data = json_of(body)
    return isinstance(data, dict) and isinstance(data.get("choices"), list)
