"""A vcrpy cassette that finds recorded requests through a dict, not a scan.

vcrpy answers every lookup (``can_play_response_for``, ``play_response``,
``in``) by running every matcher against every stored interaction, and its
``body`` matcher parses both JSON bodies on each comparison: replaying ``n``
requests from a cassette of ``n`` interactions costs ``O(n²)`` body parses,
which dominates a large replay.  :class:`IndexedCassette` keeps, next to
``data``, a dict from a *lookup key* (method, path and canonical body, for the
matchers among ``match_on`` it knows) to the positions of the interactions
with that key, kept up to date on :meth:`~vcr.cassette.Cassette.append`.  A
lookup hashes one key, then confirms the few candidates with the cassette's
other matchers (the key already holds the canonical body, so the body is not
parsed again); play counts, ``allow_playback_repeats``, record modes and
saving are vcrpy's own.

vcrpy also filters a request (a deep copy through every
``before_record_request`` filter) once for each question it asks about it:
whether it can be played, then playing it.  The cassette filters the request
it was last asked about once, and remembers its key.

vcrpy has no option naming the cassette class, so open it with
:func:`use_indexed_cassette` (it takes the settings of a ``vcr.VCR``)::

    import vcr
    from pytest_ftclass.recording.cassette_index import use_indexed_cassette

    recorder = vcr.VCR(serializer="json", match_on=("method", "path", "body"))
    with use_indexed_cassette(recorder, "cassettes/x.json", allow_playback_repeats=True) as c:
        ...  # HTTP through httpx / requests / urllib3 is recorded or replayed

One difference from a scan, on purpose: two JSON bodies that vcrpy calls equal
only because numbers compare equal across spellings (``1`` and ``1.0``) get
different keys, so such a request is not found.  The plugin's bodies are
canonical JSON written by one serializer, so this never happens there.

>>> from vcr.request import Request
>>> cassette = IndexedCassette("unused.json", match_on=_matchers("method", "path", "body"))
>>> json_type = {"Content-Type": "application/json"}
>>> post = Request("POST", "http://h/v1/completions", b'{"b": 1, "a": [2]}', json_type)
>>> cassette.append(post, {"status": {"code": 200}, "body": {"string": "{}"}})
>>> same = Request("POST", "http://other:9/v1/completions", b'{"a":[2],"b":1}', json_type)
>>> same in cassette, Request("GET", "http://h/v1/completions", None, {}) in cassette
(True, False)
"""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable, Iterator
from pathlib import Path
from typing import Any

from vcr import matchers
from vcr.cassette import Cassette, CassetteContextDecorator
from vcr.record_mode import RecordMode
from vcr.util import read_body

__all__ = ["IndexedCassette", "load_cassette", "lookup_key", "use_indexed_cassette"]


def _body_key(request: Any) -> Hashable:
    """The body as canonical JSON when it parses as JSON, else as it is."""
    body = read_body(request)
    if body is None or body == b"" or body == "":
        return None
    try:
        data = json.loads(body)
    except (ValueError, TypeError):
        return body if isinstance(body, (bytes, str)) else repr(body)
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


#: A key part for each vcrpy matcher the index understands: requests that the
#: matcher calls equal get equal parts (numbers spelt differently aside).
_KEY_PARTS: dict[Callable[..., Any], Callable[[Any], Hashable]] = {
    matchers.method: lambda r: r.method,
    matchers.path: lambda r: r.path or "/",  # an empty path is "/" (RFC 3986)
    matchers.scheme: lambda r: r.scheme,
    matchers.host: lambda r: r.host,
    matchers.port: lambda r: r.port,
    matchers.query: lambda r: tuple(sorted(r.query)),
    matchers.body: _body_key,
}


def _matchers(*names: str) -> list[Callable[..., Any]]:
    return [getattr(matchers, name) for name in names]


