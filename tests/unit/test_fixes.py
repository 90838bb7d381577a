"""Every code that can be warn or fail says how to fix it (probes.codes.Fix, on the declaration),
the fixes' lines are well-formed for their systems, docs/codes.md is the declarations rendered
(probes.code_docs), and `mailprobe probes --explain CODE` prints one code."""

from __future__ import annotations

import json
import re
from pathlib import Path

import dns.zone
import pytest

from probes import cli, code_docs, registry
from probes.codes import SYSTEMS, Code, Fix, docs_anchor
from probes.model import Severity
from probes.registry import DeclaredCode

REPO = Path(__file__).parents[2]
CATALOGUE = registry.code_catalogue()
FIXES = {code: e.declaration.fix for code, e in CATALOGUE.items() if e.declaration.fix}


def _contract_brackets() -> dict[str, str]:
    """code -> the text of its severity bracket in docs/contract.md's Finding codes list."""
    text = (REPO / "docs" / "contract.md").read_text()
    section = text[text.index("\n## Finding codes") :]
    section = section[: section.find("\n## ", 5)]
    found: dict[str, str] = {}
    token = re.compile(r"`([A-Z][A-Z0-9_]+)`|\[(\w+[^\]]*)\]|(:\s)")
    for item in re.split(r"\n- ", section)[1:]:
        pending: list[str] = []
        bracketed = False
        for match in token.finditer(item):
            code, bracket, colon = match.groups()
            if code:
                pending.append(code)
            elif bracket:
                bracketed = True
                found.update(dict.fromkeys(pending, bracket))
                pending = []
            elif colon and bracketed:
                break
    return found


# ----- which codes have a fix ------------------------------------------------------------------
def test_every_warn_or_fail_code_has_a_fix():
    missing = [
        code
        for code, entry in CATALOGUE.items()
        if entry.declaration.severity is not Severity.INFO and entry.declaration.fix is None
    ]
    assert missing == []


def test_every_code_the_contract_says_can_be_warn_or_fail_has_a_fix():
    brackets = _contract_brackets()
    assert brackets["SPF_LOOKUP_COUNT"].startswith("info; warn or fail")
    can_alert = {c for c, b in brackets.items() if re.search(r"\b(warn|fail)\b", b)}
    # the info codes a probe raises (thresholds, IPv6, MX addresses) are among them
    assert {"SPF_TOO_MANY_VOID_LOOKUPS_IPV6", "DKIM_KEY_AGE", "SPF_LOOKUP_COUNT"} <= can_alert
    assert sorted(can_alert - set(FIXES)) == []


def test_informational_codes_that_never_alert_have_no_fix():
    brackets = _contract_brackets()
    quiet = {c for c, b in brackets.items() if not re.search(r"\b(warn|fail)\b", b)}
    assert sorted(quiet & set(FIXES)) == []
    assert "MX_PRESENT" in quiet and "CERT_OK" in quiet


def test_a_probe_alerting_on_an_info_code_declares_it_with_a_fix():
    """The info codes the checks emit with a computed severity (thresholds) carry a fix."""
    computed: dict[str, str] = {}
    for path in sorted((REPO / "probes").rglob("*.py")):
        text = path.read_text()
        for code in re.findall(r'self\.finding\(\s*"([A-Z0-9_]+)",\s*severity,', text):
            computed[code] = path.name
    assert {"SPF_LOOKUP_COUNT", "DKIM_KEY_AGE"} <= set(computed)
    assert {c: p for c, p in computed.items() if c not in FIXES} == {}


# ----- what a fix holds -------------------------------------------------------------------------
@pytest.mark.parametrize("code", sorted(FIXES))
def test_a_fix_is_concrete(code):
    fix = FIXES[code]
    assert fix.problem() is None
    assert set(fix.lines) <= set(SYSTEMS)
    assert len(fix.what) >= 60, "say what to change, where, and how to check"
    assert fix.what.rstrip().endswith((".", ")")), "plain sentences"


