"""Conversations (`/v1/conversations`), `conversation` and `item_reference` on a response, input
items and token counts, through the OpenAI SDK as its users call them, on both stores.

The app runs on the server key in front of the Responses API stand-in, which records what each
turn sent upstream; tenants are told apart by `X-Api-Key`, and to one the other's ids are as
unknown as ids that never existed.
"""

from __future__ import annotations

import json

import pytest

import openai
from helpers.tenants import sent_messages, tenant_sdk

MODEL = "gpt-4o-mini"


def texts(items) -> list[tuple[str, str]]:
    """(role, text) of each message item, as the SDK parsed them."""
    return [(item.role, item.content[0].text) for item in items]


def message(role: str, text: str) -> dict[str, str]:
    return {"type": "message", "role": role, "content": text}


def test_a_conversation_is_created_read_updated_and_deleted(server):
    with tenant_sdk(server) as client:
        made = client.conversations.create(
            items=[message("user", "안녕"), message("assistant", "반가워요")],
            metadata={"topic": "인사"},
        )
        read = client.conversations.retrieve(made.id)
        updated = client.conversations.update(made.id, metadata={"topic": "작별", "n": "2"})
        reread = client.conversations.retrieve(made.id)
        items = client.conversations.items.list(made.id, order="asc")
        deleted = client.conversations.delete(made.id)
        with pytest.raises(openai.NotFoundError) as gone:
            client.conversations.retrieve(made.id)
        with pytest.raises(openai.NotFoundError):
            client.conversations.items.list(made.id)
    assert made.id.startswith("conv_") and made.object == "conversation"
    assert read.id == made.id and read.created_at == made.created_at
    assert read.metadata == {"topic": "인사"}
    assert updated.metadata == reread.metadata == {"topic": "작별", "n": "2"}
    assert texts(items.data) == [("user", "안녕"), ("assistant", "반가워요")]
    assert (deleted.id, deleted.object, deleted.deleted) == (made.id, "conversation.deleted", True)
    assert gone.value.body["param"] == "conversation_id"


def test_items_are_added_read_paged_and_deleted(server):
    with tenant_sdk(server) as client:
        conversation = client.conversations.create(items=[message("user", "하나")])
        added = client.conversations.items.create(
            conversation.id,
            items=[message("assistant", "둘"), message("user", "셋"), message("assistant", "넷")],
        )
        asc = client.conversations.items.list(conversation.id, limit=2, order="asc")
        every = [item.content[0].text for item in asc]  # the SDK pages on by `after`
        newest_first = client.conversations.items.list(conversation.id, limit=3)
        after = client.conversations.items.list(conversation.id, order="asc", after=asc.data[0].id)
        second = added.data[0].id
        one = client.conversations.items.retrieve(second, conversation_id=conversation.id)
        left = client.conversations.items.delete(second, conversation_id=conversation.id)
        with pytest.raises(openai.NotFoundError) as gone:
            client.conversations.items.retrieve(second, conversation_id=conversation.id)
        remaining = client.conversations.items.list(conversation.id, order="asc")
    assert [item.content[0].text for item in added.data] == ["둘", "셋", "넷"]
    assert added.has_more is False and added.first_id == second
    assert len(asc.data) == 2 and asc.has_more is True and asc.last_id == asc.data[1].id
    assert every == ["하나", "둘", "셋", "넷"]
    assert [i.content[0].text for i in newest_first.data] == ["넷", "셋", "둘"]
    assert newest_first.has_more is True
    assert [i.content[0].text for i in after.data] == ["둘", "셋", "넷"]
    assert (one.id, one.role, one.content[0].text) == (second, "assistant", "둘")
    assert left.id == conversation.id
    assert gone.value.body["param"] == "item_id"
    assert [i.content[0].text for i in remaining.data] == ["하나", "셋", "넷"]


