"""Amazon Bedrock's models through bedrock-runtime's Converse and ConverseStream, on IAM.

`provider.py` runs a call (botocore on a thread pool of its own, retries within the time budget,
streaming); `wire.py` maps our request to Converse and its answer back; `errors.py` says whose
fault each Bedrock error is; `models.py` reads what a model id names (its vendor, what it can do).
Nothing here imports botocore until a call needs it.
"""
