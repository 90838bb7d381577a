"""probes.net.sized_lru: the least recently used go first, within entries and bytes."""

from probes.net.sized_lru import SizedLru


def test_the_least_recently_used_go_first_beyond_the_bytes():
    lru: SizedLru[str] = SizedLru(max_bytes=30)
    for key in "abc":
        lru.put(key, key.upper(), 10)
    assert lru.get("a") == "A"  # used: now the most recent
    lru.put("d", "D", 10)
    assert lru.get("b") is None and lru.get("a") == "A"
    assert (len(lru), lru.size, lru.evictions) == (3, 30, 1)


def test_the_entry_bound_and_a_replaced_value_keep_the_size_right():
    lru: SizedLru[int] = SizedLru(max_bytes=10_000, max_entries=2)
    lru.put("x", 1, 100)
    lru.put("x", 2, 300)  # replaced, not added
    assert (lru.get("x"), lru.size, len(lru)) == (2, 300, 1)
    lru.put("y", 3, 1)
    lru.put("z", 4, 1)
    assert lru.get("x") is None and lru.evictions == 1
    assert lru.pop("y") == 3 and lru.size == 1 and lru.evictions == 1  # not an eviction
