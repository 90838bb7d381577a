"""The lab image recipe: package list, Containerfile parity and the cache tag."""

from __future__ import annotations

import re

from probes.lab import image


def test_containerfile_installs_exactly_the_packages_of_the_registry_free_build():
    assert image.containerfile_packages() == sorted(image.PACKAGES)


def test_packages_are_unique():
    assert len(set(image.PACKAGES)) == len(image.PACKAGES)


def test_containerfile_packages_parses_continued_install_lines():
    text = (
        "FROM debian:bookworm-slim\n"
        "RUN apt-get update \\\n"
        " && apt-get install -y --no-install-recommends \\\n"
        "    zeta alpha \\\n"
        "    mid \\\n"
        " && rm -rf /var/lib/apt/lists/*\n"
    )
    assert image.containerfile_packages(text) == ["alpha", "mid", "zeta"]


def test_containerfile_packages_is_empty_without_an_install_line():
    assert image.containerfile_packages("FROM scratch\n") == []


def test_image_tag_is_stable():
    assert image.image_tag() == image.image_tag()
    assert re.fullmatch(r"[0-9a-f]{12}", image.image_tag())


def test_image_tag_ignores_package_order(monkeypatch):
    tag = image.image_tag()
    monkeypatch.setattr(image, "PACKAGES", tuple(reversed(image.PACKAGES)))
    assert image.image_tag() == tag


def test_image_tag_changes_when_a_package_is_added(monkeypatch):
    tag = image.image_tag()
    monkeypatch.setattr(image, "PACKAGES", (*image.PACKAGES, "swaks"))
    assert image.image_tag() != tag


def test_image_tag_changes_when_a_package_is_removed(monkeypatch):
    tag = image.image_tag()
    monkeypatch.setattr(image, "PACKAGES", image.PACKAGES[1:])
    assert image.image_tag() != tag


def test_image_tag_changes_with_the_recipe_revision(monkeypatch):
    tag = image.image_tag()
    monkeypatch.setattr(image, "RECIPE_REVISION", image.RECIPE_REVISION + "-next")
    assert image.image_tag() != tag


def test_image_name_is_a_local_name_tagged_with_the_hash():
    name = image.image_name()
    assert name == f"{image.IMAGE_REPO}:{image.image_tag()}"
    assert name.startswith("localhost/")
