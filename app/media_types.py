"""Content types of uploads, and the file-name extensions that agree with each.

A file's name is shown to people and chosen by their software when they download it, so it
must say what the file is: `photo.jpg` declared `image/png`, `invoice.pdf.exe` declared
`application/pdf`, or a name without an extension are refused. The last extension decides,
in any case (`photo.JPG` is a JPEG).

EXTENSIONS is the table for the default allowlist (`UPLOAD_CONTENT_TYPES`, app/config.py).
A type an operator adds that is not in it falls back to Python's own table (`mimetypes`,
without the host's /etc/mime.types, so every host agrees); a type neither knows is refused
at start-up (`Settings.check`): no file could be uploaded with it.
"""

from __future__ import annotations

import mimetypes
from pathlib import PurePosixPath

EXTENSIONS: dict[str, tuple[str, ...]] = {
    "image/jpeg": (".jpg", ".jpeg"),
    "image/png": (".png",),
    "image/webp": (".webp",),
    "image/gif": (".gif",),
    "image/avif": (".avif",),
    "video/mp4": (".mp4",),
    "application/pdf": (".pdf",),
}

_BUILT_IN = mimetypes.MimeTypes()  # Python's table only: the host's files are not read


def extensions(content_type: str) -> tuple[str, ...]:
    """The extensions (lower case, with their dot) a file of `content_type` may have."""
    known = EXTENSIONS.get(content_type)
    if known is not None:
        return known
    return tuple(_BUILT_IN.guess_all_extensions(content_type, strict=True))


def extension_problem(filename: str, content_type: str) -> str | None:
    """Why `filename` does not agree with `content_type`, or None when it does."""
    accepted = extensions(content_type)
    if PurePosixPath(filename).suffix.lower() in accepted:
        return None
    return f"Must end in {' or '.join(accepted)} for {content_type}."
