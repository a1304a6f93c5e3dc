"""OpenAI's file content parts as documents: chat completions' `file`, the Responses `input_file`.

Only inline files are read: `file_data` as a data URL (`data:application/pdf;base64,...`). A
`file_id` names a file uploaded to OpenAI's files API, which this server does not have, and a
`file_url` would make the server fetch what a caller points at: both are refused by name. The
media type is the data URL's, or, where that says nothing (`application/octet-stream`), the
one the file name's extension implies; which types a model reads is its provider's to say.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from llm_server.core.text import bounded
from llm_server.exceptions import BadRequestException
from llm_server.values import Document

FILE_PART_TYPES = {"file", "input_file"}
_DATA_URL = re.compile(r"^data:(?P<type>[^;,]*)(?P<params>(;[^;,]*)*?);base64,(?P<data>.*)$", re.S)
_BY_EXTENSION = {
    "pdf": "application/pdf",
    "csv": "text/csv",
    "doc": "application/msword",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xls": "application/vnd.ms-excel",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "html": "text/html",
    "htm": "text/html",
    "txt": "text/plain",
    "md": "text/markdown",
    "markdown": "text/markdown",
}
_UNSAID = {"", "application/octet-stream"}


def document_of(fields: dict[str, Any], param: str) -> Document:
    """The document a file part carries inline (`fields`: the part's file fields), or a 400.

    `param` names the part (`messages.0.content.1`); a refusal names the field in it.
    """
    for field, why in (
        ("file_id", "there is no files API here: send the file inline as file_data"),
        ("file_url", "this server fetches nothing a caller points at: send it as file_data"),
    ):
        if fields.get(field) is not None:
            raise BadRequestException(
                f"{param}.{field}: {why} (a data URL, data:application/pdf;base64,...)",
                param=f"{param}.{field}",
                code="unsupported_content",
            )
    data_url, name = fields.get("file_data"), fields.get("filename")
    where = f"{param}.file_data"
    match = _DATA_URL.match(data_url) if isinstance(data_url, str) else None
    if match is None:
        raise BadRequestException(
            f"{where}: a file is taken inline, as a base64 data URL "
            "(data:application/pdf;base64,...)",
            param=where,
        )
    try:
        data = base64.b64decode(match["data"], validate=True)
    except (binascii.Error, ValueError):
        raise BadRequestException(f"{where}: not valid base64", param=where) from None
    name = name if isinstance(name, str) and name.strip() else "document"
    return Document(bounded(name, 200), _media_type(match["type"].lower(), name), data, param)


def _media_type(said: str, name: str) -> str:
    """The data URL's media type, else the one the name's extension implies, else its own."""
    if said not in _UNSAID:
        return said
    extension = name.rpartition(".")[2].lower() if "." in name else ""
    return _BY_EXTENSION.get(extension, said or "application/octet-stream")
