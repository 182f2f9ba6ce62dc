"""How the report writes shares and their differences, one way on the whole page.

Attainments sit near 100%, so they get two decimals (99.53%, not 100%); a difference of shares
is in percentage points, signed, so a gain never reads as a relative change.
"""

from __future__ import annotations


def percent(share: float, digits: int = 2) -> str:
    """``0.99531`` -> ``99.53%``."""
    return f"{100 * share:.{digits}f}%"


def points(delta: float, digits: int = 2, *, signed: bool = True) -> str:
    """A difference of shares in percentage points: ``0.0244`` -> ``+2.44 points``
    (``2.44 points`` unsigned, for a distance such as a miss)."""
    sign = "+" if signed else ""
    return f"{100 * delta:{sign}.{digits}f} points"


def ci(low: float, high: float, digits: int = 1) -> str:
    """A 95% confidence interval: ``[2090.1, 2104.5]``."""
    return f"[{low:.{digits}f}, {high:.{digits}f}]"
