"""JSON renderer: the contract's schema 1 (docs/contract.md)."""

from __future__ import annotations

import json
from typing import TextIO

from probes.report.run import RunReport


def render(report: RunReport, stream: TextIO) -> None:
    json.dump(report.to_json(), stream, indent=2)
    stream.write("\n")
