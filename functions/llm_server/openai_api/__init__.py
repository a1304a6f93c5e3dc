"""The OpenAI-compatible API (`/v1/...`): typed protocol and routes, to and from turns."""
