"""The Target that probes a running lab, as `mailprobe check --lab` builds it."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from probes.model import MessageOptions, Target, Timeouts

if TYPE_CHECKING:
    from probes.lab.lab import LabInfo

LAB_CREDENTIALS_ENV = "MAILPROBE_LAB_CREDENTIALS"


def lab_target(info: LabInfo, *, timeouts: Timeouts | None = None) -> Target:
    """Every host, selector, key and address of the lab, and its throwaway login.

    The login is handed over in this process's environment (LAB_CREDENTIALS_ENV), so the
    Target carries only the reference `env:MAILPROBE_LAB_CREDENTIALS`."""
    os.environ[LAB_CREDENTIALS_ENV] = f"{info.user}:{info.password}"
    d = info.domain
    return Target(
        domain=d,
        mx_hosts=(f"mx.{d}",),
        submission_hosts=(f"mx.{d}", f"outbound.{d}"),
        mailbox_hosts=(f"mailbox.{d}",),
        credentials_ref=f"env:{LAB_CREDENTIALS_ENV}",
        selectors=tuple(info.dkim),
        sending_ips=(info.client_ips["authorized"], info.hosts["outbound"]),
        resolver=info.resolver,
        ca_file=info.ca_file,
        dkim_keys=tuple(info.dkim.items()),
        timeouts=timeouts or Timeouts(),
        message=lab_message_options(info),
    )


def lab_message_options(info: LabInfo, *, send_via: str = "submission") -> MessageOptions:
    """Submit through the outbound relay (it has no 465: then the mx), send from the
    SPF-authorized client, and run receiver mode on the lab's receiver address."""
    return MessageOptions(
        send_via=send_via,
        submit_host=f"{'mx' if send_via == 'submissions' else 'outbound'}.{info.domain}",
        source_address=info.client_ips["authorized"],
        receiver_listen=info.receiver_listen,
        receiver_domain=info.receiver_domain,
    )
