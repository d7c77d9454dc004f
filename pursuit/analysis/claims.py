"""Claims: what the seeds of a configuration let us say, and when the target is reached.

One record, one rule, read by the engine, the leaderboard, ``status`` and the JSON.

Which runs a claim rests on (a run is one (method, configuration, seed); it counts once):

* a method's **published defaults** were chosen by no one: all their seeds count;
* a configuration found by **search** was chosen for its screening run (seed 0), so
  that run never counts; its claim rests on the seeds run after it was chosen
  (*confirm* and *ladder* runs, seeds 1, 2, ...);
* the **leader** (the best claim with the goal's full seed count) was chosen for its
  claim's values, so before "target reached" is said it is **verified** on fresh seeds
  that chose nothing; from then on its claim rests on those seeds alone.

When the target is reached: only a verification can reach it. The k-th verification of
a run (k = 1, 2, ...) is judged at one-sided level ``ALPHA / 2**k``: the first at the
usual 95% interval (2.5% on its side), each later one at half the level of the one
before. The levels add up to at most ``ALPHA``, so however many configurations a run
verifies, it says "target reached" wrongly at most 5% of the time.

The best claim's interval: once the target is reached, the verified claim's own 95%
interval (its seeds chose nothing). Before, the leader is the best of ``m`` claims, and
the best of many looks better than it is (the winner's curse), so its interval is
widened to hold for all ``m`` at once (Bonferroni: each at level ``1 - 0.05 / m``).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
from scipy import stats

ALPHA = 0.05  # the most a run may be wrong when it says "target reached"
LEVEL = 0.95  # of every interval shown, unless said otherwise


class Direction(StrEnum):
    MINIMIZE = "minimize"
    MAXIMIZE = "maximize"

    def better(self, a: float, b: float) -> bool:
        """Whether value ``a`` beats ``b``."""
        return a > b if self is Direction.MAXIMIZE else a < b


class Stage(StrEnum):
    """The loop's stages, in the order a run first meets them; what each run means for
    claims is in the module docstring."""

    BASELINES = "baselines"
    SEARCH = "search"
    CONFIRM = "confirm"
    VERIFY = "verify"
    LADDER = "ladder"


COUNTED = frozenset({Stage.BASELINES, Stage.CONFIRM, Stage.LADDER})


def verification_level(k: int) -> float:
    """The one-sided level at which the k-th verification of a run is judged."""
    return ALPHA / 2**k


@functools.lru_cache(maxsize=4096)
def t_quantile(q: float, df: int) -> float:
    """Student's t quantile; cached, as claims ask for the same few (level, seeds) again
    and again and scipy takes tens of microseconds for each."""
    return float(stats.t.ppf(q, df))


def t_interval(values: np.ndarray, level: float) -> tuple[float, float, float]:
    """Mean and Student-t interval; the interval is NaN with fewer than two values."""
    if values.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(values.mean())
    if values.size < 2:
        return mean, math.nan, math.nan
    half = float(t_quantile(0.5 + level / 2, values.size - 1) * values.std(ddof=1)
                 / math.sqrt(values.size))
    return mean, mean - half, mean + half


@dataclass(frozen=True)
class Claim:
    """A configuration's mean over the seeds it rests on, with its 95% interval."""

    method: str
    config: str
    seeds: tuple[int, ...]
    values: tuple[float, ...]
    verified: bool  # rests on verification seeds (run after it led)
    verification: int | None  # k: its place among the run's verifications
    mean: float
    lo: float
    hi: float

    @property
    def n(self) -> int:
        return len(self.values)

    def bound(self, level: float, direction: Direction) -> float:
        """The one-sided bound on the side of the target at ``level`` (e.g. 0.975)."""
        x = np.asarray(self.values)
        if x.size < 2:
            return self.mean
        lo, hi = t_interval(x, 2 * level - 1)[1:]
        return lo if direction is Direction.MAXIMIZE else hi

    def passes(self, target: float, direction: Direction, seeds: int) -> bool:
        """Whether this verified claim reaches ``target`` at its verification's level.

        With a goal of one seed there is no interval: the one fresh run must meet it."""
        if not self.verified or self.verification is None or self.n < seeds:
            return False
        bound = self.bound(1 - verification_level(self.verification), direction)
        return bound >= target if direction is Direction.MAXIMIZE else bound <= target


@dataclass
class Evidence:
    """What one configuration has so far: counted seeds and verification seeds."""

    method: str
    config: str
    counted: dict[int, float] = field(default_factory=dict)
    verify: dict[int, float] = field(default_factory=dict)
    verification: int | None = None

    def add(self, stage: Stage, seed: int, value: float) -> bool:
        """Take a completed run's value; False when it does not count for a claim (a
        screening run, a non-finite value, or a seed already counted)."""
        if not math.isfinite(value):
            return False
        own = self.verify if stage is Stage.VERIFY else self.counted
        if (stage is not Stage.VERIFY and stage not in COUNTED) or seed in own:
            return False
        own[seed] = value
        return True

    def claim(self) -> Claim | None:
        source = self.verify if self.verification is not None else self.counted
        if not source:
            return None
        seeds = tuple(sorted(source))
        values = tuple(source[s] for s in seeds)
        mean, lo, hi = t_interval(np.asarray(values), LEVEL)
        return Claim(self.method, self.config, seeds, values, self.verification is not None,
                     self.verification, mean, lo, hi)


