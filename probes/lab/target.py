"""The Target that probes a running lab: the one builder for `mailprobe check --lab`, scenarios
(probes.scenario_run), the pytest fixtures (probes.pytest_plugin), the tests and benchmarks.

The lab's throwaway login travels in memory, in the Target (`Target.login`, a Credentials whose
password never shows in a repr or a report), never in the process environment: two labs in one
process each log in as their own user.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from probes.credentials import Credentials
from probes.model import MessageOptions, Target, Timeouts

if TYPE_CHECKING:
    from probes.lab.lab import LabInfo

# The message options the lab fills in when the caller did not give them.
LAB_MESSAGE_FIELDS = ("submit_host", "source_address", "receiver_listen", "receiver_domain")


def lab_target(
    info: LabInfo,
    *,
    timeouts: Timeouts | None = None,
    message_given: Collection[str] | None = None,
    **changes: Any,
) -> Target:
    """Every host, selector, key and address of the lab, and its throwaway login (in memory).

    `changes` are Target fields that replace the lab's values (a user's overrides). A given
    `credentials_ref` replaces the lab's login. A given `message` is taken whole, unless
    `message_given` names the message fields the user set: then the lab's values
    (LAB_MESSAGE_FIELDS) fill the others, as `check --lab` and scenarios do.
    """
    d = info.domain
    base = Target(
        domain=d,
        mx_hosts=(f"mx.{d}",),
        submission_hosts=(f"mx.{d}", f"outbound.{d}"),
        mailbox_hosts=(f"mailbox.{d}",),
        selectors=tuple(info.dkim),
        sending_ips=(info.client_ips["authorized"], info.hosts["outbound"]),
        resolver=info.resolver,
        ca_file=info.ca_file,
        trust_anchor=info.trust_anchor,
        dkim_keys=tuple(info.dkim.items()),
        timeouts=timeouts or Timeouts(),
        message=lab_message_options(info),
        login=Credentials(info.user, info.password),
        dnsbls=tuple(info.dnsbls),
        domain_blocklists=tuple(info.domain_blocklists),
    )
    if changes.get("credentials_ref") and "login" not in changes:
        changes["login"] = None
    message = changes.get("message")
    if message is not None and message_given is not None:
        lab = lab_message_options(info, send_via=message.send_via)
        changes["message"] = dataclasses.replace(
            message,
            **{k: getattr(lab, k) for k in LAB_MESSAGE_FIELDS if k not in message_given},
        )
    return dataclasses.replace(base, **changes)


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
