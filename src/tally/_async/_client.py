"""The client (`AsyncTally`) and the core that every resource calls to send one operation."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any, ParamSpec, Self, TypeVar, Unpack, overload

import httpx

from tally._base import (
    USER_AGENT,
    client_repr,
    decode,
    new_idempotency_key,
    prepare,
)
from tally._cache import ResponseCache
from tally._config import ClientConfig, client_config
from tally._connection import Connection, EventHooks
from tally._credentials import ResolvedConfig
from tally._errors import AuthenticationError, TallyError, error_from_response, translate_transport_errors
from tally._headers import header
from tally._hooks import Hooks, async_after_error, async_after_success, async_before_request
from tally._lazy import load, load_generated, load_run
from tally._lifecycle import release_async_pool, unclosed_message
from tally._logging import logger as default_logger
from tally._logging import setup_from_env
from tally._not_given import NOT_GIVEN, NotGiven
from tally._options import STREAM_EXTENSION, ClientOptions, RequestOptions, Settings, TimeoutArg
from tally._platform import platform_headers
from tally._raw_capture import CAPTURE, Capture
from tally._request_ids import remember
from tally._response_cycle import release
from tally._retry_policy import RetryPolicy
from tally._run_defaults import DEFAULT_CAP_BYTES
from tally._telemetry import TELEMETRY_HEADER, Telemetry
from tally._transports import OfflineTransport, default_async_transport

from ._transport import AsyncClientTransport, AsyncRetryTransport

if TYPE_CHECKING:
    import msgspec

    from tally._raw import RawPage, RawResponse
    from tally._types import Health
    from tally.run import CapPolicy, Durability, ResumeMode, Run, SenderKind
    from tally.run import Capture as RunCapture

    from ._artifact_io import AsyncUploadBody
    from ._pagination import AsyncPaginator
    from ._resources import (
        AsyncAnnotations,
        AsyncArtifacts,
        AsyncAuth,
        AsyncExperiments,
        AsyncFolders,
        AsyncIngestionKeys,
        AsyncMetricCatalog,
        AsyncMetrics,
    )

__all__ = ["AsyncCore", "AsyncTally", "open_pool", "pool_headers"]

_RESOURCES = __name__.rpartition(".")[0] + "._resources"
"""This client's resources module (`tally._async._resources`, or its sync twin), imported on first use."""

SDK_KEY_LIFETIME_SECONDS = 24 * 3600  # how long an ingestion key the client mints works (see ingestion_token)

T = TypeVar("T")
P = ParamSpec("P")


class _SharedState:
    """What every `with_options` copy shares: credentials, the HTTP pool, the ingestion-key cache. When the last
    client holding it is garbage-collected without `close()`, it warns and releases the pool."""

    __slots__ = (
        "cache",
        "config",
        "connection",
        "http",
        "ingestion_keys",
        "key_lock",
        "name",
        "offline",
        "owns_pool",
        "telemetry",
        "url_prefix",
    )

    def __init__(
        self,
        config: ResolvedConfig,
        http: httpx.AsyncClient,
        name: str,
        owns_pool: bool,
        offline: bool = False,
        connection: Connection | None = None,
        telemetry: bool = False,
    ) -> None:
        self.config = config
        self.telemetry = Telemetry() if telemetry else None
        self.connection = connection or Connection()
        self.http = http
        # Absolute URLs are built here: httpx parses a relative one twice (the path, then the merged URL), which
        # cost about 5% of a small call's client CPU (`make bench`, small call).
        self.url_prefix = str(http.base_url).rstrip("/")
        self.name = name
        self.owns_pool = owns_pool
        self.ingestion_keys: dict[str, str] = {}
        self.key_lock = asyncio.Lock()
        self.offline = offline
        self.cache = ResponseCache(config.base_url, config.api_key)

    def __del__(self) -> None:
        http = getattr(self, "http", None)
        if http is None or http.is_closed or not self.owns_pool:
            return
        config = self.config
        described = client_repr(self.name, config.api_key, config.base_url, config.credential_source)
        try:
            warnings.warn(unclosed_message(described), ResourceWarning, stacklevel=1)
        finally:
            self._release()

    def _release(self) -> None:
        release_async_pool(self.http)


