"""LLM Server: a serverless chat API over OpenAI's Responses API and a local model."""

__version__ = "0.1.0"
