"""Unit tests of gateway.media: avatar validation (§8.3, D10), storage (§13), deletion (B4), /media/ serving."""

from __future__ import annotations

import asyncio
import io
import os
import re
import struct
import threading
import warnings
import zlib
from pathlib import Path

import httpx
import pytest
from PIL import Image
from starlette.applications import Starlette
from starlette.datastructures import Headers, UploadFile
from starlette.routing import Mount

from gateway import media
from gateway.media import AvatarStore, media_app

# The contract's strings, spelled out here rather than imported, so a typo in the module fails.
NO_FILE = "No file was submitted. Check the encoding type on the form."
EMPTY = "The submitted file is empty."
TOO_LARGE = "File too large. Size should not exceed 2 MiB."
INVALID = "Upload a valid image. The file you uploaded was either not an image or a corrupted image."
MIB = 1024 * 1024


def ext_msg(ext: str) -> str:
    return f"File extension \u201c{ext}\u201d is not allowed. Allowed extensions are: svg, png, jpg, jpeg."


# ------------------------------------------------------------------------------------------------
# Image and upload builders
# ------------------------------------------------------------------------------------------------


def encode(fmt: str, size: tuple[int, int] = (32, 24), mode: str = "RGB", **params) -> bytes:
    color = (200, 30, 90) if mode == "RGB" else 0
    buf = io.BytesIO()
    Image.new(mode, size, color).save(buf, fmt, **params)
    return buf.getvalue()


def noisy(fmt: str, size: tuple[int, int] = (160, 120), **params) -> bytes:
    """An image that does not compress away, so truncating it cuts real image data."""
    im = Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3))
    buf = io.BytesIO()
    im.save(buf, fmt, **params)
    return buf.getvalue()


PNG = encode("PNG")
JPEG = encode("JPEG")
GIF = encode("GIF")
WEBP = encode("WEBP")
SVG = (
    b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
    b'<script>alert(1)</script><rect width="10" height="10"/></svg>'
)


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_with_padding(total: int) -> bytes:
    """A valid PNG of exactly ``total`` bytes (a private ancillary chunk after IHDR)."""
    overhead = len(PNG) + 12
    return PNG[:33] + png_chunk(b"prVt", b"\0" * (total - overhead)) + PNG[33:]