class AsyncCore:
    """Sends one operation and decodes its answer, for every resource. Holds no reference to the client."""

    __slots__ = ("settings", "state")

    def __init__(self, state: _SharedState, settings: Settings) -> None:
        self.state = state
        self.settings = settings

    @overload
    async def request(
        self,
        operation: dict[str, Any],
        decoder: msgspec.json.Decoder[T],
        options: Mapping[str, Any],
        *,
        token: str | NotGiven | None = NOT_GIVEN,
        idempotency_key: str | None = None,
        content: bytes | None = None,
        ingest: bool = False,
        upload: AsyncUploadBody | None = None,
    ) -> T: ...

    @overload
    async def request(
        self,
        operation: dict[str, Any],
        decoder: None,
        options: Mapping[str, Any],
        *,
        token: str | NotGiven | None = NOT_GIVEN,
        idempotency_key: str | None = None,
        content: bytes | None = None,
        ingest: bool = False,
        upload: AsyncUploadBody | None = None,
    ) -> None: ...

    async def request(
        self,
        operation: dict[str, Any],
        decoder: msgspec.json.Decoder[T] | None,
        options: Mapping[str, Any],
        *,
        token: str | NotGiven | None = NOT_GIVEN,
        idempotency_key: str | None = None,
        content: bytes | None = None,
        ingest: bool = False,
        upload: AsyncUploadBody | None = None,
    ) -> T | None:
        """Send a generated operation's `_get_kwargs(...)` with the org key (or `token`) and the call's
        `options` (a method's `**options`); decode (None as `decoder` for an answer without a body, such as
        204), and remember the response's request id on the result. `upload` is a streamed body (an artifact's
        file, a run's encoded batch) sent instead of the operation's."""
        extras = self.settings.call(options, ingest=ingest)
        bearer = self.state.config.api_key if isinstance(token, NotGiven) else token
        method, url, params, headers, prepared = prepare(
            operation, extras, token=bearer, idempotency_key=idempotency_key, content=content
        )
        body: bytes | AsyncUploadBody | None = prepared
        if upload is not None:
            # An artifact's file or a run's batch, streamed with a Content-Length (not chunked), instead of any
            # JSON body (`extra_body` does not apply to it).
            body = upload
            headers["Content-Type"] = upload.content_type
            headers["Content-Length"] = str(upload.size)
        state = self.state
        telemetry = state.telemetry
        request = self._build(method, url, params, headers, body, extras.extensions)
        # The response cache takes a GET sent with the org key, unless `with_raw_response` captures it (the raw
        # answer is the server's) or the caller sends their own If-None-Match (checked in _send).
        cacheable = (
            method == "GET" and state.cache.enabled and isinstance(token, NotGiven) and CAPTURE.get() is None
        )
        hooks = extras.hooks
        if not hooks:
            with translate_transport_errors(request):
                response = await self._send(request, cacheable)
            if telemetry is not None:
                telemetry.record(response)
            return self._result(decoder, response)
        request = await async_before_request(hooks, request)
        try:
            with translate_transport_errors(request):
                response = await self._send(request, cacheable)
            if telemetry is not None:
                telemetry.record(response)
            result = self._result(decoder, response)
        except TallyError as error:
            await async_after_error(hooks, error)
            raise
        await async_after_success(hooks, response)
        return result

    @staticmethod
    def _result(decoder: msgspec.json.Decoder[T] | None, response: httpx.Response) -> T | None:
        capture = CAPTURE.get()
        if capture is not None:
            capture.response = response
        result = decode(decoder, response)
        remember(result, header(response.headers, b"x-request-id"))
        return result

    async def _send(self, request: httpx.Request, cacheable: bool) -> httpx.Response:
        if cacheable and "if-none-match" not in request.headers:
            return await self._send_cached(request)
        return release(await self.state.http.send(request))

    # ---- the response cache (`client.cache`; the rule is in tally._cache_policy) ----------------------------
    async def _send_cached(self, request: httpx.Request) -> httpx.Response:
        """Send a cacheable GET through the response cache: served from it when its experiment's guard holds,
        else revalidated with If-None-Match (a 304 is answered from the stored body), else fetched and stored."""
        from tally._cache_policy import cached_response, frozen_experiment

        cache = self.state.cache
        url = str(request.url)
        path = request.url.path
        guard: str | None = None
        frozen = frozen_experiment(path)
        if frozen is not None:
            walked = cache.walk_guard(path, request.url.params.get("cursor"))
            guard = walked[0] if walked is not None else await self._experiment_guard(request, frozen)
        entry = cache.get(url)
        if entry is not None and guard is not None and entry.guard == guard:
            cache.count(hit=True)
            response = cached_response(request, entry, None)
        else:
            if entry is not None:
                request.headers["If-None-Match"] = entry.etag
            response = release(await self.state.http.send(request))
            if response.status_code == 304 and entry is not None:
                cache.count(hit=True, revalidated=True)
                cache.set_guard(url, entry, guard)
                response = cached_response(request, entry, response)
            elif response.status_code == 200 and "etag" in response.headers:
                cache.count(hit=False)
                cache.put(url, response.headers["etag"], response.content, guard)
        if frozen is not None and response.status_code == 200:
            cache.continue_walk(path, response.content, guard)
        return response

    async def _experiment_guard(self, request: httpx.Request, experiment_path: str) -> str | None:
        """The ETag of the experiment at `experiment_path` when it is terminal (None otherwise, or when it
        cannot be read: the data request then meets the same answer), read through the cache."""
        check = self.state.http.build_request(
            "GET",
            request.url.copy_with(path=experiment_path, query=None),
            headers=[(k, v) for k, v in request.headers.multi_items() if k.lower() != "if-none-match"],
            extensions=request.extensions,
        )
        response = await self._send_cached(check)
        if response.status_code != 200:
            return None
        from tally._cache_policy import experiment_guard

        return experiment_guard(response.content, response.headers.get("etag"))

    def _build(
        self,
        method: str,
        url: str,
        params: Any,
        headers: dict[str, str],
        body: Any,
        extensions: dict[str, Any],
    ) -> httpx.Request:
        """The request to send: the client's URL prefix, and the previous answer's figures when telemetry is on."""
        state = self.state
        if state.telemetry is not None:
            last = state.telemetry.take()
            if last is not None:
                headers[TELEMETRY_HEADER] = last
        return state.http.build_request(
            method,
            state.url_prefix + url,
            params=params,
            headers=headers,
            content=body,
            extensions=extensions,
        )

    @contextlib.asynccontextmanager
    async def stream(
        self, operation: dict[str, Any], options: Mapping[str, Any], *, accept: str
    ) -> AsyncIterator[httpx.Response]:
        """Send a generated operation whose answer is streamed, and hold its 2xx response open, body unread, for
        the block (closed after it, however it ends). An error answer raises the mapped `APIStatusError` here,
        retried first like any other; a failure while the body is read raises Tally's transport errors. Hooks
        and telemetry as for `request`: `after_success` sees the response once its headers are in (time to first
        byte for telemetry), before its body is read."""
        extras = self.settings.call(options)
        operation["headers"] = {"Accept": accept}
        method, url, params, headers, body = prepare(operation, extras, token=self.state.config.api_key)
        telemetry = self.state.telemetry
        http = self.state.http
        request = self._build(
            method, url, params, headers, body, {**extras.extensions, STREAM_EXTENSION: True}
        )
        hooks = extras.hooks
        if hooks:
            request = await async_before_request(hooks, request)
        try:
            with translate_transport_errors(request):
                response = await http.send(request, stream=True)
        except TallyError as error:
            if hooks:
                await async_after_error(hooks, error)
            raise
        try:
            if telemetry is not None:
                telemetry.record(response)
            if not 200 <= response.status_code < 300:
                await response.aread()
                failure = error_from_response(response)
                if hooks:
                    await async_after_error(hooks, failure)
                raise failure
            if hooks:
                await async_after_success(hooks, response)
            with translate_transport_errors(request):
                yield response
        finally:
            await response.aclose()

    # ---- ingestion keys, minted on first use per experiment and cached -------------------------------------
    # Minted keys expire (SDK_KEY_LIFETIME_SECONDS), so the keys of clients that never close, crash or are killed
    # stop working on their own instead of piling up; a client that outlives its key mints the next one when
    # the server answers 401 (with_ingestion_token).
    async def ingestion_token(self, experiment_id: str) -> str:
        cached = self.state.ingestion_keys.get(experiment_id)
        if cached is not None:
            return cached
        async with self.state.key_lock:
            cached = self.state.ingestion_keys.get(experiment_id)
            if cached is not None:
                return cached
            from tally_api.api.ingestion_keys import create_ingestion_key
            from tally_api.models.create_ingestion_key_request import CreateIngestionKeyRequest

            from tally._decoders import Decoders

            created = await self.request(
                create_ingestion_key._get_kwargs(
                    experiment_id,
                    body=CreateIngestionKeyRequest(
                        name="tally-sdk", expires_in_seconds=SDK_KEY_LIFETIME_SECONDS
                    ),
                ),
                Decoders.created_ingestion_key,
                {},
            )
            self.state.ingestion_keys[experiment_id] = created.token
            return created.token

    def forget_ingestion_token(self, experiment_id: str, token: str | None = None) -> None:
        """Drop the cached key (only if it is still `token`, when given)."""
        if token is None or self.state.ingestion_keys.get(experiment_id) == token:
            self.state.ingestion_keys.pop(experiment_id, None)

    async def with_ingestion_token(self, experiment_id: str, send: Callable[[str], Awaitable[T]]) -> T:
        """`send(token)` with the experiment's ingestion key; on 401, replace the cached key once."""
        token = await self.ingestion_token(experiment_id)
        try:
            return await send(token)
        except AuthenticationError:
            self.forget_ingestion_token(experiment_id, token)
            token = await self.ingestion_token(experiment_id)
            return await send(token)


