"""The OpenAI-compatible API (`/v1/...`): typed protocol and routes, to and from turns."""

PATH_PREFIX = "/v1/"  # every path it serves (its errors take OpenAI's shape there)
