"""One caller floods one session: the store's size and a session read, with and without bounds.

    make bench-flood                      (this tree alone)
    make bench-flood COMPARE=<commit>     (that commit side by side, in the same run)

`--posts` (60) chats of a 900 KB message into one session at temperature 0, through the local
server (`python -m llm_server`, SQLite store, response cache on: as in the attack, one upstream
call serves them all) in front of the echoing Responses API stand-in. Reports the SQLite file's
size, and the size, time and server RSS of one `GET /api/v1/sessions/{id}`.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import httpx
import psutil

from helpers.fake_openai import FakeOpenAI
from processes import code_variants, free_port, llm_server, stop

MIB = 1024 * 1024
KEY = "sk-flood-" + "f" * 40


def flood(upstream: str, code: Path | None, posts: int) -> dict[str, float]:
    store = Path(tempfile.mkdtemp()) / "flood.sqlite3"
    port = free_port()
    server = llm_server(
        upstream,
        port,
        code,
        SESSIONS_ENABLED="true",
        CACHE_ENABLED="true",
        STORE_PATH=str(store),
        LOG_LEVEL="WARNING",
        MAX_BODY_BYTES=str(2 * MIB),
    )
    url = f"http://127.0.0.1:{port}"
    body = {
        "session_id": "flood",
        "user_message": "x" * 900_000,
        "temperature": 0,
        "openai_api_key": KEY,
        "max_tokens": 16,
    }
    try:
        with httpx.Client(base_url=url, timeout=120) as client:
            for _ in range(posts):
                client.post("/api/v1/chat", json=body).raise_for_status()
            started = time.perf_counter()
            read = client.get("/api/v1/sessions/flood")
            seconds = time.perf_counter() - started
        rss = psutil.Process(server.pid).memory_info().rss
    finally:
        stop(server)
    on_disk = sum(f.stat().st_size for f in store.parent.iterdir())
    return {
        "disk": on_disk / MIB,
        "read": len(read.content) / MIB,
        "seconds": seconds,
        "rss": rss / MIB,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=60)
    parser.add_argument("--compare", help="a commit to measure side by side")
    args = parser.parse_args()
    with FakeOpenAI() as upstream, code_variants(args.compare) as variants:
        results = [(name, flood(upstream.url, code, args.posts)) for name, code in variants]
    print(f"{args.posts} posts of 900 KB into one session")
    print(f"{'code':<14}{'store on disk':>15}{'one GET':>10}{'GET time':>10}{'server RSS':>12}")
    for name, r in results:
        print(
            f"{name:<14}{r['disk']:>13.1f} M{r['read']:>8.1f} M{r['seconds']:>9.2f}s"
            f"{r['rss']:>10.0f} M"
        )


if __name__ == "__main__":
    main()
