"""probes.mail.alignment: strict/relaxed alignment and the DMARC result (RFC 9989)."""

from __future__ import annotations

import pytest

from probes.mail.alignment import aligned, dmarc_outcome
from probes.parse.dmarc import parse


def org(name: str) -> str:
    """Organizational Domain for the tests: the last two labels."""
    return ".".join(name.split(".")[-2:])


def outcome(record_text=None, *, policy_domain="example.com", frm="example.com", **kw):
    args = {
        "header_from_domain": frm,
        "dkim_passes": (),
        "spf_result": "none",
        "spf_domain": "",
        "record": parse(record_text) if record_text else None,
        "policy_domain": policy_domain if record_text else None,
        "org_domain": org,
    }
    args.update(kw)
    return dmarc_outcome(**args)


def test_relaxed_alignment_accepts_a_subdomain():
    assert aligned("sub.example.com", "example.com", "r", org)
    assert aligned("example.com", "a.b.example.com", "r", org)


def test_strict_alignment_needs_the_same_name():
    assert not aligned("sub.example.com", "example.com", "s", org)
    assert aligned("Example.COM.", "example.com", "s", org)


def test_other_organizations_never_align():
    assert not aligned("example.net", "example.com", "r", org)
    assert not aligned("", "example.com", "r", org)


def test_unknown_mode_is_a_value_error():
    with pytest.raises(ValueError):
        aligned("a.example", "a.example", "x", org)


def test_aligned_dkim_pass_passes_dmarc():
    o = outcome("v=DMARC1; p=reject", dkim_passes=["sub.example.com"])
    assert (o.result, o.policy, o.policy_tag) == ("pass", "reject", "p")
    assert o.dkim_aligned == ("sub.example.com",)
    assert not o.spf_aligned
    assert o.org_domain == "example.com"


def test_strict_adkim_rejects_a_subdomain_signature():
    o = outcome("v=DMARC1; p=reject; adkim=s", dkim_passes=["sub.example.com"])
    assert (o.result, o.adkim, o.dkim_aligned) == ("fail", "s", ())


def test_aligned_spf_pass_passes_dmarc():
    o = outcome("v=DMARC1; p=quarantine", spf_result="pass", spf_domain="bounce.example.com")
    assert (o.result, o.spf_aligned) == ("pass", True)


def test_strict_aspf_rejects_a_subdomain_mail_from():
    o = outcome("v=DMARC1; p=reject; aspf=s", spf_result="pass", spf_domain="bounce.example.com")
    assert (o.result, o.spf_aligned) == ("fail", False)


def test_spf_pass_for_another_domain_does_not_align():
    o = outcome("v=DMARC1; p=reject", spf_result="pass", spf_domain="mailer.example.net")
    assert (o.result, o.spf_aligned) == ("fail", False)


def test_aligned_spf_that_did_not_pass_does_not_count():
    o = outcome("v=DMARC1; p=reject", spf_result="softfail", spf_domain="example.com")
    assert (o.result, o.spf_aligned) == ("fail", False)


def test_unaligned_dkim_pass_fails_dmarc():
    o = outcome("v=DMARC1; p=reject", dkim_passes=["example.net"])
    assert (o.result, o.dkim_aligned) == ("fail", ())


def test_no_record_is_none_but_alignment_is_still_worked_out():
    o = outcome(None, dkim_passes=["example.com"])
    assert (o.result, o.policy_domain, o.policy) == ("none", None, None)
    assert o.dkim_aligned == ("example.com",)
    assert (o.adkim, o.aspf) == ("r", "r")


def test_an_inherited_policy_uses_sp():
    o = outcome("v=DMARC1; p=reject; sp=none", frm="sub.example.com", dkim_passes=["x.test"])
    assert (o.result, o.policy, o.policy_tag, o.policy_domain) == (
        "fail",
        "none",
        "sp",
        "example.com",
    )


def test_an_inherited_policy_without_sp_uses_p():
    o = outcome("v=DMARC1; p=quarantine", frm="sub.example.com")
    assert (o.policy, o.policy_tag) == ("quarantine", "p")


def test_invalid_p_without_rua_means_no_dmarc_processing():
    o = outcome("v=DMARC1; p=bogus", dkim_passes=["example.com"])
    assert o.result == "none"
    assert o.policy is None


def test_invalid_p_with_rua_acts_as_none_policy():
    o = outcome("v=DMARC1; p=bogus; rua=mailto:d@example.com", dkim_passes=["example.com"])
    assert (o.result, o.policy) == ("pass", "none")


def test_duplicate_passing_domains_are_listed_once():
    o = outcome("v=DMARC1; p=none", dkim_passes=["EXAMPLE.com", "example.com.", "a.example.com"])
    assert o.dkim_aligned == ("example.com", "a.example.com")
