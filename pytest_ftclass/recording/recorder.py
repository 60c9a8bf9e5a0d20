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
  (:class:`pytest_ftclass.recording.redaction.Redactor`);
- no prompt text unless asked for (``ft_cassette_prompts``): every prompt and
  message content in a request body is replaced by ``ftclass-sha256:<digest>``;
- no failed interaction: responses with a status of 400 or more, and answers
  that are not a JSON object with a ``choices`` list (cut-off or malformed
  bodies), are not recorded; answers of the Files and Batches endpoints are
  recorded, except a poll of a batch that is not finished yet (replay then
  finds the final state at the first poll, see :mod:`pytest_ftclass.asking.batch_api`);
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
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_ftclass.recording.cassette_files import CassetteFiles, corrupt_message, corruption_of
from pytest_ftclass.recording.digests import private_body
from pytest_ftclass.recording.names import cassette_path, incomplete_marker, legacy_cassette_path

if TYPE_CHECKING:
    from pytest_ftclass.recording.redaction import Redactor


REQUEST_HEADERS_REMOVED = (
    "authorization",
    "api-key",
    "openai-organization",
    "openai-project",
    "cookie",
)
#: The only response headers written to a cassette: what replay needs to read the body.
RESPONSE_HEADERS_KEPT = ("content-type", "content-encoding")
#: How requests match in a cassette of pages (:meth:`Recorder.use` with ``paged``).
PAGED_MATCH_ON = ("method", "path", "cursor", "body")


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
        from pytest_ftclass.recording.redaction import Redactor

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
        from pytest_ftclass.recording.job_traffic import cursor

        recorder.register_matcher("cursor", cursor)
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
            from pytest_ftclass.recording.batch_traffic import canonical_multipart

            canonical = canonical_multipart(request.body, content_type, keep_text=self.keep_prompts)
            if canonical is not None:
                request.body = private_body(canonical, keep_text=True, redactor=redactor)
                request.headers["content-type"] = "application/json"
                return request
        request.body = private_body(request.body, keep_text=self.keep_prompts, redactor=redactor)
        return request

    def filter_body(self, body: Any) -> Any:
        """A JSON request body as the cassette keeps it: canonical, texts digested, secrets out."""
        return private_body(body, keep_text=self.keep_prompts, redactor=self.redactor)

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
    def use(self, path: Path, *, paged: bool = False, whole: bool = False) -> Iterator[Any]:
        """Patch HTTP clients to record to / replay from the cassette at ``path``.

        ``paged``: requests also match on their list cursor (``after``,
        ``limit``), as the pages of a fine-tuning job's lists must.  ``whole``:
        nothing is written when the block raises (a fine-tuning job is recorded
        whole or not at all).  Raises :class:`BrokenCassette` when the file
        cannot be used.
        """
        from pytest_ftclass.recording.cassette_index import use_indexed_cassette

        if self._vcr is None:
            self._vcr = self._build_vcr()
        mode = self.mode_for(path)
        options: dict[str, Any] = {"match_on": PAGED_MATCH_ON} if paged else {}
        if whole:
            options["record_on_exception"] = False
        # An indexed cassette: lookups by request key, not vcrpy's scan of every interaction.
        with use_indexed_cassette(
            self._vcr, path, allow_playback_repeats=True, record_mode=mode, **options
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
    """Keep polls answered with an unfinished batch or fine-tuning job out of ``cassette``.

    ``GET /v1/batches/{id}`` is one request with changing answers; replayed with
    ``allow_playback_repeats``, a recorded in-progress answer would come back
    forever.  vcrpy's ``before_record_response`` does not see the request (and
    the creation's answer, which must be kept, is an unfinished batch too), so
    the rule wraps the cassette's ``append``, which sees both.  The same goes
    for ``GET /v1/fine_tuning/jobs/{id}``.
    """
    from pytest_ftclass.recording.batch_traffic import is_unfinished_poll
    from pytest_ftclass.recording.job_traffic import is_unfinished_job_poll

    append = cassette.append

    def append_unless_unfinished(request: Any, response: Any) -> None:
        if not (is_unfinished_poll(request, response) or is_unfinished_job_poll(request, response)):
            append(request, response)

    cassette.append = append_unless_unfinished


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
        return corrupt_message(path, *corrupt)
    exists = path.exists()
    how = "--ft-record-mode=new_episodes" if exists else "--ft-record-mode=once"
    state = "does not hold this request" if exists else "does not exist"
    return (
        f"cassette {path} {state} (record mode '{record_mode}'); "
        f"record it by running pytest with {how}"
    )
