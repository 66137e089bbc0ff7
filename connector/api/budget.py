"""A per-endpoint call budget (``N`` calls per sliding window), on top of the app-wide 429 gate.

Some Mimecast endpoints document a budget of their own, far below the app-wide rate limit: the SIEM batch listing
allows 50 calls per 15 minutes, the SIEM stream endpoint 300 per hour (docs/siem.md). Running into it costs a 429
whose reset can be minutes away, longer than the retry loop waits (``RetryPolicy.max_rate_limit_wait``), and every
thread of the application waits for the shared ``RateGate`` meanwhile. So a stream counts its own calls and does
not send one the budget does not allow: it stops listing for this pass, keeps its cursors, and goes on at the next
pass.

The budget is a value (the times of the calls in the current window), so the stream keeps it in its checkpoint
state: a connector run by a scheduler as a new process every few minutes still knows the calls its previous runs
made. Times are epoch milliseconds of the wall clock the stream is given (the tests' and the simulator's).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["CallBudget"]


@dataclass(frozen=True, slots=True)
class CallBudget:
    """``calls`` calls per ``window_ms``, and the times (epoch ms, ascending) of the calls spent in the window.

    Immutable: :meth:`spend` returns the next value, so a state that holds one never changes under the runner.
    """

    calls: int
    window_ms: int
    spent: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.calls < 1 or self.window_ms < 1:
            raise ValueError("a call budget needs at least one call and a positive window")

    def with_times(self, times: Iterable[int]) -> CallBudget:
        """This budget with the call times of a stored state (kept: the newest ``calls`` of them)."""
        ordered = tuple(sorted(times))[-self.calls :]
        return CallBudget(self.calls, self.window_ms, ordered)

    def _live(self, now_ms: int) -> tuple[int, ...]:
        # a time after now (the clock went back) still counts: it is dropped once the window has passed it
        return tuple(t for t in self.spent if t > now_ms - self.window_ms)

    def left(self, now_ms: int) -> int:
        """Calls the budget still allows at ``now_ms``."""
        return max(self.calls - len(self._live(now_ms)), 0)

    def spend(self, now_ms: int) -> CallBudget:
        """The budget after one call at ``now_ms`` (whether or not it was allowed: a call sent is a call spent)."""
        live = self._live(now_ms)
        return CallBudget(self.calls, self.window_ms, (*live, now_ms)[-self.calls :])

    def free_at(self, now_ms: int) -> int:
        """When the next call is allowed (``now_ms`` when it is already)."""
        live = self._live(now_ms)
        if len(live) < self.calls:
            return now_ms
        return min(live[len(live) - self.calls :]) + self.window_ms

    def times(self) -> list[int]:
        """The call times, for the state's JSON form."""
        return list(self.spent)
