"""Reproduce lines of a run on a throwaway lab say that the lab is gone.

`check --lab` removes its lab when it ends: the addresses, ports and CA file in its reproduce
lines point at nothing afterwards. Every reproduce line of such a report gets a trailing shell
comment saying so (the command stays pasteable), in every format alike, and in the history:

    dig @127.93.4.2 -p 53 +norecurse lab.test TXT  # (the lab was removed; rerun with --keep-lab)

`check --lab --keep-lab` and `check --lab-name NAME` leave their reproduce lines as they are.
"""

from __future__ import annotations

import dataclasses

from probes.report.run import RunReport

LAB_REMOVED = "(the lab was removed; rerun with --keep-lab)"
_SUFFIX = f"  # {LAB_REMOVED}"


def note_lab_removed(report: RunReport) -> RunReport:
    """The report with every finding's reproduce line noting the lab is gone (the same
    findings otherwise: identity, severity and evidence unchanged)."""
    results = tuple(
        dataclasses.replace(
            result,
            findings=tuple(
                dataclasses.replace(f, reproduce=f.reproduce + _SUFFIX)
                if f.reproduce and not f.reproduce.endswith(_SUFFIX)
                else f
                for f in result.findings
            ),
        )
        for result in report.results
    )
    return dataclasses.replace(report, results=results)
