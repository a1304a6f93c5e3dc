"""The gateway's own keys, issued and governed by the operator (README, "Keys and limits").

One per team or developer, each with its policy: models, rates, budget, expiry.
"""
