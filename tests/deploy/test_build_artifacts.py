"""What `sam build` produces (CI builds before the tests): code that Lambda can import fast.

Lambda's /opt and /var/task are read-only, so modules without bytecode are compiled from source
on every cold start; the build ships bytecode that Python uses without checking source mtimes.
"""

import importlib.util
import os
import shutil
import subprocess
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
        "KeyAuthorizerFunction/llm_server/keys/authorizer.py",
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


def test_the_key_authorizer_runs_from_its_own_small_artifact(build):
    """Its handler imports with nothing but its artifact (and botocore, the runtime's)."""
    artifact = build / "KeyAuthorizerFunction"
    sources = sorted(str(p.relative_to(artifact)) for p in artifact.rglob("*.py"))
    assert len(sources) == 10 and "llm_server/app.py" not in sources
    probe = "import llm_server.keys.authorizer as a; print(callable(a.handler))"
    env = {**os.environ, "PYTHONPATH": str(artifact)}
    done = subprocess.run(
        [sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(artifact)!r}); {probe}"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.stdout.strip() == "True", done.stderr


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


def test_a_plain_sam_build_of_a_fresh_clone_ships_the_pages_and_bytecode(tmp_path):
    """README's deploy step is `sam build && sam deploy`: with nothing made by `make` before it
    (no Swagger UI in the tree, no LAMBDA_PYTHON), the function still gets /docs' assets and its
    bytecode, as `make sam-check` builds it."""
    sam = ROOT / ".tools" / "sam" / "bin" / "sam"
    if not sam.exists():
        pytest.skip("no SAM CLI in .tools/sam: `make test` installs it")
    clone = tmp_path / "clone"
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        if (ROOT / name).is_file():
            (clone / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, clone / name)
    assert not (clone / "functions/llm_server/web/static/swagger-ui").exists()
    # as on a fresh machine: nothing of this suite's interpreter or of the top Makefile's
    env = {k: v for k, v in os.environ.items() if k not in ("LAMBDA_PYTHON", "PYTHONPATH")}
    env.update(
        AWS_ACCESS_KEY_ID="offline",
        AWS_SECRET_ACCESS_KEY="offline",
        AWS_DEFAULT_REGION="ap-northeast-2",
        AWS_MAX_ATTEMPTS="1",
        SAM_CLI_TELEMETRY="0",
    )
    built = tmp_path / "build"
    done = subprocess.run(
        [str(sam), "build", "ChatFunction", "--build-dir", str(built)],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    function = built / "ChatFunction" / "llm_server"
    assets = function / "web" / "static" / "swagger-ui"
    assert (assets / "swagger-ui-bundle.js").stat().st_size > 500_000
    assert (assets / "swagger-ui.css").is_file()
    handler = importlib.util.cache_from_source(str(function / "lambda_handler.py"))
    with open(handler, "rb") as pyc:
        assert pyc.read(4) == importlib.util.MAGIC_NUMBER
