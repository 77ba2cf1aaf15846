"""Shared helpers of the peer tests: the cases of one peer, run once per session."""
import functools

from refsnn.testing import peers


@functools.lru_cache(maxsize=None)
def results(peer: str) -> dict:
    """``{config: PeerResult}`` of every case of ``peer`` (torch on one thread)."""
    return {r.case.config: r for r in peers.run_all([c for c in peers.CASES if c.peer == peer])}


def case(peer: str, expected, *, end: str = ""):
    """The one case of ``peer`` with this ``expected`` preset (and a config ending in ``end``)."""
    found = [c for c in peers.CASES if c.peer == peer and c.expected == expected
             and c.config.endswith(end)]
    assert len(found) == 1, (peer, expected, end, found)
    return found[0]
