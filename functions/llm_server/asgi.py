"""The app, built once at import: what ASGI servers load (`uvicorn llm_server.asgi:app`)."""

from llm_server.app import create_app

app = create_app()
