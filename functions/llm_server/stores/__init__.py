"""Persistence: session turns and idempotency records, in SQLite locally or DynamoDB on AWS."""
