"""A thought's seal as one string a client carries back, whichever provider made it.

Clients keep reasoning as a signed block (Anthropic's `thinking` with its `signature`, a chat
completion's `thinking_blocks`, a Responses `reasoning` item's `encrypted_content`) and send it
back with the turn it preceded: Claude refuses a tool loop that drops its signed thinking, and
OpenAI's reasoning models continue from their `encrypted_content`. The string a client gets
packs the provider's seal with the provider's name and item id, so a thought goes back only to
the provider that made it (another could not read it) and is recognised whatever API carried it.
"""

from __future__ import annotations

import base64
import binascii
import json

from llm_server.values import Thought

_PREFIX = "llms1."


def seal_of(thought: Thought) -> str:
    """The string a client is given as the thought's signature (or redacted data)."""
    packed: dict[str, object] = {"source": thought.source, "id": thought.id, "seal": thought.seal}
    if thought.redacted:
        packed["redacted"] = thought.redacted
    if thought.summary:
        packed["summary"] = True
    text = json.dumps(packed, separators=(",", ":"))
    return _PREFIX + base64.urlsafe_b64encode(text.encode()).decode()


def thought_from(text: str, sealed: str) -> Thought:
    """The thought a client sent back: its text and the string `seal_of` gave it.

    A seal this server did not make names no provider: the thought is sent back to none.
    """
    if sealed.startswith(_PREFIX):
        try:
            packed = json.loads(base64.urlsafe_b64decode(sealed[len(_PREFIX) :]))
            return Thought(
                str(packed["source"]),
                text,
                str(packed["seal"]),
                str(packed.get("redacted", "")),
                str(packed["id"]),
                packed.get("summary") is True,
            )
        except (ValueError, KeyError, TypeError, binascii.Error):
            pass
    return Thought("", text)
