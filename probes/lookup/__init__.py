"""The DNS questions probes and the message round trip share, answered once, through `net.dns`.

- `spf`: RFC 7208 check_host() with pyspf, every question through the door.
- `dmarc`: DMARC policy discovery and Organizational Domains by the RFC 9989 DNS Tree Walk.
- `mx`: the MX set of a domain (null MX, implicit MX) and its hosts' addresses.
- `ptr`: reverse names, PTR and forward-confirmed reverse DNS (FCrDNS, iprev).

Below the probes: nothing here imports `probes.checks` or `probes.probekit`.
"""