def test_most_fixes_give_lines_for_a_system():
    without = sorted(code for code, fix in FIXES.items() if not fix.lines)
    # a forged or disputed Authentication-Results depends on the verifier in use
    assert without == ["AUTHRES_FORGED", "VERDICT_DISAGREEMENT"]


# Values for the placeholders of zone lines, so they parse as a zone file.
PLACEHOLDERS = {
    "ipv4": "192.0.2.25",
    "sending-ip": "192.0.2.25",
    "ipv6": "2001:db8::25",
    "a": "192",
    "b": "0",
    "c": "2",
    "d": "25",
    "sha256-hex-of-the-public-key": "ab" * 32,
    "key-tag": "12345",
    "sha256-of-the-ksk": "cd" * 32,
}


def _fill(text: str) -> str:
    return re.sub(r"<([^<>]+)>", lambda m: PLACEHOLDERS.get(m.group(1), "x1"), text)


@pytest.mark.parametrize("code", sorted(c for c, f in FIXES.items() if "zone" in f.lines))
def test_zone_lines_are_a_zone_file(code):
    """Absolute names, TTL, class, type, rdata: dnspython reads them as a BIND zone file."""
    text = _fill(FIXES[code].lines["zone"])
    zone = dns.zone.from_text(text, origin=".", relativize=False, check_origin=False)
    assert sum(1 for _ in zone.iterate_rdatas()) >= 1
    for line in text.splitlines():
        if line and not line.startswith((";", " ")):
            assert line.split()[0].endswith("."), f"{line!r}: names are absolute"


@pytest.mark.parametrize("code", sorted(c for c, f in FIXES.items() if "sendmail" in f.lines))
def test_sendmail_lines_are_balanced_m4(code):
    m4 = [line for line in FIXES[code].lines["sendmail"].splitlines() if "(" in line]
    for line in m4:
        assert line.endswith("dnl") or line.startswith("dnl "), line
        assert line.count("`") == line.count("'"), f"unbalanced m4 quotes: {line}"
        assert line.count("(") == line.count(")"), line


@pytest.mark.parametrize("code", sorted(c for c, f in FIXES.items() if "postfix" in f.lines))
def test_postfix_lines_are_main_cf_or_master_cf(code):
    lines = FIXES[code].lines["postfix"].splitlines()
    master = lines[0] == "# master.cf"
    for line in lines[1:] if master else lines:
        if line.startswith("#"):
            continue
        if master:
            assert line.startswith("  -o ") or len(line.split()) == 8, line
        else:
            assert re.fullmatch(r"[a-z_]+ = \S.*|(postconf|postqueue|grep) .*", line), line


def test_the_tls_version_fix_names_each_servers_floor():
    lines = FIXES["TLS_LEGACY_PROTOCOL"].lines
    assert "smtpd_tls_protocols = >=TLSv1.2" in lines["postfix"]
    assert "openssl_options = +no_sslv2 +no_sslv3 +no_tlsv1 +no_tlsv1_1" in lines["exim"]
    assert "+SSL_OP_NO_TLSv1 +SSL_OP_NO_TLSv1_1" in lines["sendmail"]
    assert lines["dovecot"] == "ssl_min_protocol = TLSv1.2"
    assert lines["perdition"] == "ssl_listen_min_proto_version tlsv1.2"


def test_policy_record_fixes_are_per_prefix():
    assert "_mta-sts.<domain>." in FIXES["MTA_STS_MULTIPLE_RECORDS"].lines["zone"]
    assert "_smtp._tls.<domain>." in FIXES["TLSRPT_SYNTAX_ERROR"].lines["zone"]
    assert "MTA_STS_MISSING" not in FIXES and "TLSRPT_PRESENT" not in FIXES


