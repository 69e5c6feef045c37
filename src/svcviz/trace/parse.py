"""strace's output, line by line, into TraceEvents: the one place that knows its format.

The lines are those of `strace -f -ttt -y -o FILE` (each starts with the pid; -yy would
also annotate each socket fd with its endpoints, and is understood, but costs the server
ten times what -y does: benchmarks/trace.py):

    4242 1796159325.505780 accept4(3<TCP:[127.0.0.1:6168]>, {...}, [16], SOCK_CLOEXEC) = 4<TCP:[...->127.0.0.1:50140]>
    4242 1796159327.659410 accept4(3<TCP:[127.0.0.1:6168]>,  <unfinished ...>
    4242 1796159327.946512 <... accept4 resumed>0x7ffda02e9260, [16], SOCK_CLOEXEC) = ? ERESTARTSYS (...)
    4242 1796159327.946585 --- SIGCHLD {si_signo=SIGCHLD, si_code=CLD_EXITED, si_pid=4250, ...} ---
    4250 1796159327.926197 exit_group(0)   = ?
    4250 1796159327.926376 +++ exited with 0 +++

A call another thread interrupted (`<unfinished ...>`) becomes one event when it resumes,
with the time it began. Lines strace says about itself (`strace: ...`), and calls still
unfinished when tracing stopped (`<detached ...>`), give no event.
"""

from __future__ import annotations

import re

from svcviz.observe.syscalls import FORKS
from svcviz.trace.events import TraceEvent

HEAD = re.compile(r"(?:\[pid\s+)?(\d+)\]?\s+(\d+\.\d+)\s+(.*)")
CALL = re.compile(r"([a-z_0-9]+)\((.*)\)\s+=\s+(.*)")
UNFINISHED = re.compile(r"([a-z_0-9]+)\((.*?),?\s*<unfinished \.\.\.>")
RESUMED = re.compile(r"<\.\.\. ([a-z_0-9]+) resumed>(.*)\)\s+=\s+(.*)")
SIGNAL = re.compile(r"--- (SIG[A-Z0-9]+) (?:\{(.*)\} )?---")
EXIT = re.compile(r"\+\+\+ (exited with|killed by) (.*?) \+\+\+")
FD = re.compile(r"(-?\d+)<(.*)>", re.S)  # 5<TCP:[127.0.0.1:6168->127.0.0.1:50140]>
PEER = re.compile(r"(?:TCP|TCPv6|UDP|UDPv6):\[.*->(.*)\]")  # -yy's annotation of a connection
PORT = re.compile(r"sin6?_port=htons\((\d+)\)")  # the sockaddr accept() filled in (-y has no endpoints)
ADDR4 = re.compile(r'sin_addr=inet_addr\("([^"]*)"\)')
ADDR6 = re.compile(r'inet_pton\(AF_INET6, "([^"]*)"')
FIELD = re.compile(r"(\w+)=([^,]+)")

NO_ARGS = FORKS
ALL_ARGS = {"socket", "shutdown", "listen", "bind", "connect"}
DATA = {"read", "recvfrom", "recvmsg", "write", "sendto", "sendmsg"}  # the second argument is the bytes
ACCEPTS = {"accept", "accept4"}
OPENERS = {"(": ")", "[": "]", "{": "}", "<": ">"}


def split_args(text: str) -> list[str]:
    """Top-level comma-separated arguments: commas inside quotes, brackets, braces and
    -yy's `<...>` annotations (which hold `->` and nest: `0</dev/pts/3<char 136:3>>`) stay."""
    args: list[str] = []
    depth: list[str] = []  # the closers awaited, innermost last
    start, quoted, i = 0, False, 0
    while i < len(text):
        c = text[i]
        if quoted:
            if c == "\\":
                i += 1
            elif c == '"':
                quoted = False
        elif c == '"':
            quoted = True
        elif c in OPENERS and (c != "<" or depth or (i and text[i - 1].isdigit())):
            depth.append(OPENERS[c])
        elif depth and c == depth[-1]:
            depth.pop()
        elif c == "," and not depth:
            args.append(text[start:i].strip())
            start = i + 1
        i += 1
    last = text[start:].strip()
    if last or args:
        args.append(last)
    return args


