"""Where prompts and completions end: the separator and the stop sequence, inferred.

The separator is the longest suffix that every prompt has, or at least 80 % of
them when it is longer than one character or whitespace (so ``.`` ending most
sentences is no separator), and that occurs inside no prompt (so the closing
``"`` of quoted reviews is no separator either: :func:`choose_separator` says
what ``ftclass prepare`` appends).  The stop sequence likewise over
completions; it has to start with a non-alphanumeric character and leave at
least two different labels in front of it (so ``s`` at the end of
``sports``/``politics`` is no stop sequence)::

    >>> infer_separator(["a ->", "b ->", "c ->"]), infer_stop([" sport END", " tech END"])
    (' ->', ' END')
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import NamedTuple

__all__ = [
    "DEFAULT_SEPARATOR",
    "SeparatorChoice",
    "choose_separator",
    "infer_separator",
    "infer_stop",
    "separator_inside",
]

#: What ``ftclass prepare`` appends when the data has no usable separator.
DEFAULT_SEPARATOR = "\n\n###\n\n"
#: A suffix shorter than the whole needs this share of the texts to count.
SUFFIX_SHARE = 0.8


def infer_separator(prompts: Sequence[str]) -> str:
    """The separator the prompts end with and that occurs inside none of them, or ``""``.

    >>> infer_separator(["a\\n\\n###\\n\\n", "b\\n\\n###\\n\\n", "c.", "d\\n\\n###\\n\\n",
    ...                  "e\\n\\n###\\n\\n", "f\\n\\n###\\n\\n"])
    '\\n\\n###\\n\\n'
    >>> infer_separator(["Goal.", "Shares fell.", "New phone"])
    ''
    >>> infer_separator(['"Great drug"', '"Awful taste"', '"It works"'])  # '"' is text
    ''
    >>> infer_separator(["cup", '"cup', "chip"])  # a letter is the text's, never a separator
    ''
    """
    found = _dominant_suffix(prompts, alnum_start=False, unique=True)
    return "" if any(char.isalnum() for char in found) else found


class SeparatorChoice(NamedTuple):
    """The separator prompts should end in, and what the data ends them in now.

    ``separator`` occurs inside no prompt (other than at its end).  ``current``
    is the data's own separator: ``separator`` itself, an ending that also
    occurs inside prompts and that ``prepare`` replaces, or ``""``.
    ``ending`` is what most prompts end in even when it is text, such as the
    closing quote of quoted reviews.
    """

    separator: str
    current: str
    ending: str


def choose_separator(prompts: Sequence[str]) -> SeparatorChoice:
    """The separator for ``prompts``: theirs if it occurs inside none, else ``\\n\\n###\\n\\n``.

    An ending that also occurs inside prompts is no separator.  It counts as
    the data's separator, which ``prepare`` cuts off before appending the new
    one, only when it is separator markup: whitespace and ``#=-_>|*~:/<``
    only, starting with whitespace or longer than one character (`` ->``,
    ``\\n``, ``###``).  Anything else (a closing quote, ``:``, ``?``, ``.``)
    is the text's own and stays.  The fallback gets more ``#`` while it occurs
    inside a prompt.

    >>> choose_separator(['"Great drug"', '"Awful taste"', '"It works"'])
    SeparatorChoice(separator='\\n\\n###\\n\\n', current='', ending='"')
    >>> choose_separator(["a -> b ->", "c ->", "d ->"])
    SeparatorChoice(separator='\\n\\n###\\n\\n', current=' ->', ending=' ->')
    >>> choose_separator(["x\\n\\n###\\n\\ny", "z"]).separator
    '\\n\\n####\\n\\n'
    >>> twice = "\\n\\n###\\n\\n\\n\\n###\\n\\n"  # the separator twice at the end
    >>> choose_separator(['"\\n\\n###\\n\\n', twice]).separator
    '\\n\\n####\\n\\n'
    """
    found = infer_separator(prompts)
    if found:
        return SeparatorChoice(found, found, found)
    ending = _dominant_suffix(prompts, alnum_start=False, unique=False)
    current = ending if _is_separator_markup(ending) else ""
    bodies = [p[: -len(current)] if current and p.endswith(current) else p for p in prompts]
    hashes = 3
    while any(_inside_once_appended(body, _hash_separator(hashes)) for body in bodies):
        hashes += 1
    return SeparatorChoice(_hash_separator(hashes), current, ending)


def separator_inside(prompt: str, separator: str) -> bool:
    """Whether ``separator`` occurs in ``prompt`` anywhere but at its very end, once appended.

    >>> separator_inside("a -> b ->", " ->"), separator_inside("a ->", " ->")
    (True, False)
    >>> separator_inside("ends in \\n\\n###\\n", "\\n\\n###\\n\\n")  # appending would make one
    True
    """
    body = prompt[: -len(separator)] if prompt.endswith(separator) else prompt
    return separator in body + separator[:-1]


def _inside_once_appended(body: str, separator: str) -> bool:
    """Whether ``body + separator`` holds ``separator`` anywhere but at its end.

    Unlike :func:`separator_inside`, a body that already ends in the separator
    counts: the data's own ending was cut off, and what is left comes before
    the separator appended.
    """
    return separator in body + separator[:-1]


def _hash_separator(hashes: int) -> str:
    return "\n\n" + "#" * hashes + "\n\n"


def _is_separator_markup(ending: str) -> bool:
    markup = all(c.isspace() or c in _SEPARATOR_CHARS for c in ending)
    return bool(ending) and markup and (ending[0].isspace() or len(ending) > 1)


def infer_stop(completions: Sequence[str]) -> str:
    """The stop sequence completions end with, or ``""``.

    >>> infer_stop([" sport END", " tech END", " sport END"])
    ' END'
    >>> infer_stop([" sports", " politics", " sports"])
    ''
    """
    return _dominant_suffix(completions, alnum_start=True)


def _dominant_suffix(texts: Sequence[str], *, alnum_start: bool, unique: bool = False) -> str:
    texts = [t for t in texts if t]
    if len(texts) < 2:
        return ""
    suffix = ""
    holders = list(texts)
    while True:
        counts = Counter(t[-len(suffix) - 1] for t in holders if len(t) > len(suffix))
        if not counts:
            break
        char, count = max(counts.items(), key=lambda item: (item[1], item[0]))
        if count < SUFFIX_SHARE * len(texts) or (suffix and count < 0.9 * len(holders)):
            break
        suffix = char + suffix
        holders = [t for t in holders if t.endswith(suffix)]
    if not alnum_start:
        suffix = _separator_part(suffix)
    for start in range(len(suffix)):
        candidate = suffix[start:]
        if alnum_start and candidate[0].isalnum():
            continue
        if not alnum_start and start and suffix[start - 1].isalnum() and candidate[0].isalnum():
            continue
        share = sum(t.endswith(candidate) for t in texts)
        everywhere = share == len(texts)
        if not everywhere and len(candidate) == 1 and not candidate.isspace():
            continue
        rests = {t[: -len(candidate)].strip() for t in texts if t.endswith(candidate)}
        if len(rests - {""}) < 2:
            continue
        if unique and any(separator_inside(t, candidate) for t in texts):
            continue
        return candidate
    return ""


_SEPARATOR_CHARS = "#=-_>|*~:/<"


def _separator_part(suffix: str) -> str:
    """The separator-like end of a common suffix: text all prompts end with is no separator.

    >>> _separator_part("的最新报道。\\n\\n###\\n\\n"), _separator_part("\\nLabel:")
    ('\\n\\n###\\n\\n', ':')
    """
    tail = suffix
    for i in range(len(suffix) - 1, -1, -1):
        if suffix[i].isalnum():
            tail = suffix[i + 1 :]
            break
    while tail and not (tail[0].isspace() or tail[0] in _SEPARATOR_CHARS):
        tail = tail[1:]
    return tail or suffix
