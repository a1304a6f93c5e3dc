"""The gateway's own keys, issued and governed by the operator (docs/keys.md).

One per team or developer, each with its policy: models, rates, budget, expiry.
"""
