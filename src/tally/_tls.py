"""The TLS context of a client whose server is plain `http://`: httpx's default, its CA certificates loaded by the
first TLS connection instead of when the client is made.

httpx builds its default context when a transport is made (`httpx.create_ssl_context()`: certifi's bundle, or
`SSL_CERT_FILE` / `SSL_CERT_DIR`), and parsing the bundle is most of it: about 23 ms of CPU, a third of what
`Tally()` costs (issue 21: what a training job pays). A client of an `http://` server never opens a TLS
connection: every request goes to its base URL and redirects are not followed. Should one ever open one, this
context verifies exactly as httpx's does: `CERT_REQUIRED`, host names checked, the same CA certificates, loaded
before the first handshake. A client of an `https://` server gets httpx's context as before.
"""

from __future__ import annotations

import os
import ssl
import sys
import threading
from typing import Any

__all__ = ["LazyCAContext", "lazy_default_context"]


class LazyCAContext(ssl.SSLContext):
    """`ssl.create_default_context(cafile=certifi.where())` (or the `SSL_CERT_FILE` / `SSL_CERT_DIR` httpx
    reads), whose `load_verify_locations` runs on the first `wrap_socket` / `wrap_bio` (every TLS connection of
    httpcore, direct or through a proxy, starts with one of them), once, under a lock."""

    _ca_lock: threading.Lock
    _ca_source: dict[str, str]
    _ca_loaded: bool

    def _load_ca(self) -> None:
        if self._ca_loaded:
            return
        with self._ca_lock:
            if not self._ca_loaded:
                self.load_verify_locations(**self._ca_source)
                self._ca_loaded = True

    def wrap_socket(self, *args: Any, **kwargs: Any) -> ssl.SSLSocket:
        self._load_ca()
        return super().wrap_socket(*args, **kwargs)

    def wrap_bio(self, *args: Any, **kwargs: Any) -> ssl.SSLObject:
        self._load_ca()
        return super().wrap_bio(*args, **kwargs)


def lazy_default_context() -> LazyCAContext:
    """What `httpx.create_ssl_context()` makes (with `trust_env`, as `httpx.HTTPTransport` has by default), its CA
    certificates not loaded yet: `ssl.create_default_context`'s settings for a client, and SSLKEYLOGFILE."""
    context = LazyCAContext(ssl.PROTOCOL_TLS_CLIENT)
    context.verify_mode = ssl.CERT_REQUIRED
    context.check_hostname = True
    if os.environ.get("SSL_CERT_FILE"):
        source = {"cafile": os.environ["SSL_CERT_FILE"]}
    elif os.environ.get("SSL_CERT_DIR"):
        source = {"capath": os.environ["SSL_CERT_DIR"]}
    else:
        import certifi

        source = {"cafile": certifi.where()}
    context._ca_source = source
    context._ca_loaded = False
    context._ca_lock = threading.Lock()
    keylog = os.environ.get("SSLKEYLOGFILE")
    if keylog and not sys.flags.ignore_environment:
        context.keylog_filename = keylog
    return context
