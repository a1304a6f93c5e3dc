"""The scripts in toolchain/, imported as modules so that their parts can be tested."""

from __future__ import annotations

import importlib.util
from types import ModuleType

from helpers.template import ROOT


def load(name: str) -> ModuleType:
    """toolchain/<name>.py as a module."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "toolchain" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
