"""One traced system call (or signal, or exit) as svcviz shows it.

    4242 accept4(3) = 5 (127.0.0.1:50140)
    4242 clone() = 4250
    4250 recvfrom(5) = 8 "discard\\n"
    4250 exit_group(0)
    4242 --- SIGCHLD from 4250
    4242 wait4(-1) = 4250

What a client sent arrives here as strace printed it (C escapes inside quotes), and every
text field passes through `printable` as well: no byte a client or a server chose ever
reaches a terminal as a control.
"""

from __future__ import annotations

from typing import NamedTuple

from svcviz.plain import plain as printable  # the one rule for text from outside

# Calls whose result is their whole point (`close(5)` says it all; `= 0` is noise).
QUIET_RESULTS = {"close": "0", "shutdown": "0", "listen": "0", "bind": "0"}


class TraceEvent(NamedTuple):  # a tuple, not a frozen dataclass: a busy server's trace makes thousands a second
    time: float  # seconds since the epoch, when the call began (strace -ttt)
    pid: int  # the thread that made it (a process's first thread has its pid)
    syscall: str  # "accept4"; a signal's name ("SIGCHLD"); "exited with" / "killed by" for the end
    args: str = ""  # the arguments that say what it is about: fds as bare numbers
    result: str = ""  # "5", "-1 EAGAIN", "?" (never returns), "" for signals and exits
    detail: str = ""  # the peer of an accepted connection, the bytes read or written, ...
    kind: str = "call"  # "call" | "signal" | "exit" | "lost" (events the kernel's buffer had no room for)
    fd_target: str = ""  # what the call's fd is, from -yy: "TCP:[...]", "pipe:[42]", "/etc/services"

    def line(self) -> str:
        if self.kind == "lost":  # kernel tracing only: no pid, the calls are simply missing
            text = f"--- {self.syscall} ---"
        elif self.kind == "signal":
            text = f"{self.pid} --- {self.syscall}"
        elif self.kind == "exit":
            text = f"{self.pid} +++ {self.syscall} {self.result} +++"
        else:
            text = f"{self.pid} {self.syscall}({self.args})"
            if self.result not in ("", "?", QUIET_RESULTS.get(self.syscall)):
                text += f" = {self.result}"
        if self.detail:
            text += f" {self.detail}"
        return printable(text)

    def as_json(self) -> dict[str, object]:
        return {
            "time": round(self.time, 6),
            "pid": self.pid,
            "syscall": printable(self.syscall),
            "args": printable(self.args),
            "result": printable(self.result),
            "detail": printable(self.detail),
            "kind": self.kind,
        }

    @property
    def on_a_file(self) -> bool:
        """A read or close of a regular file (the server loading /etc/services): not the
        process-and-socket story the trace tells."""
        return self.fd_target.startswith("/") and not self.fd_target.startswith("/dev/")
