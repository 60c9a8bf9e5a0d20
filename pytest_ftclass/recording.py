"""Cassettes: recording API traffic with vcrpy and replaying it with no key and no network.

One cassette per case source and model, at
``<cassette_dir>/<source as a file name>/<model as a file name>.json``.
What is written is safe to commit:

- no credential: request headers ``authorization``, ``api-key``,
  ``openai-organization``, ``openai-project``, ``cookie`` (and the SDK's
  ``x-stainless-*`` platform headers) and response headers ``set-cookie``,
  ``openai-organization``, ``openai-project``, ``x-request-id`` are removed;
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

Requests are matched on method, path and the digested body, so a cassette
recorded against one host (the local reference model on an ephemeral port, say)
replays anywhere.

>>> safe_file_name("ft:babbage-002:acme::abc123")
'ft_babbage-002_acme__abc123'
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .atomic import atomic_write_text
from .collector import collector_paused

DIGEST_PREFIX = "ftclass-sha256:"
_DIGEST_RE = re.compile(r"^ftclass-sha256:[0-9a-f]{64}$")

REQUEST_HEADERS_REMOVED = (
    "authorization",
    "api-key",
    "openai-organization",
    "openai-project",
    "cookie",
)
RESPONSE_HEADERS_REMOVED = (
    "set-cookie",
    "openai-organization",
    "openai-project",
    "x-request-id",
    "cf-ray",
    "openai-processing-ms",
    "date",
)
MAX_NAME = 100


def safe_file_name(name: str) -> str:
    """``name`` as one path component: no separators, no ``..``, at most 100 characters."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip(".") or "_"
    if len(cleaned) > MAX_NAME:
        digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:8]
        return f"{cleaned[: MAX_NAME - 9]}-{digest}"
    return cleaned


def cassette_path(cassette_dir: Path, source: str, model: str) -> Path:
    """Where the cassette of ``source`` asked of ``model`` lives."""
    return cassette_dir / safe_file_name(source) / (safe_file_name(model) + ".json")


def text_digest(text: str) -> str:
    if _DIGEST_RE.match(text):
        return text
    return DIGEST_PREFIX + hashlib.sha256(text.encode("utf-8")).hexdigest()


def private_body(body: Any, *, keep_text: bool = False) -> bytes | Any:
    """A request body in canonical JSON with prompt text replaced by digests.

    Bodies that are not JSON are returned unchanged.
    """
    if body is None:
        return body
    try:
        data = json.loads(body.decode("utf-8") if isinstance(body, bytes) else body)
    except (ValueError, UnicodeDecodeError, AttributeError, TypeError):
        return body
    if not keep_text and isinstance(data, dict):
        data = _digest_fields(data)
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


class AtomicFilesystemPersister:
    """vcrpy persister writing each cassette to a temporary file renamed over the old one."""

    @staticmethod
    def load_cassette(cassette_path: str | Path, serializer: Any) -> Any:
        from vcr.persisters.filesystem import FilesystemPersister

        return FilesystemPersister.load_cassette(cassette_path, serializer)

    @staticmethod
    def save_cassette(
        cassette_path: str | Path, cassette_dict: dict[str, Any], serializer: Any
    ) -> None:
        from vcr.serialize import serialize

        data = serialize(cassette_dict, serializer)
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
    """Opens cassettes with the project's record mode, matching and filters.

    >>> recorder = Recorder(Path("cassettes"), record_mode="none")
    >>> recorder.path_for("valid.cases.jsonl", "local").as_posix()
    'cassettes/valid.cases.jsonl/local.json'
    """

    def __init__(
        self, cassette_dir: Path, record_mode: str = "none", *, keep_prompts: bool = False
    ):
        self.cassette_dir = cassette_dir
        self.record_mode = record_mode
        self.keep_prompts = keep_prompts
        self._vcr: Any = None
        self._completing: set[Path] = set()

    @property
    def replay_only(self) -> bool:
        return self.record_mode == "none"

    def path_for(self, source: str, model: str) -> Path:
        return cassette_path(self.cassette_dir, source, model)

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
        recorder.register_persister(AtomicFilesystemPersister)
        return recorder

    def _before_record_request(self, request: Any) -> Any:
        for name in list(request.headers):
            if name.lower().startswith("x-stainless") or name.lower() in REQUEST_HEADERS_REMOVED:
                del request.headers[name]
        content_type = request.headers.get("content-type") or ""
        if content_type.lower().startswith("multipart/form-data"):
            from .batch_api import canonical_multipart

            canonical = canonical_multipart(request.body, content_type, keep_text=self.keep_prompts)
            if canonical is not None:
                request.body = canonical
                request.headers["content-type"] = "application/json"
                return request
        request.body = private_body(request.body, keep_text=self.keep_prompts)
        return request

    @staticmethod
    def _before_record_response(response: dict[str, Any]) -> dict[str, Any] | None:
        from .batch_api import is_batch_api_body

        if response.get("status", {}).get("code", 200) >= 400:
            return None
        body = response.get("body")
        if isinstance(body, dict) and not (
            is_answer_body(body.get("string")) or is_batch_api_body(body.get("string"))
        ):
            return None  # a broken answer is a failure too: the next recording asks again
        headers = response.get("headers") or {}
        for name in list(headers):
            if name.lower() in RESPONSE_HEADERS_REMOVED:
                del headers[name]
        return response

    @contextlib.contextmanager
    def use(self, path: Path) -> Iterator[Any]:
        """Patch HTTP clients to record to / replay from the cassette at ``path``."""
        with collector_paused():
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
        """
        if self.record_mode != "once" or path in self._completing:
            return
        marker = incomplete_marker(path)
        if not path.exists() or marker.exists():
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


def is_missing_from_cassette(error: BaseException) -> bool:
    """Whether ``error`` (or what caused it) is vcrpy refusing an unrecorded request."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if type(current).__name__ == "CannotOverwriteExistingCassetteException":
            return True
        current = current.__cause__ or current.__context__
    return False


def missing_message(path: Path, record_mode: str) -> str:
    """What to tell the user when a request is not in its cassette."""
    exists = path.exists()
    how = "--ft-record-mode=new_episodes" if exists else "--ft-record-mode=once"
    state = "does not hold this request" if exists else "does not exist"
    return (
        f"cassette {path} {state} (record mode '{record_mode}'); "
        f"record it by running pytest with {how}"
    )
