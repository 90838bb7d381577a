"""The lab's DNS blocklists as spec data (probes.lab.blocklists): zones served next to
extra_zones, their records (test entries, listings, wildcards), validation naming the field,
and the lab Target asking the lab's lists (never the public ones)."""

from __future__ import annotations

import dns.zone
import pytest

from probes.lab.blocklists import BlocklistSpec
from probes.lab.lab import LabInfo
from probes.lab.spec import LabSpec, LabSpecError
from probes.lab.target import lab_target
from probes.lab.zones import blocklist_zones, tld_zones

BLOCK = "127.77.1.0/24"


def zones_of(spec: LabSpec) -> dict[str, dns.zone.Zone]:
    return {
        z.name: dns.zone.from_text(z.text, origin=z.origin, relativize=False)
        for z in blocklist_zones(spec)
    }


def a_records(zone: dns.zone.Zone, name: str) -> set[str]:
    rdataset = zone.get_rdataset(name, "A")
    return {r.address for r in rdataset} if rdataset is not None else set()


def test_the_default_lab_serves_two_clean_lists_with_the_test_entries():
    spec = LabSpec(block=BLOCK)
    assert spec.blocklist_zones == {"ip": ("dnsbl.test",), "domain": ("dbl.test",)}
    zones = zones_of(spec)
    ip, domain = zones["dnsbl.test"], zones["dbl.test"]
    assert a_records(ip, "2.0.0.127.dnsbl.test.") == {"127.0.0.2"}
    assert a_records(ip, "1.0.0.127.dnsbl.test.") == set()
    v6 = "2.0.0.0.0.0.f.7.f.f.f.f." + "0." * 20 + "dnsbl.test."
    assert a_records(ip, v6) == {"127.0.0.2"}
    assert a_records(domain, "test.dbl.test.") == {"127.0.0.2"}
    assert a_records(domain, "invalid.dbl.test.") == set()
    # nothing of the lab is listed
    assert len([n for n in ip.nodes if ip.get_rdataset(n, "A")]) == 2
    # the TLD zone is served too (NXDOMAIN rather than REFUSED above the lists)
    assert "test" in {z.name for z in tld_zones(spec)}


def test_listed_entries_with_placeholders_and_a_txt_reason():
    spec = LabSpec(
        block=BLOCK,
        blocklists=(
            BlocklistSpec(
                "listed.test",
                listed=("{authorized}", "{outbound}"),
                reason="Spam from {authorized}",
            ),
            BlocklistSpec("dbl.test", kind="domain", listed=("{domain}",), code="127.0.1.2"),
        ),
    )
    zones = zones_of(spec)
    listed = zones["listed.test"]
    assert a_records(listed, "10.1.77.127.listed.test.") == {"127.0.0.2"}
    assert a_records(listed, "26.1.77.127.listed.test.") == {"127.0.0.2"}
    txt = listed.get_rdataset("10.1.77.127.listed.test.", "TXT")
    assert [b"".join(r.strings) for r in txt] == [b"Spam from 127.77.1.10"]
    assert a_records(zones["dbl.test"], "example.test.dbl.test.") == {"127.0.1.2"}


def test_answer_all_is_a_wildcard_without_test_entries():
    spec = LabSpec(
        block=BLOCK, blocklists=(BlocklistSpec("refusing.test", answer_all="127.255.255.254"),)
    )
    zone = zones_of(spec)["refusing.test"]
    assert a_records(zone, "*.refusing.test.") == {"127.255.255.254"}
    assert a_records(zone, "2.0.0.127.refusing.test.") == set()  # left out: the wildcard answers


def test_no_blocklists_at_all():
    spec = LabSpec(block=BLOCK, blocklists=())
    assert spec.blocklist_zones == {"ip": (), "domain": ()}
    assert zones_of(spec) == {}


@pytest.mark.parametrize(
    ("data", "field", "words"),
    [
        ({"blocklists": [{"zone": "bad zone"}]}, "blocklists[0].zone", "not a domain name"),
        ({"blocklists": [{"zone": "bl.example.test"}]}, "blocklists[0].zone", "overlaps"),
        ({"blocklists": [{"zone": "receiver.test"}]}, "blocklists[0].zone", "receiver_domain"),
        (
            {"extra_zones": {"x.test": []}, "blocklists": [{"zone": "x.test"}]},
            "blocklists[0].zone",
            "extra_zones",
        ),
        (
            {"blocklists": [{"zone": "a.test"}, {"zone": "A.test."}]},
            "blocklists[1].zone",
            "also",
        ),
        ({"blocklists": [{"zone": "a.test", "kind": "url"}]}, "blocklists[0].kind", "one of"),
        ({"blocklists": [{"zone": "a.test", "code": "192.0.2.1"}]}, "blocklists[0].code", "127"),
        ({"blocklists": [{"zone": "a.test", "code": "x"}]}, "blocklists[0].code", "IPv4"),
        (
            {"blocklists": [{"zone": "a.test", "answer_all": "::1"}]},
            "blocklists[0].answer_all",
            "IPv4",
        ),
        (
            {"blocklists": [{"zone": "a.test", "listed": ["example.com"]}]},
            "blocklists[0].listed[0]",
            "not an IP",
        ),
        (
            {"blocklists": [{"zone": "a.test", "kind": "domain", "listed": ["{authorized}"]}]},
            "blocklists[0].listed[0]",
            "not a domain",
        ),
        (
            {"blocklists": [{"zone": "a.test", "listed": ["{nowhere}"]}]},
            "blocklists[0].listed[0]",
            "unknown placeholder",
        ),
        ({"blocklists": [{"kind": "ip"}]}, "blocklists[0].zone", "required"),
    ],
)
def test_a_bad_blocklist_is_refused_naming_the_field(data, field, words):
    with pytest.raises(LabSpecError) as info:
        LabSpec.from_mapping(data)
    assert info.value.field == field
    assert words in info.value.reason


def test_the_lab_target_asks_the_labs_lists():
    info = LabInfo.from_json(
        {
            "lab_id": "127-77-1",
            "domain": "example.test",
            "resolver": "127.77.1.53:53",
            "hosts": {"mx": "127.77.1.25", "outbound": "127.77.1.26", "mailbox": "127.77.1.143"},
            "client_ips": {"authorized": "127.77.1.10", "unauthorized": "127.77.1.11"},
            "user": "user@example.test",
            "password": "pw",
            "ca_file": "/x/ca.pem",
            "dkim": {},
            "ports": {"smtp": 25},
            "lab_dir": "/x",
            "dnsbls": ["dnsbl.test"],
            "domain_blocklists": ["dbl.test"],
        }
    )
    target = lab_target(info)
    assert target.dnsbls == ("dnsbl.test",)
    assert target.domain_blocklists == ("dbl.test",)
    assert info.to_json()["dnsbls"] == ["dnsbl.test"]
    # an older lab state without lists: none asked (never the public defaults)
    data = info.to_json()
    del data["dnsbls"], data["domain_blocklists"]
    old = lab_target(LabInfo.from_json(data))
    assert old.dnsbls == () and old.domain_blocklists == ()
