"""Deterministic Stripe-style object ids drawn from the sandbox seed."""

from __future__ import annotations

import random

# ASCII order (digits < upper < lower), so a fixed-width counter prefix sorts like the counter itself.
ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

# prefix -> (characters after the prefix, of which the leading ones encode a counter).
# A counter prefix makes ids of one kind sort in creation order, so ties in `created` break the way
# they happened and `ending_before=<newest seen>` never hides an object created later in the same second.
ID_LAYOUT: dict[str, tuple[int, int]] = {
    "cus": (14, 5),
    "fca": (24, 6),
    "evt": (24, 8),
    "req": (14, 0),
    "fctxnref": (24, 0),
}


def _encode(number: int, width: int) -> str:
    chars = []
    for _ in range(width):
        number, digit = divmod(number, 62)
        chars.append(ALPHABET[digit])
    return "".join(reversed(chars))


class IdFactory:
    """Makes ids like `cus_` + 14 alnum; the same seed and call order give the same ids."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(f"stripe_sandbox.ids:{seed}")
        self._counters: dict[str, int] = {}

    def new(self, prefix: str) -> str:
        length, counter_width = ID_LAYOUT.get(prefix, (24, 0))
        head = ""
        if counter_width:
            counter = self._counters.get(prefix)
            if counter is None:
                # Start somewhere seeded in the lower half so ids do not look like 00000...
                counter = self._rng.randrange(62 ** (counter_width - 1), 62**counter_width // 2)
            self._counters[prefix] = counter + 1
            head = _encode(counter, counter_width)
        tail = "".join(self._rng.choices(ALPHABET, k=length - counter_width))
        return f"{prefix}_{head}{tail}"
