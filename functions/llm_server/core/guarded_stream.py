"""A streamed turn through the guardrail: only checked text leaves.

The input is checked first, as a whole turn's is. On a provider that applies the guardrail
itself (Bedrock: ConverseStream in `sync` mode checks each chunk before sending it) the deltas
pass as they come and the reply's tool calls are checked at its end. Elsewhere the deltas are
held and checked in chunks: once `GUARDRAIL_STREAM_CHARS` characters are held (default 1,000,
one text unit: what ApplyGuardrail bills by), everything up to the last space or line break is
checked and sent, the rest waits for the next chunk (a word is never cut in two; a run without
a break goes whole at twice the size). A thought's end, and the reply's, check what is left
(with the calls' arguments). What the guardrail masks leaves masked. A block stops the model at
once and ends the stream with the guardrail's message, after what had been checked and sent
(the final reply's text is both). A phrase split between two chunks is read as two halves, as
in Bedrock's own streaming.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, replace

from llm_server.core.free_mode import input_estimate
from llm_server.core.guardrail import GUARDED, Guard, Reading
from llm_server.core.text import text_tokens
from llm_server.providers.base import ChatProvider
from llm_server.values import Generation, GenerationRequest, GuardrailReport, Thought, ThoughtDelta

Item = str | ThoughtDelta | Generation
_BREAKS = (" ", "\n", "\t")


@dataclass
class _Group:
    """Held text of one kind: the reply's, or reasoning (a summary of it, or not)."""

    thought: bool
    summary: bool
    text: str


class _Window:
    """The deltas held until checked, grouped by kind, in order."""

    def __init__(self, chunk: int) -> None:
        self.chunk = chunk
        self.groups: list[_Group] = []

    def add(self, item: str | ThoughtDelta) -> None:
        thought = isinstance(item, ThoughtDelta)
        summary = isinstance(item, ThoughtDelta) and item.summary
        text = item.text if isinstance(item, ThoughtDelta) else item
        last = self.groups[-1] if self.groups else None
        if last is not None and (last.thought, last.summary) == (thought, summary):
            last.text += text
        elif text:
            self.groups.append(_Group(thought, summary, text))

    def ripe(self) -> list[_Group]:
        """What to check now: a chunk's worth, up to the last break (nothing before a chunk)."""
        size = sum(len(group.text) for group in self.groups)
        if size < self.chunk:
            return []
        last = self.groups[-1]
        cut = max(last.text.rfind(mark) for mark in _BREAKS) + 1
        if cut == 0 and size < 2 * self.chunk:
            taken, self.groups = self.groups[:-1], [last]
            return taken
        cut = cut or len(last.text)
        taken = [*self.groups[:-1], _Group(last.thought, last.summary, last.text[:cut])]
        rest = last.text[cut:]
        self.groups = [_Group(last.thought, last.summary, rest)] if rest else []
        return taken

    def drain(self) -> list[_Group]:
        """Everything held."""
        taken, self.groups = self.groups, []
        return taken


class _Checked:
    """One stream's checked output: what left, the thoughts ended, the report, a block."""

    def __init__(self, guard: Guard, request: GenerationRequest, report: GuardrailReport) -> None:
        self.guard, self.request, self.report = guard, request, report
        self.window = _Window(guard.chunk_chars)
        self.shown: list[str] = []  # the reply's text that left
        self.thinking: list[str] = []  # the open thought's text that left
        self.thoughts: list[Thought] = []  # the thoughts ended, as they left
        self.produced: list[str] = []  # all the model said (what a cut stream is charged)
        self.blocked: str | None = None

    async def release(self, groups: list[_Group]) -> list[str | ThoughtDelta]:
        """Check `groups`: what may leave (masked), or the guardrail's message (`blocked`)."""
        if not groups:
            return []
        assert self.guard.guardrail is not None
        texts = [group.text for group in groups]
        verdict = await self.guard.guardrail.check("output", texts, self.request.deadline)
        self.report = self.report.plus(verdict.report)
        if verdict.blocked is not None:
            self.blocked = verdict.blocked
            return [verdict.blocked]
        out: list[str | ThoughtDelta] = []
        for group, text in zip(groups, verdict.texts, strict=True):
            (self.thinking if group.thought else self.shown).append(text)
            out.append(ThoughtDelta(text, group.summary) if group.thought else text)
        return out

    async def delta(self, item: str | ThoughtDelta) -> list[str | ThoughtDelta]:
        """A delta held; what a ripe chunk lets out."""
        self.produced.append(item.text if isinstance(item, ThoughtDelta) else item)
        if isinstance(item, ThoughtDelta) and item.ended is not None:
            return await self.end_thought(item.ended)
        self.window.add(item)
        return await self.release(self.window.ripe())

    async def end_thought(self, thought: Thought) -> list[str | ThoughtDelta]:
        """What is held, checked; then the thought's end, with its text as it left."""
        out = await self.release(self.window.drain())
        if not self.thinking and thought.text and self.blocked is None:
            out += await self.release([_Group(True, thought.summary, thought.text)])
        if self.blocked is not None:
            return out
        ended = replace(thought, text="".join(self.thinking))
        self.thoughts.append(ended)
        self.thinking = []
        return [*out, ThoughtDelta(ended=ended)]

    def cut_short(self) -> Generation:
        """The reply of a stream the guardrail stopped: what left and its message."""
        assert self.blocked is not None
        return Generation(
            "".join(self.shown) + self.blocked,
            self.request.model,
            input_tokens=input_estimate(self.request),
            output_tokens=text_tokens(self.produced),
            finish_reason="content_filter",
            guardrail=self.report,
        )

    async def finish(self, final: Generation, native: bool) -> list[Item]:
        """The held rest and the calls checked; the reply as it left, last."""
        out: list[Item] = []
        if native:
            read = Reading(text=False, thoughts_from=len(final.thoughts))
            shown = final.text
        else:
            out += await self.release(self.window.drain())
            if self.blocked is not None:
                return [*out, self.cut_short()]
            shown = "".join(self.shown)
            thoughts = (*self.thoughts, *final.thoughts[len(self.thoughts) :])
            final = replace(final, text=shown, thoughts=thoughts)
            read = Reading(text=False, thoughts_from=len(self.thoughts))
        checked, blocked = await self.guard.check_output(self.request, final, self.report, read)
        if blocked is None:
            return [*out, checked]
        return [*out, blocked, replace(checked, text=shown + blocked)]


async def guarded(
    guard: Guard, provider: ChatProvider, request: GenerationRequest
) -> AsyncGenerator[Item, None]:
    """`provider`'s stream of `request`, through `guard`'s guardrail."""
    native = GUARDED in provider.honours
    checked = await guard.check_input(request, native)
    if checked.blocked is not None:
        yield checked.blocked.text
        yield checked.blocked
        return
    state = _Checked(guard, request, checked.report)
    stream = provider.stream(checked.request)
    try:
        async for item in _until_blocked(state, stream, native):
            yield item
    finally:
        await stream.aclose()  # a block stops the model at once


async def _until_blocked(
    state: _Checked, stream: AsyncIterator[Item], native: bool
) -> AsyncIterator[Item]:
    async for item in stream:
        if isinstance(item, Generation):
            for out in await state.finish(item, native):
                yield out
            return
        if native:
            yield item
            continue
        for out in await state.delta(item):
            yield out
        if state.blocked is not None:
            yield state.cut_short()
            return
