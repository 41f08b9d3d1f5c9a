"""Reading a request body without ever holding more than the cap in memory."""

from __future__ import annotations

from starlette.requests import Request


class BodyTooLarge(Exception):
    pass


async def read_capped(request: Request, cap: int) -> bytes:
    """The whole body, or BodyTooLarge as soon as it is known to exceed cap bytes.

    A declared Content-Length over the cap is refused before a byte is read; a chunked (or
    lying) body is cut off at the first chunk that crosses the cap.
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > cap:
        raise BodyTooLarge
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > cap:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)
