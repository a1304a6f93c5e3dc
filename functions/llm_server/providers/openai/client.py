"""The HTTP client under the provider: which library, and a cookie jar that keeps nothing.

Every key's calls go through one client and its connections (`direct.py`): a distinct key
costs nothing that stays (5,000 keys once took 500 MB when each had an SDK client of its own).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from llm_server.exceptions import ConfigurationException

if TYPE_CHECKING:
    import http.cookiejar


def pick_transport(choice: Literal["auto", "httpx", "aiohttp"]) -> Literal["httpx", "aiohttp"]:
    """The HTTP client library: "auto" takes aiohttp where it is installed, else httpx2.

    Under many concurrent requests aiohttp costs about a third less CPU per request than
    httpx2, the SDK's default (see bench/README.md). A Lambda container serves one
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


def no_cookies() -> http.cookiejar.CookieJar:
    """A cookie jar that accepts and returns none (its policy allows no domain)."""
    import http.cookiejar

    return http.cookiejar.CookieJar(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
