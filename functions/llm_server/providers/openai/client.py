"""The OpenAI SDK's clients: which HTTP transport, loading the SDK ahead of traffic, one pool.

Every caller key's client is `with_options(api_key=...)` of one base client, so they share its
HTTP client and connections: a distinct key costs a small object in a bounded LRU, not a
connection pool of its own (5,000 keys once took 500 MB that way). Every base client the pool
makes shares one TLS context (the CA bundle, loaded once: 20 ms), so renewing the clients after a
SnapStart restore leaves only their construction on the request's path.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Literal

from llm_server.exceptions import ConfigurationException
from llm_server.utils.redact import key_fingerprint

if TYPE_CHECKING:
    import http.cookiejar

    from openai import AsyncOpenAI


def pick_transport(choice: Literal["auto", "httpx", "aiohttp"]) -> Literal["httpx", "aiohttp"]:
    """The SDK's HTTP client: "auto" takes aiohttp where it is installed, else httpx2.

    Under many concurrent requests the SDK's aiohttp client costs about a third less CPU per
    request than its default, httpx2 (see bench/README.md). A Lambda container serves one
    request at a time, where that buys nothing: the template sets `OPENAI_HTTP_CLIENT=httpx`
    (so not even the search for aiohttp lengthens a cold start), and the layer has no aiohttp.
    """
    if choice == "httpx":
        return "httpx"
    from importlib.util import find_spec

    if choice == "auto":
        return "aiohttp" if find_spec("aiohttp") else "httpx"
    if choice == "aiohttp" and not find_spec("aiohttp"):
        raise ConfigurationException("OPENAI_HTTP_CLIENT=aiohttp needs aiohttp installed")
    return choice


def preload() -> None:
    """Do now what the first call would do: load the SDK and resolve its request's type hints.

    That is the SDK, its Responses resource, and the type hints its request transform reads and
    caches (0.7-1 s here), for Lambda initialisations that run ahead of traffic (see
    `lambda_handler`).
    """
    from openai._utils._transform import get_type_hints
    from openai.resources.responses import AsyncResponses  # noqa: F401
    from openai.types.responses import response_create_params

    for params in (
        response_create_params.ResponseCreateParamsNonStreaming,
        response_create_params.ResponseCreateParamsStreaming,
    ):
        get_type_hints(params, include_extras=True)  # cached by the SDK, as on a call
    # The platform its headers report: `platform.platform()` runs `uname -p` (60 ms here) on a
    # client's first call; the platform module keeps the answer.
    from openai._base_client import get_platform

    get_platform()


class ClientPool:
    """A client per key (LRU-bounded) on one base client's connection pool."""

    def __init__(
        self,
        base_url: str | None,
        timeout: float,
        transport: Literal["httpx", "aiohttp"],
        max_clients: int = 64,
    ) -> None:
        self._base_url = base_url
        self._timeout = timeout
        self._transport = transport
        self._max_clients = max_clients
        self._base: AsyncOpenAI | None = None
        self._clients: OrderedDict[str, AsyncOpenAI] = OrderedDict()

    def __len__(self) -> int:
        return len(self._clients)

    def client_for(self, key: str) -> AsyncOpenAI:
        """The client for `key`, made on first use; the least recently used beyond the bound go."""
        fingerprint = key_fingerprint(key)
        client = self._clients.get(fingerprint)
        if client is None:
            client = self._base_client().with_options(api_key=key)
            self._clients[fingerprint] = client
            while len(self._clients) > self._max_clients:
                self._clients.popitem(last=False)  # shares the pool: nothing to close
        self._clients.move_to_end(fingerprint)
        return client

    async def aclose(self) -> None:
        """Close the shared connection pool (at server shutdown)."""
        self._clients.clear()
        if self._base is not None:
            await self._base.close()
            self._base = None

    def prime(self) -> None:
        """Make the base client now: its HTTP stack's imports and the TLS context it loads.

        Also anyio's asyncio backend, which the connection pool imports on its first request
        (20 ms here).
        """
        from anyio._backends import _asyncio  # noqa: F401

        self._base_client()

    def renew(self) -> None:
        """Forget every client and their connections (after a SnapStart restore).

        The next call makes a new base client, on the same TLS context. Nothing is closed: a
        restored environment's sockets from before the snapshot are not connected to anything.
        """
        self._clients.clear()
        self._base = None

    def _base_client(self) -> AsyncOpenAI:
        if self._base is None:
            from openai import AsyncOpenAI

            self._base = AsyncOpenAI(
                api_key="unused",  # every request goes through a per-key copy
                base_url=self._base_url,
                timeout=self._timeout,
                max_retries=0,
                http_client=self._http_client(),
            )
        return self._base

    def _http_client(self) -> Any:
        """The SDK's default client (httpx2) on the pool's TLS context, or its aiohttp one.

        Either keeps no cookies: every key shares this client, so a cookie set on one caller's
        reply would otherwise go out with the next caller's call.
        """
        if self._transport == "aiohttp":
            from openai import DefaultAioHttpClient

            return DefaultAioHttpClient(timeout=self._timeout, cookies=no_cookies())
        from llm_server.providers.openai.direct import tls_context
        from openai import DefaultAsyncHttpxClient

        return DefaultAsyncHttpxClient(
            timeout=self._timeout, verify=tls_context(), cookies=no_cookies()
        )


def no_cookies() -> http.cookiejar.CookieJar:
    """A cookie jar that accepts and returns none (its policy allows no domain)."""
    import http.cookiejar

    return http.cookiejar.CookieJar(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