def pool_headers() -> dict[str, str]:
    """The headers every request of a client carries (set on its pool)."""
    return {"User-Agent": USER_AGENT, "Accept": "application/json", **platform_headers("asyncio")}


def open_pool(
    config: ResolvedConfig,
    settings: Settings,
    connection: Connection,
    *,
    offline: bool,
    transport: httpx.AsyncBaseTransport | None = None,
    http_client: httpx.AsyncClient | None = None,
) -> httpx.AsyncClient:
    """A client's HTTP pool: the retry transport around the caller's transport or `http_client`, else the default
    one (aiohttp's with the extra), with the connection's proxy, limits, event hooks and logger. Also what a sync
    `Tally`'s `async_` opens once per event loop (`tally._async_accessor`)."""
    if offline:
        inner: httpx.AsyncBaseTransport = OfflineTransport()
    elif http_client is not None:
        inner = AsyncClientTransport(http_client)
    else:
        pool_limits = connection.limits or httpx.Limits(max_connections=100, max_keepalive_connections=100)
        plain_http = httpx.URL(config.base_url).scheme == "http"  # its TLS context loads no CA until used
        inner = transport or default_async_transport(
            proxy=connection.proxy, limits=pool_limits, plain_http=plain_http
        )
    return httpx.AsyncClient(
        base_url=config.base_url,
        transport=AsyncRetryTransport(inner, policy=settings.retry, logger=connection.logger),
        headers=pool_headers(),
        event_hooks=dict(connection.event_hooks) if connection.event_hooks else None,
        timeout=settings.timeout,
        trust_env=False,
    )


