"""A request as llama.cpp takes it: the chat template's messages and the sampler's arguments."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llm_server.providers import local_tools
from llm_server.providers.local_grammar import schema_grammar
from llm_server.values import GenerationRequest

if TYPE_CHECKING:
    from llama_cpp import Llama


def sampling(request: GenerationRequest, llama: Llama) -> dict[str, Any]:
    """llama.cpp's arguments for the options a request sets.

    Structured output is llama.cpp's grammar-constrained decoding: `json_object` allows any JSON
    object, `json_schema` only JSON valid against the schema (a reply cut at `max_tokens` is a
    JSON prefix, as OpenAI's is). Offered tools are a grammar too (`local_tools`).
    """
    options = request.options
    chosen: dict[str, Any] = {
        name: getattr(options, name)
        for name in ("top_p", "seed", "presence_penalty", "frequency_penalty")
        if getattr(options, name) is not None
    }
    if options.stop:
        chosen["stop"] = list(options.stop)
    output = options.output_format
    if local_tools.may_call(request):
        chosen["grammar"] = local_tools.call_grammar(options.tools, output).checked(llama)
    elif output.type != "text":
        chosen["grammar"] = schema_grammar(output.schema, output.param).checked(llama)
    return chosen


def chat_messages(request: GenerationRequest) -> list[dict[str, str]]:
    """The messages for the chat template; the system message (with the tools) when there is one."""
    tools = request.options.tools
    system = "\n\n".join(
        part
        for part in (request.instructions, local_tools.tools_prompt(tools) if tools.offered else "")
        if part
    )
    messages = [{"role": "system", "content": system}] if system else []
    return messages + local_tools.template_messages(request.messages)
