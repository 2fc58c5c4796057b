#!/usr/bin/python3
"""counts.py: reads `bg-cli status --json` on standard input and prints, on one line, the sums
over its queues of completed, failed, processing, ready and scheduled, for demo.sh to wait on.
Only the standard library: it runs with any python3."""

import json
import sys

FIGURES = ("completed", "failed", "processing", "ready", "scheduled")


def main():
    try:
        queues = json.load(sys.stdin)["queues"]
        print(*(sum(q[k] for q in queues) for k in FIGURES))
    except (ValueError, KeyError, TypeError) as e:
        print(f"counts.py: not bg-cli status --json: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
