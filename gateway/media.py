"""Avatar uploads and ``/media/`` serving for the gateway (CONTRACT §§6.2, 8.3, 13, 15 B4/D10).

* :class:`AvatarStore` validates an uploaded avatar (the contract's rules, in order, with the exact
  messages), stores it under ``<media root>/avatars/`` with a sanitized, collision-free name, and
  deletes stored files without ever touching anything outside the media root.
* :func:`media_app` is the ASGI app the gateway mounts at ``/media``: starlette's ``StaticFiles``
  with the contract's headers on every response and no way out of the media root.

All disk I/O and image decoding run in worker threads, so the event loop never blocks.
"""

from __future__ import annotations

import errno
import io
import logging
import os
import re
import secrets
import stat
import string
import struct
import threading
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

import anyio.to_thread
from PIL import Image
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "ALLOWED_EXTENSIONS",
    "AVATAR_DIR",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_PIXELS",
    "MAX_NAME_LENGTH",
    "MSG_EMPTY",
    "MSG_INVALID_IMAGE",
    "MSG_NO_FILE",
    "MSG_TOO_LARGE",
    "AvatarStore",
    "MediaFiles",
    "extension_message",
    "media_app",
]

logger = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 2 * 1024 * 1024  # 2 MiB (D10)
DEFAULT_MAX_PIXELS = 40_000_000  # 40 megapixels (D10)
ALLOWED_EXTENSIONS = ("svg", "png", "jpg", "jpeg")
AVATAR_DIR = "avatars"
MAX_NAME_LENGTH = 100  # the stored name, "avatars/..." included (§8.1, §13)
_MAX_COMPONENT_BYTES = 255  # NAME_MAX of common filesystems, in bytes

MSG_NO_FILE = "No file was submitted. Check the encoding type on the form."
MSG_EMPTY = "The submitted file is empty."
MSG_TOO_LARGE = "File too large. Size should not exceed 2 MiB."
MSG_INVALID_IMAGE = "Upload a valid image. The file you uploaded was either not an image or a corrupted image."


def extension_message(extension: str) -> str:
    """The exact message for a disallowed extension (curly quotes U+201C/U+201D)."""
    allowed = ", ".join(ALLOWED_EXTENSIONS)
    return f"File extension \u201c{extension}\u201d is not allowed. Allowed extensions are: {allowed}."


def _basename(filename: str) -> str:
    """The last path component of a client-supplied name (either separator)."""
    return filename.replace("\\", "/").rsplit("/", 1)[-1]


def _extension(filename: str) -> str:
    # As Django's FileExtensionValidator: the last suffix, without the dot, lower-cased.
    return PurePosixPath(_basename(filename)).suffix[1:].lower()


# --------------------------------------------------------------------------------------------------
# Image checks (run in a worker thread)
# --------------------------------------------------------------------------------------------------

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Start-of-frame markers (baseline, progressive, lossless, arithmetic...): not DHT (C4), JPG (C8), DAC (CC).
_JPEG_SOF_MARKERS = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})


class _InvalidImage(Exception):
    pass


def _png_dimensions(data: bytes) -> tuple[int, int]:
    # The PNG spec puts IHDR first: length(4) "IHDR"(4) width(4) height(4).
    if len(data) < 33 or data[12:16] != b"IHDR":
        raise _InvalidImage
    return struct.unpack(">II", data[16:24])


def _jpeg_dimensions(data: bytes) -> tuple[int, int]:
    """The largest frame size declared before the first scan (what Pillow will use)."""
    pos, end = 2, len(data)
    width = height = 0
    while True:
        # Markers are 0xFF followed by a code; any number of 0xFF fill bytes may precede the code.
        if pos >= end or data[pos] != 0xFF:
            raise _InvalidImage
        while pos < end and data[pos] == 0xFF:
            pos += 1
        if pos >= end:
            raise _InvalidImage
        marker = data[pos]
        pos += 1
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # TEM, RSTn: no length
            continue
        if marker in (0xD8, 0xD9):  # a second SOI, or EOI before any scan
            raise _InvalidImage
        if pos + 2 > end:
            raise _InvalidImage
        (length,) = struct.unpack(">H", data[pos : pos + 2])
        if length < 2 or pos + length > end:
            raise _InvalidImage
        if marker in _JPEG_SOF_MARKERS:
            if length < 7:
                raise _InvalidImage
            h, w = struct.unpack(">HH", data[pos + 3 : pos + 7])
            width, height = max(width, w), max(height, h)
        elif marker == 0xDA:  # start of scan: the header is over
            if not width or not height:
                raise _InvalidImage
            return width, height
        pos += length