def lookup_key(request: Any, match_on: Any) -> tuple[Hashable, ...]:
    """The index key of an already filtered ``request`` for the matchers ``match_on``.

    Matchers the index does not know add nothing to the key; they are still
    applied when the candidates are confirmed.

    >>> from vcr.request import Request
    >>> request = Request("POST", "http://h/v1/x?a=1", b'{"k": 1}', {})
    >>> lookup_key(request, _matchers("method", "body"))
    ('POST', '{"k":1}')
    """
    return tuple(part(request) for matcher, part in _KEY_PARTS.items() if matcher in match_on)


class IndexedCassette(Cassette):
    """A ``vcr.cassette.Cassette`` whose lookups cost one dict access.

    The index maps :func:`lookup_key` of each stored (filtered) request to the
    positions in ``data`` holding it, in recording order.  It is rebuilt if
    ``data`` was changed behind the cassette's back (its length differs).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._index: dict[tuple[Hashable, ...], list[int]] = {}
        self._indexed = 0
        self._last: tuple[Any, Any, tuple[Hashable, ...] | None] | None = None
        #: Interactions of the file the filters refused to load: key → (number from 1, response).
        self._refused: dict[tuple[Hashable, ...], tuple[int, Any]] = {}
        self._loading: int | None = None
        super().__init__(*args, **kwargs)
        # vcrpy's filter chain, set by Cassette.__init__ (vcrpy ships no type information)
        self._filter_chain: Callable[[Any], Any] = self._before_record_request  # type: ignore[has-type]
        self._before_record_request = self._filter_once
        self._confirming = [m for m in self._match_on if m is not matchers.body]

    def _filter_once(self, request: Any) -> Any:
        """The filtered request, the same object while vcrpy asks about the same request."""
        last = self._last
        if last is not None and last[0] is request:
            return last[1]
        filtered = self._filter_chain(request)
        self._last = (request, filtered, None)
        return filtered

    def _key_of(self, filtered: Any) -> tuple[Hashable, ...]:
        last = self._last
        if last is not None and last[1] is filtered:
            if last[2] is None:
                self._last = (last[0], filtered, lookup_key(filtered, self._match_on))
            return self._last[2]  # type: ignore[index,return-value]
        return lookup_key(filtered, self._match_on)

    # -- keeping the index -------------------------------------------------
    def append(self, request: Any, response: Any) -> None:
        before = len(self.data)
        super().append(request, response)
        if self._loading is not None:
            self._loading += 1
            if len(self.data) == before:  # in the file, but refused by before_record_response
                filtered = self._before_record_request(request)
                if filtered:
                    key = lookup_key(filtered, self._match_on)
                    self._refused.setdefault(key, (self._loading, response))
        self._catch_up(before)

    def _load(self) -> None:
        self._loading = 0
        try:
            super()._load()
        finally:
            self._loading = None

    def corrupt_interaction(self, request: Any) -> tuple[int, Any] | None:
        """(number from 1, response) of a recorded interaction for ``request`` that was refused.

        An interaction in the file whose response the cassette's
        ``before_record_response`` rejects (an error status, say) is not
        replayed; this tells a request that matches one from a request never
        recorded.
        """
        if not self._refused:
            return None
        filtered = self._before_record_request(request)
        if not filtered:
            return None
        return self._refused.get(lookup_key(filtered, self._match_on))

    def _catch_up(self, before: int | None = None) -> None:
        if before is None or self._indexed != before:
            self._index.clear()
            self._indexed = 0
        for position in range(self._indexed, len(self.data)):
            key = lookup_key(self.data[position][0], self._match_on)
            self._index.setdefault(key, []).append(position)
        self._indexed = len(self.data)

    # -- lookups -----------------------------------------------------------
    def _candidates(self, filtered: Any) -> Iterator[tuple[int, Any]]:
        """(position, response) of every stored interaction matching a filtered request."""
        if self._indexed != len(self.data):
            self._catch_up()
        for position in self._index.get(self._key_of(filtered), ()):
            stored_request, response = self.data[position]
            if matchers.requests_match(filtered, stored_request, self._confirming):
                yield position, response

    def _responses(self, request: Any) -> Iterator[tuple[int, Any]]:
        """vcrpy's internal lookup (used by ``play_response``, ``in`` and ``responses_of``)."""
        filtered = self._before_record_request(request)
        if not filtered:
            return iter(())
        return self._candidates(filtered)

    def _playable(self, filtered: Any) -> bool:
        return any(
            self.play_counts[position] == 0 or self.allow_playback_repeats
            for position, _ in self._candidates(filtered)
        )

    def can_play_response_for(self, request: Any) -> Any:
        """As vcrpy's, filtering the request once instead of twice."""
        filtered = self._before_record_request(request)
        return (
            filtered
            and self._playable(filtered)
            and self.record_mode != RecordMode.ALL
            and (self.rewound or self.allow_playback_repeats)
        )

    # -- saving ------------------------------------------------------------
    def _rerecorded_interactions(self) -> list[tuple[Any, Any]]:
        """What ``all`` mode saves, as vcrpy decides it, without comparing every pair.

        A loaded interaction is kept unless one recorded now matches it; vcrpy
        compares each loaded request with each recorded one (a large
        re-recording is quadratic), this looks the recorded ones up by key.
        """
        loaded = self.data[: self._loaded_count]
        recorded = self.data[self._loaded_count :]
        if self.drop_unused_requests:
            return recorded
        replaced = self._keyed([request for request, _ in recorded])
        kept = [
            (old_request, old_response)
            for old_request, old_response in loaded
            if not self._matches_any(old_request, replaced, request_first=False)
        ]
        return kept + recorded

    def _new_interactions(self) -> list[tuple[Any, Any]]:
        """Interactions that match none loaded from the file (``drop_unused_requests``)."""
        old = self._keyed([request for request, _ in self._old_interactions])
        return [
            (request, response)
            for request, response in self.data
            if not self._matches_any(request, old, request_first=True)
        ]

    def _keyed(self, requests: list[Any]) -> dict[tuple[Hashable, ...], list[Any]]:
        keyed: dict[tuple[Hashable, ...], list[Any]] = {}
        for request in requests:
            keyed.setdefault(lookup_key(request, self._match_on), []).append(request)
        return keyed

    def _matches_any(
        self, request: Any, keyed: dict[tuple[Hashable, ...], list[Any]], *, request_first: bool
    ) -> bool:
        """Whether ``request`` matches one of ``keyed`` (in vcrpy's order of arguments)."""
        for other in keyed.get(lookup_key(request, self._match_on), ()):
            pair = (request, other) if request_first else (other, request)
            if matchers.requests_match(*pair, self._confirming):
                return True
        return False


