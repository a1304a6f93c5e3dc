"""Anthropic's Messages API (`/v1/messages`): typed protocol and routes, to and from turns."""

PATH_PREFIX = "/v1/messages"  # every path it serves (its errors take Anthropic's shape there)