def test_a_second_turn_in_a_conversation_sees_the_first(server, fake):
    with tenant_sdk(server) as client:
        conversation = client.conversations.create(metadata={"user": "민지"})
        first = client.responses.create(
            model=MODEL, input="내 이름은 민지야", conversation=conversation.id
        )
        second = client.responses.create(
            model=MODEL, input="내 이름이 뭐지?", conversation={"id": conversation.id}
        )
        items = client.conversations.items.list(conversation.id, order="asc")
        listed = client.responses.input_items.list(second.id)
    assert sent_messages(fake, 0) == [("user", "내 이름은 민지야")]
    assert sent_messages(fake) == [
        ("user", "내 이름은 민지야"),
        ("assistant", "echo: 내 이름은 민지야"),
        ("user", "내 이름이 뭐지?"),
    ]
    assert first.conversation.id == second.conversation.id == conversation.id
    assert texts(items.data) == [
        ("user", "내 이름은 민지야"),
        ("assistant", "echo: 내 이름은 민지야"),
        ("user", "내 이름이 뭐지?"),
        ("assistant", "echo: 내 이름이 뭐지?"),
    ]
    assert items.data[1].id == first.output[0].id  # the output items, under their own ids
    assert texts(listed.data) == [("user", "내 이름이 뭐지?")]  # its own input, not the history


def test_a_streamed_turn_joins_its_conversation_when_it_completes(server):
    with tenant_sdk(server) as client:
        conversation = client.conversations.create()
        with client.responses.stream(
            model=MODEL, input="스트림", conversation=conversation.id
        ) as stream:
            final = stream.get_final_response()
        items = client.conversations.items.list(conversation.id, order="asc")
    assert texts(items.data) == [("user", "스트림"), ("assistant", "echo: 스트림")]
    assert items.data[1].id == final.output[0].id and final.conversation.id == conversation.id


def test_previous_response_id_with_a_conversation_is_refused_by_name(server, fake):
    with tenant_sdk(server) as client:
        conversation = client.conversations.create()
        earlier = client.responses.create(model=MODEL, input="처음")
        with pytest.raises(openai.BadRequestError) as refused:
            client.responses.create(
                model=MODEL,
                input="다음",
                conversation=conversation.id,
                previous_response_id=earlier.id,
            )
        items = client.conversations.items.list(conversation.id)
    assert refused.value.body["param"] == "conversation"
    assert "previous_response_id" in refused.value.body["message"]
    assert len(fake.seen) == 1 and items.data == []


def test_a_turn_in_a_missing_conversation_is_a_404_before_anything_runs(server, fake):
    with tenant_sdk(server) as client, pytest.raises(openai.NotFoundError) as missing:
        client.responses.create(model=MODEL, input="?", conversation="conv_missing")
    assert missing.value.body["param"] == "conversation" and fake.seen == []


def test_input_items_are_paged_in_either_order(server):
    words = ["하나", "둘", "셋", "넷", "다섯"]
    with tenant_sdk(server) as client:
        made = client.responses.create(model=MODEL, input=[message("user", w) for w in words])
        newest = client.responses.input_items.list(made.id, limit=2)
        every = [item.content[0].text for item in newest]
        asc = client.responses.input_items.list(made.id, order="asc", limit=2)
        after = client.responses.input_items.list(made.id, order="asc", after=asc.data[1].id)
    assert [i.content[0].text for i in newest.data] == ["다섯", "넷"] and newest.has_more
    assert every == words[::-1]
    assert [i.content[0].text for i in asc.data] == ["하나", "둘"]
    assert [i.content[0].text for i in after.data] == ["셋", "넷", "다섯"]
    assert after.has_more is False


def test_input_tokens_count_the_conversation_as_the_turn_would_send_it(server, fake):
    with tenant_sdk(server) as client:
        conversation = client.conversations.create(
            items=[message("user", "내 이름은 민지야"), message("assistant", "반가워요 민지")]
        )
        within = client.responses.input_tokens.count(
            model=MODEL, input="내 이름이 뭐지?", conversation=conversation.id
        )
        spelled_out = client.responses.input_tokens.count(
            model=MODEL,
            input=[
                message("user", "내 이름은 민지야"),
                message("assistant", "반가워요 민지"),
                message("user", "내 이름이 뭐지?"),
            ],
        )
        alone = client.responses.input_tokens.count(model=MODEL, input="내 이름이 뭐지?")
        items = client.conversations.items.list(conversation.id)
    assert within.object == "response.input_tokens"
    assert within.input_tokens == spelled_out.input_tokens > alone.input_tokens > 0
    assert fake.seen == [] and len(items.data) == 2  # nothing ran, nothing was appended


