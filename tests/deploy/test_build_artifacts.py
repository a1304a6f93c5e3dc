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
RUNTIME = (3, 13)  # template.yaml: Runtime python3.13


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
        "DependenciesLayer/python/httpx2/_client.py",
    ],
)
def test_every_artifact_ships_bytecode_used_without_a_source_check(build, module):
    source = build / module
    cached = importlib.util.cache_from_source(str(source))
    assert sys.version_info[:2] == RUNTIME  # cache_from_source names the running Python's file
    with open(cached, "rb") as pyc:
        header = pyc.read(8)
    assert header[:4] == importlib.util.MAGIC_NUMBER
    assert int.from_bytes(header[4:8], "little") == UNCHECKED_HASH


def test_build_helpers_stay_out_of_the_function(build):
    for function in ("ChatFunction", "StreamFunction"):
        assert sorted(p.name for p in (build / function).iterdir()) == ["llm_server", "run.sh"]


def test_the_layer_is_built_for_the_runtimes_python_only(build):
    """Every compiled extension, wheel tag and bytecode file is CPython 3.13's (or any Python's)."""
    layer = build / "DependenciesLayer" / "python"
    version = "".join(map(str, RUNTIME))
    extensions = [p.name for p in layer.rglob("*.so")]
    assert extensions and all(f".cpython-{version}-x86_64-linux-gnu.so" in n for n in extensions)
    for wheel in layer.glob("*.dist-info/WHEEL"):
        tags = [line[5:] for line in wheel.read_text().splitlines() if line.startswith("Tag: ")]
        assert all(t.startswith((f"cp{version}-", "py3-", "py2.py3-", "py2-")) for t in tags), wheel
    bytecode = [p.name for p in build.rglob("*.pyc")]
    assert len(bytecode) > 1000
    assert all(n.endswith(f".cpython-{version}.pyc") for n in bytecode)