def png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose IHDR declares ``width`` x ``height`` (a decompression bomb's header)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return PNG[:8] + png_chunk(b"IHDR", ihdr) + PNG[33:]


def jpeg_declaring(width: int, height: int) -> bytes:
    data = bytearray(JPEG)
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def upload(data: bytes, filename: str | None = "avatar.png", content_type: str = "image/png", file=None) -> UploadFile:
    return UploadFile(
        file=file if file is not None else io.BytesIO(data),
        size=None,
        filename=filename,
        headers=Headers({"content-type": content_type}),
    )


class CountingBytesIO(io.BytesIO):
    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.bytes_read = 0

    def read(self, size: int | None = -1) -> bytes:
        chunk = super().read(size)
        self.bytes_read += len(chunk)
        return chunk


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "media"


@pytest.fixture
def store(root: Path) -> AvatarStore:
    return AvatarStore(root)


# ------------------------------------------------------------------------------------------------
# validate(): each rule, exact strings
# ------------------------------------------------------------------------------------------------


def test_constructor_creates_root_and_defaults(tmp_path: Path) -> None:
    s = AvatarStore(tmp_path / "a" / "b")
    assert (tmp_path / "a" / "b").is_dir()
    assert s.max_bytes == 2 * MIB
    assert s.max_pixels == 40_000_000


def test_module_constants_match_contract() -> None:
    assert media.MSG_NO_FILE == NO_FILE
    assert media.MSG_EMPTY == EMPTY
    assert media.MSG_TOO_LARGE == TOO_LARGE
    assert media.MSG_INVALID_IMAGE == INVALID
    assert media.extension_message("gif") == ext_msg("gif")


@pytest.mark.parametrize("value", ["avatar.png", "", None, 0, 12, True, b"\x89PNG", {"filename": "a.png"}, ["a.png"]])
async def test_non_file_value(store: AvatarStore, value) -> None:
    assert await store.validate(value) == [NO_FILE]


@pytest.mark.parametrize("filename", [None, ""])
async def test_file_part_without_name_counts_as_no_file(store: AvatarStore, filename) -> None:
    assert await store.validate(upload(PNG, filename=filename)) == [NO_FILE]


async def test_empty_file(store: AvatarStore) -> None:
    assert await store.validate(upload(b"", "avatar.png")) == [EMPTY]


@pytest.mark.parametrize(
    ("filename", "ext"),
    [
        ("avatar.gif", "gif"),
        ("avatar.webp", "webp"),
        ("avatar.GIF", "gif"),  # lower-cased, as Django's FileExtensionValidator
        ("avatar", ""),
        ("avatar.", ""),
        (".png", ""),  # a dot-file has no extension
        ("archive.tar.gz", "gz"),
        ("avatar.png.exe", "exe"),
        ("avatar.svgz", "svgz"),
        ("avatar.pn g", "pn g"),
        ("dir/avatar.bmp", "bmp"),
    ],
)
async def test_disallowed_extension(store: AvatarStore, filename: str, ext: str) -> None:
    assert await store.validate(upload(PNG, filename)) == [ext_msg(ext)]


def test_extension_message_exact_bytes() -> None:
    assert ext_msg("gif").encode() == (
        b"File extension \xe2\x80\x9cgif\xe2\x80\x9d is not allowed. Allowed extensions are: svg, png, jpg, jpeg."
    )
    assert ext_msg("") == "File extension \u201c\u201d is not allowed. Allowed extensions are: svg, png, jpg, jpeg."


async def test_too_large_by_one_byte(store: AvatarStore) -> None:
    assert await store.validate(upload(b"\0" * (2 * MIB + 1), "avatar.png")) == [TOO_LARGE]


async def test_valid_png_of_exactly_the_cap_passes_one_more_byte_fails(store: AvatarStore) -> None:
    exact = png_with_padding(2 * MIB)
    assert len(exact) == 2 * MIB
    assert await store.validate(upload(exact, "avatar.png")) == []
    over = png_with_padding(2 * MIB + 1)
    assert len(over) == 2 * MIB + 1
    assert await store.validate(upload(over, "avatar.png")) == [TOO_LARGE]


async def test_size_check_reads_at_most_cap_plus_one_bytes(store: AvatarStore) -> None:
    source = CountingBytesIO(b"\0" * (10 * MIB))
    assert await store.validate(upload(b"", "big.png", file=source)) == [TOO_LARGE]
    assert source.bytes_read <= 2 * MIB + 1


async def test_custom_size_cap(root: Path) -> None:
    small = AvatarStore(root, max_bytes=len(PNG))
    assert await small.validate(upload(PNG, "a.png")) == []
    assert await small.validate(upload(PNG + b"\0", "a.png")) == [TOO_LARGE]


@pytest.mark.parametrize(
    ("data", "filename"),
    [
        (PNG, "avatar.png"),
        (PNG, "AVATAR.PNG"),
        (JPEG, "avatar.jpg"),
        (JPEG, "avatar.JpG"),
        (JPEG, "avatar.jpeg"),
        (JPEG, "avatar.JPEG"),
        (JPEG, "avatar.png"),  # a JPEG named .png MAY be accepted (§8.3)
        (PNG, "avatar.jpg"),
        (PNG, "avatar.svg"),  # the extension is allowed and the content is PNG
        (encode("PNG", mode="RGBA"), "rgba.png"),
        (encode("PNG", mode="P"), "palette.png"),
        (encode("PNG", mode="L"), "grey.png"),
        (encode("PNG", mode="1"), "bilevel.png"),
        (encode("PNG", mode="I;16"), "deep.png"),
        (encode("JPEG", mode="L"), "grey.jpg"),
        (encode("JPEG", mode="CMYK"), "cmyk.jpg"),
        (encode("PNG", size=(1, 1)), "one.png"),
        (noisy("JPEG", progressive=True), "progressive.jpg"),
        (noisy("PNG"), "noisy.png"),
        (encode("PNG") + b"trailing bytes after IEND", "trailing.png"),
    ],
)
async def test_valid_images(store: AvatarStore, data: bytes, filename: str) -> None:
    assert await store.validate(upload(data, filename)) == []


async def test_animated_png_is_a_png(store: AvatarStore) -> None:
    buf = io.BytesIO()
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 255, 0))]
    frames[0].save(buf, "PNG", save_all=True, append_images=frames[1:])
    assert await store.validate(upload(buf.getvalue(), "anim.png")) == []


