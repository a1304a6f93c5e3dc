"""A turn's bookkeeping is written after its answer, before Lambda may freeze the environment.

The real handler, imported as Lambda's init imports it, with a stand-in Extensions API
(`helpers/runtime_api.py`) playing Lambda's side and DynamoDB on moto behind a proxy that can
hold a write: the caller's answer comes back while its ledger row is still on its way, and the
extension asks for its next event (the moment Lambda could freeze) only once the row is in.
"""

import importlib
import json
import logging
import os
import sys
import threading
import time

import invoke
import pytest

from helpers.faulty_proxy import FaultyProxy
from helpers.lambda_events import emf_blobs, load, value
from helpers.logs import capture_logs
from helpers.runtime_api import ExtensionsAPI
from helpers.stores import dynamodb_table
from llm_server.config.settings import get_settings
from llm_server.stores.quotas import DynamoDBQuotaStore
from llm_server.stores.usage_dynamodb import DynamoDBUsageStore
from llm_server.utils.log import logger

OWNER = "apikey:k1example"  # the API key id in events/*.json


def reloaded_handler():
    get_settings.cache_clear()
    return importlib.reload(sys.modules["llm_server.lambda_handler"])


@pytest.fixture
def deployed(lambda_env, moto_endpoint, monkeypatch):
    """The template's DynamoDB store (on moto, through a proxy); the handler built anew after."""
    import llm_server.lambda_handler  # noqa: F401 - loaded, to be reloaded

    table, client = dynamodb_table(moto_endpoint)
    with FaultyProxy(moto_endpoint) as proxy:
        monkeypatch.setenv("STORE", "dynamodb")
        monkeypatch.setenv("DYNAMODB_TABLE", table)
        monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", proxy.url)
        yield proxy, DynamoDBUsageStore(table, client), DynamoDBQuotaStore(table, client)
        proxy.release()
    monkeypatch.undo()
    reloaded_handler()  # as the other tests expect it: no extension, their own store


@pytest.fixture
def extensions_api(monkeypatch):
    with ExtensionsAPI() as api:
        monkeypatch.setenv("AWS_LAMBDA_RUNTIME_API", api.address)
        yield api


def this_month():
    return time.strftime("%Y-%m", time.gmtime())


def invoked(handler, api, event):
    """One invocation as Lambda makes it: the INVOKE event to the extension, the handler's call."""
    context = invoke.LambdaContext()
    api.invoke(context.aws_request_id)
    return context.aws_request_id, handler.handler(event, context)


def test_the_answer_does_not_wait_for_the_ledger_row_and_the_environment_waits_for_it(
    deployed, extensions_api
):
    proxy, usage, _ = deployed
    handler = reloaded_handler()
    assert [(r["name"], r["events"]) for r in extensions_api.registered] == [
        ("llm-server-after-answer", ["INVOKE"])
    ]
    proxy.hold("UpdateItem")
    request_id, response = invoked(handler, extensions_api, load("chat-korean.json"))

    assert response["statusCode"] == 200  # answered while the row's write is held
    assert proxy.arrived.wait(10), "the ledger row was never sent"
    assert extensions_api.is_holding(request_id)  # the environment cannot freeze yet
    assert usage.month(OWNER, this_month()) == []
    proxy.release()
    assert extensions_api.finished(request_id)
    [row] = usage.month(OWNER, this_month())
    body = json.loads(response["body"])
    assert (row.requests, row.input_tokens, row.output_tokens) == (
        1,
        body["input_tokens"],
        body["output_tokens"],
    )


