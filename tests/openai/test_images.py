"""Image content: passed on to OpenAI as `input_image` parts; the local model refuses it by name."""

import pytest

from helpers.openai_app import openai_app_server, post_v1

CALLER_KEY = "sk-images-" + "c" * 40
PICTURE = "https://example.com/seoul.png"
DATA_URL = "data:image/png;base64,iVBORw0KGgo="


def serve(fake, **overrides):
    return openai_app_server(fake, **overrides)


def post(server, path, body, key=CALLER_KEY):
    return post_v1(server, path, body, key)


def test_images_reach_the_responses_api_as_input_image_parts(fake):
    chat_content = [
        {"type": "text", "text": "이 사진은 어디인가요?"},
        {"type": "image_url", "image_url": {"url": PICTURE, "detail": "low"}},
    ]
    responses_content = [
        {"type": "input_text", "text": "And this one?"},
        {"type": "input_image", "image_url": DATA_URL},
    ]
    with serve(fake, llm_provider="openai") as server:
        chat = post(
            server,
            "/chat/completions",
            {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": chat_content}]},
        )
        response = post(
            server,
            "/responses",
            {"model": "gpt-4o-mini", "input": [{"role": "user", "content": responses_content}]},
        )
    assert chat.status_code == 200 and response.status_code == 200
    assert fake.seen[0].body["input"][0]["content"] == [
        {"type": "input_text", "text": "이 사진은 어디인가요?"},
        {"type": "input_image", "image_url": PICTURE, "detail": "auto"},
    ]
    assert fake.seen[1].body["input"][0]["content"][1]["image_url"] == DATA_URL


def test_the_local_model_refuses_images_by_name(fake):
    content = [{"type": "text", "text": "hi"}, {"type": "image_url", "image_url": {"url": PICTURE}}]
    with serve(fake, llm_provider="local") as server:
        answer = post(
            server,
            "/chat/completions",
            {"model": "local", "messages": [{"role": "user", "content": content}]},
        )
    assert answer.status_code == 400
    assert answer.json()["error"]["param"] == "image_url"
    assert "text only" in answer.json()["error"]["message"]


@pytest.mark.parametrize(
    ("message", "param"),
    [
        (
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://x/y"}}]},
            "messages.0.content.0",
        ),
        (
            {
                "role": "assistant",
                "content": [{"type": "image_url", "image_url": {"url": PICTURE}}],
            },
            "messages.0.content.0",
        ),
        (
            {"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]},
            "messages.0.content.0",
        ),
    ],
)
def test_unusable_content_parts_are_refused_by_name(fake, message, param):
    with serve(fake, llm_provider="openai") as server:
        answer = post(server, "/chat/completions", {"model": "gpt-4o-mini", "messages": [message]})
    assert answer.status_code == 400 and answer.json()["error"]["param"] == param
    assert fake.seen == []
