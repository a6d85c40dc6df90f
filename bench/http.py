"""HTTP/1.1 clients of the load generator.

:class:`RawConnection` is a minimal keep-alive client on asyncio streams: the request bytes are built
once, a response is read by its ``Content-Length`` (or chunks). It spends a few tens of microseconds of
CPU per request, so on a small machine the load generator takes little CPU from the platform it
measures. :class:`HttpxConnection` does the same through ``httpx`` (``--http-client httpx``), for
comparison.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlsplit


def graphql_request(
    url: str, query: str, variables: dict[str, Any] | None, headers: dict[str, str], operation: str | None = None
) -> bytes:
    """The bytes of one ``POST /graphql/`` request with a JSON body."""
    parts = urlsplit(url)
    body: dict[str, Any] = {"query": query}
    if variables:
        body["variables"] = variables
    if operation:
        body["operationName"] = operation
    payload = json.dumps(body, separators=(",", ":")).encode()
    lines = [
        f"POST {parts.path or '/'} HTTP/1.1",
        f"Host: {parts.netloc}",
        "Content-Type: application/json",
        "Accept: application/json",
        f"Content-Length: {len(payload)}",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


class HttpError(Exception):
    pass


class RawConnection:
    """One keep-alive connection; :meth:`send` writes prepared request bytes and returns (status, body).
    A broken connection is reopened on the next request."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def _open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port, limit=1 << 22)

    async def send(self, request: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            await self._open()
        assert self.reader is not None and self.writer is not None
        try:
            self.writer.write(request)
            head = await self.reader.readuntil(b"\r\n\r\n")
            status_line, _, header_block = head.partition(b"\r\n")
            status = int(status_line.split(b" ", 2)[1])
            length = -1
            chunked = close = False
            for line in header_block.split(b"\r\n"):
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"transfer-encoding" and b"chunked" in value.lower():
                    chunked = True
                elif name == b"connection" and b"close" in value.lower():
                    close = True
            if chunked:
                body = await self._read_chunks()
            elif length >= 0:
                body = await self.reader.readexactly(length)
            else:
                body = await self.reader.read()
                close = True
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, IndexError) as exc:
            await self.close()
            raise HttpError(f"{type(exc).__name__}: {exc}") from None
        if close:
            await self.close()
        return status, body

    async def _read_chunks(self) -> bytes:
        assert self.reader is not None
        parts = []
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await self.reader.readuntil(b"\r\n")
                return b"".join(parts)
            parts.append(await self.reader.readexactly(size))
            await self.reader.readexactly(2)

    async def close(self) -> None:
        writer, self.writer, self.reader = self.writer, None, None
        if writer is not None:
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:
                pass


class HttpxConnection:
    """The same interface through one ``httpx.AsyncClient`` (one keep-alive connection)."""

    def __init__(self, url: str) -> None:
        import httpx

        self.url = url
        self.client = httpx.AsyncClient(
            timeout=30, limits=httpx.Limits(max_connections=1, max_keepalive_connections=1)
        )

    async def send(self, request: bytes) -> tuple[int, bytes]:
        head, _, body = request.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.lower() not in ("host", "content-length"):
                headers[name] = value.strip()
        parts = urlsplit(self.url)
        try:
            response = await self.client.request(
                method, f"{parts.scheme}://{parts.netloc}{path}", content=body, headers=headers
            )
        except Exception as exc:  # noqa: BLE001 - any transport failure is an error of the request
            raise HttpError(f"{type(exc).__name__}: {exc}") from None
        return response.status_code, response.content

    async def close(self) -> None:
        await self.client.aclose()
