"""Lab flavours: the spec fields that choose them, the registry, the matrix and the images."""

from __future__ import annotations

import pytest

from probes.lab import flavours, image
from probes.lab.flavours import (
    DEFAULT_FLAVOUR,
    FLAVOURS_ENV,
    MATRIX,
    flavours_from_env,
    parse_flavour,
    unsupported,
    unsupported_reason,
    with_flavour,
)
from probes.lab.spec import MAILBOX_FRONTS, MTAS, LabSpec, LabSpecError

BLOCK = "127.77.6.0/24"


def test_the_default_lab_is_exim_with_dovecot():
    spec = LabSpec()
    assert (spec.mta, spec.mailbox_front, spec.flavour) == ("exim", "dovecot", DEFAULT_FLAVOUR)


@pytest.mark.parametrize(
    ("data", "field"),
    [({"mta": "qmail"}, "mta"), ({"mailbox_front": "courier"}, "mailbox_front")],
)
def test_an_unknown_flavour_is_refused_naming_the_field(data, field):
    with pytest.raises(LabSpecError) as info:
        LabSpec.from_mapping(data)
    assert info.value.field == field


def test_every_mta_and_front_has_a_module_with_the_flavour_interface():
    assert set(flavours.MTA_MODULES) == set(MTAS)
    assert set(flavours.FRONT_MODULES) == set(MAILBOX_FRONTS)
    for module in (*flavours.MTA_MODULES.values(), *flavours.FRONT_MODULES.values()):
        assert callable(module.render) and callable(module.unsupported)
        assert isinstance(module.PACKAGES, tuple) and module.PACKAGES


def test_the_matrix_holds_every_mta_and_every_front():
    assert {parse_flavour(f)[0] for f in MATRIX} == set(MTAS)
    assert {parse_flavour(f)[1] for f in MATRIX} == set(MAILBOX_FRONTS)
    assert MATRIX[0] == DEFAULT_FLAVOUR


def test_a_flavour_name_without_a_front_means_dovecot():
    assert parse_flavour("postfix") == ("postfix", "dovecot")
    assert parse_flavour(" sendmail+perdition ") == ("sendmail", "perdition")


@pytest.mark.parametrize("bad", ["qmail", "exim+courier", "+dovecot", ""])
def test_a_bad_flavour_name_is_a_value_error_naming_it(bad):
    with pytest.raises(ValueError, match="lab flavour"):
        parse_flavour(bad)


def test_with_flavour_changes_only_the_mta_and_the_front():
    spec = LabSpec(domain="other.test", spf=None)
    changed = with_flavour(spec, "postfix+perdition")
    assert (changed.mta, changed.mailbox_front) == ("postfix", "perdition")
    assert (changed.domain, changed.spf) == ("other.test", None)


def test_the_environment_picks_flavours_from_the_matrix_or_beyond():
    assert flavours_from_env({}) == MATRIX
    assert flavours_from_env({FLAVOURS_ENV: " "}) == MATRIX
    chosen = flavours_from_env({FLAVOURS_ENV: "postfix, sendmail+perdition,postfix"})
    assert chosen == ("postfix+dovecot", "sendmail+perdition")
    with pytest.raises(ValueError, match="qmail"):
        flavours_from_env({FLAVOURS_ENV: "exim,qmail"})
    with pytest.raises(ValueError, match="names no flavour"):
        flavours_from_env({FLAVOURS_ENV: ",,"})


def test_what_a_flavour_cannot_express_refuses_the_spec_naming_field_and_flavour(monkeypatch):
    from probes.lab import sendmail_conf

    monkeypatch.setattr(
        sendmail_conf,
        "unsupported",
        lambda spec: (
            [("tls.key_readable", "it will not start")] if not spec.tls.key_readable else []
        ),
    )
    spec = LabSpec.from_mapping({"mta": "sendmail"})
    assert unsupported(spec) == [] and unsupported_reason(spec) is None
    with pytest.raises(LabSpecError) as info:
        LabSpec.from_mapping({"mta": "sendmail", "tls": {"key_readable": False}})
    assert info.value.field == "tls.key_readable"
    assert "sendmail+dovecot" in str(info.value) and "it will not start" in str(info.value)
    assert unsupported_reason(with_flavour(LabSpec(), "exim")) is None


# ----- roles and endpoints per front -------------------------------------------------------------


def test_behind_perdition_lmtp_and_clear_imap_pop3_are_the_stores():
    direct = LabSpec(block=BLOCK)
    assert direct.lmtp_address == direct.address("mailbox") == "127.77.6.143"
    assert "store_imap" not in {name for name, _, _ in direct.endpoints()}
    proxied = LabSpec(block=BLOCK, mailbox_front="perdition")
    assert proxied.lmtp_address == proxied.address("store") == "127.77.6.144"
    found = {name: (ip, port) for name, ip, port in proxied.endpoints()}
    assert found["lmtp"] == ("127.77.6.144", 24)
    assert found["imap"] == ("127.77.6.143", 143)
    assert found["store_imap"] == ("127.77.6.144", 143)
    assert found["store_pop3"] == ("127.77.6.144", 110)


