"""What the built-in probes share, beside them in `probes.checks` (which holds probes only).

- `endpoints`: which host:port endpoints a transport probe looks at; checking them at once.
- `transport`: `EndpointProbe`, the conversation-and-TLS flow of every transport probe.
- `tls_findings`: certificate and TLS-version facts as findings (pure).
- `reproduce`: openssl/swaks command lines a user can paste.
- `policy_record`: `PolicyRecordProbe`, the shape of the one-TXT-record policy probes.
"""
