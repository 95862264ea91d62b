"""The RFC 9329 relay in-process on loopback: charon's side is a plain UDP socket here."""
import asyncio
import io
import socket

import pytest

from lab.transport.framing import PREFIX, Deframer, frame
from lab.transport.relay import RelayLog, serve

IKE = b"\0\0\0\0" + b"\x11" * 28
ESP = b"\xaa\xbb\xcc\xdd" + b"\x00" * 32


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def charon():
    """Stands in for charon: a UDP socket on 127.0.0.2."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.2", 0))
    sock.setblocking(False)
    yield sock
    sock.close()


async def recv(sock: socket.socket, timeout: float = 2.0) -> bytes:
    return await asyncio.wait_for(asyncio.get_running_loop().sock_recv(sock, 65536), timeout)


async def read_frames(reader: asyncio.StreamReader, deframer: Deframer, count: int) -> list[bytes]:
    out: list[bytes] = []
    while len(out) < count:
        out += deframer.feed(await asyncio.wait_for(reader.read(65536), 2))
    return out


def test_server_relay_frames_both_ways_and_survives_a_bad_client(charon):
    port = free_tcp_port()
    charon_port = charon.getsockname()[1]
    log = io.StringIO()
    config = {"charon": "127.0.0.2", "charon_port": charon_port, "relay_port": charon_port + 1,
              "tcp_port": port, "udp_port": free_tcp_port(), "mode": "tcp", "auto_threshold": 1,
              "connect_timeout": 1, "tunnels": [{"name": "t1", "relay": "127.0.0.3", "listen": "127.0.0.1"}]}

    async def scenario():
        relay = asyncio.ensure_future(serve(config, RelayLog(log)))
        while "ready" not in log.getvalue():
            await asyncio.sleep(0.01)
        # A client that does not speak IKETCP is closed and logged...
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\n\r\n")
        assert await asyncio.wait_for(reader.read(), 2) == b""
        assert "closing TCP connection: stream does not start with IKETCP" in log.getvalue()
        # ...and the next one is served: split writes, two messages in one write.
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        stream = PREFIX + frame(IKE) + frame(ESP)
        writer.write(stream[:3])
        await writer.drain()
        writer.write(stream[3:])
        assert [await recv(charon), await recv(charon)] == [IKE, ESP]
        # charon's answer goes back framed; its NAT keepalive does not.
        charon.sendto(b"\xff", ("127.0.0.3", charon_port + 1))
        charon.sendto(IKE, ("127.0.0.3", charon_port + 1))
        assert await read_frames(reader, Deframer(expect_prefix=False), 1) == [IKE]
        writer.close()
        relay.cancel()

    asyncio.run(scenario())


def test_client_relay_connects_sends_prefix_and_queued_messages(charon):
    port = free_tcp_port()
    charon_port = charon.getsockname()[1]
    log = io.StringIO()
    config = {"charon": "127.0.0.2", "charon_port": charon_port, "relay_port": charon_port + 2,
              "tcp_port": port, "udp_port": free_tcp_port(), "mode": "tcp", "auto_threshold": 1,
              "connect_timeout": 1,
              "tunnels": [{"name": "c1", "relay": "127.0.0.4", "remote": "127.0.0.1", "local": "127.0.0.1"}]}
    received: list[bytes] = []

    async def scenario():
        accepted = asyncio.get_running_loop().create_future()

        async def peer(reader, writer):
            deframer = Deframer(expect_prefix=True)
            received.extend(await read_frames(reader, deframer, 1))
            writer.write(frame(ESP))
            accepted.set_result(True)

        server = await asyncio.start_server(peer, "127.0.0.1", port)
        relay = asyncio.ensure_future(serve(config, RelayLog(log)))
        while "ready" not in log.getvalue():
            await asyncio.sleep(0.01)
        charon.sendto(IKE, ("127.0.0.4", charon_port + 2))
        await asyncio.wait_for(accepted, 2)
        assert await recv(charon) == ESP
        relay.cancel()
        server.close()

    asyncio.run(scenario())
    assert received == [IKE]
    assert "connected from 127.0.0.1:" in log.getvalue()
