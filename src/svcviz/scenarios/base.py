"""A scenario: one experiment of the lecture, run on a real lab and checked against the kernel.

A scenario's steps drive the lab (start a model, add clients, type lines, quit them) and
state claims. Each claim polls fresh snapshots until it holds (or a timeout), or watches
that it keeps holding for a while, and records what was expected and what was observed.
The first claim that fails ends the scenario: what follows would build on a false premise.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple, Protocol

from svcviz.clients import FleetError
from svcviz.lab import Lab, LabError, LabUpdate
from svcviz.servers.config import ServerConfig

POLL = 0.05  # seconds between samples while a claim is watched


class Look(NamedTuple):
    """A probe's verdict on one sample: does the claim hold, and what was seen."""

    holds: bool
    observed: str


Probe = Callable[[LabUpdate], Look]


class Claim(NamedTuple):
    claim: str
    expected: str
    observed: str
    passed: bool

    def as_json(self) -> dict[str, object]:
        return {"claim": self.claim, "expected": self.expected, "observed": self.observed, "passed": self.passed}


class Result(NamedTuple):
    name: str
    title: str
    claims: tuple[Claim, ...]
    seconds: float
    error: str | None = None  # the scenario could not run to its end
    server_said: tuple[str, ...] = ()  # the server's own words: context, never evidence

    @property
    def passed(self) -> bool:
        return self.error is None and bool(self.claims) and all(c.passed for c in self.claims)

    def as_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "title": self.title,
            "passed": self.passed,
            "claims": [c.as_json() for c in self.claims],
            "seconds": round(self.seconds, 2),
            "error": self.error,
            "server_said": list(self.server_said),
        }


class Timing(NamedTuple):
    timeout: float  # the longest wait for a claim to come true
    hold: float  # how long a claim that must keep holding is watched

    @classmethod
    def full(cls) -> Timing:
        return cls(timeout=10.0, hold=1.0)

    @classmethod
    def quick(cls) -> Timing:
        return cls(timeout=4.0, hold=0.3)


class ClaimFailed(Exception):
    """A claim did not hold: the scenario stops here (the claim is already recorded)."""


class Run:
    """One run of a scenario: its lab, its timing, and the claims checked so far."""

    def __init__(self, config: ServerConfig, timing: Timing, quick: bool) -> None:
        self.lab = Lab(config)
        self.timing = timing
        self.quick = quick
        self.claims: list[Claim] = []
        self.server_said: list[str] = []
        self.last: LabUpdate | None = None

    @property
    def server_pid(self) -> int:
        """The running server's pid; a LabError (the scenario fails, saying why) when none runs."""
        pid = self.lab.server_pid
        if pid is None:
            raise LabError(f"no {self.lab.config.model} server is running")
        return pid

    async def sample(self) -> LabUpdate:
        self.last = await self.lab.sample()
        self.server_said += [e.text for e in self.last.events if e.kind in ("error", "cap")]
        return self.last

    async def add(self, count: int = 1, kind: str = "interactive", **options: object) -> list[int]:
        """Add clients; their ids (the lab's fleet numbers them)."""
        return sorted(await self.lab.add_clients(count, kind, **options))

    async def until(self, claim: str, expected: str, probe: Probe, timeout: float | None = None) -> list[LabUpdate]:
        """Sample until probe holds; every update seen (the last one holds)."""
        deadline = time.monotonic() + (timeout or self.timing.timeout)
        seen: list[LabUpdate] = []
        while True:
            seen.append(await self.sample())
            look = probe(seen[-1])
            if look.holds or time.monotonic() > deadline:
                self.record(claim, expected, look.observed, look.holds)
                return seen
            await asyncio.sleep(POLL)

    async def throughout(
        self, claim: str, expected: str, probe: Probe, seconds: float | None = None
    ) -> list[LabUpdate]:
        """Sample for a while: probe must hold in every sample."""
        deadline = time.monotonic() + (seconds or self.timing.hold)
        seen: list[LabUpdate] = []
        while True:
            seen.append(await self.sample())
            look = probe(seen[-1])
            if not look.holds or time.monotonic() > deadline:
                self.record(claim, expected, look.observed, look.holds)
                return seen
            await asyncio.sleep(POLL)

    def record(self, claim: str, expected: str, observed: str, passed: bool) -> None:
        """A claim judged directly (from samples already taken, or a syscall's outcome)."""
        self.claims.append(Claim(claim, expected, observed, passed))
        if not passed:
            raise ClaimFailed(claim)


Steps = Callable[[Run], Awaitable[None]]


class Experiment(Protocol):
    """What `svcviz scenario` runs and lists: a Scenario (on a lab) or a PipeScenario (on a
    shell pipeline), each with its own changes for the negative tests."""

    @property
    def name(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def lecture(self) -> str: ...

    async def run(self, quick: bool = False, **changes: Any) -> Result: ...


class Scenario(NamedTuple):
    name: str
    title: str  # the lecture's claim, in words
    lecture: str  # where in the lecture: "serviceserver03"
    config: ServerConfig  # the model (port 0: any free port)
    steps: Steps

    async def run(self, quick: bool = False, **changes: Any) -> Result:
        """Run the steps on a fresh lab; changes alter the config (a negative test runs a
        scenario against a model that must not satisfy it). Any: ServerConfig fields, each
        its own type."""
        began = time.monotonic()
        run = Run(self.config._replace(**changes), Timing.quick() if quick else Timing.full(), quick)
        error = None
        try:
            await run.lab.start()
            run.lab.pause()  # every sample is the scenario's own, so no event is missed
            await self.steps(run)
        except ClaimFailed:
            pass
        except (LabError, FleetError) as exc:
            error = str(exc)
        except Exception as exc:  # a bug in a scenario fails that scenario, not the report
            error = f"{type(exc).__name__}: {exc}"
        finally:
            await run.lab.stop()
        return Result(
            self.name,
            self.title,
            tuple(run.claims),
            time.monotonic() - began,
            error,
            tuple(dict.fromkeys(run.server_said)),
        )