# ----- docs/codes.md ---------------------------------------------------------------------------
def test_docs_codes_md_is_the_declarations_rendered():
    page = REPO / "docs" / "codes.md"
    expected = code_docs.markdown(CATALOGUE)
    assert page.read_text() == expected, (
        f"docs/codes.md differs from the declarations: regenerate it with `{code_docs.REGENERATE}`"
    )


def test_every_code_has_its_section_under_its_anchor():
    text = code_docs.markdown(CATALOGUE)
    headings = re.findall(r"^### (\S+)$", text, re.M)
    assert headings == list(CATALOGUE)
    assert all(docs_anchor(code) == code.lower() for code in headings)
    for code in CATALOGUE:
        assert f"(#{code.lower()})" in text, f"{code} is missing from the index"


def test_a_section_shows_meaning_severity_probes_and_each_systems_block():
    text = code_docs.section(CATALOGUE["TLS_LEGACY_PROTOCOL"])
    assert text.startswith("### TLS_LEGACY_PROTOCOL\n\nthe server accepts a legacy protocol")
    assert "- Default severity: **warn**" in text
    assert "`smtp.mx`" in text and "`imap.tls`" in text
    assert "Postfix:\n\n```\n# Postfix 3.6 and later\nsmtpd_tls_protocols = >=TLSv1.2\n" in text
    # SYSTEMS order, whatever the declaration's order
    assert text.index("Exim:") < text.index("Postfix:") < text.index("Perdition:")
    info = code_docs.section(CATALOGUE["CERT_OK"])
    assert "Informational: nothing to fix." in info and "```" not in info


def test_placeholders_outside_code_spans_are_not_html():
    entry = DeclaredCode(
        Code("TOY_BAD", "a <thing> and `<kept>`", Severity.WARN, Fix("Put <x> in `<y>`.")),
        ("toy.probe",),
    )
    text = code_docs.section(entry)
    assert "a &lt;thing&gt; and `<kept>`" in text
    assert "Put &lt;x&gt; in `<y>`." in text


def test_docs_codes_md_is_linked_from_the_contract_and_the_development_guide():
    assert "[codes.md](codes.md)" in (REPO / "docs" / "contract.md").read_text()
    assert code_docs.REGENERATE in (REPO / "docs" / "development.md").read_text()


# ----- the command --------------------------------------------------------------------------------
def test_probes_codes_markdown_is_docs_codes_md(capsys):
    assert cli.main(["probes", "--codes", "--format", "markdown"]) == 0
    assert capsys.readouterr().out == (REPO / "docs" / "codes.md").read_text()


def test_explain_prints_one_code_with_its_fix(capsys):
    assert cli.main(["probes", "--explain", "smtp_open_relay"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("SMTP_OPEN_RELAY [fail]\n")
    assert "docs: docs/codes.md#smtp_open_relay" in out
    assert "\n  Postfix:\n    mynetworks = 127.0.0.0/8 [::1]/128\n" in out
    assert "defer_unauth_destination" in out


def test_explain_an_info_code(capsys):
    assert cli.main(["probes", "--explain", "MX_PRESENT"]) == 0
    assert "informational: nothing to fix" in capsys.readouterr().out


def test_explain_json_and_markdown(capsys):
    assert cli.main(["probes", "--explain", "DMARC_MISSING", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["probes"] == ["dns.dmarc"] and doc["docs"] == "docs/codes.md#dmarc_missing"
    assert doc["fix"]["lines"]["zone"].startswith("_dmarc.<domain>. 3600 IN TXT")
    assert cli.main(["probes", "--explain", "DMARC_MISSING", "--format", "markdown"]) == 0
    assert capsys.readouterr().out == code_docs.section(CATALOGUE["DMARC_MISSING"])


def test_explain_a_typo_is_exit_2_naming_the_closest_codes(capsys):
    assert cli.main(["probes", "--explain", "DMARC_MISSNG"]) == 2
    err = capsys.readouterr().err
    assert "--explain DMARC_MISSNG" in err and "closest: DMARC_MISSING" in err
