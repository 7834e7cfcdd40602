"""HTTP/1.1 serving for the POS endpoint: asyncio on one thread, h11 for the protocol, limits for hostile clients.

Why not http.server: one thread per connection and no deadline for a whole request, so ~1,100 connections
that dribbled their headers used up the file descriptors, and 3,000 made 3,000 threads that starved the
frame loop (issue #14). Why not uvicorn: it has no header timeout (its keep-alive timer starts after a first
response), and neither its `limit_concurrency` (which answers 503 to requests, not connections) nor
anything else bounds the connections it holds: measured, 1,500 slow clients took all 1,024 descriptors. Here:

- at most `max_connections` are open. At the cap, a new connection whose whole request has already arrived
  (a POS sends it at once) takes the place of the open connection that has waited longest for its request;
  one with its headers complete gets a second look after SECOND_LOOK_S (its body may be a packet behind);
  any other (a slow client still sending) is closed at once, before it costs anything more;
- a request must arrive whole, headers and body, within `request_timeout_s` of the wait for it starting,
  else 408 and the connection closes (an idle keep-alive connection simply closes);
- broken HTTP gets 400 and a head over MAX_HEADER_BYTES 431 (edge.challenge.request_head); the connection closes;
- the connection also closes after any reply whose request body was not read, so a refused request's body is
  never taken for the next request.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import socket
from dataclasses import dataclass
from http import HTTPStatus
from typing import Protocol

import h11

from edge.challenge.request_head import MAX_HEADER_BYTES, protocol_refusal, refusal

READ_CHUNK = 4096
ACCEPT_BATCH = 64  # connections taken from the kernel's queue per wake-up
ACCEPT_RETRY_S = 0.1  # after accept() failed (no descriptor left): pause rather than spin
SECOND_LOOK_S = 0.05
MAX_SECOND_LOOKS = 64  # connections held for a second look at once
CLOSE_GRACE_S = 1.0  # a reply the client has not taken by then is dropped with its connection


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # without the query
    target: str  # as sent, for messages
    headers: dict[bytes, bytes]  # lower-case names

    @classmethod
    def from_h11(cls, event: h11.Request) -> Request:
        target = event.target.decode("latin-1")
        return cls(event.method.decode("latin-1"), target.split("?")[0], target, dict(event.headers))


@dataclass(frozen=True)
class Reply:
    status: int
    body: dict
    close: bool = False  # the connection also closes when the request's body was not read


class Handler(Protocol):
    async def head(self, request: Request) -> Reply | None:
        """A reply at once (a refusal, /health), or None to read the body and call `body`."""

    async def body(self, request: Request, data: bytes) -> Reply: ...

    async def refuse(self, status: int, reason: str, close: bool = False) -> Reply:
        """Count and record a refused request; returns its reply."""

    def shed(self, kind: str) -> None:
        """A connection was let go unanswered: "turned_away", "evicted" or "accept_failed"."""


@dataclass(eq=False)
class _Slot:
    waiting_since: float
    reading: bool = True  # waiting for the client's bytes (only such a connection may be evicted)
    dropped: bool = False
    received: int = 0  # bytes read; less those h11 still holds, the bytes it has parsed (it does not count them)
    writer: asyncio.StreamWriter | None = None


class Endpoint:
    def __init__(
        self, sock: socket.socket, handler: Handler, max_connections: int, request_timeout_s: float, peek_bytes: int
    ) -> None:
        self.sock, self.handler = sock, handler
        self.max_connections, self.request_timeout_s, self.peek_bytes = max_connections, request_timeout_s, peek_bytes
        self.slots: set[_Slot] = set()
        self.tasks: set[asyncio.Task] = set()
        self.second_looks: set[socket.socket] = set()

    async def serve(self) -> None:
        """Accept connections until cancelled, then drop every open one."""
        loop = asyncio.get_running_loop()
        self.sock.setblocking(False)
        with contextlib.suppress(AttributeError, OSError):  # Linux: a connection is handed over with its first bytes
            seconds = math.ceil(self.request_timeout_s)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT, seconds)
        loop.add_reader(self.sock, self._accept_ready)
        try:
            await asyncio.Event().wait()
        finally:
            loop.remove_reader(self.sock)
            for conn in self.second_looks:
                conn.close()
            for slot in list(self.slots):
                self._drop(slot)
            for task in list(self.tasks):
                task.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)

    def _accept_ready(self) -> None:
        for _ in range(ACCEPT_BATCH):
            try:
                conn, _ = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # EMFILE, ENFILE, ENOBUFS: the queue waits in the kernel meanwhile
                self.handler.shed("accept_failed")
                loop = asyncio.get_running_loop()
                loop.remove_reader(self.sock)
                loop.call_later(ACCEPT_RETRY_S, loop.add_reader, self.sock, self._accept_ready)
                return
            conn.setblocking(False)
            if len(self.slots) < self.max_connections:
                self._start(conn)
            else:
                self._at_cap(conn, second_look=True)

    def _at_cap(self, conn: socket.socket, second_look: bool) -> None:
        """Room for a connection whose whole request is already here, at the expense of the one that has waited
        longest for its own request; none for one still sending its headers (what slow clients do)."""
        progress = _progress(_peek(conn, self.peek_bytes))
        waiting = [slot for slot in self.slots if slot.reading]
        if progress == "whole" and waiting:
            self._drop(min(waiting, key=lambda slot: slot.waiting_since))
            self.handler.shed("evicted")
            self._start(conn)
        elif progress == "head" and second_look and len(self.second_looks) < MAX_SECOND_LOOKS:
            self.second_looks.add(conn)
            asyncio.get_running_loop().call_later(SECOND_LOOK_S, self._look_again, conn)
        else:
            conn.close()
            self.handler.shed("turned_away")

    def _look_again(self, conn: socket.socket) -> None:
        if conn not in self.second_looks:  # stopped meanwhile
            return
        self.second_looks.discard(conn)
        if len(self.slots) < self.max_connections:
            self._start(conn)
        else:
            self._at_cap(conn, second_look=False)

    def _drop(self, slot: _Slot) -> None:
        self.slots.discard(slot)
        slot.dropped = True
        if slot.writer is not None:
            slot.writer.transport.abort()

    def _start(self, conn: socket.socket) -> None:
        slot = _Slot(asyncio.get_running_loop().time())
        self.slots.add(slot)
        task = asyncio.get_running_loop().create_task(self._connection(conn, slot))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        task.add_done_callback(lambda _: conn.close())  # also when cancelled before it ran (at stop)

    async def _connection(self, conn: socket.socket, slot: _Slot) -> None:
        http = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEADER_BYTES)
        try:
            reader, slot.writer = await asyncio.open_connection(sock=conn, limit=4 * READ_CHUNK)
            while not slot.dropped and await self._exchange(http, reader, slot.writer, slot):
                http.start_next_cycle()
        except (OSError, h11.ProtocolError):  # reset by the peer, a reply it never took
            pass
        finally:
            self.slots.discard(slot)
            if slot.writer is not None:
                await _close(slot.writer)

    async def _exchange(
        self, http: h11.Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, slot: _Slot
    ) -> bool:
        """One request and its reply; True to keep the connection for the next request."""
        slot.waiting_since = asyncio.get_running_loop().time()
        deadline = slot.waiting_since + self.request_timeout_s
        method, parsed = "", _parsed(http, slot)
        try:
            event = await _next_event(http, reader, deadline, slot)
            if not isinstance(event, h11.Request):
                return False  # the client is gone
            request = Request.from_h11(event)
            method = request.method
            refused = refusal(event, _parsed(http, slot) - parsed)
            reply = await self.handler.refuse(*refused, close=True) if refused else await self.handler.head(request)
            if reply is None:
                if http.they_are_waiting_for_100_continue:
                    writer.write(http.send(h11.InformationalResponse(status_code=100, headers=[])))
                data = await _read_body(http, reader, deadline, slot)
                if data is None:
                    return False
                reply = await self.handler.body(request, data)
        except TimeoutError:
            if slot.dropped or (http.their_state is h11.IDLE and not http.trailing_data[0]):
                return False  # evicted, or an idle keep-alive connection: nothing to answer
            timeout = self.request_timeout_s
            reply = await self.handler.refuse(408, f"request not complete within {timeout:g} s", close=True)
        except h11.RemoteProtocolError as error:
            if slot.dropped:
                return False
            reply = await self.handler.refuse(*protocol_refusal(error), close=True)
        return await self._send(http, writer, reply, with_body=method != "HEAD")

    async def _send(self, http: h11.Connection, writer: asyncio.StreamWriter, reply: Reply, with_body: bool) -> bool:
        """Reply; a HEAD's reply has the headers alone (h11 refused its body, and the client got nothing)."""
        _settle(http)
        close = reply.close or http.their_state is not h11.DONE
        body = json.dumps(reply.body).encode()
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        if close:
            headers.append(("Connection", "close"))
        head = h11.Response(status_code=reply.status, headers=headers, reason=HTTPStatus(reply.status).phrase)
        data = http.send(head) + (http.send(h11.Data(data=body)) if with_body else b"")
        writer.write(data + http.send(h11.EndOfMessage()))
        async with asyncio.timeout(self.request_timeout_s):
            await writer.drain()
        return not close and http.our_state is h11.DONE and http.their_state is h11.DONE


