"""Who is asking: the owner of everything a request stores, and whether the server knows them.

Every session, idempotency record, cache entry and quota counter is keyed by `Caller.owner`, so a
caller cannot reach what another stored by guessing its id. `known` callers were vouched for by
someone an attacker cannot impersonate (API Gateway's API key check, an authorizer, or the local
server's `CLIENT_API_KEYS`, the gateway's own keys); only they may spend the server's own
OpenAI key (free mode). A gateway key's caller carries its policy (`KeyPolicy`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # a gateway key's caller only: its module loads with the first such request
    from llm_server.keys.records import KeyPolicy

ANONYMOUS = "anonymous"


@dataclass(frozen=True)
class Caller:
    """The caller's owner id (never a raw key) and whether free mode may serve them.

    `free_mode_refusal` says why free mode is refused when the caller is not `known`;
    `policy` is a gateway key's (None: any other caller, whom only the server's limits bind).
    """

    owner: str
    known: bool = False
    free_mode_refusal: str = ""
    peer: str = ""  # an anonymous caller's address (the local server's client, API Gateway's)
    policy: KeyPolicy | None = None

    @property
    def cache_scope(self) -> str | None:
        """Whose state a provider may resume from for this caller (its prompt cache).

        The owner; for an anonymous caller, the owner at its address: anonymous callers share
        one owner, but a prompt cached for one machine must not tell another, by how soon a
        guessed prompt is answered, what that one just sent. None: no address to tell apart.
        """
        if self.owner != ANONYMOUS:
            return self.owner
        return f"{ANONYMOUS}@{self.peer}" if self.peer else None


ANONYMOUS_CALLER = Caller(ANONYMOUS, free_mode_refusal="Free mode needs a client credential")
