#!/usr/bin/python3
"""Called by the lab MX's DATA ACL: prints one Authentication-Results `spf=` clause.

Exim's own SPF (libspf2) passes every 127/8 client, so in a loopback lab the verdict comes
from pyspf instead. Arguments: client IP, envelope sender (or "-"), HELO name.
"""

import re
import sys

import spf

ip, sender, helo = [*sys.argv[1:], "", "", ""][:3]
if not sender or sender == "-":
    sender = "postmaster@" + helo
try:
    result, explanation = spf.check2(i=ip, s=sender, h=helo, timeout=5)
except Exception as exc:  # the header must always get a verdict
    result, explanation = "temperror", type(exc).__name__
comment = re.sub(r"[()\\\r\n]", " ", explanation or "").strip()
mailfrom = re.sub(r"[\s;()\"]", "", sender)
print(f"spf={result} ({comment}) smtp.mailfrom={mailfrom}", end="")
