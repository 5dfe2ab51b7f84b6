"""Failed charger logins slow down the next attempt, per charger id and per source address.

A wrong password costs nothing for the first `free_failures`, then the next attempt waits
`base_delay_s`, doubling after each further failure up to `max_delay_s`: guessing from one
address, or at one charger id from many addresses, gets a handful of tries a minute. After
`lockout_after` failures in a row the key is reported once as locked out (the caller logs it).

A charger id and an address that logged in together before form a trusted pair: its attempts
wait only on the pair's own failures, so a stranger guessing one charger's password from
elsewhere cannot keep the real charger out. A good login also clears its address's count:
chargers behind one address (a NAT, or a vendor cloud such as zappi's and Smappee's) keep
logging in although one of them has a wrong key, while a guesser's own address stays slowed.

Pure: the caller passes the time; memory is bounded (`max_entries`, the stalest dropped).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class _Failures:
    count: int = 0
    last_failure: float = 0.0
    next_allowed: float = 0.0


@dataclass
class LoginThrottle:
    free_failures: int = 3
    base_delay_s: float = 1.0
    max_delay_s: float = 300.0
    lockout_after: int = 10
    max_entries: int = 10_000
    _failures: dict[str, _Failures] = field(default_factory=dict)
    _trusted: dict[tuple[str, str], None] = field(default_factory=dict)  # insertion-ordered set

    def _keys(self, charger_id: str, address: str) -> list[str]:
        pair = f"pair:{charger_id}@{address}"
        if (charger_id, address) in self._trusted:
            return [pair]
        return [pair, f"id:{charger_id}", f"addr:{address}"]

    def retry_after(self, charger_id: str, address: str, now: float) -> float:
        """Seconds until this attempt may be checked (0: check it now)."""
        waits = [f.next_allowed - now for k in self._keys(charger_id, address)
                 if (f := self._failures.get(k)) is not None]
        return max([0.0, *waits])

    def delay_after(self, failures: int) -> float:
        """The wait after `failures` failed attempts in a row."""
        if failures <= self.free_failures:
            return 0.0
        return min(self.base_delay_s * 2 ** (failures - self.free_failures - 1), self.max_delay_s)

    def failed(self, charger_id: str, address: str, now: float) -> list[str]:
        """Record a wrong password; return the keys that just reached the lockout count."""
        locked = []
        keys = [f"pair:{charger_id}@{address}", f"id:{charger_id}", f"addr:{address}"]
        for key in keys:
            entry = self._failures.pop(key, None) or _Failures()
            entry.count += 1
            entry.last_failure = now
            entry.next_allowed = now + self.delay_after(entry.count)
            self._failures[key] = entry  # re-inserted: the dict stays ordered by last failure
            if entry.count == self.lockout_after:
                locked.append(key)
        while len(self._failures) > self.max_entries:
            del self._failures[next(iter(self._failures))]
        return locked

    def succeeded(self, charger_id: str, address: str) -> None:
        """A good login clears the pair's, the charger's and the address's failures and trusts the pair."""
        for key in (f"pair:{charger_id}@{address}", f"id:{charger_id}", f"addr:{address}"):
            self._failures.pop(key, None)
        self._trusted.pop((charger_id, address), None)
        self._trusted[(charger_id, address)] = None
        while len(self._trusted) > self.max_entries:
            del self._trusted[next(iter(self._trusted))]