@pytest.mark.parametrize(
    ("data", "filename"),
    [
        (SVG, "avatar.svg"),
        (SVG, "avatar.png"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "avatar.svg"),
        (GIF, "avatar.png"),
        (GIF, "avatar.jpg"),
        (WEBP, "avatar.png"),
        (encode("BMP"), "avatar.png"),
        (encode("TIFF"), "avatar.jpeg"),
        (b"hello, world", "avatar.png"),
        (b"<html><script>alert(1)</script></html>", "avatar.jpg"),
        (b"\0", "avatar.png"),
        (b"\x89PNG\r\n\x1a\n" + os.urandom(2048), "avatar.png"),  # PNG header, then garbage
        (b"\x89PNG\r\n\x1a\n", "avatar.png"),
        (PNG[:60], "avatar.png"),
        (b"\xff\xd8\xff\xe0" + os.urandom(2048), "avatar.jpg"),  # JPEG header, then garbage
        (b"\xff\xd8\xff", "avatar.jpg"),
        (JPEG[:200], "avatar.jpg"),
    ],
)
async def test_invalid_images(store: AvatarStore, data: bytes, filename: str) -> None:
    assert await store.validate(upload(data, filename)) == [INVALID]


async def test_truncated_png_rejected(store: AvatarStore) -> None:
    data = noisy("PNG")
    assert await store.validate(upload(data, "a.png")) == []
    assert await store.validate(upload(data[: len(data) - 2000], "a.png")) == [INVALID]


async def test_truncated_jpeg_rejected(store: AvatarStore) -> None:
    for data in (noisy("JPEG"), noisy("JPEG", progressive=True)):
        assert await store.validate(upload(data, "a.jpg")) == []
        assert await store.validate(upload(data[: len(data) - 2000], "a.jpg")) == [INVALID]


