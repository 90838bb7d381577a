from probes.model import ErrorReason, Finding, Outcome, ProbeResult, Severity, Target


def _finding(code: str, severity: Severity) -> Finding:
    return Finding(probe_id="dns.spf", code=code, severity=severity, message="m")


def test_severity_is_ordered_info_warn_fail():
    assert Severity.INFO < Severity.WARN < Severity.FAIL
    assert Severity.FAIL >= Severity.FAIL
    assert not Severity.FAIL < Severity.WARN
    assert sorted([Severity.FAIL, Severity.INFO, Severity.WARN]) == [
        Severity.INFO,
        Severity.WARN,
        Severity.FAIL,
    ]


def test_finding_to_json_has_contract_keys_and_string_evidence():
    finding = Finding(
        probe_id="dns.spf",
        code="SPF_TOO_MANY_LOOKUPS",
        severity=Severity.FAIL,
        message="12 lookups",
        evidence={"count": 12},  # type: ignore[dict-item]
        reproduce="dig +short TXT example.com",
        subject="example.com",
    )
    data = finding.to_json()
    assert set(data) == {"code", "severity", "message", "evidence", "reproduce", "subject"}
    assert data["severity"] == "fail"
    assert data["evidence"] == {"count": "12"}


def test_probe_result_to_json_uses_enum_values():
    result = ProbeResult(
        probe_id="smtp.starttls",
        outcome=Outcome.ERROR,
        error=ErrorReason.TIMEOUT,
        error_detail="TimeoutError: x",
        duration_s=1.23456789,
    )
    data = result.to_json()
    assert data["probe"] == "smtp.starttls"
    assert data["outcome"] == "ERROR"
    assert data["error"] == "TIMEOUT"
    assert data["findings"] == []
    assert isinstance(data["duration_s"], float)


def test_completed_result_has_null_error():
    data = ProbeResult(probe_id="dns.mx", outcome=Outcome.COMPLETED).to_json()
    assert data["error"] is None


def test_worst_is_highest_severity_or_none():
    assert ProbeResult(probe_id="dns.mx", outcome=Outcome.COMPLETED).worst is None
    result = ProbeResult(
        probe_id="dns.mx",
        outcome=Outcome.COMPLETED,
        findings=(_finding("A", Severity.WARN), _finding("B", Severity.FAIL)),
    )
    assert result.worst is Severity.FAIL


def test_target_to_json_never_contains_credentials_ref():
    target = Target(domain="example.com", credentials_ref="env:SECRET_PASSWORD")
    data = target.to_json()
    assert data["domain"] == "example.com"
    assert "env:SECRET_PASSWORD" not in str(data)


def test_finding_escapes_control_characters_a_server_sent():
    from probes.codes import Code, declare
    from probes.probe import BaseProbe

    class P(BaseProbe):
        id = "t.p"
        description = "t"
        codes = declare(Code("X", "a test code", Severity.INFO))

    finding = P().finding(
        "X", Severity.INFO, "banner \x1b[2J", evidence={"greeting": "evil\x07\r\x00 é\tok\n"}
    )
    assert finding.message == "banner \\x1b[2J"
    assert finding.evidence["greeting"] == "evil\\x07\\x0d\\x00 é\tok\n"
