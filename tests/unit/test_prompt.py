"""Prompt assembly: the system prompt's sections and the parsing of conversation history."""

from llm_server.config.settings import DEFAULT_SYSTEM_MESSAGE
from llm_server.native_api.prompt import compose_system_prompt, parse_history
from llm_server.native_api.schemas import HistoryMessage
from llm_server.values import ChatMessage


def test_all_sections_in_documented_order():
    prompt = compose_system_prompt(
        "너는 요리사야.",
        "셰프",
        ["채식주의자", "매운 음식을 싫어함"],
        "짧게 답해.",
        DEFAULT_SYSTEM_MESSAGE,
    )
    assert prompt == (
        "너는 요리사야.\n\n"
        "## Role\n셰프\n\n"
        "## Memory\n- 채식주의자\n- 매운 음식을 싫어함\n\n"
        "## Instructions\n짧게 답해."
    )


def test_blank_system_message_uses_the_default_and_empty_sections_are_left_out():
    prompt = compose_system_prompt("  ", "", ["", "  "], "\n", DEFAULT_SYSTEM_MESSAGE)
    assert prompt == "당신은 도움이 되는 AI 어시스턴트입니다."


def test_only_memory_section():
    prompt = compose_system_prompt("", "", ["user lives in Seoul"], "", "Be helpful.")
    assert prompt == "Be helpful.\n\n## Memory\n- user lives in Seoul"


def test_prefixed_strings_take_their_role_and_lose_the_prefix():
    history = parse_history(
        ["user: 안녕", "Assistant:  반가워요", "사용자: 날씨는?", "어시스턴트: 맑아요"]
    )
    assert history == [
        ChatMessage("user", "안녕"),
        ChatMessage("assistant", " 반가워요"),
        ChatMessage("user", "날씨는?"),
        ChatMessage("assistant", "맑아요"),
    ]


def test_plain_strings_alternate_starting_with_user():
    assert [m.role for m in parse_history(["a", "b", "c"])] == ["user", "assistant", "user"]


def test_plain_string_after_a_prefixed_turn_takes_the_other_role():
    history = parse_history(["assistant: hello", "hi there", "how are you"])
    assert [m.role for m in history] == ["assistant", "user", "assistant"]


def test_objects_keep_their_role_and_blank_entries_are_skipped():
    history = parse_history(
        [HistoryMessage(role="assistant", content="첫 인사"), "", "user:   ", "질문"]
    )
    assert history == [ChatMessage("assistant", "첫 인사"), ChatMessage("user", "질문")]


def test_a_colon_later_in_the_text_is_not_a_prefix():
    assert parse_history(["note: user: x"]) == [ChatMessage("user", "note: user: x")]
