"""The lab specs shipped in scenarios/labs load, validate and render zones."""

from pathlib import Path

import pytest

from probes.lab.spec import LabSpec
from probes.lab.zones import forward_zone, reverse_zones

LAB_SPECS = sorted((Path(__file__).parents[2] / "scenarios" / "labs").glob("*.yaml"))


def test_example_lab_specs_exist():
    assert {p.name for p in LAB_SPECS} >= {"correct.yaml", "misconfigured.yaml"}


@pytest.mark.parametrize("path", LAB_SPECS, ids=lambda p: p.name)
def test_example_lab_spec_loads_and_renders_zones(path):
    spec = LabSpec.from_yaml(path).with_block("127.77.1.0/24")
    spec.validate()
    zone = forward_zone(spec, {s.name: "AAAA" for s in spec.selectors})
    assert f"$ORIGIN {spec.domain}." in zone.text
    assert reverse_zones(spec)


def test_correct_lab_spec_equals_the_defaults():
    correct = next(p for p in LAB_SPECS if p.name == "correct.yaml")
    assert LabSpec.from_yaml(correct) == LabSpec()
