"""The kernel's own trace lines (tracefs `trace_pipe`) into TraceEvents: the one place that
knows their format. A call is two lines, its entry and its return, from the thread that
made it (other threads' lines can come between):

      python3-4242    [001] .....  8123.504120: sys_accept4(fd: 0x00000003, upeer_sockaddr: ...)
      python3-4242    [001] .....  8123.504398: sys_accept4 -> 0x5
      python3-4250    [000] .....  8123.610002: sys_exit_group(error_code: 0x00000000)
      python3-4242    [000] d..1.  8123.610480: signal_deliver: sig=17 errno=0 code=1 ...

Arguments are raw register values in hex (a pointer is only an address: the kernel's
syscall events do not copy what it points to), so an event says which fd, which call and
what it returned, but not the bytes read nor an accepted peer (strace's -s and sockaddr).
Times are CLOCK_MONOTONIC seconds (the instance's trace_clock is `mono`).
"""

from __future__ import annotations

import errno
import re
import signal
import time

from svcviz.observe.syscalls import EVENT_WAITS, EXITS, FORKS
from svcviz.trace.events import TraceEvent

# `comm-TID [CPU] FLAGS TIME: EVENT...`; a comm may hold dashes and spaces: the tid is the
# `-digits` just before the CPU.
LINE = re.compile(r"-(\d+) +\[\d+\] \S+ +(\d+\.\d+): (\w+)(.*)")
FIELD = re.compile(r"(\w+): (0x[0-9a-f]+|-?\d+)")  # ints in decimal, pointers and longs in hex
FIRST_FIELD = re.compile(r"\(\w+: (0x[0-9a-f]+|-?\d+)")
SIGNAL_NUMBER = re.compile(r"sig=(\d+)")
LOST = re.compile(r"CPU:(\d+) \[LOST (\d+) EVENTS\]")

# The kernel's own codes for a call a signal interrupted (it restarts it): as strace names them.
RESTART = {512: "ERESTARTSYS", 513: "ERESTARTNOINTR", 514: "ERESTARTNOHAND", 516: "ERESTART_RESTARTBLOCK"}
NO_RETURN = EXITS  # the entry is the event
# Calls whose return is all that is shown: the kernel is asked for their return only.
NO_ARGS = FORKS | EVENT_WAITS


def signed(value: int) -> int:
    """A register as the signed long the kernel returned (-EAGAIN is 0xfff...f5)."""
    return value - (1 << 64) if value >= 1 << 63 else value


def result_text(value: int) -> str:
    """strace's way: `5`, or `-1 EAGAIN` for a failed call."""
    number = signed(value)
    if -4096 < number < 0:
        return f"-1 {RESTART.get(-number) or errno.errorcode.get(-number, str(-number))}"
    return str(number)


def as_int(value: int) -> int:
    """A C int argument from its register (only the low 32 bits are the int's)."""
    low = value & 0xFFFFFFFF  # a negative decimal too
    return low - (1 << 32) if low >= 1 << 31 else low


def args_text(syscall: str, entry: str) -> str:
    """The argument that says what the call is about, as a C int: its fd (the first), or
    the pid waited for (-1: any child), or the exit code."""
    if syscall == "waitid":
        fields = dict(FIELD.findall(entry))
        return str(as_int(int(fields["upid"], 0))) if "upid" in fields else ""
    first = FIRST_FIELD.match(entry)
    if first is None:
        return ""
    text = first.group(1)
    return text if text.isdigit() and len(text) < 10 else str(as_int(int(text, 0)))  # mostly a small fd as is


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:  # a real-time signal
        return f"signal {number}"


class KernelTraceParser:
    """Feed trace_pipe lines in order; get a TraceEvent when a call completes."""

    def __init__(self, monotonic_to_epoch: float | None = None) -> None:
        self.entries: dict[int, tuple[str, str, float]] = {}  # tid -> (call, args, began)
        self.offset = time.time() - time.monotonic() if monotonic_to_epoch is None else monotonic_to_epoch

    def blocked_in(self, tid: int, syscall: str, args: str) -> None:
        """tid is in this call as tracing begins (its entry will never be traced): its
        return will be an event, timed from now."""
        if syscall not in NO_ARGS and syscall not in NO_RETURN:
            self.entries[tid] = (syscall, args, time.time())

    def feed(self, line: str) -> TraceEvent | None:
        """One line's event, if it completes one."""
        events = self.feed_text(line)
        return events[0] if events else None

    def feed_text(self, text: str) -> list[TraceEvent]:
        """The events of complete lines, in order."""
        if "[LOST" not in text:
            return self._calls(text)
        events: list[TraceEvent] = []  # rare: the buffer overflowed somewhere in here
        for line in text.split("\n"):
            lost = LOST.match(line)
            if lost is None:
                events += self._calls(line)
                continue
            # The ring buffer was full (a busy server, a slow reader): said, never hidden.
            self.entries.clear()  # the returns of calls whose entries were lost would pair wrongly
            what = f"{lost.group(2)} events lost: the kernel's buffer for CPU {lost.group(1)} was full"
            events.append(TraceEvent(time.time(), 0, what, kind="lost"))
        return events

    def _calls(self, text: str) -> list[TraceEvent]:
        """Many lines at once: one regex pass, the common cases inline (a busy event
        server's trace is ~30,000 lines a second)."""
        events: list[TraceEvent] = []
        entries, offset = self.entries, self.offset
        for tid_text, began, event, rest in LINE.findall(text):
            if not event.startswith("sys_"):
                if (found := self._other(int(tid_text), float(began) + offset, event, rest)) is not None:
                    events.append(found)
                continue
            syscall, tid = event[4:], int(tid_text)
            if rest.startswith(" -> 0x"):
                value = int(rest[6:], 16)
                result = str(value) if value < 1 << 63 else result_text(value)
                if syscall in NO_ARGS:  # only its return is traced (the call began at an unknown time)
                    if result != "0" or syscall not in FORKS:  # 0: the new child's side of a fork
                        events.append(TraceEvent(float(began) + offset, tid, syscall, "", result))
                    continue
                entry = entries.pop(tid, None)
                if entry is not None and entry[0] == syscall:  # else its entry came before tracing began
                    events.append(TraceEvent(entry[2], tid, syscall, entry[1], result))
                continue
            args = args_text(syscall, rest)
            if syscall in NO_RETURN:
                events.append(TraceEvent(float(began) + offset, tid, syscall, args, "?"))
            else:
                entries[tid] = (syscall, args, float(began) + offset)
        return events

    def _other(self, tid: int, began: float, event: str, rest: str) -> TraceEvent | None:
        """A line not of a system call: a signal delivered."""
        if event != "signal_deliver":
            return None
        number = SIGNAL_NUMBER.search(rest)
        return None if number is None else TraceEvent(began, tid, signal_name(int(number.group(1))), kind="signal")
