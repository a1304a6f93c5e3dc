"""Tenants by spend in a month, from the usage ledger: `python -m llm_server.usage --month 2026-12`.

Reads the store the settings name (the local SQLite file; or, with `STORE=dynamodb` and
`DYNAMODB_TABLE`, the deployed table, on the operator's AWS credentials: it Scans the month's
items, which the functions' own role may not). `--json` prints the rows for other tools.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict

from llm_server.config.settings import load_settings
from llm_server.stores.factory import usage_store
from llm_server.stores.usage import UsageRow
from llm_server.usage.ledger import month_of
from llm_server.usage.pricing import usd

OPERATOR_PAID = "server"


def main(argv: list[str] | None = None) -> int:
    """Print each tenant's month, the most the operator paid for first."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--month", default=month_of(time.time()), help="YYYY-MM (UTC)")
    parser.add_argument("--json", action="store_true", help="print JSON rows instead")
    args = parser.parse_args(argv)
    tenants = usage_store(load_settings()).tenants(args.month)
    ranked = sorted(tenants.items(), key=lambda item: -_paid(item[1]))
    if args.json:
        listed = [{"owner": owner, **asdict(row)} for owner, rows in ranked for row in rows]
        json.dump({"month": args.month, "rows": listed}, sys.stdout, indent=2)
        print()
        return 0
    print(f"usage in {args.month} (UTC), by what the operator paid:")
    print(f"  {'owner':40} {'requests':>9} {'tokens':>12} {'paid USD':>14} {'own key USD':>14}")
    for owner, rows in ranked:
        tokens = sum(row.input_tokens + row.output_tokens for row in rows)
        own = sum(row.cost_pico for row in rows if row.api_key_source != OPERATOR_PAID)
        unknown = " (+ unpriced)" if any(row.unpriced for row in rows) else ""
        print(
            f"  {owner:40} {sum(row.requests for row in rows):9d} {tokens:12d}"
            f" {usd(_paid(rows)):14.9f} {usd(own):14.9f}{unknown}"
        )
    return 0


def _paid(rows: list[UsageRow]) -> int:
    return sum(row.cost_pico for row in rows if row.api_key_source == OPERATOR_PAID)


if __name__ == "__main__":
    raise SystemExit(main())
