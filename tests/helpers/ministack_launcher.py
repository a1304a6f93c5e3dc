"""Start ministack (run by its own venv's Python) with one gap of version 1.5.33 filled.

On AWS, a REST API method that requires an API key passes the key's id to the Lambda proxy
integration as `requestContext.identity.apiKeyId` (and the key as `apiKey`): the owner identity
of every tenant of a stack deployed before gateway keys (the migration test deploys one).
ministack 1.5.33 checks the key but leaves both fields out of the event; this wraps its event
builder to add them, from the same key record it checked.
"""

from ministack.app import main
from ministack.services import apigateway_v1

_build_event = apigateway_v1._build_lambda_event_v1


def _with_api_key(*args, **kwargs):
    event = _build_event(*args, **kwargs)
    headers = args[6]
    key = apigateway_v1._resolve_api_key(apigateway_v1._api_key_from_request(headers))
    if key is not None:
        event["requestContext"]["identity"].update(apiKey=key["value"], apiKeyId=key["id"])
    return event


apigateway_v1._build_lambda_event_v1 = _with_api_key
main()
