"""python's http.server for a lab node: `python -m lab.httpd ADDRESS PORT DIRECTORY`.

The same static file server as `python3 -m http.server --bind ADDRESS --directory DIRECTORY
PORT`, without the reverse DNS lookup http.server makes of its address as it starts: inside a
node whose default route leads into the lab, that query waits for a resolver nobody can reach,
and the server would start seconds late. Standard library only: it starts in a fresh Python.
"""
from __future__ import annotations

import functools
import socketserver
import sys
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer


class LabHTTPServer(ThreadingHTTPServer):
    def server_bind(self) -> None:
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]


def main(argv: list[str]) -> None:
    address, port, directory = argv
    handler = functools.partial(SimpleHTTPRequestHandler, directory=directory)
    with LabHTTPServer((address, int(port)), handler) as server:
        print(f"Serving HTTP on {address} port {port}", flush=True)
        server.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1:])
