#!/bin/sh
# Entry point of the streaming function (template.yaml: StreamFunction). The Lambda Web Adapter
# (AWS_LAMBDA_EXEC_WRAPPER=/opt/bootstrap) starts this server and streams its responses back.
export PYTHONPATH="/opt/python:${LAMBDA_TASK_ROOT}:${PYTHONPATH}"
# Log and EMF lines must leave at once: a block-buffered pipe would hold them until the process
# exits, and a frozen or recycled execution environment never gets there.
export PYTHONUNBUFFERED=1
exec python3 -m uvicorn llm_server.asgi:app --host 127.0.0.1 --port "${PORT:-8080}" \
  --lifespan off --no-access-log --log-level warning
