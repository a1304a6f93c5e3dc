"""What `sam build` produces (CI builds before the tests): code that Lambda can import fast.

Lambda's /opt and /var/task are read-only, so modules without bytecode are compiled from source
on every cold start; the build ships bytecode that Python uses without checking source mtimes.
"""

import importlib.util
import sys

import pytest

from helpers.template import ROOT

BUILD = ROOT / ".aws-sam" / "build"
UNCHECKED_HASH = 0b01  # PEP 552 flags: hash-based, source not checked


@pytest.fixture(scope="module")
def build():
    if not BUILD.exists():
        pytest.skip("no .aws-sam/build: `make test` runs `sam build` first")
    return BUILD


@pytest.mark.parametrize(
    "module",
    [
        "ChatFunction/llm_server/lambda_handler.py",
        "StreamFunction/llm_server/asgi.py",
        "DependenciesLayer/python/fastapi/routing.py",
        "DependenciesLayer/python/openai/types/responses/response.py",
    ],
)
def test_every_artifact_ships_bytecode_used_without_a_source_check(build, module):
    source = build / module
    cached = importlib.util.cache_from_source(str(source))
    assert sys.version_info[:2] == (3, 11)  # the runtime's Python; cache_from_source uses ours
    with open(cached, "rb") as pyc:
        header = pyc.read(8)
    assert header[:4] == importlib.util.MAGIC_NUMBER
    assert int.from_bytes(header[4:8], "little") == UNCHECKED_HASH


def test_build_helpers_stay_out_of_the_function(build):
    for function in ("ChatFunction", "StreamFunction"):
        assert sorted(p.name for p in (build / function).iterdir()) == ["llm_server", "run.sh"]
