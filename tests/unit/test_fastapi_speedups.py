"""FastAPI's pydantic v1 check, made free until `pydantic.v1` is loaded, still works after."""

import warnings

import fastapi.utils
import pytest
from fastapi import FastAPI
from fastapi.exceptions import PydanticV1NotSupportedError

import llm_server.web  # noqa: F401 - importing the web layer installs the guard


def test_a_pydantic_v1_model_is_still_refused_once_v1_is_loaded():
    assert hasattr(fastapi.utils.annotation_is_pydantic_v1, "__wrapped__")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pydantic import v1

    class Legacy(v1.BaseModel):
        name: str

    app = FastAPI()
    with pytest.raises(PydanticV1NotSupportedError):

        @app.get("/legacy", response_model=Legacy)
        def legacy() -> None: ...