async def test_png_with_bad_crc_rejected(store: AvatarStore) -> None:
    data = bytearray(noisy("PNG"))
    data[len(data) // 2] ^= 0xFF
    assert await store.validate(upload(bytes(data), "a.png")) == [INVALID]


async def test_huge_dimension_png_rejected(store: AvatarStore) -> None:
    """8000 x 6000 = 48 MP, a few tens of KiB compressed: over the 40 MP cap."""
    data = encode("PNG", size=(8000, 6000), mode="L")
    assert len(data) < 2 * MIB
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Pillow's DecompressionBombWarning must not fire either
        assert await store.validate(upload(data, "huge.png")) == [INVALID]


@pytest.mark.parametrize(
    "data",
    [
        png_declaring(10_000, 10_000),  # 100 MP: Pillow itself would only warn
        png_declaring(20_000, 20_000),  # 400 MP: Pillow itself would raise DecompressionBombError
        png_declaring(0xFFFF_FFFF, 0xFFFF_FFFF),
        png_declaring(0, 10),
        jpeg_declaring(10_000, 10_000),
        jpeg_declaring(65_535, 65_535),
        jpeg_declaring(0, 10),
    ],
)
async def test_bomb_headers_rejected_without_pillow_warnings(store: AvatarStore, data: bytes) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert await store.validate(upload(data, "bomb.png")) == [INVALID]


async def test_pixel_cap_boundary(root: Path) -> None:
    small = AvatarStore(root, max_pixels=100)
    for fmt in ("PNG", "JPEG"):
        assert await small.validate(upload(encode(fmt, size=(10, 10)), "a.png")) == []
        assert await small.validate(upload(encode(fmt, size=(10, 11)), "a.png")) == [INVALID]


# ---- precedence: non-file > empty > extension > size > content --------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("not-a-file.gif", NO_FILE),
        (upload(b"", None), NO_FILE),
        (upload(b"", "empty.gif"), EMPTY),  # empty before extension
        (upload(b"", "noext"), EMPTY),
        (upload(b"\0" * (3 * MIB), "big.gif"), ext_msg("gif")),  # extension before size
        (upload(GIF, "anim.gif"), ext_msg("gif")),
        (upload(SVG * (2 * MIB // len(SVG) + 1), "big.svg"), TOO_LARGE),  # size before content
        (upload(b"\0" * (2 * MIB + 1), "big.png"), TOO_LARGE),
        (upload(SVG, "small.svg"), INVALID),
        (upload(PNG, "ok.png"), None),
    ],
)
async def test_precedence(store: AvatarStore, value, expected) -> None:
    assert await store.validate(value) == ([] if expected is None else [expected])


async def test_validate_returns_at_most_one_message_and_rewinds(store: AvatarStore) -> None:
    up = upload(PNG, "ok.png")
    up.file.seek(5)
    assert await store.validate(up) == []
    assert up.file.tell() == 0
    bad = upload(b"\0" * 100, "bad.gif")
    result = await store.validate(bad)
    assert len(result) == 1
    assert bad.file.tell() == 0


async def test_decode_runs_off_the_event_loop(store: AvatarStore, monkeypatch: pytest.MonkeyPatch) -> None:
    threads: list[int] = []
    original = media._check_image

    def spy(data: bytes, max_pixels: int) -> None:
        threads.append(threading.get_ident())
        original(data, max_pixels)

    monkeypatch.setattr(media, "_check_image", spy)
    assert await store.validate(upload(PNG, "a.png")) == []
    assert threads and threads[0] != threading.get_ident()


async def test_concurrent_validations(store: AvatarStore) -> None:
    uploads = [upload(noisy("PNG"), f"{i}.png") for i in range(6)] + [upload(SVG, "x.svg") for _ in range(3)]
    results = await asyncio.gather(*(store.validate(u) for u in uploads))
    assert results == [[]] * 6 + [[INVALID]] * 3


# ------------------------------------------------------------------------------------------------
# save(): names, collisions, truncation, exclusivity
# ------------------------------------------------------------------------------------------------

SUFFIXED = re.compile(r"^avatars/me_[A-Za-z0-9]{7}\.png$")


async def test_save_stores_under_avatars(store: AvatarStore, root: Path) -> None:
    name = await store.save(upload(PNG, "me.png"))
    assert name == "avatars/me.png"
    assert (root / name).read_bytes() == PNG


async def test_save_sanitizes(store: AvatarStore, root: Path) -> None:
    assert await store.save(upload(JPEG, "my photo!.JPG")) == "avatars/my_photo.JPG"
    assert (root / "avatars" / "my_photo.JPG").read_bytes() == JPEG


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("  padded name .png ", "avatars/padded_name_.png"),
        ("a<b>c:d\"e|f?g*h.png", "avatars/abcdefgh.png"),
        ("crème brûlée.jpeg", "avatars/crème_brûlée.jpeg"),  # \w is Unicode, as in Django
        ("../../etc/passwd.png", "avatars/passwd.png"),  # client path components are dropped
        ("C:\\Users\\me\\face.png", "avatars/face.png"),
        ("with-dash_and.dots.png", "avatars/with-dash_and.dots.png"),
    ],
)
async def test_save_sanitized_names(store: AvatarStore, root: Path, filename: str, expected: str) -> None:
    name = await store.save(upload(PNG, filename))
    assert name == expected
    assert (root / name).is_file()
    assert (root / name).resolve().parent == (root / "avatars").resolve()


@pytest.mark.parametrize("filename", ["!!!.png", "***", " .png", "..png", "...", "☃ ♥.png"])
async def test_save_name_that_sanitizes_to_nothing(store: AvatarStore, root: Path, filename: str) -> None:
    name = await store.save(upload(PNG, filename))
    assert re.fullmatch(r"avatars/[-\w][-\w.]*", name), name
    base = name.split("/", 1)[1]
    assert base not in {".", ".."} and not base.startswith(".")
    assert (root / name).read_bytes() == PNG


async def test_save_collision_gets_random_suffix(store: AvatarStore, root: Path) -> None:
    first = await store.save(upload(PNG, "me.png"))
    second = await store.save(upload(JPEG, "me.png"))
    third = await store.save(upload(PNG, "me.png"))
    assert first == "avatars/me.png"
    assert SUFFIXED.match(second), second
    assert SUFFIXED.match(third), third
    assert len({first, second, third}) == 3
    assert (root / first).read_bytes() == PNG  # never overwritten
    assert (root / second).read_bytes() == JPEG


async def test_save_never_overwrites_a_foreign_file(store: AvatarStore, root: Path) -> None:
    (root / "avatars").mkdir(parents=True)
    (root / "avatars" / "me.png").write_bytes(b"someone else's")
    name = await store.save(upload(PNG, "me.png"))
    assert SUFFIXED.match(name)
    assert (root / "avatars" / "me.png").read_bytes() == b"someone else's"


