"""I/O-bound work: a round trip to a tiny TCP echo server on 127.0.0.1.

Threads spend the round trip waiting on the socket with the GIL released, so
they overlap as well as processes do, at a much lower start-up cost.
"""

import socket
import socketserver
import threading
import time


class _EchoHandler(socketserver.BaseRequestHandler):
    def handle(self):
        latency = self.server.latency
        while chunk := self.request.recv(65536):
            if latency:
                time.sleep(latency)  # a remote service takes its time to answer
            self.request.sendall(chunk)


class _Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    request_queue_size = 128  # many workers connect at once


class EchoServer:
    """Echo server on a free port of 127.0.0.1; ``with EchoServer() as s: s.address``.

    ``latency`` (seconds) delays each reply, like a service across a network.
    """

    def __init__(self, latency=0.0):
        self._server = _Server(("127.0.0.1", 0), _EchoHandler)
        self._server.latency = latency
        self.address = self._server.server_address
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            args=(0.05,),  # poll interval: how soon shutdown() is noticed
            name="echo-server",
            daemon=True,
        )

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._server.shutdown()
        self._server.server_close()  # also joins the handler threads
        self._thread.join()


def round_trip(address, payload, timeout=10.0):
    """Send ``payload`` (bytes) to the echo server and return what comes back."""
    with socket.create_connection(address, timeout=timeout) as sock:
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)