class AsyncTally:
    """The Tally client for async code. Every method is awaited; every `list()` is `async for`-able.

        async with AsyncTally() as client:
            experiment = await client.experiments.create("baseline")

    Credentials resolve themselves (argument, `TALLY_API_KEY`, then the credentials file; `AsyncTally("local")` for
    the file alone). The server: `base_url`, then the contract's server number `server_idx`
    (`tally_api_types.servers.SERVERS`: 0 the local reference server, the default; 1 production), then
    `TALLY_BASE_URL`, then the file's: what you pass wins over the environment and the file. `config=` (a
    `tally.ClientConfig`) gives the connection settings as one frozen value instead of `api_key`, `base_url`,
    `timeout`, `ingest_timeout`, `max_retries`, `retry` and `offline`: passing both is a `ConfigurationError`
    (`config.replace(...)` changes one). `timeout`
    is per attempt for ordinary calls (default 10 s), `ingest_timeout` for ingestion and annotations (default
    20 s); `retry` (a `tally.RetryPolicy`) says what is retried, how long to wait and the deadline of a call;
    `max_retries` is its short form. Every method also takes these per call (`timeout=`, `max_retries=`, `retry=`,
    `extra_headers=`, `extra_query=`, `extra_body=`, and `idempotency_key=` on writes). `transport`, `proxy`,
    `event_hooks` and `limits` go to the underlying httpx client; `http_client` is your own `httpx.AsyncClient`
    instead (you close it); retries, auth and options apply around either. `logger` replaces the `tally` logger
    for this client's attempt log. `hooks` (a `tally.Hooks`) run your code around each request: before it is sent
    (it may change it) and with its final answer or error, once per request, not per attempt (`tally._hooks`);
    only the async client's may be coroutine functions. `telemetry=True` (or `TALLY_TELEMETRY=1`; off by default)
    sends, with each request, the previous one's request id and client-measured duration, and nothing else
    (`tally._telemetry`).

    `offline=True` (or `TALLY_MODE=offline`): no server at all; `client.run(...)` spools everything for
    `tally sync`, and every other call raises `ConfigurationError`.
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        timeout: TimeoutArg | NotGiven = NOT_GIVEN,
        ingest_timeout: TimeoutArg | NotGiven = NOT_GIVEN,
        max_retries: int | None = None,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        proxy: str | httpx.Proxy | None = None,
        event_hooks: EventHooks | None = None,
        limits: httpx.Limits | None = None,
        http_client: httpx.AsyncClient | None = None,
        logger: logging.Logger | None = None,
        offline: bool | None = None,
        config: ClientConfig | None = None,
        hooks: Hooks | None = None,
        server_idx: int | None = None,
        telemetry: bool | None = None,
    ) -> None:
        setup_from_env()
        chosen = client_config(
            config,
            api_key=api_key,
            base_url=base_url,
            server_idx=server_idx,
            timeout=timeout,
            ingest_timeout=ingest_timeout,
            max_retries=max_retries,
            retry=retry,
            offline=offline,
            telemetry=telemetry,
        )
        settings = chosen.settings()
        if hooks is not None:
            settings = settings.replace({"hooks": hooks})
        if http_client is not None and (transport is not None or proxy is not None or limits is not None):
            raise ValueError("pass either http_client or transport/proxy/limits: the http_client has its own")
        connection = Connection(proxy=proxy, limits=limits, event_hooks=event_hooks, logger=logger)
        self._connect(
            chosen.credentials(),
            settings,
            connection,
            offline=chosen.offline,
            telemetry=chosen.telemetry,
            transport=transport,
            http_client=http_client,
        )

    def _connect(
        self,
        config: ResolvedConfig,
        settings: Settings,
        connection: Connection,
        *,
        offline: bool,
        telemetry: bool = False,
        transport: httpx.AsyncBaseTransport | None = None,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        """Build the HTTP pool for `config` and `settings` (the second half of `__init__`, and all of
        `_sibling`)."""
        # Every method imports its generated operation (and that operation's models) on first use; the generated
        # packages themselves are imported now, one thread at a time, so that several threads' first calls never
        # meet a half-imported package (tally._lazy).
        load_generated()
        http = open_pool(
            config, settings, connection, offline=offline, transport=transport, http_client=http_client
        )
        connection = connection.replace(
            custom_transport=transport is not None or http_client is not None, transport=transport
        )
        state = _SharedState(
            config,
            http,
            type(self).__name__,
            owns_pool=http_client is None,
            offline=offline,
            connection=connection,
            telemetry=telemetry,
        )
        self._init(state, settings)

    def _sibling(self) -> AsyncTally:
        """A client with this one's credentials, settings, proxy, limits, event hooks and logger, and a pool of its
        own: for a run's sender, which sends from another thread (`tally._run_ports`). A caller's `transport` or
        `http_client` is not shared (a pool serves one event loop); the client's log says so."""
        state = self._core.state
        connection = state.connection
        if connection.custom_transport:
            (connection.logger or default_logger).warning(
                "tally: %s's transport/http_client serves its own event loop; this run sends from a loop of its "
                "own with the client's credentials, settings, proxy, limits, event hooks and logger, but not "
                "that transport (a sync Tally's run sends through its transport)",
                state.name,
            )
        sibling = object.__new__(type(self))
        sibling._connect(
            state.config,
            self._core.settings,
            connection,
            offline=state.offline,
            telemetry=state.telemetry is not None,
        )
        return sibling

    def _init(self, state: _SharedState, settings: Settings) -> None:
        self._core = AsyncCore(state, settings)

    # ---- the resources, made on first use: `from tally import Tally` imports none of them (nor the public types
    # and msgspec they need), and a program pays only for those it reads (issue 21's import target) -----------
    def _resource(self, name: str) -> Any:
        return getattr(load(_RESOURCES), name)(self._core)

    @functools.cached_property
    def folders(self) -> AsyncFolders:
        resource: AsyncFolders = self._resource("AsyncFolders")
        return resource

    @functools.cached_property
    def experiments(self) -> AsyncExperiments:
        resource: AsyncExperiments = self._resource("AsyncExperiments")
        return resource

    @functools.cached_property
    def metrics(self) -> AsyncMetrics:
        resource: AsyncMetrics = self._resource("AsyncMetrics")
        return resource

    @functools.cached_property
    def metric_catalog(self) -> AsyncMetricCatalog:
        resource: AsyncMetricCatalog = self._resource("AsyncMetricCatalog")
        return resource

    @functools.cached_property
    def ingestion_keys(self) -> AsyncIngestionKeys:
        resource: AsyncIngestionKeys = self._resource("AsyncIngestionKeys")
        return resource

    @functools.cached_property
    def annotations(self) -> AsyncAnnotations:
        resource: AsyncAnnotations = self._resource("AsyncAnnotations")
        return resource

    @functools.cached_property
    def artifacts(self) -> AsyncArtifacts:
        resource: AsyncArtifacts = self._resource("AsyncArtifacts")
        return resource

    @functools.cached_property
    def auth(self) -> AsyncAuth:
        resource: AsyncAuth = self._resource("AsyncAuth")
        return resource

    @property
    def base_url(self) -> str:
        """The server this client talks to."""
        return self._core.state.config.base_url

    @property
    def config(self) -> ClientConfig:
        """This client's settings as a `tally.ClientConfig` (key masked when printed): `AsyncTally(config=...)`
        opens another client like it."""
        state = self._core.state
        return ClientConfig.of(
            state.config, self._core.settings, offline=state.offline, telemetry=state.telemetry is not None
        )

    @property
    def credential_source(self) -> str:
        """Where the API key came from: `argument`, `env:TALLY_API_KEY` or `file:<path>`."""
        return self._core.state.config.credential_source

    @property
    def offline(self) -> bool:
        """True when the client was made with `offline=True` or `TALLY_MODE=offline`."""
        return self._core.state.offline

    @property
    def timeout(self) -> TimeoutArg:
        return self._core.settings.timeout

    @property
    def ingest_timeout(self) -> TimeoutArg:
        return self._core.settings.ingest_timeout

    @property
    def max_retries(self) -> int:
        return self._core.settings.max_retries

    @property
    def retry(self) -> RetryPolicy:
        """The retry policy in force (`max_retries` included)."""
        return self._core.settings.retry

    @property
    def cache(self) -> ResponseCache:
        """The on-disk response cache, off until `client.cache.enable()`: `.enable(path=None, max_bytes=...)`,
        `.disable()`, `.stats()` and `.clear()`. Shared with `with_options` copies. Off by default, because on
        it writes your experiments' data to disk (README, "The response cache")."""
        return self._core.state.cache

    @property
    def is_closed(self) -> bool:
        """True once `close()` ran (on this client or any `with_options` copy of it)."""
        return self._core.state.http.is_closed

    def with_options(self, **options: Unpack[ClientOptions]) -> Self:
        """A client with other settings (`timeout`, `ingest_timeout`, `max_retries`, `retry`, `extra_headers`,
        `extra_query`, `extra_body`, and `hooks`, which run after the client's) that shares this one's connection
        pool and ingestion keys. Cheap: use it per call (`client.with_options(max_retries=0).experiments.get(...)`).
        Close the original, not the copy."""
        clone = object.__new__(type(self))
        clone._init(self._core.state, self._core.settings.replace(options))
        return clone

    @overload
    def with_raw_response(  # type: ignore[overload-overlap, unused-ignore]
        self, method: Callable[P, AsyncPaginator[T]]
    ) -> Callable[P, Awaitable[RawPage[T]]]: ...

    @overload
    def with_raw_response(
        self, method: Callable[P, Awaitable[T]]
    ) -> Callable[P, Awaitable[RawResponse[T]]]: ...

    def with_raw_response(self, method: Callable[P, Any]) -> Callable[P, Awaitable[RawResponse[Any]]]:
        """Wrap any method of this client so that it returns a `RawResponse` (parsed result, status, headers,
        request id): `await client.with_raw_response(client.experiments.get)(experiment_id)`. For a `list()`
        method, the call fetches the first page: `parsed` is that `Page`."""

        from tally._raw import RawResponse

        from ._pagination import AsyncPaginator

        async def call(*args: P.args, **kwargs: P.kwargs) -> RawResponse[Any]:
            capture = Capture()
            token = CAPTURE.set(capture)
            try:
                result = method(*args, **kwargs)
                parsed = await result.first_page() if isinstance(result, AsyncPaginator) else await result
            finally:
                CAPTURE.reset(token)
            if capture.response is None:
                raise TypeError(
                    f"{getattr(method, '__qualname__', method)!r} made no HTTP request to capture"
                )
            return RawResponse(parsed=parsed, http_response=capture.response)

        return call

    def run(
        self,
        name: str | None = None,
        *,
        experiment_id: str | None = None,
        resume: ResumeMode | None = None,
        folder_id: str | None = None,
        description: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        config: Any = None,
        tags: Sequence[str] | None = None,
        durability: Durability = "process",
        spool_cap: int = DEFAULT_CAP_BYTES,
        on_full: CapPolicy = "block",
        flush_timeout: float | None = None,
        capture: bool | RunCapture = True,
        system_metrics_interval: float | None = None,
        rank: int | None = None,
        group: str | None = None,
        sender: SenderKind | None = None,
    ) -> Run:
        """Start logging from a training loop: a new experiment called `name`, or `experiment_id=` to resume one.

            with client.run("resnet50", metadata={"lr": 3e-4}) as run:
                run.log({"train/loss": 0.71, "lr": 3e-4}, step=0)

        `run.log()` appends to a durable spool and returns: it never waits on the network, and `run()` is a
        plain method on both clients, never awaited. A background thread sends the spool through this client (its
        transport, hooks and logger; keep it open until the run is closed), exactly once, in order, retrying
        through outages. The async client's run sends from an event loop of its own (`tally._run_ports`).
        `durability`: "process" (survives a killed process), "power" (also fsyncs every second) or "memory" (no
        spool). `spool_cap` bytes (default 1 GiB) with `on_full` "block" or "drop_oldest". Leaving the block
        flushes for at most `flush_timeout` seconds (`TALLY_FLUSH_TIMEOUT`, default 30) and marks the experiment
        completed, or failed if the block raised; what is not stored stays in the spool for `tally sync`.

        `resume` ("allow", "must", "never"; wandb's modes), with `experiment_id=` or the experiment's exact
        `name`: "must" resumes an existing experiment or raises `ResumeError`, "allow" resumes it or creates it,
        "never" creates it or raises `ResumeError` if it exists. Without `resume`, `experiment_id=` is "must"
        and a name alone always creates a new experiment. Resuming a completed, failed or cancelled experiment
        reopens it to running (the server records that as an annotation). See `tally.run._resume`.

        `config` (a dict, dataclass, argparse Namespace or OmegaConf DictConfig, nested as you like) is stored in
        the experiment's metadata under `config`, flattened to dotted keys (`listExperiments` finds it with
        `metadata_key="config.optim.lr"`); `run.config` reads it, `run.config.update(...)` adds to it through the
        spool. `tags` are the experiment's (added to a resumed one's).

        `capture` records where the run runs (git commit, branch, dirty flag and remote without credentials, the
        command line with secrets masked, Python, platform, hostname, installed packages) in the experiment's
        metadata under the reserved key `capture`, on a thread of its own: `False` records nothing,
        `tally.Capture(packages=False)` all but one item (see `tally.run._capture`). A resumed run's capture
        replaces the earlier one. `system_metrics_interval` seconds (`TALLY_SYSTEM_METRICS_INTERVAL`, default 10;
        0 turns it off) between samples of `system/...` metrics (CPU, memory, disk, network, NVIDIA GPUs) from a
        thread of their own, stepped by the clock, never by `run.step` (the `[system]` extra; see
        `tally.run._system`).

        Distributed jobs (torchrun, accelerate, SLURM, MPI): only rank 0 logs; on other ranks the run's `log()`
        does nothing (no spool, no request, no experiment) and `run.status().inactive` says why. The rank is
        `rank=` when given (it wins: `rank=0` makes any process log), else read from `RANK`, `SLURM_PROCID`,
        `OMPI_COMM_WORLD_RANK`, `PMI_RANK`, `LOCAL_RANK`, the first set. With `group="job-123"`, every rank logs,
        to an experiment of its own called `<name>-rank<k>` in that group (`experiments.list(group=...)`,
        `metrics.compare_group(group, name)`). See `tally.run._ranks`.

        `sender="process"` sends from a process of its own instead of a thread of this one (as wandb does): no
        thread of the run's then holds this process's GIL, so no `log()` call waits for it. The process has a
        client of its own, made from this one's credentials and settings (a `transport`, `http_client`,
        `event_hooks` or `hooks` cannot cross to it: `ConfigurationError`), and sends what was logged even if this
        process is killed. `sender="thread"` sends from a thread of this process, through this client. The
        default, `TALLY_SENDER` else "auto", is a process on Linux where this client can cross to one and the run
        has a spool on disk, else a thread (`run.status().sender` says which). See `tally.run._sender_process`."""
        # Here, not at the top: a program that never starts a run does not pay for the run's modules (spool,
        # sender, capture, replay). They are loaded one thread at a time (`tally._lazy`); the imports below then
        # only read them.
        load_run()
        from tally._run_ports import port_for
        from tally.run import start_run
        from tally.run._idle import IdleRun
        from tally.run._ranks import plan_rank

        from ._run_port import AsyncRunPort

        plan = plan_rank(name, rank=rank, group=group, experiment_id=experiment_id)
        if plan.inactive is not None:
            return IdleRun(name, plan.inactive, config)
        return start_run(
            port_for(AsyncRunPort(self, owned=False)),
            plan.name,
            experiment_id=experiment_id,
            resume=resume,
            folder_id=folder_id,
            description=description,
            metadata=metadata,
            config=config,
            tags=tags,
            durability=durability,
            spool_cap=spool_cap,
            on_full=on_full,
            flush_timeout=flush_timeout,
            capture=capture,
            system_metrics_interval=system_metrics_interval,
            group=plan.group,
            sender=sender,
            process_spec=self._process_spec,
        )

    def _process_spec(self) -> dict[str, Any]:
        """This client as a run's sender process rebuilds it (`tally._sender_spec`)."""
        from tally._sender_spec import process_spec

        state = self._core.state
        return process_spec(state.config, self._core.settings, state.connection)

    async def request(self, operation: str | ModuleType, /, **arguments: Any) -> Any:
        """Call any operation of the spec, including one no method wraps yet, through this client's
        credentials, retries, idempotency keys, options, logging and errors:

            experiment = await client.request("getExperiment", experiment_id="exp_...")
            page = await client.request("listExperiments", status="running", page_size=10)

        `operation` is an operationId or a generated module (`tally_api.api.experiments.get_experiment`).
        Keyword arguments are the operation's parameters (path, query, and `body=` as a dict or a
        `tally_api_types` request Struct) and the per-call options (`timeout=`, `max_retries=`, `retry=`,
        `extra_headers=`, `extra_query=`, `extra_body=`, `idempotency_key=` on POST, PATCH and DELETE). Returns
        the public type the spec names for the answer (a list operation gives one `Page`; pass `cursor=` for the
        next), or None for an answer without a body (204). Operations that take an ingestion key (`ingestMetrics`,
        `createAnnotation`) get the experiment's, minted and cached as the curated methods do. For the status and
        headers, wrap it: `await client.with_raw_response(client.request)("getExperiment", experiment_id=...)`."""
        from tally._binding import bind_result
        from tally._operations import prepare_call

        from ._objects import AsyncObjectDecoders

        call = prepare_call(operation, arguments, AsyncObjectDecoders.acting)
        core = self._core
        if call.auth == "none":
            return bind_result(await core.request(call.kwargs, call.decoder, call.options, token=None), core)
        if call.auth == "org" or call.experiment_id is None:
            return bind_result(await core.request(call.kwargs, call.decoder, call.options), core)
        key = new_idempotency_key()  # one per call, kept if the ingestion key is replaced (the caller's wins)

        async def send(token: str) -> Any:
            return await core.request(
                call.kwargs, call.decoder, call.options, token=token, ingest=True, idempotency_key=key
            )

        return bind_result(await core.with_ingestion_token(call.experiment_id, send), core)

    async def health(self, **options: Unpack[RequestOptions]) -> Health:
        """Whether the service is up (no credentials needed)."""
        from tally_api.api.health import get_health

        from tally._decoders import Decoders

        return await self._core.request(get_health._get_kwargs(), Decoders.health, options, token=None)

    async def close(self) -> None:
        """Close the connection pool (shared with every `with_options` copy) and the response cache's file. A
        client passed in as `http_client` stays open: it is yours."""
        self._core.state.cache.close()
        await self._core.state.http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        config = self._core.state.config
        return client_repr(type(self).__name__, config.api_key, config.base_url, config.credential_source)
