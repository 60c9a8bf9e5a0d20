"""Where a cassette lives: a readable name plus a digest, so two sources never share one.

>>> safe_file_name("ft:babbage-002:acme::abc123")
'ft_babbage-002_acme__abc123'
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from pathlib import Path

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


#: The directory of the fine-tuning jobs' cassettes: no case source's cassettes are named so,
#: since theirs end in a digest (:func:`readable_name`).
JOBS_DIRECTORY = "fine-tuning-jobs"


def job_cassette_path(cassette_dir: Path, job_id: str) -> Path:
    """Where the traffic of fine-tuning job ``job_id`` (job, result file, checkpoints) is kept.

    >>> job_cassette_path(Path("c"), "ftjob-abc").as_posix()
    'c/fine-tuning-jobs/ftjob-abc-232d891d.json'
    """
    return cassette_dir / JOBS_DIRECTORY / (readable_name(job_id) + ".json")


#: Beside the cassettes: the labels' token ids (:class:`pytest_ftclass.cases.tokens.TokenMemo`).
TOKENS_FILE = ".ftclass-tokens"


def tokens_path(cassette_dir: Path) -> Path:
    """Where the token ids of the labels of the cassettes in ``cassette_dir`` are kept.

    A JSON file, not named ``*.json`` so that globs for cassettes pass it by.
    A source's cassettes live in a directory named after it, never starting
    with a dot (:func:`readable_name`), so no source can take this name.
    """
    return cassette_dir / TOKENS_FILE


def incomplete_marker(path: Path) -> Path:
    """The file that says the cassette at ``path`` is still being recorded."""
    return path.with_name(path.name + ".incomplete")
