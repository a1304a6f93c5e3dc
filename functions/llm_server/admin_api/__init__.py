"""The operator's API (`/admin/v1/...`): the gateway's keys, their policies and spend."""

PATH_PREFIX = "/admin/v1/"
