"""XML-RPC over HTTP, one endpoint per host on its own loopback address (one shared port).

The master's address is the pool's URL; a member's answers HOST_IS_SLAVE naming the
master, so a client that follows it reconnects with the same scheme and port, as with a
real pool. A host in `faults.down_hosts` does not listen at all (connections refused).
`POST /control` (JSON) drives faults from another process; `GET /control/calls` returns
the call log.
"""

from __future__ import annotations

import json
import socket
import ssl
import struct
import sys
import threading
import time
import xmlrpc.client
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from bot.simulator.control import control
from bot.simulator.pool import Simulator
from bot.simulator.wire import XapiError, failure, success


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: with Nagle on, the client's delayed ACK holds
    # the second one back ~40 ms, which would make every simulated call that slow.
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet by default
        pass

    def do_GET(self) -> None:
        if self.path == "/control/calls":
            sim = self.server.sim
            self._reply(
                200,
                json.dumps({"total": sim.calls.total, "counts": dict(sim.calls.counts)}).encode(),
                "application/json",
            )
        else:
            self._reply(404, b"not found", "text/plain")

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.server.address in self.server.sim.faults.down_hosts:
            self._reset()  # a connection opened before the host went down dies with it
        elif self.path == "/control":
            self._control(body)
        elif self.path in ("/", "/RPC2"):
            self._rpc(body)
        else:
            self._reply(404, b"not found", "text/plain")

    def _control(self, body: bytes) -> None:
        try:
            answer = control(self.server.sim, json.loads(body or b"{}"))
        except (ValueError, TypeError, KeyError, XapiError) as error:
            self._reply(400, json.dumps({"error": str(error)}).encode(), "application/json")
        else:
            self._reply(200, json.dumps(answer).encode(), "application/json")

    def _rpc(self, body: bytes) -> None:
        sim = self.server.sim
        if self._dropping():
            return
        if sim.faults.latency_s:
            time.sleep(sim.faults.latency_s)
        try:
            params, method = xmlrpc.client.loads(body)
        except Exception:  # malformed XML: xapi answers HTTP 500 with an HTML page
            self._reply(500, b"<html><body>Internal error</body></html>", "text/html")
            return
        try:
            value = sim.call(method or "", list(params), self.server.address)
            payload = success(value)
        except XapiError as error:
            payload = failure(error.description)
        except ConnectionAbortedError:
            self._reset()
            return
        self._reply(200, payload, "text/xml")

    def _dropping(self) -> bool:
        faults, sim = self.server.sim.faults, self.server.sim
        if sim.now() >= faults.drop_until:
            return False
        if faults.drop_mode == "hang":
            while sim.now() < faults.drop_until and not self.server.stopping.is_set():
                time.sleep(0.05)
        self._reset()
        return True

    def _reset(self) -> None:
        """Close the connection with a TCP reset, as a dead or restarting peer does."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()

    def _reply(self, status: int, payload: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up mid-answer (a killed bot) is not the server's error."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, sim: Simulator, address: str, port: int, stopping: threading.Event):
        self.sim = sim
        self.address = address
        self.stopping = stopping
        super().__init__((address, port), _Handler)


class SimulatorServer:
    """Serve `sim` on every host's address (127.0.0.N) at one port; port 0 picks one."""

    def __init__(self, sim: Simulator, port: int = 0, tls: ssl.SSLContext | None = None) -> None:
        """`tls`: serve https with this server context (as a real pool master does)."""
        self.sim = sim
        self.scheme = "https" if tls else "http"
        self._tls = tls
        self._stopping = threading.Event()
        self._switching = threading.Lock()
        self._closed: set[str] = set()  # addresses in faults.down_hosts, not listening
        hosts = sim.db.tables["host"]
        master = hosts[sim.master]["address"]
        addresses = [master, *sorted({h["address"] for h in hosts.values()} - {master})]
        first = self._listen(master, port)
        self.port = first.server_address[1]
        self._servers = [first] + [self._listen(address, self.port) for address in addresses[1:]]
        self._threads = [_serving(s) for s in self._servers]

    def _listen(self, address: str, port: int) -> _Server:
        server = _Server(self.sim, address, port, self._stopping)
        if self._tls:
            server.socket = self._tls.wrap_socket(server.socket, server_side=True)
        return server

    def _apply_down_hosts(self) -> None:
        """Close the listening socket of a host in `faults.down_hosts` (so connections are
        refused, not reset) and listen again at an address taken out of it."""
        with self._switching:
            if self._stopping.is_set():
                return
            for index, server in enumerate(self._servers):
                down = server.address in self.sim.faults.down_hosts
                if down and server.address not in self._closed:
                    server.shutdown()
                    server.server_close()
                    self._closed.add(server.address)
                elif not down and server.address in self._closed:
                    self._servers[index] = self._listen(server.address, self.port)
                    self._threads[index] = _serving(self._servers[index])
                    self._threads[index].start()
                    self._closed.discard(server.address)

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self._servers[0].address}:{self.port}"

    def url_for(self, host_name: str) -> str:
        ref = self.sim.db.find("host", name_label=host_name)[0]
        return f"{self.scheme}://{self.sim.db.get('host', ref)['address']}:{self.port}"

    def start(self) -> SimulatorServer:
        for thread in self._threads:
            thread.start()
        self.sim.faults.on_down_hosts.append(self._apply_down_hosts)
        self._apply_down_hosts()
        return self

    def stop(self) -> None:
        with self._switching:
            self._stopping.set()
        for server in self._servers:
            server.shutdown()
            server.server_close()
        self.sim.close()

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _serving(server: _Server) -> threading.Thread:
    return threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