def _check_image(data: bytes, max_pixels: int) -> None:
    """Raise :class:`_InvalidImage` unless ``data`` is a complete PNG or JPEG within ``max_pixels``.

    The declared dimensions are read from the header *before* Pillow sees the data, so an oversized
    image (a decompression bomb) is refused without allocating it and without Pillow's own
    ``DecompressionBombWarning``/``DecompressionBombError``. Then the file is verified (PNG chunk
    CRCs) and fully decoded (truncated or corrupt data fails).
    """
    if data.startswith(_PNG_SIGNATURE):
        fmt, (width, height) = "PNG", _png_dimensions(data)
    elif data.startswith(b"\xff\xd8\xff"):
        fmt, (width, height) = "JPEG", _jpeg_dimensions(data)
    else:
        raise _InvalidImage  # SVG, GIF, WebP, anything else
    if width <= 0 or height <= 0 or width * height > max_pixels:
        raise _InvalidImage
    try:
        with Image.open(io.BytesIO(data), formats=[fmt]) as im:
            _check_size(im.size, max_pixels)
            im.verify()
        with Image.open(io.BytesIO(data), formats=[fmt]) as im:
            _check_size(im.size, max_pixels)
            if fmt == "JPEG":
                # Decode every coefficient, but at 1/8 scale: same integrity check, 1/64 of the memory.
                im.draft(im.mode, (max(1, im.width // 8), max(1, im.height // 8)))
            im.load()
    except _InvalidImage:
        raise
    except Exception as exc:
        # UnidentifiedImageError, DecompressionBombError, OSError ("image file is truncated"),
        # SyntaxError ("broken PNG file"), ValueError, struct.error...: Pillow's plugins raise many
        # types on hostile input. Their text never reaches the client.
        raise _InvalidImage from exc


def _check_size(size: tuple[int, int], max_pixels: int) -> None:
    if size[0] <= 0 or size[1] <= 0 or size[0] * size[1] > max_pixels:
        raise _InvalidImage


# --------------------------------------------------------------------------------------------------
# Stored names
# --------------------------------------------------------------------------------------------------

_SUFFIX_ALPHABET = string.ascii_letters + string.digits
_SUFFIX_LENGTH = 7
_FALLBACK_ROOT = "avatar"


def _sanitize(filename: str) -> tuple[str, str]:
    """(root, extension-with-dot) of the sanitized base name, as Django's ``get_valid_filename``.

    Spaces become ``_``; characters outside ``[-\\w.]`` are dropped. Leading dots are dropped too
    (no hidden files, no ``.``/``..``); a root that sanitizes to nothing becomes ``avatar``.
    """
    name = _basename(filename).strip().replace(" ", "_")
    name = re.sub(r"[^-\w.]", "", name).lstrip(".")
    path = PurePosixPath(name) if name else None
    ext = path.suffix if path is not None else ""
    root = name[: len(name) - len(ext)] if ext else name
    return root or _FALLBACK_ROOT, ext


def _random_suffix() -> str:
    return "_" + "".join(secrets.choice(_SUFFIX_ALPHABET) for _ in range(_SUFFIX_LENGTH))


def _fit(root: str, ext: str, suffix: str) -> str:
    """``root + suffix + ext``, the root cut so the stored name fits in :data:`MAX_NAME_LENGTH`
    characters (and the file name in the filesystem's byte limit). Never empty, never an error."""
    budget = MAX_NAME_LENGTH - len(AVATAR_DIR) - 1
    tail = suffix + ext
    if len(tail) > budget - 1:  # only for an absurd extension (save() without validate())
        ext = ext[: max(0, budget - 1 - len(suffix))]
        tail = suffix + ext
    root = root[: budget - len(tail)]
    while len((root + tail).encode()) > _MAX_COMPONENT_BYTES and len(root) > 1:
        root = root[:-1]
    while len((root + tail).encode()) > _MAX_COMPONENT_BYTES and ext:
        ext = ext[:-1]
        tail = suffix + ext
    return root + tail


# --------------------------------------------------------------------------------------------------
# AvatarStore
# --------------------------------------------------------------------------------------------------


class AvatarStore:
    """Validation, storage and deletion of avatar files under ``root`` (the media root)."""

    #: How many names :meth:`save` tries (the plain one, then random suffixes) before giving up.
    max_name_attempts = 100

    def __init__(
        self,
        root: Path | str,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        *,
        max_concurrent_decodes: int = 2,
    ) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self.max_pixels = max_pixels
        # A 40 MP decode can take ~160 MB; bound how many run at once (held inside the worker thread,
        # so it works whatever event loop calls us).
        self._decode_slots = threading.BoundedSemaphore(max_concurrent_decodes)

    @property
    def avatar_dir(self) -> Path:
        return self.root / AVATAR_DIR

    # -- validation --------------------------------------------------------------------------------

    async def validate(self, upload: Any) -> list[str]:
        """The §8.3 ``avatar`` messages for ``upload``: ``[]`` when valid, else the first failing rule.

        ``upload`` is what the GraphQL layer received (an ``UploadFile`` for a multipart file part, or
        any other value). At most ``max_bytes + 1`` bytes are read. The file is rewound afterwards.
        """
        if not isinstance(upload, UploadFile) or not upload.filename:
            return [MSG_NO_FILE]
        await upload.seek(0)
        try:
            first = await upload.read(1)
            if not first:
                return [MSG_EMPTY]
            extension = _extension(upload.filename)
            if extension not in ALLOWED_EXTENSIONS:
                return [extension_message(extension)]
            data = first + await upload.read(self.max_bytes)  # at most max_bytes + 1 in all
            if len(data) > self.max_bytes:
                return [MSG_TOO_LARGE]
            if not await anyio.to_thread.run_sync(self._is_valid_image, data):
                return [MSG_INVALID_IMAGE]
            return []
        finally:
            await upload.seek(0)

    def _is_valid_image(self, data: bytes) -> bool:
        with self._decode_slots:
            try:
                _check_image(data, self.max_pixels)
            except _InvalidImage as exc:
                logger.debug("avatar rejected as invalid image: %r", exc.__cause__ or exc)
                return False
            return True

    # -- storage -----------------------------------------------------------------------------------

    async def save(self, upload: UploadFile) -> str:
        """Store a validated upload; return its name relative to the media root (``avatars/...``).

        The file is created exclusively (``O_EXCL``): an existing file is never overwritten, and a
        taken name gets a ``_<7 random alphanumerics>`` suffix before the extension.
        """
        if not isinstance(upload, UploadFile) or not upload.filename:
            raise ValueError("save() needs an uploaded file")
        await upload.seek(0)
        try:
            return await anyio.to_thread.run_sync(self._save_sync, upload.file, upload.filename)
        finally:
            await upload.seek(0)

    def _save_sync(self, source: BinaryIO, filename: str) -> str:
        directory = self.avatar_dir
        directory.mkdir(parents=True, exist_ok=True)
        root, ext = _sanitize(filename)
        for attempt in range(self.max_name_attempts):
            base = _fit(root, ext, _random_suffix() if attempt else "")
            target = directory / base
            try:
                out = open(target, "xb")  # noqa: SIM115 - closed below; O_CREAT | O_EXCL
            except FileExistsError:
                continue
            try:
                with out:
                    self._copy(source, out)
            except BaseException:
                target.unlink(missing_ok=True)
                raise
            return f"{AVATAR_DIR}/{base}"
        raise FileExistsError(errno.EEXIST, "no free avatar name", filename)

    def _copy(self, source: BinaryIO, out: BinaryIO) -> None:
        written = 0
        while chunk := source.read(64 * 1024):
            written += len(chunk)
            if written > self.max_bytes:
                raise ValueError("avatar exceeds the size cap; validate() it first")
            out.write(chunk)

    # -- deletion ----------------------------------------------------------------------------------

    async def delete(self, name: str) -> None:
        """Remove the stored file ``name`` (relative to the media root).

        ``""``/``None`` and missing files are ignored. Names that are absolute, contain ``..``, or lead
        outside the media root through a symlinked directory are refused (logged, nothing removed);
        a symlink itself is removed as a link, its target untouched.
        """
        if not name:
            return
        await anyio.to_thread.run_sync(self._delete_sync, name)

    def _delete_sync(self, name: str) -> None:
        target = self._resolve_stored(name)
        if target is None:
            logger.warning("refusing to delete media file outside the media root: %r", name)
            return
        try:
            if stat.S_ISDIR(os.lstat(target).st_mode):
                logger.warning("refusing to delete a directory from the media root: %r", name)
                return
            os.unlink(target)
        except (FileNotFoundError, NotADirectoryError):
            pass

    def _resolve_stored(self, name: str) -> Path | None:
        """The path of ``name`` inside the media root, its parent directory fully resolved, or ``None``."""
        if not isinstance(name, str) or "\x00" in name or "\\" in name:
            return None
        pure = PurePosixPath(name)
        if pure.is_absolute() or not pure.parts or any(part in ("..", ".") for part in pure.parts):
            return None
        if any(part in ("", ".", "..") for part in name.split("/")):
            return None
        root = Path(os.path.realpath(self.root))
        parent = Path(os.path.realpath(root.joinpath(*pure.parts[:-1])))
        if parent != root and root not in parent.parents:
            return None
        return parent / pure.parts[-1]


# --------------------------------------------------------------------------------------------------
# /media/ serving
# --------------------------------------------------------------------------------------------------

CACHE_CONTROL = "public, max-age=604800"  # 7 days, as the reference deployment's `expires 7d`
_ALWAYS_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    # Defence in depth: even if a document type were ever served, it could not run scripts.
    (b"content-security-policy", b"default-src 'none'; sandbox"),
)
_SNIFFED_TYPES: tuple[tuple[bytes, str], ...] = (
    (_PNG_SIGNATURE, "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    # Files stored by the reference implementation may hold other raster formats.
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


def _sniff_content_type(path: str | os.PathLike[str]) -> str:
    """The image type of the file's *content* (a PNG stored as ``x.svg`` is served as ``image/png``).

    Anything that is not a known raster image is served as ``application/octet-stream``, never as
    SVG/HTML, whatever its extension.
    """
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError:
        return "application/octet-stream"
    for signature, media_type in _SNIFFED_TYPES:
        if head.startswith(signature):
            return media_type
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return "application/octet-stream"


class MediaFiles(StaticFiles):
    """``StaticFiles`` over the media root, hardened for user uploads.

    * Every HTTP response, errors included, carries ``X-Content-Type-Options: nosniff`` (and a
      restrictive CSP); successful ones carry ``Cache-Control: public, max-age=604800``.
    * Errors are answered here (not raised to the enclosing app), so they get the headers too; any
      lookup failure other than a bad method is a plain 404.
    * Content-Type comes from the file's content, not its extension.
    * Symlinks are resolved and must stay inside the root (``follow_symlink=False``).
    """

    def __init__(self, directory: Path | str) -> None:
        super().__init__(directory=directory, check_dir=False, follow_symlink=False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":  # only when run stand-alone
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return

        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"cache-control"]
                headers.extend(_ALWAYS_HEADERS)
                if 200 <= status < 300 or status == 304:
                    headers.append((b"cache-control", CACHE_CONTROL.encode()))
                else:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await super().__call__(scope, receive, send_with_headers)
            return
        except HTTPException as exc:
            if started:
                raise
            response = _error_response(exc.status_code, exc.headers)
        except (OSError, ValueError):
            if started:  # e.g. the file vanished mid-stream: nothing sensible left to send
                raise
            response = _error_response(404)
        await response(scope, receive, send_with_headers)

    async def get_response(self, path: str, scope: Scope) -> Response:
        try:
            response = await super().get_response(path, scope)
        except HTTPException as exc:
            if exc.status_code == 405:
                raise
            raise HTTPException(status_code=404) from None  # 401 for EACCES, etc.
        if isinstance(response, FileResponse):
            media_type = await anyio.to_thread.run_sync(_sniff_content_type, response.path)
            response.media_type = media_type
            response.headers["content-type"] = media_type
        return response


def _error_response(status_code: int, headers: dict[str, str] | None = None) -> Response:
    if status_code != 405:
        status_code, headers = 404, None
    phrase = {404: "Not Found", 405: "Method Not Allowed"}[status_code]
    return PlainTextResponse(phrase, status_code=status_code, headers=headers)


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def media_app(root: Path | str) -> ASGIApp:
    """The ASGI app serving ``GET``/``HEAD /media/<path>`` from ``root`` (mount it at ``/media``).

    ``root`` is created if missing.
    """
    Path(root).mkdir(parents=True, exist_ok=True)
    return MediaFiles(root)
