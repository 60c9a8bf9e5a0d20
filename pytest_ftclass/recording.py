"""Cassettes: recording API traffic with vcrpy and replaying it with no key and no network.

One cassette per case source and model, at
``<cassette_dir>/<source slug>-<digest>/<model slug>-<digest>.json``: a
readable name (ASCII, ``_`` for anything else) and a short digest of the exact
source path (relative to the rootdir) and model id, so that ``a b.jsonl`` and
``a_b.jsonl``, or ``data/x`` and ``data_x``, never share a cassette.  A
cassette recorded under the older name (the slug alone) is read when the new
one is absent; recording writes the new one.  What is written is safe to
commit:

- no credential: request headers ``authorization``, ``api-key``,
  ``openai-organization``, ``openai-project``, ``cookie`` (and the SDK's
  ``x-stainless-*`` platform headers) are removed; of the response headers only
  those replay needs are kept (:data:`RESPONSE_HEADERS_KEPT`); and every
  secret of the run, bearer token, URL userinfo or credential query parameter
  left in a URI, header or body is replaced by ``REDACTED``
  (:class:`pytest_ftclass.redaction.Redactor`);
- no prompt text unless asked for (``ft_cassette_prompts``): every prompt and
  message content in a request body is replaced by ``ftclass-sha256:<digest>``;
- no failed interaction: responses with a status of 400 or more, and answers
  that are not a JSON object with a ``choices`` list (cut-off or malformed
  bodies), are not recorded; answers of the Files and Batches endpoints are
  recorded, except a poll of a batch that is not finished yet (replay then
  finds the final state at the first poll, see :mod:`pytest_ftclass.batch_api`);
- an upload (``multipart/form-data``: the Batch API's input file) is recorded
  as canonical JSON with the file replaced by its digest, so it holds no
  prompt text and matches whatever boundary the client drew;
- never a half-written file: cassettes are written to a temporary file and
  renamed over the old one.

A cassette that cannot be read (not JSON, no ``interactions`` list, an
interaction without its request or response, empty, a directory) raises
:class:`BrokenCassette` naming the file and the problem; an interaction
recorded with an error status or a body that is not an answer is reported as
*corrupt* when a request needs it (:func:`missing_message`).

Requests are matched on method, path and the digested body, so a cassette
recorded against one host (the local reference model on an ephemeral port, say)
replays anywhere.

>>> cassette_path(Path("c"), "a b.cases.jsonl", "ft:babbage-002:acme::abc123").as_posix()
'c/a_b.cases.jsonl-a7a5d35a/ft_babbage-002_acme_abc123-c6d28c3d.json'
>>> legacy_cassette_path(Path("c"), "a b.cases.jsonl", "ft:babbage-002:acme::abc123").as_posix()
'c/a_b.cases.jsonl/ft_babbage-002_acme__abc123.json'
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import unicodedata
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .atomic import atomic_write_text

if TYPE_CHECKING:
    from .redaction import Redactor
    from .results import Prediction

DIGEST_PREFIX = "ftclass-sha256:"
_DIGEST_RE = re.compile(r"^ftclass-sha256:[0-9a-f]{64}$")

REQUEST_HEADERS_REMOVED = (
    "authorization",
    "api-key",
    "openai-organization",
    "openai-project",
    "cookie",
)
#: The only response headers written to a cassette: what replay needs to read the body.
RESPONSE_HEADERS_KEPT = ("content-type", "content-encoding")
MAX_NAME = 100
#: Hex digits of the digest in a cassette's directory and file name.
NAME_DIGEST = 8


def safe_file_name(name: str) -> str:
    """``name`` as one path component: no separators, no ``..``, at most 100 characters.

    The cassette names of earlier versions (see :func:`legacy_cassette_path`).
    """
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip(".") or "_"
    if len(cleaned) > MAX_NAME:
        digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:8]
        return f"{cleaned[: MAX_NAME - 9]}-{digest}"
    return cleaned


def readable_name(name: str) -> str:
    """``name`` as a short, readable path component followed by a digest of ``name`` itself.

    Accents are dropped (``é`` → ``e``), every run of other characters becomes
    ``_``; the digest tells apart names that read the same.

    >>> readable_name("data/été.cases.jsonl"), readable_name("data_ete.cases.jsonl")
    ('data_ete.cases.jsonl-41b6a829', 'data_ete.cases.jsonl-1bf5a93f')
    """
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", ascii_name).strip("._-")[:MAX_NAME] or "_"
    return f"{slug}-{hashlib.sha256(name.encode('utf-8')).hexdigest()[:NAME_DIGEST]}"


def cassette_path(cassette_dir: Path, source: str, model: str) -> Path:
    """Where the cassette of ``source`` asked of ``model`` is written."""
    return cassette_dir / readable_name(source) / (readable_name(model) + ".json")


def legacy_cassette_path(cassette_dir: Path, source: str, model: str) -> Path:
    """Where earlier versions wrote it: read when :func:`cassette_path` does not exist."""
    return cassette_dir / safe_file_name(source) / (safe_file_name(model) + ".json")


def text_digest(text: str) -> str:
    if _DIGEST_RE.match(text):
        return text
    return DIGEST_PREFIX + hashlib.sha256(text.encode("utf-8")).hexdigest()


def private_body(
    body: Any, *, keep_text: bool = False, redactor: Redactor | None = None
) -> bytes | Any:
    """A request body in canonical JSON with prompt text replaced by digests.

    With a ``redactor``, every secret left in it is replaced too (in the
    parsed JSON, so the body stays valid).  Bodies that are not JSON are
    returned unchanged, or as redacted bytes.
    """
    if body is None:
        return body
    try:
        text = body.decode("utf-8") if isinstance(body, bytes) else body
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError, AttributeError, TypeError):
        if redactor is not None and isinstance(body, (bytes, str)):
            return redactor.bytes(body if isinstance(body, bytes) else body.encode("utf-8"))
        return body
    if not keep_text and isinstance(data, dict):
        data = _digest_fields(data)
    if redactor is not None and redactor.might_hold(text):
        data = redactor.data(data)
    return json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode(
        "utf-8"
    )


def _digest_fields(data: dict[str, Any]) -> dict[str, Any]:
    data = dict(data)
    prompt = data.get("prompt")
    if isinstance(prompt, str):
        data["prompt"] = text_digest(prompt)
    elif isinstance(prompt, list):
        data["prompt"] = [text_digest(p) if isinstance(p, str) else p for p in prompt]
    messages = data.get("messages")
    if isinstance(messages, list):
        data["messages"] = [_digest_message(m) for m in messages]
    if isinstance(data.get("input"), str):
        data["input"] = text_digest(data["input"])
    return data


def _digest_message(message: Any) -> Any:
    if not isinstance(message, dict):
        return message
    message = dict(message)
    content = message.get("content")
    if isinstance(content, str):
        message["content"] = text_digest(content)
    elif isinstance(content, list):
        message["content"] = [
            {**part, "text": text_digest(part["text"])}
            if isinstance(part, dict) and isinstance(part.get("text"), str)
            else part
            for part in content
        ]
    return message


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
        from .results import Prediction

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
    pytest_ftclass.recording.BrokenCassette: cassette ... not valid JSON at byte 18 (...)
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
    from .batch_api import is_batch_api_body

    code = response.get("status", {}).get("code", 200) if isinstance(response, dict) else None
    if not isinstance(code, int):
        return "it has no status code"
    if code >= 400:
        return f"recorded with status {code}"
    body = response.get("body")
    string = body.get("string") if isinstance(body, dict) else None
    if not (is_answer_body(string) or is_batch_api_body(string)):
        return "its body is not an answer"
    return None


class CassetteFiles:
    """vcrpy persister: reads a checked cassette (or its older name), writes atomically.

    ``legacy`` maps the path of a cassette to the path earlier versions gave
    it, read when the cassette itself does not exist; writing always goes to
    the cassette's own path.  ``redactor`` replaces the run's secret values
    once more in the text written (the recorder's filters did the rest).
    """

    def __init__(
        self, legacy: dict[Path, Path] | None = None, redactor: Redactor | None = None
    ) -> None:
        self.legacy = legacy if legacy is not None else {}
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


#: Beside the cassettes: the token ids of the labels (see :class:`pytest_ftclass.tokens.TokenMemo`).
TOKENS_FILE = ".ftclass-tokens"


def tokens_path(cassette_dir: Path) -> Path:
    """Where the token ids of the labels of the cassettes in ``cassette_dir`` are kept.

    A JSON file, not named ``*.json`` so that globs for cassettes pass it by.
    A source's cassettes live in a directory named after it, never starting
    with a dot (:func:`safe_file_name`), so no source can take this name.
    """
    return cassette_dir / TOKENS_FILE


def incomplete_marker(path: Path) -> Path:
    """The file that says the cassette at ``path`` is still being recorded."""
    return path.with_name(path.name + ".incomplete")


class Recorder:
    """Opens cassettes with the project's record mode, matching, filters and redaction.

    >>> recorder = Recorder(Path("cassettes"), record_mode="none")
    >>> recorder.path_for("valid.cases.jsonl", "local").as_posix()
    'cassettes/valid.cases.jsonl-2b02c6f4/local-25bf8e1a.json'
    """

    def __init__(
        self,
        cassette_dir: Path,
        record_mode: str = "none",
        *,
        keep_prompts: bool = False,
        redactor: Redactor | None = None,
    ):
        from .redaction import Redactor

        self.cassette_dir = cassette_dir
        self.record_mode = record_mode
        self.keep_prompts = keep_prompts
        self.redactor = redactor if redactor is not None else Redactor()
        self.files = CassetteFiles(redactor=self.redactor)
        self._vcr: Any = None
        self._completing: set[Path] = set()

    @property
    def replay_only(self) -> bool:
        return self.record_mode == "none"

    def path_for(self, source: str, model: str) -> Path:
        """The cassette of ``source`` and ``model`` (read from its older name until written)."""
        path = cassette_path(self.cassette_dir, source, model)
        self.files.legacy[path] = legacy_cassette_path(self.cassette_dir, source, model)
        return path

    def source_of(self, path: Path) -> Path:
        """The file the cassette at ``path`` is read from: itself, or its older name."""
        return self.files.source_of(path)

    def _build_vcr(self) -> Any:
        import vcr

        recorder = vcr.VCR(
            serializer="json",
            record_mode=self.record_mode,
            match_on=("method", "path", "body"),
            filter_headers=[*REQUEST_HEADERS_REMOVED],
            before_record_request=self._before_record_request,
            before_record_response=self._before_record_response,
            decode_compressed_response=True,
        )
        recorder.register_persister(self.files)
        return recorder

    def _before_record_request(self, request: Any) -> Any:
        redactor = self.redactor
        for name in list(request.headers):
            if name.lower().startswith("x-stainless") or name.lower() in REQUEST_HEADERS_REMOVED:
                del request.headers[name]
            else:
                request.headers[name] = redactor.data(request.headers[name])
        request.uri = redactor.text(request.uri)
        content_type = request.headers.get("content-type") or ""
        if content_type.lower().startswith("multipart/form-data"):
            from .batch_api import canonical_multipart

            canonical = canonical_multipart(request.body, content_type, keep_text=self.keep_prompts)
            if canonical is not None:
                request.body = private_body(canonical, keep_text=True, redactor=redactor)
                request.headers["content-type"] = "application/json"
                return request
        request.body = private_body(request.body, keep_text=self.keep_prompts, redactor=redactor)
        return request

    def _before_record_response(self, response: dict[str, Any]) -> dict[str, Any] | None:
        """A response as it is written: answers only, allowed headers only, secrets replaced."""
        if corruption_of(response) is not None:
            return None  # a failure: the next recording asks again
        redactor = self.redactor
        headers = response.get("headers") or {}
        response["headers"] = {
            name: redactor.data(value)
            for name, value in headers.items()
            if name.lower() in RESPONSE_HEADERS_KEPT
        }
        body = response["body"]
        if isinstance(body.get("string"), (bytes, str)):
            body["string"] = redactor.body(body["string"])
        return response

    @contextlib.contextmanager
    def use(self, path: Path) -> Iterator[Any]:
        """Patch HTTP clients to record to / replay from the cassette at ``path``.

        Raises :class:`BrokenCassette` when the file cannot be used.
        """
        from .cassette_index import use_indexed_cassette

        if self._vcr is None:
            self._vcr = self._build_vcr()
        mode = self.mode_for(path)
        # An indexed cassette: lookups by request key, not vcrpy's scan of every interaction.
        with use_indexed_cassette(
            self._vcr, path, allow_playback_repeats=True, record_mode=mode
        ) as cassette:
            _record_finished_polls_only(cassette)
            yield cassette

    def mode_for(self, path: Path) -> str:
        """The record mode for ``path`` (see :meth:`begin` for ``once``)."""
        if self.record_mode == "once" and path in self._completing:
            return "new_episodes"
        return self.record_mode

    def begin(self, path: Path) -> None:
        """Start a group of windows recorded into ``path``.

        In ``once`` mode a cassette is recorded by the run that finds it missing,
        window by window; an *incomplete* marker beside it (``.incomplete``) stays
        until its last window is in, so a run interrupted by Ctrl-C or SIGKILL is
        completed by the next run in ``once`` mode instead of being taken as done.
        A cassette read from its older name counts as there, and its marker too.
        """
        if self.record_mode != "once" or path in self._completing:
            return
        source = self.source_of(path)
        if not source.exists() or incomplete_marker(source).exists():
            marker = incomplete_marker(path)
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.touch()
            self._completing.add(path)

    def finish(self, path: Path) -> None:
        """Every case of ``path``'s group has its answer: the cassette is complete.

        Also called by an xdist worker that did not record the cassette itself but
        read the others' answers; a group with failed cases stays incomplete, so the
        next ``once`` run asks for those again.
        """
        self._completing.discard(path)
        if self.record_mode == "once":
            incomplete_marker(path).unlink(missing_ok=True)

    def can_replay(self, cassette: Any, url: str, body: dict[str, Any]) -> bool:
        """Whether ``cassette`` holds an answer to a POST of ``body`` to ``url``."""
        from vcr.request import Request

        payload = json.dumps(body).encode("utf-8")
        return bool(cassette.can_play_response_for(Request("POST", url, payload, {})))


def _record_finished_polls_only(cassette: Any) -> None:
    """Keep polls answered with an unfinished batch out of ``cassette``.

    ``GET /v1/batches/{id}`` is one request with changing answers; replayed with
    ``allow_playback_repeats``, a recorded in-progress answer would come back
    forever.  vcrpy's ``before_record_response`` does not see the request (and
    the creation's answer, which must be kept, is an unfinished batch too), so
    the rule wraps the cassette's ``append``, which sees both.
    """
    from .batch_api import is_unfinished_poll

    append = cassette.append

    def append_unless_unfinished(request: Any, response: Any) -> None:
        if not is_unfinished_poll(request, response):
            append(request, response)

    cassette.append = append_unless_unfinished


def is_answer_body(body: Any) -> bool:
    """Whether a response body is worth recording: a JSON object with a ``choices`` list.

    A 200 whose body is cut off, not JSON, or without ``choices`` is a failed
    interaction, kept out of the cassette like a 429 or a 500 (replaying it would
    freeze a passing glitch into every later run).

    >>> [is_answer_body(b) for b in (b'{"choices": []}', b'{"choices": [{"te', b"{}")]
    [True, False, False]
    """
    if isinstance(body, bytes):
        try:
            body = body.decode("utf-8")
        except UnicodeDecodeError:
            return False
    if not isinstance(body, str):
        return False
    try:
        data = json.loads(body)
    except ValueError:
        return False
    return isinstance(data, dict) and isinstance(data.get("choices"), list)


def missing_from_cassette(error: BaseException) -> Any:
    """vcrpy's refusal of an unrecorded request in ``error`` or what caused it, else ``None``."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if type(current).__name__ == "CannotOverwriteExistingCassetteException":
            return current
        current = current.__cause__ or current.__context__
    return None


def is_missing_from_cassette(error: BaseException) -> bool:
    """Whether ``error`` (or what caused it) is vcrpy refusing an unrecorded request."""
    return missing_from_cassette(error) is not None


def missing_message(path: Path, record_mode: str, error: BaseException | None = None) -> str:
    """What to tell the user when a request is not in its cassette.

    ``path`` is the file the cassette was read from.  When ``error`` (vcrpy's
    refusal) shows that the request was recorded, but with an error status or
    a body that is no answer, the message says which interaction is corrupt.
    """
    refusal = missing_from_cassette(error) if error is not None else None
    corrupt = None
    if refusal is not None:
        finder = getattr(refusal.cassette, "corrupt_interaction", None)
        request = getattr(refusal, "failed_request", None)
        if finder is not None and request is not None:
            corrupt = finder(request)
    if corrupt is not None:
        number, response = corrupt
        return (
            f"cassette {path}: corrupt interaction {number} ({corruption_of(response)}); "
            "record it again by running pytest with --ft-record-mode=new_episodes"
        )
    exists = path.exists()
    how = "--ft-record-mode=new_episodes" if exists else "--ft-record-mode=once"
    state = "does not hold this request" if exists else "does not exist"
    return (
        f"cassette {path} {state} (record mode '{record_mode}'); "
        f"record it by running pytest with {how}"
    )
