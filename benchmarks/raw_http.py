"""A bare HTTP/1.1 keep-alive GET client on asyncio streams, for load generation.

httpx's async pool picks a connection for each request by scanning every connection
(``httpcore`` ``_assign_requests_to_connections``): with 200 connections open, the client spent
a whole CPU on that scan and the benchmark measured the client, not the server (py-spy: 75 % of
client samples in ``is_idle``; the server sat at 20–50 % of one CPU). One connection per request
slot, no pool and no parsing beyond status line and ``Content-Length`` keeps the client cheap.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit


class RawConnection:
    """One keep-alive connection; ``get`` sends a request and reads the whole response."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, headers: str):
        self.reader, self.writer, self.host, self.headers = reader, writer, host, headers

    @classmethod
    async def open(cls, base: str, headers: dict[str, str]) -> RawConnection:
        url = urlsplit(base)
        reader, writer = await asyncio.open_connection(url.hostname, url.port or 80)
        extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        return cls(reader, writer, f"{url.hostname}:{url.port}", extra)

    async def get(self, path: str) -> tuple[int, bytes]:
        """(status, body); raises ``ConnectionError`` when the server closes the connection."""
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\n{self.headers}\r\n".encode())
        await self.writer.drain()
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length = None
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
            elif name.strip().lower() == "transfer-encoding" and "chunked" in value.lower():
                raise ConnectionError("chunked responses are not supported by this client")
        if length is None:
            raise ConnectionError("response without Content-Length")
        return status, await self.reader.readexactly(length)

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except ConnectionError:
            pass
