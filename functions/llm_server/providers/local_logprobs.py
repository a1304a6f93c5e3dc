"""Log probabilities from the local model, read off llama.cpp's logits as it samples.

llama-cpp-python computes logprobs only for a model loaded with `logits_all` (a context-long
array of vocabulary-wide logits: 400 MB for this model), so they are recorded here instead, by a
logits processor: each call sees the next token's logits (before penalties, grammar and
temperature, as OpenAI reports them) and the tokens so far, whose last is the one sampled from
the previous call's logits. The last token, never followed by another call, is the rest of the
reply's text.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llm_server.values import TokenLogprob

if TYPE_CHECKING:
    from llama_cpp import Llama


LIKELIEST = 64


class LogprobRecorder:
    """A llama.cpp logits processor that records each sampled token's logprob and top ones."""

    def __init__(self, llama: Llama, top: int) -> None:
        self._llama = llama
        self._top = top
        self._pending: Any = None  # the last call's log-softmax, awaiting its sampled token
        self.tokens: list[int] = []
        self.entries: list[TokenLogprob] = []

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        """Resolve the previous step by the token it sampled; keep this step's distribution."""
        import numpy as np

        if self._pending is not None:
            self._record(int(input_ids[-1]))
        shifted = scores - scores.max()
        self._pending = shifted - np.log(np.exp(shifted).sum())
        return scores

    def finish(self, text: str) -> tuple[TokenLogprob, ...]:
        """The entries for the whole reply `text` (the last token is what text remains)."""
        done, whole = self._llama.detokenize(self.tokens), text.encode()
        rest = whole[len(done) :] if whole.startswith(done) else b""  # may start mid-character
        if self._pending is not None and rest:
            last = self._token_for(rest)
            if last is not None:
                self._record(last)
        return tuple(self.entries)

    def _token_for(self, piece: bytes) -> int | None:
        """The token whose bytes are `piece`: among the likeliest first (the sampler's top-k)."""
        import numpy as np

        likeliest = np.argpartition(self._pending, -LIKELIEST)[-LIKELIEST:]
        for token in likeliest:
            if self._llama.detokenize([int(token)]) == piece:
                return int(token)
        tokens = self._llama.tokenize(piece, add_bos=False, special=False)
        return tokens[0] if len(tokens) == 1 else None

    def _record(self, token: int) -> None:
        import numpy as np

        logprobs = self._pending
        self._pending = None
        self.tokens.append(token)
        best: Any = np.argpartition(logprobs, -self._top)[-self._top :] if self._top else []
        ranked = sorted(best, key=lambda t: -logprobs[t])
        top = tuple(self._entry(int(t), float(logprobs[t])) for t in ranked)
        self.entries.append(self._entry(token, float(logprobs[token]), top))

    def _entry(
        self, token: int, logprob: float, top: tuple[TokenLogprob, ...] = ()
    ) -> TokenLogprob:
        raw = self._llama.detokenize([token])
        text = raw.decode("utf-8", errors="replace")
        return TokenLogprob(text, logprob, tuple(raw), top)
