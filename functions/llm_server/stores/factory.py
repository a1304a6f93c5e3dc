"""Build the configured stores: SQLite (`STORE=sqlite`, the default) or DynamoDB."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from llm_server.config.settings import Settings
from llm_server.exceptions import ConfigurationException
from llm_server.stores.conversations import ConversationLimits, ConversationStore
from llm_server.stores.expiry import Clock
from llm_server.stores.owner_ledger import OwnerLimits
from llm_server.stores.quotas import DynamoDBQuotaStore, QuotaStore, SQLiteQuotaStore
from llm_server.stores.responses import ResponseStore
from llm_server.stores.sessions import SessionLimits, SessionStore, SQLiteSessionStore
from llm_server.stores.usage import SQLiteUsageStore, UsageStore

if TYPE_CHECKING:
    from llm_server.stores.background import BackgroundStore
    from llm_server.stores.keys import KeyStore


def session_limits(settings: Settings) -> SessionLimits:
    """The SESSION_* bounds, which stored responses share."""
    return SessionLimits(
        settings.session_ttl_seconds,
        settings.session_max_stored_turns,
        settings.session_max_bytes,
        settings.sessions_max_per_owner,
    )


def session_store(
    settings: Settings, dynamodb_client: Any = None, clock: Clock = time.time
) -> SessionStore:
    """The session store the settings name, bounded by the SESSION_* settings, on `clock`."""
    limits = session_limits(settings)
    if settings.store == "dynamodb":
        from llm_server.stores.sessions_dynamodb import DynamoDBSessionStore

        return DynamoDBSessionStore(_table(settings), limits, dynamodb_client, clock)
    return SQLiteSessionStore(settings.store_path, limits, clock)


def response_store(settings: Settings, dynamodb_client: Any = None) -> ResponseStore:
    """The store of the Responses API's stored responses, beside the sessions (same TTL)."""
    ttl = settings.session_ttl_seconds
    limits = OwnerLimits(
        settings.stored_responses_max_per_owner, settings.stored_responses_max_bytes_per_owner
    )
    if settings.store == "dynamodb":
        from llm_server.stores.responses_dynamodb import DynamoDBResponseStore

        return DynamoDBResponseStore(_table(settings), ttl, dynamodb_client, limits)
    from llm_server.stores.responses import SQLiteResponseStore

    return SQLiteResponseStore(settings.store_path, ttl, limits)


def conversation_store(settings: Settings, dynamodb_client: Any = None) -> ConversationStore:
    """The Responses API's conversations, each bounded and living a while.

    CONVERSATION_MAX_ITEMS and SESSION_MAX_BYTES bound each, CONVERSATIONS_MAX_PER_OWNER how many
    an owner keeps; they live SESSION_TTL_SECONDS after their last write.
    """
    limits = ConversationLimits(
        settings.session_ttl_seconds,
        settings.conversation_max_items,
        settings.session_max_bytes,
        settings.conversations_max_per_owner,
    )
    if settings.store == "dynamodb":
        from llm_server.stores.conversations_dynamodb import DynamoDBConversationStore

        return DynamoDBConversationStore(_table(settings), limits, dynamodb_client)
    from llm_server.stores.conversations import SQLiteConversationStore

    return SQLiteConversationStore(settings.store_path, limits)


def background_store(settings: Settings, dynamodb_client: Any = None) -> BackgroundStore:
    """Background responses' runs and events, living as long as stored responses."""
    ttl = settings.session_ttl_seconds
    if settings.store == "dynamodb":
        from llm_server.stores.background_dynamodb import DynamoDBBackgroundStore

        return DynamoDBBackgroundStore(_table(settings), ttl, dynamodb_client)
    from llm_server.stores.background import SQLiteBackgroundStore

    return SQLiteBackgroundStore(settings.store_path, ttl)


def shared_cache(settings: Settings, dynamodb_client: Any = None) -> Any:
    """The response cache's shared tier, when `CACHE_SHARED` and the store is DynamoDB."""
    if not (settings.cache_shared and settings.store == "dynamodb"):
        return None
    from llm_server.stores.shared_cache import DynamoDBSharedCache

    return DynamoDBSharedCache(_table(settings), settings.cache_ttl_seconds, dynamodb_client)


def quota_store(settings: Settings, dynamodb_client: Any = None) -> QuotaStore:
    """The store of free-mode quota counters."""
    if settings.store == "dynamodb":
        return DynamoDBQuotaStore(_table(settings), dynamodb_client)
    return SQLiteQuotaStore(settings.store_path)


def usage_store(settings: Settings, dynamodb_client: Any = None) -> UsageStore:
    """The usage ledger's store, beside the quota counters."""
    if settings.store == "dynamodb":
        from llm_server.stores.usage_dynamodb import DynamoDBUsageStore

        return DynamoDBUsageStore(_table(settings), dynamodb_client)
    return SQLiteUsageStore(settings.store_path)


def key_store(settings: Settings, dynamodb_client: Any = None) -> KeyStore:
    """The store of the gateway's keys (imported on first use: only keyed requests need it)."""
    if settings.store == "dynamodb":
        from llm_server.stores.keys_dynamodb import DynamoDBKeyStore

        return DynamoDBKeyStore(_table(settings), dynamodb_client)
    from llm_server.stores.keys import SQLiteKeyStore

    return SQLiteKeyStore(settings.store_path)


def idempotency_layer(settings: Settings, dynamodb_client: Any = None) -> Any:
    """Powertools' persistence layer for idempotency records (imported only when needed)."""
    if settings.store == "dynamodb":
        from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

        from llm_server.stores.dynamodb import dynamodb_client as stores_client
        from llm_server.stores.idempotency_sqlite import IDEMPOTENCY_PK

        return DynamoDBPersistenceLayer(  # the stores' client: Powertools' own would parse again
            table_name=_table(settings),
            key_attr="pk",
            sort_key_attr="sk",
            static_pk_value=IDEMPOTENCY_PK,
            boto3_client=dynamodb_client or stores_client(),
        )
    from llm_server.stores.idempotency_sqlite import SQLitePersistenceLayer

    return SQLitePersistenceLayer(settings.store_path)


def _table(settings: Settings) -> str:
    """DYNAMODB_TABLE, which the settings require whenever STORE=dynamodb."""
    if not settings.dynamodb_table:
        raise ConfigurationException("STORE=dynamodb needs DYNAMODB_TABLE")
    return settings.dynamodb_table
