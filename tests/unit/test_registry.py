from importlib.metadata import EntryPoint

import pytest

from probes import registry
from probes.codes import Code, declare
from probes.errors import PluginError, UsageError
from probes.model import Severity
from probes.registry import load_probes, load_renderers, select_probes


class GoodProbe:
    id = "dns.good"
    description = "a valid probe"
    codes = declare(Code("GOOD_CODE", "a good code", Severity.INFO))

    def run(self, target, net):
        return []


class OtherGoodProbe(GoodProbe):
    id = "smtp.other_good"


class BadIdProbe(GoodProbe):
    id = "Bad-Id"


class NoNamespaceProbe(GoodProbe):
    id = "spf"


class NoRunProbe:
    id = "dns.norun"
    description = "no run method"


class NoIdProbe:
    description = "no id"

    def run(self, target, net):
        return []


def _ep(name: str, obj_name: str, group: str = registry.PROBE_GROUP) -> EntryPoint:
    return EntryPoint(name=name, value=f"{__name__}:{obj_name}", group=group)


@pytest.fixture
def installed(monkeypatch):
    """Replace the entry points the registry sees with the given ones."""

    def install(*eps: EntryPoint) -> None:
        def fake_entry_points(*, group: str):
            return [ep for ep in eps if ep.group == group]

        monkeypatch.setattr(registry, "entry_points", fake_entry_points)

    return install


AVAILABLE = {
    "dns.spf": "SPF",
    "dns.dmarc": "DMARC",
    "dns.dkim": "DKIM",
    "smtp.starttls": "STARTTLS",
    "imap.tls": "IMAPTLS",
}


def test_no_installed_probes_gives_empty_dict(installed):
    installed()
    assert load_probes() == {}


def test_real_probe_group_loads_without_error():
    assert isinstance(load_probes(), dict)


def test_valid_probes_load_by_id(installed):
    installed(_ep("dns.good", "GoodProbe"), _ep("smtp.other_good", "OtherGoodProbe"))
    assert load_probes() == {"dns.good": GoodProbe, "smtp.other_good": OtherGoodProbe}


@pytest.mark.parametrize(
    ("name", "obj"),
    [
        ("Bad-Id", "BadIdProbe"),
        ("spf", "NoNamespaceProbe"),
        ("dns.norun", "NoRunProbe"),
        ("dns.noid", "NoIdProbe"),
        ("dns.other", "GoodProbe"),  # entry-point name differs from the id
        ("dns.notaclass", "AVAILABLE"),
    ],
)
def test_invalid_probe_raises_error_naming_entry_point(installed, name, obj):
    installed(_ep(name, obj))
    with pytest.raises(PluginError) as info:
        load_probes()
    assert name in str(info.value)


def test_unimportable_probe_raises_error_naming_entry_point(installed):
    installed(
        EntryPoint(name="dns.gone", value="no_such_module_xyz:Probe", group="mailprobe.probes")
    )
    with pytest.raises(PluginError, match=r"dns\.gone"):
        load_probes()


def test_duplicate_probe_id_raises_error_naming_entry_point(installed):
    installed(_ep("dns.good", "GoodProbe"), _ep("dns.good", "OtherGoodProbe"))
    with pytest.raises(PluginError, match=r"dns\.good"):
        load_probes()


def test_same_entry_point_listed_twice_is_not_a_duplicate(installed):
    installed(_ep("dns.good", "GoodProbe"), _ep("dns.good", "GoodProbe"))
    assert load_probes() == {"dns.good": GoodProbe}


def test_registry_errors_are_usage_errors():
    assert issubclass(PluginError, UsageError)


def test_builtin_renderers_are_available_without_entry_points(installed):
    installed()
    renderers = load_renderers()
    assert {"json", "text"} <= set(renderers)
    assert all(callable(r) for r in renderers.values())


def test_non_callable_renderer_is_an_error(installed):
    installed(_ep("weird", "AVAILABLE", group=registry.RENDERER_GROUP))
    with pytest.raises(PluginError, match="weird"):
        load_renderers()


def test_no_globs_selects_all_sorted_by_id():
    assert select_probes(AVAILABLE, []) == ["DKIM", "DMARC", "SPF", "IMAPTLS", "STARTTLS"]


def test_glob_selects_matching_probes():
    assert select_probes(AVAILABLE, ["dns.*"]) == ["DKIM", "DMARC", "SPF"]


def test_several_globs_are_united_without_duplicates():
    assert select_probes(AVAILABLE, ["dns.spf", "dns.s*", "*.tls"]) == ["SPF", "IMAPTLS"]


def test_glob_character_classes_work():
    assert select_probes(AVAILABLE, ["dns.d[km]*"]) == ["DKIM", "DMARC"]


def test_glob_matching_is_case_sensitive():
    with pytest.raises(UsageError):
        select_probes(AVAILABLE, ["DNS.*"])


def test_unknown_glob_raises_usage_error_listing_available_ids():
    with pytest.raises(UsageError) as info:
        select_probes(AVAILABLE, ["dns.*", "pop3.*"])
    message = str(info.value)
    assert "pop3.*" in message
    assert all(probe_id in message for probe_id in AVAILABLE)


def test_glob_with_no_probes_installed_raises_usage_error():
    with pytest.raises(UsageError, match="dns"):
        select_probes({}, ["dns.*"])


def test_nothing_installed_and_nothing_asked_selects_nothing():
    assert select_probes({}, []) == []
