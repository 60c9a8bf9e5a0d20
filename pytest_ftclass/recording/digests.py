"""Prompt text out of cassettes: request bodies in canonical JSON with texts as digests.

>>> body = private_body(b'{"prompt": ["Goal!"], "model": "m"}').decode()
>>> body.startswith('{"model":"m","prompt":["ftclass-sha256:'), "Goal" in body
(True, False)
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_ftclass.recording.redaction import Redactor

DIGEST_PREFIX = "ftclass-sha256:"


_DIGEST_RE = re.compile(r"^ftclass-sha256:[0-9a-f]{64}$")


def text_digest(text: str) -> str:
    if _DIGEST_RE.match(text):
        return text
    return DIGEST_PREFIX + hashlib.sha256(text.encode("utf-8")).hexdigest()


def private_body(
    body: Any, *, keep_text: bool = False, redactor: Redactor | None = None
) -> bytes | Any:
    """A request body in canonical JSON with prompt text replaced by digests.

    With a ``redactor``, every secret left in it is replaced too (in the
    parsed JSON, so the body stays valid).  Bodies that are not JSON are
    returned unchanged, or as redacted bytes.
    """
    if body is None:
        return body
    try:
        text = body.decode("utf-8") if isinstance(body, bytes) else body
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError, AttributeError, TypeError):
        if redactor is not None and isinstance(body, (bytes, str)):
            return redactor.bytes(body if isinstance(body, bytes) else body.encode("utf-8"))
        return body
    if not keep_text and isinstance(data, dict):
        data = _digest_fields(data)
    if redactor is not None and redactor.might_hold(text):
        data = redactor.data(data)
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
