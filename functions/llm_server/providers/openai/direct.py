"""The Responses API without the SDK: one POST, its JSON or its event stream back.

Under load the SDK's client side was a third of a local request's CPU (523 of 1,636 µs, see
bench/README.md): for every call it builds an httpx request, runs it through its options,
auth and response machinery, and its aiohttp transport converts it back to aiohttp's. A reply
needs none of it: the body is JSON we built (`wire.request_body`) and the reply is read as
JSON (`wire.to_generation`), so this client does the POST itself (about 90 µs a call instead
of 550). A stream's events are read the same way, each `data:` field as JSON, where the SDK
made a pydantic model of every event. On Lambda, where the SDK's own client is httpx2, the same
POST over httpx2 spares a cold chat the SDK's import (half a second: its `types` declare
hundreds of pydantic models; a cold streamed chat paid a second). Its failures are translated
by the same rules as the SDK's (`errors.map_status`), so a caller cannot tell which client
answered.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from functools import cache
from typing import TYPE_CHECKING, Any, Literal

from llm_server.providers.openai.errors import malformed, map_status, too_slow, unreachable
from llm_server.providers.openai.events import Events, StreamBroken, StreamStalled
from llm_server.providers.openai.retry import retryable_status
from llm_server.providers.retry import Retryable

if TYPE_CHECKING:
    import ssl

    import aiohttp
    import httpx2

OPENAI_BASE_URL = "https://api.openai.com/v1"
# As many connections as the SDK's own pool allows; idle ones kept as long as its.
MAX_CONNECTIONS = 1000
MAX_KEEPALIVE = 100
KEEPALIVE_SECONDS = 5.0

Reply = tuple[int, bytes, str | None]  # status, body, Retry-After
# A transport's two ways to fail: (it timed out, the connection failed), the first checked first
# (httpx2's timeouts are transport errors too; aiohttp's socket timeouts client errors too).
Failures = tuple[type[BaseException], type[BaseException]]


class DirectResponses:
    """`POST {base_url}/responses` for whole replies, every key on one HTTP client.

    Other whole-reply endpoints (`/embeddings`) go the same way, by their path.
    """

    def __init__(self, base_url: str | None, transport: Literal["httpx", "aiohttp"]) -> None:
        self._base = (base_url or OPENAI_BASE_URL).rstrip("/")
        self._url = self._base + "/responses"
        self._transport = transport
        over_aiohttp = transport == "aiohttp"
        self._post = self._over_aiohttp if over_aiohttp else self._over_httpx
        self._open = self._stream_over_aiohttp if over_aiohttp else self._stream_over_httpx
        self._session: aiohttp.ClientSession | None = None
        self._httpx: httpx2.AsyncClient | None = None
        self._proxy: str | None = None

    async def create(
        self, key: str, body: dict[str, Any], budget: float, path: str = "/responses"
    ) -> dict[str, Any]:
        """The reply's JSON; raises `Retryable` or a final `LLMServerException`."""
        headers = _headers(key, "application/json")
        data = json.dumps(body).encode()
        status, content, retry_after = await self._post(self._base + path, data, headers, budget)
        if status >= 400:
            raise _status_error(status, content, retry_after)
        try:
            reply = json.loads(content)
        except ValueError:  # a 200 whose body is not JSON
            raise malformed() from None
        if not isinstance(reply, dict):
            raise malformed()
        return reply

    async def stream(self, key: str, body: dict[str, Any], budget: float) -> Events:
        """The reply's event stream, opened: raises `Retryable` or a final error before it.

        `budget` bounds the wait for each part of it (as the SDK's timeout did), not the whole.
        """
        headers = _headers(key, "text/event-stream")
        data = json.dumps({**body, "stream": True}).encode()
        return await self._open(data, headers, budget)

    async def _over_aiohttp(
        self, url: str, data: bytes, headers: dict[str, str], budget: float
    ) -> Reply:
        import aiohttp

        with _calling(_aiohttp_failures()):
            async with self._aiohttp().post(
                url,
                data=data,
                headers=headers,
                proxy=self._proxy,
                timeout=aiohttp.ClientTimeout(total=budget),
            ) as response:
                return response.status, await response.read(), response.headers.get("retry-after")

    async def _over_httpx(
        self, url: str, data: bytes, headers: dict[str, str], budget: float
    ) -> Reply:
        with _calling(_httpx_failures()):
            response = await self._httpx2().post(url, content=data, headers=headers, timeout=budget)
        return response.status_code, response.content, response.headers.get("retry-after")

    async def _stream_over_aiohttp(
        self, data: bytes, headers: dict[str, str], budget: float
    ) -> Events:
        import aiohttp

        failures = _aiohttp_failures()
        timeout = aiohttp.ClientTimeout(sock_connect=budget, sock_read=budget)
        with _calling(failures):
            response = await self._aiohttp().post(
                self._url, data=data, headers=headers, proxy=self._proxy, timeout=timeout
            )
            if response.status >= 400:
                content = await response.read()
                response.release()
                raise _status_error(response.status, content, response.headers.get("retry-after"))

        async def close() -> None:
            if response.content.at_eof():
                response.release()  # read to its end: the connection goes back to the pool
            else:
                response.close()

        return Events(_reading(response.content.iter_any(), failures), close)

    async def _stream_over_httpx(
        self, data: bytes, headers: dict[str, str], budget: float
    ) -> Events:
        failures = _httpx_failures()
        client = self._httpx2()
        request = client.build_request(
            "POST", self._url, content=data, headers=headers, timeout=budget
        )
        with _calling(failures):
            response = await client.send(request, stream=True)
            if response.status_code >= 400:
                content = await response.aread()
                await response.aclose()
                raise _status_error(
                    response.status_code, content, response.headers.get("retry-after")
                )
        return Events(_reading(response.aiter_bytes(), failures), response.aclose)

    def _aiohttp(self) -> aiohttp.ClientSession:
        """The aiohttp session, made on first use (and the proxy it goes through)."""
        if self._session is None:
            self._session = _session()
            self._proxy = proxy_for(self._url)
        return self._session

    def _httpx2(self) -> httpx2.AsyncClient:
        """The httpx2 client, made on first use."""
        if self._httpx is None:
            self._httpx = _httpx_client()
        return self._httpx

    @property
    def is_open(self) -> bool:
        """Whether its client (and its connections) exists: made on first use, closed at stop."""
        return self._session is not None or self._httpx is not None

    def prime(self) -> None:
        """Make the httpx2 client now: its imports and TLS context (Lambda, ahead of traffic).

        Also anyio's asyncio backend, which its connection pool imports on its first request.
        """
        if self._transport == "httpx":
            from anyio._backends import _asyncio  # noqa: F401

            self._httpx2()

    def renew(self) -> None:
        """Forget the client and its connections (after a SnapStart restore)."""
        self._session = None
        self._httpx = None

    async def aclose(self) -> None:
        """Close the connections (at server shutdown)."""
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._httpx is not None:
            await self._httpx.aclose()
            self._httpx = None