def test_a_clash_with_the_store_is_refused():
    with pytest.raises(LabSpecError) as info:
        LabSpec.from_mapping(
            {
                "block": BLOCK,
                "mailbox_front": "perdition",
                "addresses": {"store": "127.77.6.143"},
            }
        )
    assert info.value.field.startswith("ports.")


# ----- images ------------------------------------------------------------------------------------


def test_each_mta_runs_from_an_image_that_holds_its_packages():
    for mta, module in flavours.MTA_MODULES.items():
        kind = flavours.MTA_IMAGE[mta]
        assert set(module.PACKAGES) <= set(image.image_packages(kind))
    # Dovecot, Perdition and Knot are always in the base image, whatever the MTA.
    base = set(image.image_packages("base"))
    for module in flavours.FRONT_MODULES.values():
        assert set(module.PACKAGES) <= base
    assert "knot" in base


def test_debians_conflicting_mtas_never_share_an_image():
    mtas = {"exim4-daemon-heavy", "postfix", "sendmail-bin"}
    for kind in image.IMAGE_KINDS:
        assert len(mtas & set(image.image_packages(kind))) == 1, kind


def test_each_image_kind_has_its_own_name_and_tag():
    names = {kind: image.image_name(kind) for kind in image.IMAGE_KINDS}
    assert names["base"] == image.image_name()
    assert len(set(names.values())) == len(names)
    assert names["postfix"].startswith(f"{image.IMAGE_REPO}-postfix:")
    with pytest.raises(ValueError, match="unknown lab image kind"):
        image.image_packages("qmail")


@pytest.mark.parametrize("kind", image.IMAGE_KINDS)
def test_each_containerfile_installs_exactly_its_images_packages(kind):
    text = image.containerfile_path(kind).read_text()
    assert image.containerfile_packages(text) == sorted(image.image_packages(kind))


# ----- command line ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["check", "--lab", "--lab-flavour", "qmail"], "lab flavour 'qmail'"),
        (["check", "--lab", "--lab-flavour", "exim+courier"], "mailbox front 'courier'"),
        (["check", "example.test", "--lab-flavour", "postfix"], "--lab-flavour goes with --lab"),
        (["check", "example.test", "--lab-spec", "x.yaml"], "--lab-spec goes with --lab"),
        (["lab", "up", "--name", "never", "--flavour", "exim+nginx"], "mailbox front 'nginx'"),
        (["lab", "doctor", "--no-setup", "--images", "base,qmail"], "--images 'base,qmail'"),
    ],
)
def test_a_bad_flavour_or_image_option_exits_2_naming_it(argv, named, capsys):
    from probes import cli

    assert cli.main(argv) == 2
    assert named in capsys.readouterr().err


def test_the_lab_flavour_option_overrides_the_specs_and_is_validated(tmp_path, monkeypatch):
    from probes import cli

    path = tmp_path / "lab.yaml"
    path.write_text("mta: sendmail\ntls:\n  certificate: expired\n")
    spec = cli._load_spec(str(path), "postfix+perdition")
    assert (spec.mta, spec.mailbox_front) == ("postfix", "perdition")
    assert spec.tls.certificate == "expired"
    assert cli._load_spec(str(path)).mta == "sendmail"
    from probes.lab import postfix_conf

    monkeypatch.setattr(postfix_conf, "unsupported", lambda spec: [("tls.certificate", "no")])
    with pytest.raises(cli.UsageError, match=r"tls\.certificate"):
        cli._load_spec(str(path), "postfix")


def test_only_images_with_opendkim_build_the_ub_config_lock_and_their_tag_covers_it(monkeypatch):
    assert image._customize_hooks("base") == []
    for kind in ("postfix", "sendmail"):
        hooks = image._customize_hooks(kind)
        assert any("ub-config-lock.c" in h and "upload" in h for h in hooks)
        assert any("purge" in h for h in hooks)  # the compiler does not stay in the image
    tags = {kind: image.image_tag(kind) for kind in image.IMAGE_KINDS}
    monkeypatch.setattr(image, "_UB_LOCK_BUILD", image._UB_LOCK_BUILD + " -DOTHER")
    assert image.image_tag("postfix") != tags["postfix"]
    assert image.image_tag("base") == tags["base"]


def test_opendkim_starts_with_the_lock_preloaded():
    from probes.lab import opendkim_conf

    lines = opendkim_conf.start_lines("mx", "/run/opendkim/opendkim.sock")
    assert f"LD_PRELOAD={opendkim_conf.UB_LOCK_LIBRARY} opendkim -x" in lines
