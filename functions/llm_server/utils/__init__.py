"""Small helpers: logging, request context, system info, redaction, concurrency."""
