"""probes.lookup.dmarc: DMARC policy discovery and Organizational Domains by the RFC 9989 tree
walk through the door, the one implementation dns.dmarc and the message round trip share."""

from __future__ import annotations

import pytest
from dnsrounds import RoundsBackend

from probes.errors import DnsError
from probes.lookup.dmarc import DmarcTree, dmarc_policy, org_domain_via_dns
from probes.net.dns import DnsClient, StaticBackend
from probes.parse.dmarc import walk_names


def dns_for(records):
    return DnsClient(StaticBackend(records))


def test_the_policy_of_the_organizational_domain_applies_to_a_subdomain():
    dns = dns_for({("_dmarc.example.com", "TXT"): ["v=DMARC1; p=reject"]})
    record, source = dmarc_policy("sub.example.com", dns)
    assert (record.p, source) == ("reject", "example.com")


def test_no_policy_anywhere():
    assert dmarc_policy("example.com", dns_for({})) == (None, None)


def test_a_failed_own_policy_lookup_raises():
    with pytest.raises(DnsError):
        dmarc_policy("example.com", dns_for({("_dmarc.example.com", "TXT"): "SERVFAIL"}))


def test_organizational_domain_follows_psd_records():
    dns = dns_for(
        {
            ("_dmarc.example.com", "TXT"): ["v=DMARC1; p=none"],
            ("_dmarc.co.uk", "TXT"): ["v=DMARC1; p=none; psd=y"],
        }
    )
    org = org_domain_via_dns(dns)
    assert org("a.b.example.com") == "example.com"
    assert org("mail.shop.co.uk") == "shop.co.uk"
    assert org("not a domain") == "not a domain"


def test_a_failed_parent_that_cannot_change_the_policy_is_harmless():
    # The domain's own record applies, whatever its parents hold.
    dns = dns_for(
        {
            ("_dmarc.sub.example.com", "TXT"): ["v=DMARC1; p=reject"],
            ("_dmarc.example.com", "TXT"): "SERVFAIL",
        }
    )
    record, source = dmarc_policy("sub.example.com", dns)
    assert (record.p, source) == ("reject", "sub.example.com")


def test_a_failed_parent_that_could_change_the_policy_raises_from_dmarc_policy():
    dns = dns_for(
        {("_dmarc.example.com", "TXT"): ["v=DMARC1; p=reject"], ("_dmarc.com", "TXT"): "SERVFAIL"}
    )
    # Whatever com holds, example.com's record applies to sub.example.com (RFC 9989 §4.10.1).
    _record, source = dmarc_policy("sub.example.com", dns)
    assert source == "example.com"
    dns = dns_for({("_dmarc.example.com", "TXT"): "SERVFAIL"})
    with pytest.raises(DnsError, match=r"_dmarc\.example\.com: SERVFAIL"):
        dmarc_policy("sub.example.com", dns)


def test_discover_reports_the_failure_with_what_was_answered():
    dns = dns_for({("_dmarc.example.com", "TXT"): "SERVFAIL"})
    discovery, failure = DmarcTree(dns).discover("sub.example.com")
    assert discovery.source is None
    assert failure is not None and failure.name == "_dmarc.example.com"


def test_a_name_too_long_to_ask_holds_no_record():
    domain = ".".join(["a" * 62] * 4)  # 251 characters: `_dmarc.` + it is not a DNS name
    record, source = dmarc_policy(domain, dns_for({}))
    assert (record, source) == (None, None)
    site = DmarcTree(dns_for({})).site(domain)
    assert site.answer.rcode == "BADNAME" and not site.failed and site.walk_answer is None


def test_organizational_domain_failure_only_when_it_matters():
    tree = DmarcTree(dns_for({("_dmarc.example.com", "TXT"): "SERVFAIL"}))
    org, failure = tree.organizational_domain("a.example.com")
    # Nothing answered: the name is its own Organizational Domain, but a record at
    # example.com would have made that one it.
    assert org == "a.example.com" and failure is not None
    with pytest.raises(DnsError):
        org_domain_via_dns(dns_for({("_dmarc.example.com", "TXT"): "SERVFAIL"}))("a.example.com")


def test_same_organization():
    tree = DmarcTree(
        dns_for(
            {
                ("_dmarc.example.com", "TXT"): ["v=DMARC1; p=none"],
                ("_dmarc.example.net", "TXT"): ["v=DMARC1; p=none"],
            }
        )
    )
    assert tree.same_organization("mail.example.com", "example.com") == (True, None)
    assert tree.same_organization("example.com", "example.net") == (False, None)


def test_every_name_of_a_walk_is_asked_at_once():
    domain = "a.b.c.example.com"
    with RoundsBackend({("_dmarc.example.com", "TXT"): ["v=DMARC1; p=none"]}) as backend:
        _record, source = dmarc_policy(domain, backend.client())
    assert source == "example.com"
    assert backend.batches == [sorted(("_dmarc." + n, "TXT") for n in walk_names(domain))]
