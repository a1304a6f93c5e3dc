"""Local embeddings: a request of 64 short texts through the server versus llama.cpp alone.

    make bench-embeddings [THREADS=1]    (or: PYTHONPATH=functions:tests python bench/embeddings.py)

The same model file and context as the provider's (`local_embeddings.py`: mean pooling, 512
tokens, each text read alone): llama.cpp alone (`Llama.embed` on each text in the bench's
process, and on all 64 at once for what batching would buy) against `POST /v1/embeddings` over
real HTTP to the server in its own process (`python -m llm_server`, as `make run` starts it),
taken in turns so that noise hits them alike. Medians of --runs, in one run, of the wall time
and of the CPU time each side spent (the server process's; the bench's own for llama.cpp alone),
which a machine loaded by other work changes far less than the wall time. The server's
resident memory (PSS) before its first embedding request and after says what the embedding
context costs. Then the vectors' use: on a 16-question retrieval set (12 English, 4 Korean),
how often the right document is the nearest.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import statistics
import time

import httpx
import psutil

from llm_server.providers.local_embeddings import MAX_TOKENS
from llm_server.providers.local_worker import bundled_model_path
from processes import free_port, local_server, stop

TEXTS = [f"Short text number {n}: 짧은 문장 {n}번." for n in range(64)]
MODEL = "SmolLM2-135M-Instruct.Q4_1-embedding"
DOCS = [
    "The Eiffel Tower is a wrought-iron lattice tower in Paris, France, completed in 1889.",
    "Photosynthesis lets plants turn sunlight, water and carbon dioxide into glucose and oxygen.",
    "Python is a high-level programming language known for its readable syntax.",
    "The Great Barrier Reef off Australia is the world's largest coral reef system.",
    "Insulin is a hormone made by the pancreas that regulates blood sugar levels.",
    "The stock market fell sharply today as investors worried about rising interest rates.",
    "To bake bread, mix flour, water, yeast and salt, let the dough rise, then bake it.",
    "Mount Everest, on the border of Nepal and China, is the highest mountain above sea level.",
    "A black hole is a region of spacetime where gravity is so strong that nothing escapes.",
    "The violin is a string instrument played with a bow, usually with four strings.",
    "Lambda functions run code without provisioning servers and bill per millisecond.",
    "Vaccines train the immune system to recognise a pathogen without causing the disease.",
    "서울은 대한민국의 수도이며 한강이 도시를 가로질러 흐른다.",
    "김치는 배추와 고춧가루로 만드는 한국의 전통 발효 음식이다.",
    "축구는 두 팀이 공을 차서 상대 골대에 넣는 스포츠이다.",
    "비가 많이 오는 장마철은 보통 6월 말에 시작된다.",
]
QUESTIONS = [
    "Which famous tower stands in the French capital?",
    "How do plants make food from light?",
    "What language is popular for easy-to-read code?",
    "Where is the biggest coral reef?",
    "Which hormone controls glucose in the blood?",
    "Why did share prices drop?",
    "How do I make a loaf at home?",
    "What is the tallest peak on Earth?",
    "What object has gravity that light cannot escape?",
    "Which instrument with four strings is played with a bow?",
    "How are serverless functions billed?",
    "How does immunisation protect people?",
    "한국의 수도는 어디인가요?",
    "배추로 만드는 발효 음식은 무엇인가?",
    "공을 차서 골을 넣는 경기는?",
    "장마는 언제 시작하나요?",
]


def alone(llama, batched: bool = False) -> tuple[float, float]:
    """(wall, CPU) seconds llama.cpp takes for the 64 texts: each alone, or all at once."""
    started, cpu = time.perf_counter(), time.process_time()
    if batched:
        llama.embed(TEXTS, normalize=True)
    else:
        for text in TEXTS:
            llama.embed(text, normalize=True)
    return time.perf_counter() - started, time.process_time() - cpu


def via(http: httpx.Client, server: psutil.Process) -> tuple[float, float]:
    """(wall, server CPU) seconds of a whole `/v1/embeddings` request of the 64 texts."""
    started, cpu = time.perf_counter(), _cpu(server)
    # A connection of its own: one kept alive past the server's keep-alive time breaks.
    reply = http.post(
        "/v1/embeddings", json={"model": MODEL, "input": TEXTS}, headers={"Connection": "close"}
    )
    wall = time.perf_counter() - started
    reply.raise_for_status()
    assert len(reply.json()["data"]) == len(TEXTS)
    return wall, _cpu(server) - cpu


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def pss_mib(pid: int) -> float:
    """The process's proportional set size (shared pages split among their users), MiB."""
    with open(f"/proc/{pid}/smaps_rollup") as rollup:
        return int(re.search(r"^Pss:\s+(\d+)", rollup.read(), re.M)[1]) / 1024