async def test_save_truncates_long_names(store: AvatarStore, root: Path) -> None:
    filename = "x" * 300 + ".png"
    first = await store.save(upload(PNG, filename))
    second = await store.save(upload(PNG, filename))
    for name in (first, second):
        assert len(name) <= 100
        assert name.startswith("avatars/x") and name.endswith(".png")
        assert (root / name).read_bytes() == PNG
    assert len(first) == 100
    assert re.fullmatch(r"avatars/x+_[A-Za-z0-9]{7}\.png", second)
    assert len(second) == 100


async def test_save_truncates_multibyte_names_within_filesystem_limits(store: AvatarStore, root: Path) -> None:
    # 300 three-byte characters: fits 100 characters but not 255 bytes without care
    name = await store.save(upload(PNG, "漢" * 300 + ".png"))
    assert len(name) <= 100 and name.endswith(".png")
    assert len(name.split("/", 1)[1].encode()) <= 255
    assert (root / name).read_bytes() == PNG


async def test_save_concurrent_same_name_all_distinct(store: AvatarStore, root: Path) -> None:
    payloads = [encode("PNG", size=(i + 1, 1)) for i in range(25)]
    names = await asyncio.gather(*(store.save(upload(p, "me.png")) for p in payloads))
    assert len(set(names)) == 25
    assert names.count("avatars/me.png") == 1
    assert all(n == "avatars/me.png" or SUFFIXED.match(n) for n in names)
    for name, payload in zip(names, payloads, strict=True):
        assert (root / name).read_bytes() == payload


async def test_save_rewinds_after_validate(store: AvatarStore, root: Path) -> None:
    up = upload(PNG, "me.png")
    assert await store.validate(up) == []
    name = await store.save(up)
    assert (root / name).read_bytes() == PNG


async def test_save_refuses_non_files(store: AvatarStore) -> None:
    with pytest.raises(ValueError):
        await store.save("me.png")  # type: ignore[arg-type]


async def test_save_refuses_oversized_unvalidated_file_and_leaves_nothing(root: Path) -> None:
    s = AvatarStore(root, max_bytes=100)
    with pytest.raises(ValueError):
        await s.save(upload(b"\0" * 101, "me.png"))
    assert list((root / "avatars").iterdir()) == []


# ------------------------------------------------------------------------------------------------
# delete()
# ------------------------------------------------------------------------------------------------


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    return secret


async def test_delete_removes_stored_file(store: AvatarStore, root: Path) -> None:
    name = await store.save(upload(PNG, "me.png"))
    await store.delete(name)
    assert not (root / name).exists()
    assert (root / "avatars").is_dir()


@pytest.mark.parametrize("name", ["", None, "avatars/missing.png", "missing/deeper/x.png", "avatars/me.png/x"])
async def test_delete_ignores_empty_and_missing(store: AvatarStore, root: Path, name) -> None:
    (root / "avatars").mkdir()
    (root / "avatars" / "me.png").write_bytes(PNG)
    await store.delete(name)
    assert (root / "avatars" / "me.png").exists()


async def test_delete_twice_is_harmless(store: AvatarStore) -> None:
    name = await store.save(upload(PNG, "me.png"))
    await store.delete(name)
    await store.delete(name)


@pytest.mark.parametrize(
    "make_name",
    [
        lambda secret: "../secret.txt",
        lambda secret: "avatars/../../secret.txt",
        lambda secret: "avatars/../avatars/../../secret.txt",
        lambda secret: str(secret),  # absolute
        lambda secret: "/" + str(secret).lstrip("/"),
        lambda secret: "..\\secret.txt",
        lambda secret: "avatars\\..\\..\\secret.txt",
        lambda secret: "avatars/\x00../../secret.txt",
    ],
)
async def test_delete_never_escapes_the_root(store: AvatarStore, outside: Path, make_name) -> None:
    await store.delete(make_name(outside))
    assert outside.read_text() == "top secret"


async def test_delete_refuses_symlinked_directory_escape(store: AvatarStore, root: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "victim.png").write_bytes(PNG)
    (root / "avatars").mkdir()
    (root / "avatars" / "link").symlink_to(elsewhere, target_is_directory=True)
    await store.delete("avatars/link/victim.png")
    assert (elsewhere / "victim.png").exists()


