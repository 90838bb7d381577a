"""The live zone editor puts the lab back exactly as it was."""

from __future__ import annotations

import pytest

from probes.lab.zone_edit import ZoneEditor

pytestmark = pytest.mark.lab


def test_restore_undoes_a_txt_replaced_by_a_cname(dns_lab):
    info = dns_lab.info
    name = f"_dmarc.{info.domain}"
    editor = ZoneEditor(info.resolver, [info.domain])
    before = editor.current(name, "TXT")
    assert before
    with editor:
        editor.delete(name, "TXT")
        editor.replace(name, "CNAME", f"elsewhere.{info.domain}.")
        assert editor.current(name, "TXT") == []
    assert editor.current(name, "TXT") == before
    assert editor.current(name, "CNAME") == []
