"""Server-sent events as the API writes them, parsed for assertions."""

from __future__ import annotations

import json


def parse_sse(body: str) -> list[tuple[str, dict]]:
    """The (event, data) pairs of an SSE body whose data lines are JSON."""
    events = []
    for block in body.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((fields["event"], json.loads(fields["data"])))
    return events