async def test_delete_of_symlink_removes_only_the_link(store: AvatarStore, root: Path, outside: Path) -> None:
    (root / "avatars").mkdir()
    link = root / "avatars" / "evil.png"
    link.symlink_to(outside)
    await store.delete("avatars/evil.png")
    assert not link.is_symlink()
    assert outside.read_text() == "top secret"


@pytest.mark.parametrize("name", ["avatars", "avatars/", ".", "./", "avatars/."])
async def test_delete_never_removes_directories(store: AvatarStore, root: Path, name: str) -> None:
    (root / "avatars").mkdir()
    (root / "avatars" / "me.png").write_bytes(PNG)
    await store.delete(name)
    assert (root / "avatars" / "me.png").exists()


# ------------------------------------------------------------------------------------------------
# media_app(): /media/<path>
# ------------------------------------------------------------------------------------------------


@pytest.fixture
def served(root: Path, tmp_path: Path) -> Path:
    (root / "avatars").mkdir(parents=True)
    (root / "avatars" / "me.png").write_bytes(PNG)
    (root / "avatars" / "me.jpg").write_bytes(JPEG)
    (root / "avatars" / "png_named.svg").write_bytes(PNG)
    (root / "avatars" / "planted.svg").write_bytes(SVG)  # never stored by us; must not be served as SVG
    (root / "avatars" / "sub").mkdir()
    (tmp_path / "secret.txt").write_text("top secret")
    (tmp_path / "secret.png").write_bytes(PNG)
    (root / "avatars" / "escape.png").symlink_to(tmp_path / "secret.png")
    return root


@pytest.fixture
async def client(served: Path):
    app = Starlette(routes=[Mount("/media", app=media_app(served))])
    transport = httpx.ASGITransport(app=app)
    # follow_redirects: the enclosing router redirects "/media" to "/media/"
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver", follow_redirects=True) as ac:
        yield ac


def assert_hardened(response) -> None:
    assert response.headers["x-content-type-options"] == "nosniff"


def test_media_app_creates_missing_root(tmp_path: Path) -> None:
    media_app(tmp_path / "new" / "media")
    assert (tmp_path / "new" / "media").is_dir()


async def test_serves_png(client: httpx.AsyncClient) -> None:
    r = await client.get("/media/avatars/me.png")
    assert r.status_code == 200
    assert r.content == PNG
    assert r.headers["content-type"] == "image/png"
    assert r.headers["cache-control"] == "public, max-age=604800"
    assert_hardened(r)


async def test_serves_jpeg(client: httpx.AsyncClient) -> None:
    r = await client.get("/media/avatars/me.jpg")
    assert r.status_code == 200
    assert r.headers["content-type"] == "image/jpeg"
    assert r.headers["cache-control"] == "public, max-age=604800"
    assert_hardened(r)


async def test_content_type_comes_from_content(client: httpx.AsyncClient) -> None:
    r = await client.get("/media/avatars/png_named.svg")
    assert r.status_code == 200
    assert r.headers["content-type"] == "image/png"
    r = await client.get("/media/avatars/planted.svg")
    assert r.headers["content-type"] == "application/octet-stream"
    assert "svg" not in r.headers["content-type"]
    assert_hardened(r)


async def test_head(client: httpx.AsyncClient) -> None:
    r = await client.head("/media/avatars/me.png")
    assert r.status_code == 200
    assert r.content == b""
    assert r.headers["content-type"] == "image/png"
    assert r.headers["content-length"] == str(len(PNG))
    assert r.headers["cache-control"] == "public, max-age=604800"
    assert_hardened(r)


async def test_not_modified_keeps_headers(client: httpx.AsyncClient) -> None:
    etag = (await client.get("/media/avatars/me.png")).headers["etag"]
    r = await client.get("/media/avatars/me.png", headers={"if-none-match": etag})
    assert r.status_code == 304
    assert r.headers["cache-control"] == "public, max-age=604800"
    assert_hardened(r)


@pytest.mark.parametrize(
    "path", ["/media/avatars/nope.png", "/media/nope", "/media/avatars/sub", "/media/avatars", "/media/", "/media"]
)
async def test_unknown_paths_404_with_nosniff(client: httpx.AsyncClient, path: str) -> None:
    r = await client.get(path)
    assert r.status_code == 404
    assert_hardened(r)
    assert "public" not in r.headers.get("cache-control", "")


async def test_other_methods_rejected_with_nosniff(client: httpx.AsyncClient) -> None:
    r = await client.post("/media/avatars/me.png")
    assert r.status_code == 405
    assert "GET" in r.headers["allow"]
    assert_hardened(r)


