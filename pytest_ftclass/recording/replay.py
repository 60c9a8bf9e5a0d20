"""A cassette read for replay without vcrpy or the HTTP stack: answers looked up by request.

The matching rules are those the recording path gives vcrpy (method, path and
body; see :mod:`pytest_ftclass.recording.cassette_index`): a request's body goes
through the recorder's own filter (prompt text as digests, secrets redacted)
and is compared as canonical JSON with the recorded bodies, which went through
the same filter.  An interaction the recorder would refuse to replay (an
error status, a body that is no answer) is *corrupt*: a request that matches
only such an interaction says so, naming its number.  Like vcrpy with
``allow_playback_repeats``, the first recorded answer to a request answers it
every time.

>>> import json, pathlib, tempfile
>>> from pytest_ftclass.recording.recorder import Recorder
>>> body = {"model": "m", "prompt": ["ftclass-sha256:" + "0" * 64]}
>>> answer = {"choices": [{"index": 0, "text": " sport"}]}
>>> interaction = {
...     "request": {"method": "POST", "uri": "http://127.0.0.1:9/v1/completions",
...                 "body": json.dumps(body), "headers": {}},
...     "response": {"status": {"code": 200, "message": "OK"}, "headers": {},
...                  "body": {"string": json.dumps(answer)}}}
>>> path = pathlib.Path(tempfile.mkdtemp()) / "c.json"
>>> _ = path.write_text(json.dumps({"interactions": [interaction], "version": 1}))
>>> replay = CassetteReplay.read(Recorder(path.parent), path)
>>> json.loads(replay.answer("https://api.example/v1/completions", body))["choices"][0]["text"]
' sport'
"""

from __future__ import annotations

import json
from collections.abc import Hashable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pytest_ftclass.recording.cassette_files import corrupt_message, corruption_of, read_cassette
from pytest_ftclass.recording.job_traffic import cursor_of

if TYPE_CHECKING:
    from pytest_ftclass.recording.recorder import Recorder


class NotRecorded(LookupError):
    """The cassette holds no answer to the request; the message says how to record it."""


class CassetteReplay:
    """The answers of one cassette file, by request key."""

    def __init__(
        self, recorder: Recorder, path: Path, source: Path, *, paged: bool = False
    ) -> None:
        self.recorder = recorder
        self.path = path  # the cassette's name
        self.source = source  # the file it is read from (its older name, perhaps)
        #: Requests also match on their list cursor (as ``Recorder.use(path, paged=True)``).
        self.paged = paged
        self._answers: dict[tuple[Hashable, ...], str] = {}
        self._corrupt: dict[tuple[Hashable, ...], tuple[int, Any]] = {}

    @classmethod
    def read(cls, recorder: Recorder, path: Path, *, paged: bool = False) -> CassetteReplay:
        """The cassette at ``path`` (or its older name); empty when there is none.

        ``paged``: the cassette was recorded with ``Recorder.use(path, paged=True)``.
        Raises :class:`~pytest_ftclass.recording.cassette_files.BrokenCassette`
        when the file cannot be used.
        """
        source = recorder.source_of(path)
        replay = cls(recorder, path, source, paged=paged)
        try:
            data = read_cassette(source)
        except FileNotFoundError:
            return replay
        for number, interaction in enumerate(data["interactions"], start=1):
            replay._add(number, interaction["request"], interaction["response"])
        return replay

    def _add(self, number: int, request: dict[str, Any], response: dict[str, Any]) -> None:
        body = request.get("body")
        if isinstance(body, str):
            body = body.encode("utf-8")
        key = self._key(str(request.get("method", "")), str(request.get("uri", "")), body)
        if corruption_of(response) is not None:
            self._corrupt.setdefault(key, (number, response))
            return
        string = response["body"]["string"]
        if isinstance(string, bytes):
            string = string.decode("utf-8", errors="replace")
        self._answers.setdefault(key, self.recorder.redactor.body(string))

    def _key(self, method: str, uri: str, body: Any) -> tuple[Hashable, ...]:
        filtered = self.recorder.filter_body(body)  # canonical JSON already, as the index keys it
        key = (method.upper(), urlsplit(uri).path or "/", filtered or None)
        return (*key, cursor_of(uri)) if self.paged else key

    def holds(self, url: str, request: dict[str, Any]) -> bool:
        """Whether a POST of ``request`` to ``url`` has an answer here."""
        return self._request_key(url, request) in self._answers

    def answer(self, url: str, request: dict[str, Any]) -> str:
        """The recorded answer's body to a POST of ``request`` to ``url``.

        Raises :class:`NotRecorded` with what to tell the user when there is none.
        """
        return self._answer(self._request_key(url, request))

    def get(self, url: str) -> str:
        """The recorded answer's body to a GET of ``url`` (its query says which page).

        Raises :class:`NotRecorded` with what to tell the user when there is none.
        """
        return self._answer(self._key("GET", url, None))

    def _answer(self, key: tuple[Hashable, ...]) -> str:
        found = self._answers.get(key)
        if found is not None:
            return found
        corrupt = self._corrupt.get(key)
        if corrupt is not None:
            raise NotRecorded(corrupt_message(self.source, *corrupt))
        from pytest_ftclass.recording.recorder import missing_message

        raise NotRecorded(missing_message(self.source, self.recorder.record_mode))

    def _request_key(self, url: str, request: dict[str, Any]) -> tuple[Hashable, ...]:
        return self._key("POST", url, json.dumps(request).encode("utf-8"))
