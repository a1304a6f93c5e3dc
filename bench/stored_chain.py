"""A chain of stored images continued: what goes upstream and what the server holds.

    make bench-chain                      (this tree alone)
    make bench-chain COMPARE=<commit>     (that commit side by side, in the same run)

One caller stores `--records` (100) responses through `/v1/responses`, each carrying one
880 KB `input_image` data URL and no text, each continuing the last; then `--concurrent` (4)
continuations of 200 bytes are sent at once. Reports the largest body the Responses API
stand-in received, and the server's RSS before the continuations and at their peak.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import tempfile
import threading
from pathlib import Path

import httpx
import psutil

from helpers.fake_openai import FakeOpenAI
from processes import code_variants, free_port, llm_server, stop

MIB = 1024 * 1024
KEY = "sk-chain-" + "c" * 40
HEADERS = {"Authorization": f"Bearer {KEY}"}


def peak_rss(pid: int, done: threading.Event) -> list[int]:
    """Sample a process's RSS every 10 ms until `done`; the samples, in a list filled live."""
    samples = [psutil.Process(pid).memory_info().rss]

    def sample() -> None:
        while not done.wait(0.01):
            samples.append(psutil.Process(pid).memory_info().rss)

    threading.Thread(target=sample, daemon=True).start()
    return samples


def chain(upstream: FakeOpenAI, code: Path | None, records: int, concurrent: int) -> dict:
    port = free_port()
    store = Path(tempfile.mkdtemp()) / "chain.sqlite3"
    settings = {"SESSIONS_ENABLED": "true", "STORE_PATH": str(store), "LOG_LEVEL": "WARNING"}
    server = llm_server(upstream.url, port, code, **settings)
    url = f"http://127.0.0.1:{port}/v1/responses"
    image = "data:image/png;base64," + base64.b64encode(os.urandom(660_000)).decode()
    try:
        previous = None
        with httpx.Client(timeout=120, headers=HEADERS) as client:
            for _ in range(records):
                part = {"type": "input_image", "image_url": image}
                body = {
                    "model": "gpt-4o-mini",
                    "input": [{"role": "user", "content": [part]}],
                    "previous_response_id": previous,
                    "max_output_tokens": 8,
                }
                answer = client.post(url, json=body)
                assert answer.status_code == 200, answer.text[:300]
                previous = answer.json()["id"]
        upstream.seen.clear()
        before = psutil.Process(server.pid).memory_info().rss
        done = threading.Event()
        samples = peak_rss(server.pid, done)
        body = {"model": "gpt-4o-mini", "input": "x" * 200, "previous_response_id": previous}
        send = {"json": body, "headers": HEADERS, "timeout": 300}
        threads = [
            threading.Thread(target=httpx.post, args=(url,), kwargs=send) for _ in range(concurrent)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        done.set()
        sent = max((len(json.dumps(seen.body)) for seen in upstream.seen), default=0)
    finally:
        stop(server)
    return {"sent": sent / MIB, "before": before / MIB, "peak": max(samples) / MIB}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100)
    parser.add_argument("--concurrent", type=int, default=4)
    parser.add_argument("--compare", help="a commit to measure side by side")
    args = parser.parse_args()
    with FakeOpenAI() as upstream, code_variants(args.compare) as variants:
        results = [
            (name, chain(upstream, code, args.records, args.concurrent)) for name, code in variants
        ]
    print(f"{args.records} stored 880 KB images, then {args.concurrent} continuations at once")
    print(f"{'code':<14}{'largest upstream body':>23}{'RSS before':>12}{'RSS peak':>10}", end="")
    print(f"{'rise':>8}")
    for name, r in results:
        rise = r["peak"] - r["before"]
        print(
            f"{name:<14}{r['sent']:>21.1f} M{r['before']:>10.0f} M{r['peak']:>8.0f} M{rise:>6.0f} M"
        )


if __name__ == "__main__":
    main()