async def _next_event(http: h11.Connection, reader: asyncio.StreamReader, deadline: float, slot: _Slot) -> object:
    """The next h11 event, reading until the deadline (TimeoutError); None once the client has gone."""
    while (event := http.next_event()) is h11.NEED_DATA:
        slot.reading = True
        try:
            async with asyncio.timeout_at(deadline):
                data = await reader.read(READ_CHUNK)
        finally:
            slot.reading = False
        if not data:
            return None
        slot.received += len(data)
        http.receive_data(data)
    return None if isinstance(event, h11.ConnectionClosed) else event


async def _read_body(http: h11.Connection, reader: asyncio.StreamReader, deadline: float, slot: _Slot) -> bytes | None:
    """The whole body (its length was checked by the handler), or None if the client left."""
    chunks = []
    while not isinstance(event := await _next_event(http, reader, deadline, slot), h11.EndOfMessage):
        if event is None:
            return None
        chunks.append(bytes(event.data))
    return b"".join(chunks)


def _parsed(http: h11.Connection, slot: _Slot) -> int:
    """Bytes of the connection h11 has parsed so far."""
    return slot.received - len(http.trailing_data[0])


def _settle(http: h11.Connection) -> None:
    """Consume a refused request's body if it is already buffered (never waiting), so the connection may go on."""
    with contextlib.suppress(h11.RemoteProtocolError):
        while http.their_state is h11.SEND_BODY and http.next_event() is not h11.NEED_DATA:
            pass


def _peek(conn: socket.socket, size: int) -> bytes:
    try:
        return conn.recv(size, socket.MSG_PEEK)
    except OSError:  # nothing there yet (BlockingIOError), or already reset
        return b""


def _progress(data: bytes) -> str:
    """How much of a request `data` holds: "whole" (or broken enough to be answered at once), "head" or "partial"."""
    http = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEADER_BYTES)
    http.receive_data(data)
    progress = "partial"
    try:
        while (event := http.next_event()) is not h11.NEED_DATA:
            if isinstance(event, h11.EndOfMessage):
                return "whole"
            progress = "head"
    except h11.RemoteProtocolError:
        return "whole"
    return progress


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    try:
        async with asyncio.timeout(CLOSE_GRACE_S):
            await writer.wait_closed()
    except (OSError, TimeoutError):  # a peer that does not take its reply does not keep the descriptor
        writer.transport.abort()