@dataclass(frozen=True)
class Best:
    """The claim a run stands on now: the one that reached the target, else the leader
    with its interval widened for being the best of ``among`` claims."""

    claim: Claim
    lo: float
    hi: float
    among: int
    reached: bool

    def text(self, metric: str) -> str:
        c = self.claim
        interval = "" if math.isnan(self.lo) else f" [{self.lo:.4g}, {self.hi:.4g}]"
        if self.reached:
            how = (f"over {c.n} fresh seeds (verification {c.verification}, one-sided "
                   f"level {verification_level(c.verification or 1):.3g})")
        elif self.among > 1:
            how = f"over {c.n} seeds (the best of {self.among} claims; interval widened for it)"
        else:
            how = f"over {c.n} seeds"
        return f"{c.method} {metric} {c.mean:.4g}{interval} {how}"


class ClaimBook:
    """Every configuration's evidence, the leader kept as values arrive, and whether
    the target is reached. Feed it completed runs in the order they were created."""

    def __init__(self, direction: Direction | str, target: float | None, seeds: int) -> None:
        self.direction = Direction(direction)
        self.target = target
        self.seeds = seeds
        self.evidence: dict[tuple[str, str], Evidence] = {}
        self.verifications = 0
        self.verifying: list[tuple[str, str]] = []  # configurations verified, in order
        self.reached_by: Claim | None = None
        # The means of the claims with every seed, and the leader among them, kept as
        # values come in: planning asks for the leader often.
        self._means: dict[tuple[str, str], float] = {}
        self._leader: tuple[str, str] | None = None

    def of(self, method: str, config: str) -> Evidence:
        key = (method, config)
        if key not in self.evidence:
            self.evidence[key] = Evidence(method, config)
        return self.evidence[key]

    def start_verification(self, method: str, config: str) -> int:
        """Number the configuration's verification (once) and return its k."""
        evidence = self.of(method, config)
        if evidence.verification is None:
            self.verifications += 1
            evidence.verification = self.verifications
            self.verifying.append((method, config))
            self._update(evidence)  # its old claim, chosen by its values, is set aside
        return evidence.verification

    def add(self, method: str, config: str, stage: Stage | str, seed: int,
            value: float) -> None:
        stage = Stage(stage)
        if stage is Stage.VERIFY:
            self.start_verification(method, config)
        evidence = self.of(method, config)
        if not evidence.add(stage, seed, value):
            return
        if stage is not Stage.VERIFY and evidence.verification is not None:
            return  # its claim rests on its verification seeds now
        self._update(evidence)

    def _update(self, evidence: Evidence) -> None:
        claim = evidence.claim()
        key = (evidence.method, evidence.config)
        if claim is None or claim.n < self.seeds:
            if key in self._means:  # a verification began: the old claim is gone
                del self._means[key]
                if key == self._leader:
                    self._rescan()
            return
        self._means[key] = claim.mean
        if key == self._leader:
            self._rescan()  # the leader moved: any other may lead now
        elif self._leader is None or self.direction.better(claim.mean,
                                                           self._means[self._leader]):
            self._leader = key
        if self.reached_by is None and self.target is not None and \
                claim.passes(self.target, self.direction, self.seeds):
            self.reached_by = claim

    def _rescan(self) -> None:
        self._leader = None
        for key, mean in self._means.items():
            if self._leader is None or self.direction.better(mean, self._means[self._leader]):
                self._leader = key

    @property
    def reached(self) -> bool:
        return self.reached_by is not None

    def leader(self) -> Claim | None:
        """The best claim with the goal's full seed count (by its mean)."""
        if self._leader is None:
            return None
        return self.evidence[self._leader].claim()

    def leader_of(self, method: str, keep: Callable[[str], bool] = lambda _: True
                  ) -> Claim | None:
        """A method's best claim with the goal's full seed count (by its mean), among
        the configurations ``keep`` keeps."""
        best: tuple[str, str] | None = None
        for key, mean in self._means.items():
            if key[0] == method and keep(key[1]) and \
                    (best is None or self.direction.better(mean, self._means[best])):
                best = key
        return None if best is None else self.evidence[best].claim()

    def claims(self) -> list[Claim]:
        """Every configuration's claim, complete or not."""
        return [c for e in self.evidence.values() if (c := e.claim()) is not None]

    def complete(self) -> int:
        """How many claims have the full seed count: what the leader was chosen among."""
        return len(self._means)

    def best(self) -> Best | None:
        if self.reached_by is not None:
            c = self.reached_by
            return Best(c, c.lo, c.hi, self.complete(), True)
        leader = self.leader()
        if leader is None:
            return None
        among = self.complete()
        lo, hi = leader.lo, leader.hi
        if among > 1 and leader.n > 1:
            _, lo, hi = t_interval(np.asarray(leader.values), 1 - (1 - LEVEL) / among)
        return Best(leader, lo, hi, among, False)

    def wants_verification(self) -> Claim | None:
        """The leader, when its mean is past the target and it has not been verified."""
        leader = self.leader()
        if leader is None or leader.verified or self.target is None or self.reached:
            return None
        past = leader.mean >= self.target if self.direction is Direction.MAXIMIZE \
            else leader.mean <= self.target
        return leader if past else None


def book_from_runs(runs: Iterable[tuple[str, str, str, int, float]], *,
                   direction: Direction | str, target: float | None,
                   seeds: int) -> ClaimBook:
    """A claim book from completed runs ``(method, config, stage, seed, value)`` in the
    order they were created (the leaderboard's way in; the engine feeds its own)."""
    book = ClaimBook(direction, target, seeds)
    for method, config, stage, seed, value in runs:
        book.add(method, config, stage, seed, value)
    return book