def retrieval(http: httpx.Client) -> tuple[int, int]:
    """How many English and Korean questions find their own document nearest."""
    body = {"model": MODEL, "input": DOCS + QUESTIONS, "encoding_format": "float"}
    vectors = [item["embedding"] for item in http.post("/v1/embeddings", json=body).json()["data"]]
    docs, questions = vectors[: len(DOCS)], vectors[len(DOCS) :]
    right = [
        max(range(len(docs)), key=lambda d: _dot(question, docs[d])) == index
        for index, question in enumerate(questions)
    ]
    return sum(right[:12]), sum(right[12:])


def _dot(a: list[float], b: list[float]) -> float:
    return math.fsum(x * y for x, y in zip(a, b, strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--threads",
        type=int,
        default=os.cpu_count(),
        help="llama.cpp's, both sides (LOCAL_THREADS)",
    )
    args = parser.parse_args()
    import llama_cpp

    llama = llama_cpp.Llama(
        model_path=str(bundled_model_path()),
        embedding=True,
        pooling_type=llama_cpp.LLAMA_POOLING_TYPE_MEAN,
        n_ctx=MAX_TOKENS,
        n_batch=MAX_TOKENS,
        n_ubatch=MAX_TOKENS,
        n_threads=args.threads,
        n_threads_batch=args.threads,
        verbose=False,
    )
    port = free_port()
    # A loaded machine must not turn a slow run into a 504: the budget is not what is measured.
    server = local_server(
        port, LOCAL_THREADS=str(args.threads), LOCAL_GENERATION_TIMEOUT_SECONDS="600"
    )
    results: dict[str, list[tuple[float, float]]] = {
        "llama.cpp alone, a text at a time": [],
        "llama.cpp alone, 64 in one batch": [],
        "POST /v1/embeddings": [],
    }
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=300) as http:
            http.post(
                "/v1/chat/completions",
                json={
                    "model": "local",
                    "messages": [{"role": "user", "content": "hi"}],
                    "max_tokens": 1,
                },
            )  # the chat model loaded
            before = pss_mib(server.pid)
            serving = psutil.Process(server.pid)
            via(http, serving)  # loads the embedding context
            after = pss_mib(server.pid)
            alone(llama)
            for _ in range(args.runs):
                results["llama.cpp alone, a text at a time"].append(alone(llama))
                results["llama.cpp alone, 64 in one batch"].append(alone(llama, batched=True))
                results["POST /v1/embeddings"].append(via(http, serving))
            english, korean = retrieval(http)
    finally:
        stop(server)
    base = results["llama.cpp alone, a text at a time"]
    wall, cpu = (statistics.median(sample[at] for sample in base) for at in (0, 1))
    print(f"64 short texts, {args.threads} threads, median of {args.runs} runs: wall, CPU")
    for name, samples in results.items():
        took, spent = (statistics.median(sample[at] for sample in samples) for at in (0, 1))
        print(
            f"  {name:<36} {took * 1000:7.1f} ms ({took / wall:.2f}x)"
            f"  {spent * 1000:7.1f} ms CPU ({spent / cpu:.2f}x)"
        )
    print(f"server PSS: {before:.0f} MiB with the chat model, {after:.0f} MiB after embedding")
    print(f"nearest document is the right one: {english}/12 English, {korean}/4 Korean questions")


if __name__ == "__main__":
    main()