@contextmanager
def _calling(failures: Failures) -> Iterator[None]:
    """A call until its reply (or its stream) is open: failing, it may be tried again."""
    timed_out, failed = failures
    try:
        yield
    except timed_out:
        raise Retryable(too_slow(), None) from None
    except failed:
        raise Retryable(unreachable(), None) from None


async def _reading(chunks: AsyncIterator[bytes], failures: Failures) -> AsyncIterator[bytes]:
    """An open stream's bytes: failing now, it cannot be tried again (text has gone out)."""
    timed_out, failed = failures
    try:
        async for chunk in chunks:
            yield chunk
    except timed_out:
        raise StreamStalled from None
    except failed:
        raise StreamBroken from None


def _aiohttp_failures() -> Failures:
    import aiohttp

    return TimeoutError, aiohttp.ClientError


def _httpx_failures() -> Failures:
    import httpx2

    return httpx2.TimeoutException, httpx2.TransportError


def _session() -> aiohttp.ClientSession:
    """A session trusting what the httpx2 client trusts (`tls_context`), keeping no cookies.

    Not certifi's bundle: nothing the server installs brings certifi (the test tools did).
    """
    import aiohttp

    connector = aiohttp.TCPConnector(
        limit=MAX_CONNECTIONS, keepalive_timeout=KEEPALIVE_SECONDS, ssl=tls_context()
    )
    # No cookie jar: the session is every key's, and a cookie set on one caller's reply must
    # not go out with another's call.
    return aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar())


def _httpx_client() -> httpx2.AsyncClient:
    """An httpx2 client as the SDK's default one (pool, TLS, proxies), keeping no cookies."""
    import httpx2

    from llm_server.providers.openai.client import no_cookies

    return httpx2.AsyncClient(
        verify=tls_context(),
        cookies=no_cookies(),
        limits=httpx2.Limits(
            max_connections=MAX_CONNECTIONS,
            max_keepalive_connections=MAX_KEEPALIVE,
            keepalive_expiry=KEEPALIVE_SECONDS,
        ),
    )


@cache
def tls_context() -> ssl.SSLContext:
    """The CA bundle loaded once (20 ms), for the httpx2 client and the aiohttp session."""
    import httpx2

    return httpx2.create_ssl_context()


def proxy_for(url: str) -> str | None:
    """The proxy `HTTPS_PROXY` / `HTTP_PROXY` name for `url` (none where `NO_PROXY` covers it).

    Read once per session: aiohttp's `trust_env` reads the environment and looks for a
    `.netrc` file on every request (380 µs of CPU a call here, more than the call itself).
    """
    from urllib.parse import urlsplit
    from urllib.request import getproxies, proxy_bypass

    parts = urlsplit(url)
    if parts.hostname is None or proxy_bypass(parts.hostname):
        return None
    return getproxies().get(parts.scheme)


def _headers(key: str, accept: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", "Content-Type": "application/json", "Accept": accept}


def _status_error(status: int, content: bytes, retry_after: str | None) -> Exception:
    """An error status as ours, wrapped in `Retryable` when another try may do better.

    The wording falls back as the SDK's does: the JSON body, or the text, or the status alone.
    """
    text = content.decode("utf-8", errors="replace").strip()
    try:
        body: Any = json.loads(text)
        message = f"Error code: {status} - {body}"
    except ValueError:
        body, message = text, text or f"Error code: {status}"
    error = body.get("error", body) if isinstance(body, dict) else body
    mapped = map_status(status, error, message, retry_after)
    return Retryable(mapped, mapped.retry_after) if retryable_status(status) else mapped