def test_an_item_reference_sends_the_callers_own_earlier_items(server, fake):
    with tenant_sdk(server) as client:
        first = client.responses.create(model=MODEL, input="오늘의 암호는 파랑새")
        asked = client.responses.input_items.list(first.id).data[0]
        conversation = client.conversations.create(items=[message("user", "대화 속 메모")])
        note = client.conversations.items.list(conversation.id).data[0]
        second = client.responses.create(
            model=MODEL,
            conversation=conversation.id,
            input=[
                {"type": "item_reference", "id": asked.id},
                {"type": "item_reference", "id": first.output[0].id},
                {"type": "item_reference", "id": note.id},
                message("user", "다시 말해줘"),
            ],
        )
        kept = client.responses.input_items.list(second.id, order="asc")
    assert sent_messages(fake) == [
        ("user", "대화 속 메모"),  # the conversation's history
        ("user", "오늘의 암호는 파랑새"),  # the references, resolved in order
        ("assistant", "echo: 오늘의 암호는 파랑새"),
        ("user", "대화 속 메모"),
        ("user", "다시 말해줘"),
    ]
    assert texts(kept.data) == [
        ("user", "오늘의 암호는 파랑새"),
        ("assistant", "echo: 오늘의 암호는 파랑새"),
        ("user", "대화 속 메모"),
        ("user", "다시 말해줘"),
    ]


def refusal(call) -> str:
    """The 404 body a call raises, as text."""
    with pytest.raises(openai.NotFoundError) as caught:
        call()
    return json.dumps(caught.value.body, ensure_ascii=False)


def test_another_tenants_conversation_and_items_are_unknown_and_untouched(server, fake):
    """Every call on the owner's ids answers the other tenant exactly as on ids never made."""
    secret = "금고 비밀번호는 4321"
    with tenant_sdk(server) as owner, tenant_sdk(server, "client-2") as other:
        conversation = owner.conversations.create(
            items=[message("user", secret)], metadata={"vault": secret}
        )
        answered = owner.responses.create(
            model=MODEL, input="비밀 기억해", conversation=conversation.id
        )
        item = owner.conversations.items.list(conversation.id).data[-1].id
        own = other.conversations.create().id

        def referring(ref: str):
            return lambda: other.responses.create(
                model=MODEL,
                conversation=own,
                input=[{"type": "item_reference", "id": ref}, message("user", "?")],
            )

        calls = [
            lambda conv, _: other.conversations.retrieve(conv),
            lambda conv, _: other.conversations.update(conv, metadata={"vault": "mine"}),
            lambda conv, _: other.conversations.items.list(conv),
            lambda conv, _: other.conversations.items.create(conv, items=[message("user", "!")]),
            lambda conv, it: other.conversations.items.retrieve(it, conversation_id=conv),
            lambda conv, it: other.conversations.items.delete(it, conversation_id=conv),
            lambda conv, _: other.responses.create(model=MODEL, input="?", conversation=conv),
            lambda conv, _: other.responses.input_tokens.count(
                model=MODEL, input="?", conversation=conv
            ),
            lambda conv, _: other.conversations.delete(conv),
            lambda _, it: referring(it)(),
        ]
        theirs = [refusal(lambda c=c: c(conversation.id, item)) for c in calls]
        theirs.append(refusal(referring(answered.output[0].id)))
        never = [refusal(lambda c=c: c("conv_never_made", "msg_never_made")) for c in calls]
        never.append(refusal(referring("msg_never_made")))
        after = owner.conversations.items.list(conversation.id, order="asc")
        kept = owner.conversations.retrieve(conversation.id)
    for body, unknown in zip(theirs, never, strict=True):
        for made, unmade in (
            (conversation.id, "conv_never_made"),
            (item, "msg_never_made"),
            (answered.output[0].id, "msg_never_made"),
        ):
            body = body.replace(made, unmade)
        assert body == unknown
    named = ["conversation_id"] * 6 + ["conversation"] * 2 + ["conversation_id"]
    assert [json.loads(body)["param"] for body in never] == named + ["input.0.id"] * 2
    assert len(fake.seen) == 1  # only the owner's own turn reached the model
    assert kept.metadata == {"vault": secret}
    assert texts(after.data) == [
        ("user", secret),
        ("user", "비밀 기억해"),
        ("assistant", "echo: 비밀 기억해"),
    ]
