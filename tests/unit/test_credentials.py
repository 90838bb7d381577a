"""Credentials are referenced (env:NAME, file:PATH) and read only when a probe logs in."""

from __future__ import annotations

import pytest

from probes.credentials import check_ref, load_credentials
from probes.errors import ProbeConfigError

SECRET = "s3cr:et-pa55"


def test_env_reference_splits_user_and_password_at_the_first_colon(monkeypatch):
    monkeypatch.setenv("MP_CREDS", f"user@example.test:{SECRET}")
    creds = load_credentials("env:MP_CREDS")
    assert (creds.user, creds.password) == ("user@example.test", SECRET)


def test_file_reference_reads_the_first_line(tmp_path):
    path = tmp_path / "creds"
    path.write_text(f"user:{SECRET}\nignored\n")
    assert load_credentials(f"file:{path}").password == SECRET


def test_password_never_shows_in_repr_or_str(monkeypatch):
    monkeypatch.setenv("MP_CREDS", f"user:{SECRET}")
    creds = load_credentials("env:MP_CREDS")
    assert SECRET not in repr(creds) and SECRET not in str(creds)


@pytest.mark.parametrize("ref", ["", "env:", "file:", "vault:x", "MP_CREDS", "env"])
def test_malformed_reference_is_a_config_error_naming_it(ref):
    with pytest.raises(ProbeConfigError, match="env:NAME or file:PATH"):
        check_ref(ref)


def test_unset_variable_is_a_config_error_naming_the_variable(monkeypatch):
    monkeypatch.delenv("MP_NOT_SET", raising=False)
    with pytest.raises(ProbeConfigError, match="MP_NOT_SET is not set"):
        load_credentials("env:MP_NOT_SET")


def test_unreadable_file_is_a_config_error(tmp_path):
    with pytest.raises(ProbeConfigError, match="cannot read"):
        load_credentials(f"file:{tmp_path / 'missing'}")


@pytest.mark.parametrize("value", [SECRET.replace(":", ""), ":nouser", "user:", ""])
def test_value_without_user_and_password_is_refused_without_echoing_it(monkeypatch, value):
    monkeypatch.setenv("MP_CREDS", value)
    with pytest.raises(ProbeConfigError) as info:
        load_credentials("env:MP_CREDS")
    if value:
        assert value not in str(info.value)
