"""What every HTML page of the reports shares: the template environment, the script, the data blob.

Pages are rendered with jinja2 autoescaping on, so every string from a report
(case ids, labels, model names, error messages, texts) is escaped.  A page has
one inline script, ``templates/report.js``, allowed by the Content-Security-Policy
through its sha256 hash, and its data in one ``<script type="application/json">``
blob whose ``<``, ``>`` and ``&`` are written as ``\\u003c``-style escapes, so no
string can close the element; the script puts the data in the page with
``textContent`` only.

>>> print(json_for_script({"t": "</script><b>&"}))
{"t":"\\u003c/script\\u003e\\u003cb\\u003e\\u0026"}
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
from pathlib import Path
from typing import Any

__all__ = ["TEMPLATE_DIR", "environment", "json_for_script", "script"]

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
SCRIPT_NAME = "report.js"


@functools.cache
def environment() -> Any:
    """The jinja2 environment of the report templates: autoescape on, undefined is an error.

    One per process, so each template is compiled once however many reports a
    process writes (pytester runs in-process, ``ftclass render`` of several files).
    """
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = format_number
    env.filters["pct"] = format_percent
    env.filters["pvalue"] = format_p
    env.filters["signed"] = format_signed
    env.filters["ci"] = format_interval
    return env


def script() -> tuple[Any, str]:
    """The page script (as markup, inserted verbatim) and its CSP source ``sha256-…``."""
    from markupsafe import Markup

    text = (TEMPLATE_DIR / SCRIPT_NAME).read_text(encoding="utf-8")
    digest = base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")
    return Markup(text), f"sha256-{digest}"


def json_for_script(value: Any) -> str:
    """JSON that is safe inside ``<script type="application/json">``: no ``<``, ``>`` or ``&``."""
    text = json.dumps(
        value, ensure_ascii=False, allow_nan=False, default=str, separators=(",", ":")
    )
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    # line and paragraph separators are valid JSON but confuse some JS tooling
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def format_number(value: float | None, digits: int = 3) -> str:
    """``0.912``; ``—`` for a number that could not be computed.

    >>> format_number(0.91234), format_number(None)
    ('0.912', '—')
    """
    return "—" if value is None else f"{value:.{digits}f}"


def format_percent(value: float | None) -> str:
    """``91.2 %``."""
    return "—" if value is None else f"{100 * value:.1f} %"


def format_p(value: float | None) -> str:
    """A p-value to three significant digits: ``0.0215``, ``1``, ``3.1e-05``."""
    return "—" if value is None else f"{value:.3g}"


def format_signed(value: float | None, digits: int = 3) -> str:
    """``+0.012`` or ``−0.038`` (a real minus sign)."""
    if value is None:
        return "—"
    text = f"{value:+.{digits}f}"
    return text.replace("-", "−")


def format_interval(values: Any) -> str:
    """``0.912–0.951`` from ``[low, high]``; empty when there is none."""
    if not values:
        return ""
    return f"{values[0]:.3f}–{values[1]:.3f}"
