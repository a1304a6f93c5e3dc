"""A conversation's next turn on the local model: resumed from its prompt cache, or read whole.

    make bench-next-turn    (or: PYTHONPATH=functions:tests python bench/next_turn.py [--rounds 8])

The default local setup: anonymous callers, the real llama.cpp model over real HTTP. Each round
sends a conversation's turn, then its next turn (the same history, the reply, one more
question) twice, side by side: from the same address, which resumes from the prompt the turn
before left in llama.cpp's cache, and from another (127.0.0.2), which the cache never serves
(before the fix every anonymous caller's turn was read whole, like this one). Medians.
"""

from __future__ import annotations

import argparse
import statistics
import time

import httpx

from helpers.live_server import LiveServer
from helpers.settings import make_settings
from llm_server.app import Services, create_app


def conversation(turns: int) -> tuple[dict, dict]:
    """A turn with `turns - 1` exchanges before it, and the turn after it."""
    history = []
    for index in range(turns):
        history += [
            {"role": "user", "content": f"Tell me fact {index} about the sea and its tides."},
            {
                "role": "assistant",
                "content": f"Fact {index}: the sea's colour comes from light, its waves from "
                "wind and its tides from the moon.",
            },
        ]
    ask = {"max_tokens": 8, "temperature": 0.7}
    turn = {**ask, "conversation_history": history[:-2], "user_message": history[-2]["content"]}
    return turn, {**ask, "conversation_history": history, "user_message": "And one more?"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--turns", type=int, default=6)
    args = parser.parse_args()
    settings = make_settings()
    app = create_app(settings, Services.from_settings(settings))
    turn, next_turn = conversation(args.turns)
    seconds: dict[str, list[float]] = {"same address": [], "another address": []}
    with LiveServer(app) as server:
        here = httpx.Client(base_url=server.url, timeout=120)
        elsewhere = httpx.Client(
            base_url=server.url,
            timeout=120,
            transport=httpx.HTTPTransport(local_address="127.0.0.2"),
        )
        with here, elsewhere:
            here.post("/api/v1/chat", json=turn).raise_for_status()  # the model loaded
            for _ in range(args.rounds):
                for label, http in (("same address", here), ("another address", elsewhere)):
                    here.post("/api/v1/chat", json=turn).raise_for_status()
                    started = time.perf_counter()
                    answer = http.post("/api/v1/chat", json=next_turn)
                    seconds[label].append(time.perf_counter() - started)
                    answer.raise_for_status()
    prompt = answer.json()["input_tokens"]
    print(f"next turn, {prompt} prompt tokens, 8 out, medians of {args.rounds}:")
    for label, figures in seconds.items():
        print(f"  {label:16} {statistics.median(figures) * 1000:7.0f} ms")


if __name__ == "__main__":
    main()