async def test_symlink_escaping_root_not_served(client: httpx.AsyncClient) -> None:
    r = await client.get("/media/avatars/escape.png")
    assert r.status_code == 404
    assert_hardened(r)


@pytest.mark.parametrize(
    "url",
    [
        "/media/%2e%2e/secret.txt",
        "/media/avatars/%2e%2e/%2e%2e/secret.txt",
        "/media/%2E%2E/secret.png",
        "/media/..%2fsecret.txt",
        "/media/%2e%2e%2fsecret.txt",
        "/media/avatars/..%2f..%2fsecret.txt",
    ],
)
async def test_encoded_traversal_through_http_client(client: httpx.AsyncClient, url: str) -> None:
    r = await client.get(url)
    assert r.status_code == 404
    assert "top secret" not in r.text
    assert_hardened(r)


async def raw_get(app, path: str, root_path: str = "") -> tuple[int, dict[bytes, bytes], bytes]:
    """Call the ASGI app with an exact, un-normalized path (HTTP clients would clean '..' up)."""
    messages = []
    request_sent = False
    response_done = asyncio.Event()

    async def receive():
        nonlocal request_sent
        if not request_sent:
            request_sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await response_done.wait()  # as a server does: a disconnect only once the response is over
        return {"type": "http.disconnect"}

    async def send(message):
        messages.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            response_done.set()

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode("utf-8", "surrogateescape"),
        "root_path": root_path,
        "query_string": b"",
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 1234),
        "server": ("testserver", 80),
    }
    await app(scope, receive, send)
    start = next(m for m in messages if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    return start["status"], dict(start["headers"]), body


def traversal_paths(tmp_path: Path) -> list[str]:
    return [
        "/media/../secret.txt",
        "/media/avatars/../../secret.txt",
        "/media/avatars/../../../../../../etc/passwd",
        "/media/./../secret.png",
        "/media/%2e%2e/secret.txt",  # a server that did not decode: a literal name, still not found
        "/media//etc/passwd",
        "/media/" + str(tmp_path / "secret.txt"),  # absolute path appended
        "/media//" + str(tmp_path / "secret.txt").lstrip("/"),
        "/media/..\\secret.txt",
        "/media/avatars/me.png\x00.txt",
        "/media/" + "a" * 5000,
    ]


async def test_traversal_never_served_when_mounted(served: Path, tmp_path: Path) -> None:
    app = Starlette(routes=[Mount("/media", app=media_app(served))])
    for path in traversal_paths(tmp_path):
        status, headers, body = await raw_get(app, path)
        assert status == 404, path
        assert b"top secret" not in body and body != PNG, path
        assert headers[b"x-content-type-options"] == b"nosniff", path


async def test_traversal_never_served_standalone(served: Path, tmp_path: Path) -> None:
    app = media_app(served)
    for path in traversal_paths(tmp_path):
        status, headers, body = await raw_get(app, path, root_path="/media")
        assert status == 404, path
        assert b"top secret" not in body, path
        assert headers[b"x-content-type-options"] == b"nosniff", path
    status, headers, body = await raw_get(app, "/media/avatars/me.png", root_path="/media")
    assert (status, headers[b"content-type"], body) == (200, b"image/png", PNG)


async def test_served_through_httpx_asgi_transport(served: Path) -> None:
    app = Starlette(routes=[Mount("/media", app=media_app(served))])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as ac:
        r = await ac.get("/media/avatars/me.png")
        assert r.status_code == 200 and r.content == PNG
        assert r.headers["content-type"] == "image/png"
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["cache-control"] == "public, max-age=604800"
        r = await ac.get("/media/avatars/missing.png")
        assert r.status_code == 404 and r.headers["x-content-type-options"] == "nosniff"


async def test_round_trip_save_then_serve_then_delete(store: AvatarStore, root: Path) -> None:
    name = await store.save(upload(JPEG, "my photo!.JPG"))
    app = Starlette(routes=[Mount("/media", app=media_app(root))])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as ac:
        r = await ac.get(f"/media/{name}")
        assert r.status_code == 200 and r.content == JPEG and r.headers["content-type"] == "image/jpeg"
        await store.delete(name)
        r = await ac.get(f"/media/{name}")
        assert r.status_code == 404 and r.headers["x-content-type-options"] == "nosniff"