def test_the_request_log_line_and_metrics_are_written_after_the_answer_first(
    deployed, extensions_api, capsys
):
    """Written by the extension (the caller does not wait), before its store writes.

    A ledger write that hangs cannot hold back, or take down with it, the request's line.
    """
    proxy, _, _ = deployed
    handler = reloaded_handler()
    threads: list[str] = []
    where = _ThreadOf("request", threads)
    logging.getLogger(logger.name).addFilter(where)
    proxy.hold("UpdateItem")  # the ledger row, deferred before the line
    capsys.readouterr()
    try:
        with capture_logs() as logs:
            request_id, response = invoked(handler, extensions_api, load("chat-korean.json"))
            assert response["statusCode"] == 200
            assert proxy.arrived.wait(10), "the ledger row was never sent"
            [line] = [r for r in logs.records() if r["message"] == "request"]  # already there
            [totals] = [b for b in emf_blobs(capsys.readouterr().out) if "Requests" in b]
            proxy.release()
            assert extensions_api.finished(request_id)
    finally:
        logging.getLogger(logger.name).removeFilter(where)
    assert threads == ["llm-server-after-answer"]  # after the answer, on the extension's thread
    body = json.loads(response["body"])
    assert (line["status"], line["path"], line["output_tokens"]) == (
        200,
        "/api/v1/chat",
        body["output_tokens"],
    )
    event_id = load("chat-korean.json")["requestContext"]["requestId"]
    assert line["correlation_id"] == line["request_id"] == event_id  # this invocation's
    assert value(totals, "Requests") == 1 and value(totals, "Latency") == line["latency_ms"]


class _ThreadOf(logging.Filter):
    """Notes the thread each record with `message` is logged on."""

    def __init__(self, message: str, threads: list[str]) -> None:
        super().__init__()
        self._message, self._threads = message, threads

    def filter(self, record: logging.LogRecord) -> bool:
        if record.getMessage() == self._message:
            self._threads.append(threading.current_thread().name)
        return True


def test_events_sent_in_chunks_are_read_as_whole_ones(deployed, extensions_api):
    """However the API frames its events, the extension takes each turn's row after its answer."""
    proxy, usage, _ = deployed
    extensions_api.chunked = True
    handler = reloaded_handler()
    for _ in range(2):  # the second on the same kept-alive connection
        proxy.arrived.clear()
        proxy.hold("UpdateItem")
        request_id, response = invoked(handler, extensions_api, load("chat.json"))
        assert response["statusCode"] == 200  # answered while the row's write is held
        assert proxy.arrived.wait(10) and extensions_api.is_holding(request_id)
        proxy.release()
        assert extensions_api.finished(request_id)
    [row] = usage.month(OWNER, this_month())
    assert row.requests == 2


def test_a_free_mode_reservation_is_settled_with_the_real_usage_after_the_answer(
    deployed, extensions_api
):
    _, usage, quotas = deployed
    handler = reloaded_handler()
    request_id, response = invoked(handler, extensions_api, load("chat-free-mode.json"))
    assert response["statusCode"] == 200
    assert extensions_api.finished(request_id)
    body = json.loads(response["body"])
    day = time.strftime("%Y-%m-%d", time.gmtime())
    # reserved: its input estimate and all 16 max_tokens; settled: what it used
    assert quotas.used(OWNER, f"tpd#{day}") == body["total_tokens_used"]
    [row] = usage.month(OWNER, this_month())
    assert (row.api_key_source, row.output_tokens) == ("server", body["output_tokens"])


def test_without_an_extensions_api_the_row_is_written_before_the_answer(deployed):
    _, usage, _ = deployed
    os.environ.pop("AWS_LAMBDA_RUNTIME_API", None)
    handler = reloaded_handler()
    assert handler.after_answer is None
    response = invoke.invoke(load("chat.json"))
    assert response["statusCode"] == 200
    [row] = usage.month(OWNER, this_month())  # there when the handler returned
    assert row.output_tokens == json.loads(response["body"])["output_tokens"]


def test_an_invocation_the_extension_never_saw_writes_before_answering(deployed, extensions_api):
    """Work goes to the extension only once it holds the same invocation open."""
    _, usage, _ = deployed
    handler = reloaded_handler()
    context = invoke.LambdaContext()  # Lambda sent the extension no INVOKE for it
    response = handler.handler(load("chat.json"), context)
    assert response["statusCode"] == 200
    assert len(usage.month(OWNER, this_month())) == 1


def test_a_registration_the_api_refuses_leaves_the_writes_before_the_answer(monkeypatch):
    from llm_server.lambda_extension import AfterAnswerExtension

    with ExtensionsAPI() as api:
        api.refuse_registration = True
        monkeypatch.setenv("AWS_LAMBDA_RUNTIME_API", api.address)
        assert AfterAnswerExtension.start() is None
