"""RFC 9329 relay beside charon: charon speaks UDP to a relay address in its own node,
the relay carries each datagram as one frame over TCP (or plain UDP) to the other gateway.

Runs inside a gateway's namespace: `python -m lab.transport.relay CONFIG.json`.
Server tunnels (the TCP responder) listen on a WAN address; client tunnels connect out,
with transport `tcp`, `udp`, or `auto` (UDP first, TCP after `auto_threshold` seconds
without an answer, as FortiOS `transport auto`). A connection that breaks the framing is
closed and logged; the relay goes on serving the others.
"""
from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import time
from typing import Any, TextIO

from lab.transport.framing import NAT_KEEPALIVE, PREFIX, Deframer, FrameError, frame, kind

class RelayLog:
    def __init__(self, stream: TextIO):
        self.stream = stream

    def __call__(self, tunnel: str, text: str) -> None:
        stamp = time.strftime("%H:%M:%S") + f".{int(time.time() * 1000) % 1000:03d}"
        self.stream.write(f"{stamp} [{tunnel}] {text}\n")
        self.stream.flush()


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, on_datagram):
        self.on_datagram = on_datagram

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        self.on_datagram(data, addr)


async def _udp(loop: asyncio.AbstractEventLoop, addr: tuple[str, int], on_datagram) -> asyncio.DatagramTransport:
    """A UDP socket on a specific address; SO_REUSEADDR lets it sit beside charon's wildcard socket."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(addr)
    transport, _ = await loop.create_datagram_endpoint(lambda: _Datagrams(on_datagram), sock=sock)
    return transport


class RelayLink:
    """One charon peer: the relay address charon sends to, and the way to the real peer."""

    def __init__(self, cfg: dict[str, Any], relay: dict[str, Any], log: RelayLog):
        self.name = cfg["name"]
        self.relay_addr = (cfg["relay"], relay["relay_port"])
        self.charon_addr = (relay["charon"], relay["charon_port"])
        self.tcp_port = relay["tcp_port"]
        self.udp_port = relay["udp_port"]
        self.log = lambda text: log(self.name, text)
        self.to_charon_sock: asyncio.DatagramTransport | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.udp_sock: asyncio.DatagramTransport | None = None
        self.udp_peer: tuple | None = None

    async def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self.to_charon_sock = await _udp(loop, self.relay_addr, self._from_charon)

    def _from_charon(self, payload: bytes, addr: tuple) -> None:
        if payload == NAT_KEEPALIVE:
            return  # meaningless over TCP, and charon's receiver drops them too
        self.to_peer(payload)

    def to_charon(self, payload: bytes) -> None:
        self.to_charon_sock.sendto(payload, self.charon_addr)

    def to_peer(self, payload: bytes) -> None:
        raise NotImplementedError

    def send_tcp(self, payload: bytes) -> bool:
        if self.writer is None or self.writer.is_closing():
            return False
        self.writer.write(frame(payload))
        return True

    async def pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, expect_prefix: bool) -> None:
        """Frames from the TCP peer to charon until EOF or a framing error."""
        deframer = Deframer(expect_prefix)
        try:
            while data := await reader.read(65536):
                for message in deframer.feed(data):
                    self.to_charon(message)
            self.log("TCP connection closed by the peer")
        except FrameError as exc:
            self.log(f"closing TCP connection: {exc}")
        except ConnectionError as exc:
            self.log(f"TCP connection lost: {exc}")
        finally:
            writer.close()
            if self.writer is writer:
                self.writer = None


class ServerLink(RelayLink):
    """The TCP responder: accepts on a WAN address (and takes UDP there too)."""

    def __init__(self, cfg, relay, log):
        super().__init__(cfg, relay, log)
        self.listen = cfg["listen"]

    async def start(self, loop) -> None:
        await super().start(loop)
        self.server = await asyncio.start_server(self._accept, self.listen, self.tcp_port, reuse_address=True)
        self.udp_sock = await _udp(loop, (self.listen, self.udp_port), self._from_udp_peer)
        self.log(f"listening on TCP {self.listen}:{self.tcp_port} and UDP {self.listen}:{self.udp_port}")

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.log(f"accepted TCP from {peer[0]}:{peer[1]} on {self.listen}:{self.tcp_port}")
        self.writer, self.udp_peer = writer, None  # the newest transport carries charon's replies
        await self.pump(reader, writer, expect_prefix=True)

    def _from_udp_peer(self, payload: bytes, addr: tuple) -> None:
        if self.udp_peer != addr:
            self.log(f"UDP from {addr[0]}:{addr[1]}")
        self.udp_peer, self.writer = addr, None
        if payload != NAT_KEEPALIVE:
            self.to_charon(payload)

    def to_peer(self, payload: bytes) -> None:
        if self.send_tcp(payload):
            return
        if self.udp_peer:
            self.udp_sock.sendto(payload, self.udp_peer)
        else:
            self.log(f"no connection from the peer: {kind(payload)} from charon dropped")


class ClientLink(RelayLink):
    """The TCP initiator: connects to the peer's WAN address, or uses UDP (`auto`: first)."""

    def __init__(self, cfg, relay, log):
        super().__init__(cfg, relay, log)
        self.remote = cfg["remote"]
        self.local = cfg["local"]
        self.mode = relay["mode"]
        self.threshold = relay["auto_threshold"]
        self.connect_timeout = relay["connect_timeout"]
        self.use_tcp = self.mode == "tcp"
        self.udp_answered = False
        self.first_udp: float | None = None
        self.queue: list[bytes] = []
        self.connecting: asyncio.Task | None = None

    async def start(self, loop) -> None:
        await super().start(loop)
        if self.mode != "tcp":
            self.udp_sock = await _udp(loop, (self.local, self.udp_port), self._from_udp_peer)
        self.log(f"transport {self.mode} to {self.remote} (TCP port {self.tcp_port}, UDP port {self.udp_port})")

    def _from_udp_peer(self, payload: bytes, addr: tuple) -> None:
        self.udp_answered = True
        if payload != NAT_KEEPALIVE:
            self.to_charon(payload)

    def to_peer(self, payload: bytes) -> None:
        if not self.use_tcp and self.mode == "auto" and not self.udp_answered and self.first_udp is not None \
                and time.monotonic() - self.first_udp >= self.threshold:
            self.log(f"no answer over UDP for {self.threshold:g}s: falling back to TCP")
            self.use_tcp = True
        if not self.use_tcp:
            self.first_udp = self.first_udp or time.monotonic()
            self.udp_sock.sendto(payload, (self.remote, self.udp_port))
            return
        if not self.send_tcp(payload):
            self.queue = (self.queue + [payload])[-16:]  # charon retransmits; keep the newest
            if self.connecting is None or self.connecting.done():
                self.connecting = asyncio.ensure_future(self._connect())

    async def _connect(self) -> None:
        self.log(f"connecting to {self.remote}:{self.tcp_port}")
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(self.remote, self.tcp_port, local_addr=(self.local, 0)),
                self.connect_timeout)
        except (OSError, asyncio.TimeoutError) as exc:
            reason = os.strerror(exc.errno) if getattr(exc, "errno", None) else (str(exc) or "timed out")
            self.log(f"TCP connect to {self.remote}:{self.tcp_port} failed: {reason}")
            self.queue.clear()
            return
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        local = writer.get_extra_info("sockname")
        self.log(f"connected from {local[0]}:{local[1]} to {self.remote}:{self.tcp_port}")
        writer.write(PREFIX + b"".join(frame(p) for p in self.queue))
        self.queue.clear()
        self.writer = writer
        await self.pump(reader, writer, expect_prefix=False)


async def serve(config: dict[str, Any], log: RelayLog) -> None:
    loop = asyncio.get_running_loop()
    tunnels = [ServerLink(t, config, log) if t.get("listen") else ClientLink(t, config, log)
               for t in config["tunnels"]]
    for tunnel in tunnels:
        await tunnel.start(loop)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log("relay", "ready")
    await stop.wait()
    log("relay", "stopping")


def main() -> None:
    config = json.loads(open(sys.argv[1]).read())
    with open(config["log"], "a") as stream:
        asyncio.run(serve(config, RelayLog(stream)))


if __name__ == "__main__":
    main()
