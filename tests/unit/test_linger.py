"""ingest_api.linger's transport under uvicorn's real protocol: an answer's head and body leave
in one write, and a head whose body comes later is not held past its turn of the loop."""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.config import Config
from uvicorn.server import ServerState

from ingest_api.linger import LingeringHttpProtocol

REQUEST = b"GET /checkin/x HTTP/1.1\r\nHost: t\r\n\r\n"


class RecordingTransport(asyncio.Transport):
    """Stands for the socket: records each write, i.e. each send() the kernel would see."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:  # type: ignore[override]
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 40000), "sockname": ("127.0.0.1", 8000)}.get(
            name, default
        )

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def serve(app: Any) -> tuple[LingeringHttpProtocol, RecordingTransport]:
    config = Config(app=app, http=LingeringHttpProtocol, lifespan="off", access_log=False)
    config.load()
    protocol = LingeringHttpProtocol(config=config, server_state=ServerState(), app_state={})
    transport = RecordingTransport()
    protocol.connection_made(transport)  # type: ignore[arg-type]
    return protocol, transport


async def until(condition: Any, what: str) -> None:
    async with asyncio.timeout(5):  # a deadline, not a guess: fails only if it never happens
        while not condition():
            await asyncio.sleep(0)


def test_it_sends_an_answers_head_and_body_in_one_write() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"2")],
            }
        )
        await send({"type": "http.response.body", "body": b"{}"})

    async def main() -> None:
        protocol, transport = serve(app)
        protocol.data_received(REQUEST)
        await until(lambda: transport.writes, "the answer")
        await asyncio.sleep(0)  # a held write would show up as a second one now
        (answer,) = transport.writes
        assert answer.startswith(b"HTTP/1.1 200 OK\r\n") and answer.endswith(b"\r\n\r\n{}")
        protocol.data_received(REQUEST)  # keep-alive: the next answer is one write too
        await until(lambda: len(transport.writes) == 2, "the second answer")
        assert transport.writes[1].endswith(b"\r\n\r\n{}")

    asyncio.run(main())


def test_a_head_whose_body_comes_later_is_sent_at_the_end_of_its_turn() -> None:
    body_may_go = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", b"4")],
            }
        )
        await body_may_go.wait()
        await send({"type": "http.response.body", "body": b"late"})

    async def main() -> None:
        protocol, transport = serve(app)
        protocol.data_received(REQUEST)
        await until(lambda: transport.writes, "the head alone")
        assert transport.writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
        assert transport.writes[0].endswith(b"\r\n\r\n")
        body_may_go.set()
        await until(lambda: len(transport.writes) == 2, "the body")
        assert transport.writes[1] == b"late"

    asyncio.run(main())


def test_closing_sends_what_was_held_first() -> None:
    async def main() -> None:
        protocol, transport = serve(None)
        protocol.transport.write(b"held")
        protocol.transport.close()
        assert transport.writes == [b"held"] and transport.closed
        await asyncio.sleep(0)  # the end of the turn finds nothing more to send
        assert transport.writes == [b"held"]

    asyncio.run(main())
