"""The reproduced-vs-published table that ends every tutorial, and its assertions.

Each row names a quantity, the value the tutorial reproduced, the published one, the
tolerance and where both come from (a section of REFERENCES.md, a closed form, a paper's
figure). `Comparison.finish()` prints the table and exits with status 1 if any row is
outside its tolerance, so a tutorial that reproduces the wrong numbers fails when run,
and with it `tests/test_tutorials.py`.

Not a tutorial itself: the leading underscore keeps it out of the test's discovery.
"""

from __future__ import annotations

import math
import sys


def _format(x: float, fmt: str) -> str:
    """`fmt` applied to `x`; integer formats show non-integers (nan) as they are."""
    if fmt.endswith("d"):
        return f"{int(x):{fmt}}" if float(x).is_integer() else f"{x}"
    return f"{x:{fmt}}"


class Comparison:
    """Rows of reproduced vs published values, each checked against a tolerance."""

    def __init__(self, title: str, run: str):
        self.title, self.run = title, run
        self.rows: list[tuple[str, str, str, str, bool, str]] = []

    def _add(self, quantity, reproduced, published, tolerance, ok, source):
        self.rows.append((quantity, reproduced, published, tolerance, bool(ok), source))

    def close(self, quantity: str, reproduced: float, published: float, *,
              atol: float | None = None, rtol: float | None = None, fmt: str = ".3f",
              source: str = "") -> None:
        """|reproduced − published| ≤ atol, or ≤ rtol·|published|."""
        if (atol is None) == (rtol is None):
            raise ValueError("give exactly one of atol and rtol")
        reproduced, published = float(reproduced), float(published)
        bound = atol if atol is not None else rtol * abs(published)
        ok = math.isfinite(reproduced) and abs(reproduced - published) <= bound
        tol = f"± {atol:g}" if atol is not None else f"± {100 * rtol:g} %"
        self._add(quantity, _format(reproduced, fmt), _format(published, fmt), tol, ok, source)

    def within(self, quantity: str, reproduced: float, lo: float, hi: float, *,
               fmt: str = ".3f", source: str = "") -> None:
        """A published range: lo ≤ reproduced ≤ hi."""
        reproduced = float(reproduced)
        ok = math.isfinite(reproduced) and lo <= reproduced <= hi
        self._add(quantity, _format(reproduced, fmt), f"{_format(lo, fmt)}-{_format(hi, fmt)}",
                  "range", ok, source)

    def equal(self, quantity: str, reproduced, published, *, source: str = "") -> None:
        """Exact agreement (spike counts, qualitative outcomes)."""
        self._add(quantity, str(reproduced), str(published), "exact",
                  reproduced == published, source)

    def holds(self, quantity: str, reproduced: str, published: str, ok: bool, *,
              source: str = "") -> None:
        """A published inequality or ordering, e.g. 'fast signals attenuate more'."""
        self._add(quantity, reproduced, published, "inequality", ok, source)

    def shown(self, quantity: str, reproduced: str, published: str, why: str) -> None:
        """A row printed for comparison but not asserted; `why` says why not."""
        self.rows.append((quantity, reproduced, published, "not checked", True, why))

    def finish(self) -> None:
        """Print the table; exit with status 1 if any row is outside its tolerance."""
        checked = [r for r in self.rows if r[3] != "not checked"]
        failed = [r for r in checked if not r[4]]
        wq = max(len(r[0]) for r in self.rows) + 2
        print()
        print(self.title)
        print(self.run)
        print(f"{'quantity':<{wq}}{'reproduced':>12} {'published':>12} {'tolerance':>13}  "
              f"{'':<4}  source")
        for q, rep, pub, tol, ok, src in self.rows:
            mark = "--" if tol == "not checked" else ("ok" if ok else "FAIL")
            print(f"{q:<{wq}}{rep:>12} {pub:>12} {tol:>13}  {mark:<4}  {src}")
        print(f"checks within tolerance: {len(checked) - len(failed)} of {len(checked)}")
        if failed:
            for q, rep, pub, tol, _, src in failed:
                print(f"FAIL {q}: reproduced {rep}, published {pub} {tol} ({src})",
                      file=sys.stderr)
            sys.exit(1)
