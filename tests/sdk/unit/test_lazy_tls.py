"""A client of an `http://` server loads no CA certificates when it is made (`tally._tls`, issue 21: about 23 ms of
`Tally()`), and its TLS context still verifies exactly as httpx's, against a real TLS server on loopback."""

from __future__ import annotations

import http.server
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import certifi
import httpx
import pytest

from tally import Tally
from tally._tls import LazyCAContext, lazy_default_context

KEY = "tk_org_" + "x" * 32


def _ca_count(context: ssl.SSLContext) -> int:
    return context.cert_store_stats()["x509_ca"]


def _pool_context(client: Tally) -> ssl.SSLContext:
    context: ssl.SSLContext = client._core.state.http._transport._inner._pool._ssl_context  # type: ignore[attr-defined]
    return context


def test_an_http_client_loads_no_ca_and_an_https_client_loads_httpx_s() -> None:
    with Tally(api_key=KEY, base_url="http://127.0.0.1:9") as plain:
        lazy = _pool_context(plain)
        assert isinstance(lazy, LazyCAContext)
        assert _ca_count(lazy) == 0
    with Tally(api_key=KEY, base_url="https://127.0.0.1:9") as secure:
        eager = _pool_context(secure)
        assert not isinstance(eager, LazyCAContext)
        assert _ca_count(eager) == _ca_count(httpx.create_ssl_context()) > 100


def test_the_lazy_context_is_httpx_s_once_a_handshake_starts() -> None:
    context = lazy_default_context()
    assert (context.verify_mode, context.check_hostname, _ca_count(context)) == (ssl.CERT_REQUIRED, True, 0)
    context.wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO(), server_hostname="example.com")
    assert _ca_count(context) == _ca_count(httpx.create_ssl_context())


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """An HTTPS server on loopback with a self-signed certificate for 127.0.0.1: its URL and the certificate."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip

    class Ok(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Ok)
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, key)
    server.socket = server_context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}/", cert
    finally:
        server.shutdown()
        server.server_close()


def test_the_lazy_context_refuses_a_certificate_no_ca_signed(tls_server: tuple[str, Path]) -> None:
    url, _ = tls_server
    with (
        httpx.Client(verify=lazy_default_context()) as client,
        pytest.raises(httpx.ConnectError, match="CERTIFICATE"),
    ):
        client.get(url)


def test_the_lazy_context_trusts_ssl_cert_file_as_httpx_does(
    tls_server: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, cert = tls_server
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    context = lazy_default_context()
    assert _ca_count(context) == 0
    with httpx.Client(verify=context) as client:
        assert client.get(url).text == "ok"
    assert _ca_count(context) == 1
    monkeypatch.setenv("SSL_CERT_FILE", certifi.where())
    with httpx.Client(verify=lazy_default_context()) as client, pytest.raises(httpx.ConnectError):
        client.get(url)
