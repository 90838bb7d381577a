"""A Dask preload (`dask worker --preload tests/dask_other_version.py`): the worker reports
another mailprobe version, as a worker left on an older install would."""

import distributed.versions

# Dask may run a preload file more than once: wrap the real function once.
_real = getattr(distributed.versions, "_mailprobe_real_version", None)
if _real is None:
    _real = distributed.versions._version_cached
    distributed.versions._mailprobe_real_version = _real


def _other(pkg: str) -> str | None:
    return "0.0.1-other" if pkg == "mailprobe" else _real(pkg)


distributed.versions._version_cached = _other
