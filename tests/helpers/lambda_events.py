"""API Gateway events from `events/`, as a deployed client sends them; the EMF lines they make."""

import base64
import json
from pathlib import Path

EVENTS = Path(__file__).resolve().parents[2] / "events"
CALLER_KEY = "sk-proj-" + "k" * 40
SERVER_KEY = "sk-proj-" + "s" * 40


def load(name):
    """An event file as a deployed client sends it: a normal-mode chat carries its OpenAI key."""
    event = json.loads((EVENTS / name).read_text(encoding="utf-8"))
    if "chat-completions" in name:
        event["headers"]["Authorization"] = f"Bearer {CALLER_KEY}"
        if "multiValueHeaders" in event:
            event["multiValueHeaders"]["Authorization"] = [f"Bearer {CALLER_KEY}"]
    elif (event.get("path") or event.get("rawPath", "")).endswith("/api/v1/chat"):
        with_key(event)
    return event


def with_key(event):
    """Add the caller's key to a chat body that is JSON, not in free mode and has none."""
    encoded = event.get("isBase64Encoded")
    text = base64.b64decode(event["body"]).decode() if encoded else event["body"]
    try:
        body = json.loads(text)
    except ValueError:
        return  # the malformed-JSON event stays malformed
    if body.get("free_mode") or "openai_api_key" in body:
        return
    text = json.dumps({**body, "openai_api_key": CALLER_KEY}, ensure_ascii=False)
    event["body"] = base64.b64encode(text.encode()).decode() if encoded else text


def emf_blobs(text):
    blobs = []
    for line in text.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            blobs.append(json.loads(line))
    return blobs


def value(blob, name):
    """A metric's value in an EMF blob (one value, or a list of the values recorded)."""
    recorded = blob[name]
    assert not isinstance(recorded, list) or len(recorded) == 1, recorded
    return recorded[0] if isinstance(recorded, list) else recorded
