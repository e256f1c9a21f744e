"""The server started by `start_server` (the tests', the embedded one) answers on sockets with Nagle's algorithm
off: with it on, every answer after a connection's first waited for the client's delayed ACK, about 40 ms a
request on a kept-alive connection (the SDK keeps its connections alive)."""

from __future__ import annotations

import socket

import httpx

from tally_server import RunningServer


def test_answers_leave_on_sockets_with_tcp_nodelay(live_server: RunningServer) -> None:
    with httpx.Client(base_url=live_server.url) as client:
        assert client.get("/v1/health").status_code == 200
        # uvicorn's open connections (RunningServer keeps its uvicorn.Server in `_server`)
        connections = list(live_server._server.server_state.connections)
        sockets = [connection.transport.get_extra_info("socket") for connection in connections]
        assert sockets
        assert all(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) for s in sockets)
