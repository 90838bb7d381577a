"""Labs that outlive the command that started them (`mailprobe lab up` … `lab down`).

Each named lab keeps its directory (keys, certificates, configs) and an `info.json` (mode 0600:
it holds the throwaway lab password) under the state root: $MAILPROBE_STATE_DIR, else
~/.local/state/mailprobe.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from probes.lab import readiness
from probes.lab.lab import LabInfo
from probes.lab.pki import write_secret

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")


def state_root() -> Path:
    env = os.environ.get("MAILPROBE_STATE_DIR")
    return Path(env) if env else Path.home() / ".local" / "state" / "mailprobe"


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise ValueError(f"lab name {name!r}: use lowercase letters, digits, - and _ (max 32)")
    return name


@dataclass(frozen=True)
class LabState:
    name: str

    @property
    def root(self) -> Path:
        return state_root() / "labs" / check_name(self.name)

    @property
    def lab_dir(self) -> Path:
        return self.root / "lab"

    @property
    def info_file(self) -> Path:
        return self.root / "info.json"

    def exists(self) -> bool:
        return self.info_file.exists()

    def save(self, info: LabInfo) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        write_secret(
            self.info_file, json.dumps(info.to_json() | {"dkimpy_keys": info.dkimpy_keys}).encode()
        )

    def load(self) -> LabInfo:
        return LabInfo.from_json(json.loads(self.info_file.read_text()))

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def all_states() -> list[LabState]:
    labs = state_root() / "labs"
    if not labs.is_dir():
        return []
    return [LabState(p.name) for p in sorted(labs.iterdir()) if (p / "info.json").exists()]


def service_health(info: LabInfo) -> dict[str, bool]:
    """Ask each lab service in its own protocol whether it answers."""
    p, h = info.ports, info.hosts
    return {
        "dns": readiness.dns_ready(info.resolver_ip, info.resolver_port, info.domain),
        "mx": readiness.smtp_ready(h["mx"], p["smtp"]),
        "outbound": readiness.smtp_ready(h["outbound"], p["outbound_smtp"]),
        "imap": readiness.imap_ready(h["mailbox"], p["imap"]),
        "pop3": readiness.pop3_ready(h["mailbox"], p["pop3"]),
    }
