"""The turn core: runs one chat turn, whichever API it came from (routing, keys, quota, cache)."""
