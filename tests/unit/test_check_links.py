"""The Markdown link check of `make lint`: GitHub's heading anchors, and what counts as broken."""

import pytest

from helpers.toolchain import load

links = load("check_links")


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("`POST /api/v1/chat`", "post-apiv1chat"),
        ("Conversations and background responses", "conversations-and-background-responses"),
        ("On AWS: one Lambda behind API Gateway", "on-aws-one-lambda-behind-api-gateway"),
        (
            "Which model answers, and with which key (`api_key_source`)",
            "which-model-answers-and-with-which-key-api_key_source",
        ),
        (
            "`make e2e`: the stack deployed to an AWS emulator",
            "make-e2e-the-stack-deployed-to-an-aws-emulator",
        ),
        ("The server's key: Secrets Manager", "the-servers-key-secrets-manager"),
        ("A [linked](https://example.com) heading", "a-linked-heading"),
        ("Two  spaces -- and dashes", "two--spaces----and-dashes"),
        ("설정 (한국어)", "설정-한국어"),
    ],
)
def test_slug_is_githubs(heading, anchor):
    assert links.slug(heading) == anchor


def test_repeated_headings_take_a_number_and_code_blocks_have_none():
    page = "# Tests\n## Tests\n### Tests\n```sh\n# Not a heading\n```\nTitle\n-----\n"
    assert links.anchors(page) == {"tests", "tests-1", "tests-2", "title"}


def test_links_outside_code_only_and_not_to_other_sites():
    page = (
        "[a](docs/a.md#x) ![b](img.png 'title') [c](https://example.com) `[d](nowhere.md)`\n"
        '```\n[e](nowhere.md)\n```\n[f]: <ref.md>\n<a href="#top">top</a>\n'
    )
    assert links.links(page) == [(1, "docs/a.md#x"), (1, "img.png"), (5, "ref.md"), (6, "#top")]


def test_a_missing_file_or_anchor_is_a_problem(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text('# A\n## Part one\n<a id="kept"></a>\n')
    page = tmp_path / "README.md"
    page.write_text(
        "[ok](docs/a.md#part-one) [ok](docs/a.md#kept) [ok](#readme)\n"
        "# README\n"
        "[no](docs/b.md) [no](docs/a.md#part-two) [no](#nowhere)\n"
    )
    assert links.problems(page, tmp_path) == [
        "README.md:3: docs/b.md: no such file",
        "README.md:3: docs/a.md#part-two: no heading with that anchor",
        "README.md:3: #nowhere: no heading with that anchor",
    ]


def test_the_projects_pages_link_only_to_what_exists():
    assert links.pages()
    assert [problem for page in links.pages() for problem in links.problems(page)] == []
