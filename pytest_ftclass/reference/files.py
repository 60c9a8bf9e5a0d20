"""The reference server's Files endpoints: one in-memory store for batches and fine-tunes.

``POST /v1/files`` (multipart: ``purpose``, ``file``) keeps an upload and answers
a File object, ``GET /v1/files/{id}`` answers it again and ``GET
/v1/files/{id}/content`` answers its bytes.  The server's own outputs (batch
results, fine-tuning result files) are kept with :meth:`FileStore.add`:

>>> store = FileStore()
>>> kept = store.add("fine-tune-results", "step_metrics.csv", b"c3RlcA==")
>>> store.describe(kept.id)["purpose"], store.content(kept.id)
('fine-tune-results', b'c3RlcA==')

Uploads are read with the standard library's ``email`` parser, not with the
client's multipart code: a server and a client sharing one parser would hide
each other's bugs.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from pytest_ftclass.reference.wire import ApiError, StableIds

__all__ = ["UPLOAD_PURPOSES", "FileStore", "FormField", "StoredFile", "read_form"]

#: what ``POST /v1/files`` accepts as ``purpose``
UPLOAD_PURPOSES = ("batch", "fine-tune")


@dataclass(frozen=True)
class StoredFile:
    id: str
    purpose: str
    filename: str
    data: bytes
    created_at: int

    def describe(self) -> dict[str, Any]:
        """The File object, as ``POST /v1/files`` and ``GET /v1/files/{id}`` answer it."""
        return {
            "id": self.id,
            "object": "file",
            "bytes": len(self.data),
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
            "expires_at": None,
            "status_details": None,
        }


class FileStore:
    """Files by id, in memory; thread-safe.  Ids are reproducible (:class:`StableIds`)."""

    def __init__(self, ids: StableIds | None = None) -> None:
        self.ids = ids or StableIds()
        self._files: dict[str, StoredFile] = {}
        self._lock = threading.Lock()

    def upload(self, raw: bytes, content_type: str) -> dict[str, Any]:
        """``POST /v1/files``: keep a ``batch`` or ``fine-tune`` upload."""
        try:
            fields = read_form(raw, content_type)
        except ValueError:
            raise ApiError(
                400, "Uploads must be sent as multipart/form-data with a 'file' field."
            ) from None
        upload = fields.get("file")
        if upload is None or upload.filename is None:
            raise ApiError(400, "Missing required parameter: 'file'.", param="file")
        if "purpose" not in fields:
            raise ApiError(400, "Missing required parameter: 'purpose'.", param="purpose")
        purpose = fields["purpose"].data.decode("utf-8", errors="replace")
        if purpose not in UPLOAD_PURPOSES:
            raise ApiError(
                400,
                f"Invalid value for 'purpose': the reference server stores "
                f"{' and '.join(repr(p) for p in UPLOAD_PURPOSES)} files, got {purpose!r}.",
                param="purpose",
                code="invalid_value",
            )
        return self.add(purpose, upload.filename or "upload.jsonl", upload.data).describe()

    def add(self, purpose: str, filename: str, data: bytes) -> StoredFile:
        """Keep ``data`` as a new file; its id comes from its purpose, name and bytes."""
        file_id = self.ids.make("file-", purpose, filename, data)
        stored = StoredFile(file_id, purpose, filename, data, int(time.time()))
        with self._lock:
            self._files[file_id] = stored
        return stored

    def get(self, file_id: str, *, param: str = "id") -> StoredFile:
        """The file ``file_id``, or a 404 naming ``param``."""
        with self._lock:
            stored = self._files.get(file_id)
        if stored is None:
            raise ApiError(404, f"No such File object: {file_id}", param=param)
        return stored

    def describe(self, file_id: str) -> dict[str, Any]:
        """``GET /v1/files/{id}``."""
        return self.get(file_id).describe()

    def content(self, file_id: str) -> bytes:
        """``GET /v1/files/{id}/content``: the bytes as stored."""
        return self.get(file_id).data


@dataclass(frozen=True)
class FormField:
    name: str
    filename: str | None
    data: bytes


def read_form(body: bytes, content_type: str) -> dict[str, FormField]:
    """The fields of a ``multipart/form-data`` body, by name, each part's bytes exactly.

    Raises ``ValueError`` when the body is not a multipart form.

    >>> body = (b'--b\\r\\nContent-Disposition: form-data; name="purpose"\\r\\n\\r\\nbatch\\r\\n'
    ...         b'--b\\r\\nContent-Disposition: form-data; name="file"; filename="a.jsonl"\\r\\n'
    ...         b'Content-Type: application/jsonl\\r\\n\\r\\n{}\\r\\n\\r\\n--b--\\r\\n')
    >>> form = read_form(body, "multipart/form-data; boundary=b")
    >>> form["purpose"].data, form["file"].filename, form["file"].data
    (b'batch', 'a.jsonl', b'{}\\r\\n')
    """
    import email.parser
    import email.policy

    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    if message.get_content_type() != "multipart/form-data" or not message.is_multipart():
        raise ValueError(f"not a multipart/form-data body: {content_type!r}")
    if message.defects:
        raise ValueError(f"a malformed multipart body: {message.defects[0]!r}")
    fields: dict[str, FormField] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            raise ValueError("a multipart part has no name")
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            raise ValueError(f"the multipart part {name!r} holds no data")
        fields[name] = FormField(name, part.get_filename(), payload)
    return fields