def use_indexed_cassette(recorder: Any, path: str | Path, **kwargs: Any) -> Any:
    """``recorder.use_cassette(path, **kwargs)`` opening an :class:`IndexedCassette`.

    ``recorder`` is a ``vcr.VCR``; its settings (serializer, persister,
    matchers, filters, record mode) are merged with ``kwargs`` exactly as
    ``use_cassette`` merges them.  Returns the context manager.
    """
    config = recorder.get_merged_config(path=str(path), **kwargs)
    return CassetteContextDecorator.from_args(IndexedCassette, **config)


#: Settings of vcrpy's ``with`` block, not of the cassette it opens.
_CONTEXT_ONLY = ("path_transformer", "func_path_generator", "record_on_exception")


def load_cassette(
    recorder: Any, path: str | Path, cassette_class: type[Any] = IndexedCassette, **kwargs: Any
) -> Any:
    """The cassette at ``path`` loaded with ``recorder``'s settings, patching nothing.

    For asking a cassette directly what it would play back and what it would
    save, as the tests and benchmarks do, for this class or vcrpy's own
    (``cassette_class=vcr.cassette.Cassette``).  ``kwargs`` are merged as in
    :func:`use_indexed_cassette`.
    """
    config = recorder.get_merged_config(path=str(path), **kwargs)
    for name in _CONTEXT_ONLY:
        config.pop(name, None)
    return cassette_class.load(**config)