def bare(arg: str) -> tuple[str, str]:
    """`5<TCP:[...]>` -> ("5", "TCP:[...]"); anything else unchanged, with no target."""
    match = FD.fullmatch(arg)
    return (match.group(1), match.group(2)) if match else (arg, "")


def signal_detail(fields: str) -> str:
    """`si_code=CLD_EXITED, si_pid=4250, ...` -> `from 4250 (CLD_EXITED)`."""
    found = dict(FIELD.findall(fields or ""))
    sender = found.get("si_pid")
    code = found.get("si_code", "")
    return f"from {sender} ({code})" if sender else (f"({code})" if code else "")


def peer_of(sockaddr: str) -> str:
    """`{sa_family=AF_INET, sin_port=htons(50140), sin_addr=inet_addr("127.0.0.1")}` -> `127.0.0.1:50140`."""
    port = PORT.search(sockaddr)
    if v4 := ADDR4.search(sockaddr):
        return f"{v4.group(1)}:{port.group(1)}" if port else v4.group(1)
    if v6 := ADDR6.search(sockaddr):
        return f"[{v6.group(1)}]:{port.group(1)}" if port else v6.group(1)
    return ""


def call_event(pid: int, time: float, name: str, arg_text: str, result_text: str) -> TraceEvent:
    args = split_args(arg_text)
    result, result_target = bare(result_text.split(" ", 1)[0])
    rest = result_text.split(" ", 1)[1] if " " in result_text else ""
    if rest.startswith("E"):  # `-1 EAGAIN (Resource temporarily unavailable)`, `? ERESTARTSYS (...)`
        result = f"{result} {rest.split(' ', 1)[0]}"
    shown = [bare(a)[0] for a in args]
    target = bare(args[0])[1] if args else ""
    detail = ""
    if name in ACCEPTS and (peer := PEER.fullmatch(result_target)):
        detail = f"({peer.group(1)})"
    elif name in ACCEPTS and len(args) > 1 and (address := peer_of(args[1])):
        detail = f"({address})"
    elif name in DATA and len(args) > 1 and args[1].startswith('"'):
        detail = args[1]
    if name in NO_ARGS:
        shown = []
    elif name not in ALL_ARGS:
        shown = shown[:1]
    return TraceEvent(time, pid, name, ", ".join(shown), result, detail, "call", target)


class StraceParser:
    """Feed it strace's lines; it returns the events each completes (0 or 1)."""

    def __init__(self) -> None:
        self._unfinished: dict[tuple[int, str], tuple[float, str]] = {}  # (pid, call) -> (began, args so far)

    def feed(self, line: str) -> TraceEvent | None:
        head = HEAD.fullmatch(line.rstrip("\n"))
        if not head:
            return None  # strace's own words ("strace: Process 4242 attached"), or a blank
        pid, time, body = int(head.group(1)), float(head.group(2)), head.group(3).strip()
        if match := RESUMED.fullmatch(body):
            name = match.group(1)
            began, args_before = self._unfinished.pop((pid, name), (time, ""))
            joined = ", ".join(part for part in (args_before, match.group(2).strip().lstrip(",").strip()) if part)
            return call_event(pid, began, name, joined, match.group(3))
        if match := UNFINISHED.fullmatch(body):
            self._unfinished[(pid, match.group(1))] = (time, match.group(2))
            return None
        if match := CALL.fullmatch(body):
            return call_event(pid, time, match.group(1), match.group(2), match.group(3).strip())
        if match := SIGNAL.fullmatch(body):
            return TraceEvent(time, pid, match.group(1), detail=signal_detail(match.group(2)), kind="signal")
        if match := EXIT.fullmatch(body):
            return TraceEvent(time, pid, match.group(1), result=match.group(2), kind="exit")
        return None  # `<... read resumed> <detached ...>` and anything strace adds later
