"""strace, started and stopped: attached to a running server's tree (-p), or launching a
server itself (--seccomp-bpf: the kernel stops the server only at the traced calls, so
the rest run at full speed; strace can do that only for a process it starts).

    tracer = Tracer.attach([4242, 4250])   # or Tracer.launch(["svcviz", "serve", "fork"])
    await tracer.start()
    async for event in tracer.events():    # TraceEvents, until stop() or the tree exits
        ...
    await tracer.stop()                    # detaches: nothing of strace stays attached

strace writes to a FIFO of its own (-o): never to the server's stdout or stderr, and no
descriptor of ours leaks into the server it launches (strace opens -o close-on-exec).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO

from svcviz import procstat
from svcviz.servers.limits import die_with_parent
from svcviz.trace.events import TraceEvent
from svcviz.trace.parse import StraceParser

# The lecture's calls: processes (clone, wait, exit), sockets (accept, read, write,
# close), and the waits of the event model. Everything else runs untraced.
TRACED = (
    "socket,bind,listen,accept,accept4,connect,shutdown,close,"
    "read,recvfrom,recvmsg,write,sendto,sendmsg,"
    "clone,clone3,fork,vfork,wait4,waitid,exit,exit_group,"
    "epoll_wait,epoll_pwait,select,pselect6,poll,ppoll"
)
STRING_BYTES = 64  # -s: how much of what was read or written to show
ATTACH_TIMEOUT = 5.0
STOP_TIMEOUT = 5.0
CAP_SYS_PTRACE = 19
INSTALL_HINT = "strace is not installed: apt install strace (or your system's package of it)"


class TraceError(Exception):
    """Tracing cannot start: the message says why, in one line."""


def strace_binary() -> str:
    found = shutil.which("strace")
    if not found:
        raise TraceError(INSTALL_HINT)
    return found


def _status_field(pid: int, name: str) -> str | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{name}:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None


def tracer_of(pid: int) -> int | None:
    """The kernel's word on who traces pid (TracerPid; 0: nobody), None if it is gone."""
    value = _status_field(pid, "TracerPid")
    return None if value is None else int(value)


def why_ptrace_is_refused(pid: int) -> str:
    """What stops this process from tracing pid, as far as it can tell."""
    scope_file = Path("/proc/sys/kernel/yama/ptrace_scope")
    scope = scope_file.read_text().strip() if scope_file.exists() else None
    caps = int(_status_field(os.getpid(), "CapEff") or "0", 16)
    has_cap = bool(caps & (1 << CAP_SYS_PTRACE))
    target_uid = (_status_field(pid, "Uid") or "").split()[:1]
    if scope == "3":
        return "ptrace is disabled on this machine (Yama kernel.yama.ptrace_scope=3, until reboot)"
    if not has_cap and os.geteuid() == 0:
        return (
            "ptrace is not allowed: this container lacks CAP_SYS_PTRACE "
            "(docker run --cap-add SYS_PTRACE, or run svcviz outside the container)"
        )
    if not has_cap and target_uid and int(target_uid[0]) != os.geteuid():
        return f"ptrace is not allowed: pid {pid} belongs to uid {target_uid[0]} and you are not root (try sudo)"
    if not has_cap and scope in ("1", "2"):
        return (
            f"ptrace is not allowed: Yama kernel.yama.ptrace_scope={scope} lets only "
            f"{'a parent' if scope == '1' else 'root'} trace a process "
            "(sudo, or sysctl kernel.yama.ptrace_scope=0)"
        )
    return "ptrace is not allowed here (Operation not permitted): not root, Yama, or a seccomp/LSM policy"


class Tracer:
    def __init__(
        self,
        *,
        pids: list[int] | None = None,
        argv: list[str] | None = None,
        seccomp: bool = False,
        endpoints: bool = False,
    ) -> None:
        self.pids = pids or []
        self.argv = argv or []
        self.seccomp = seccomp
        # -yy: every socket fd annotated with its endpoints (a sock_diag query per fd
        # printed: ~10x the cost of -y, which names fds by path or socket:[inode]). The
        # peer of an accept comes from its sockaddr argument either way.
        self.endpoints = endpoints
        self.proc: asyncio.subprocess.Process | None = None
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self._reader_fd: int | None = None
        self._keeper_fd: int | None = None  # our own writer, so the FIFO shows no EOF before strace opens it

    @classmethod
    def attach(cls, pids: list[int]) -> Tracer:
        return cls(pids=pids)

    @classmethod
    def launch(cls, argv: list[str], seccomp: bool = True, endpoints: bool = False) -> Tracer:
        return cls(argv=argv, seccomp=seccomp, endpoints=endpoints)

    def command(self, output: str) -> list[str]:
        cmd = [
            strace_binary(),
            "-f",
            "-q",
            "-ttt",
            "-yy" if self.endpoints else "-y",
            "-s",
            str(STRING_BYTES),
            "-e",
            f"trace={TRACED}",
        ]
        cmd += ["-o", output]
        if self.argv:
            return cmd + (["--seccomp-bpf"] if self.seccomp else []) + ["--", *self.argv]
        for pid in self.pids:
            cmd += ["-p", str(pid)]
        return cmd

    async def start(self, stdout: int | IO[bytes] | None = None, stderr: int | IO[bytes] | None = None) -> None:
        """Start strace; for attach, return once the kernel says the root is traced.
        stdout/stderr: for a launched server (it inherits strace's); attaching, strace's
        stderr is a pipe by default, read for its reason when it fails."""
        if not self.pids and not self.argv:
            raise TraceError("nothing to trace")
        self._dir = tempfile.TemporaryDirectory(prefix="svcviz-trace-")
        fifo = os.path.join(self._dir.name, "strace")
        os.mkfifo(fifo, 0o600)
        self._reader_fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        self._keeper_fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        if stderr is None and self.pids:
            stderr = asyncio.subprocess.PIPE
        self.proc = await asyncio.create_subprocess_exec(
            *self.command(fifo),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            preexec_fn=die_with_parent,  # SIGTERM when svcviz dies: strace detaches every tracee
        )
        if self.pids:
            await self._attached(self.pids[0])

    async def _attached(self, root: int) -> None:
        proc = self.proc
        assert proc is not None  # start() made it
        deadline = asyncio.get_running_loop().time() + ATTACH_TIMEOUT
        while tracer_of(root) != proc.pid:
            if proc.returncode is not None or tracer_of(root) is None:
                said = (await proc.stderr.read()).decode(errors="replace") if proc.stderr else ""
                await self.stop()
                if "Operation not permitted" in said:
                    raise TraceError(f"cannot trace pid {root}: {why_ptrace_is_refused(root)}")
                if tracer_of(root) is None:
                    raise TraceError(f"no process {root}")
                first = said.strip().splitlines()[:1]
                raise TraceError(f"strace failed: {first[0] if first else 'no reason given'}")
            if asyncio.get_running_loop().time() > deadline:
                await self.stop()
                raise TraceError(f"strace did not attach to pid {root} within {ATTACH_TIMEOUT:g} s")
            await asyncio.sleep(0.02)

    @property
    def server_pid(self) -> int | None:
        """A launched server's pid: strace's child."""
        if not self.argv or self.proc is None:
            return None
        children = procstat.children(self.proc.pid)
        return children[0] if children else None

    async def events(self, files: bool = False) -> AsyncIterator[TraceEvent]:
        """Each call as strace completes it, until strace ends. files: also the reads and
        closes of regular files (the server's /etc/services), dropped by default."""
        assert self._reader_fd is not None, "events() is read once, after start()"
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=1 << 20)
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(self._reader_fd, "rb", buffering=0)
        )
        self._reader_fd = None  # the transport owns it now
        ended = asyncio.ensure_future(self._close_keeper_when_strace_ends())
        parser = StraceParser()
        try:
            while line := await reader.readline():
                event = parser.feed(line.decode(errors="replace"))
                if event is not None and (files or not event.on_a_file):
                    yield event
        finally:
            ended.cancel()
            transport.close()

    async def _close_keeper_when_strace_ends(self) -> None:
        assert self.proc is not None  # start() made it
        await self.proc.wait()
        self._close_keeper()

    def _close_keeper(self) -> None:
        if self._keeper_fd is not None:
            os.close(self._keeper_fd)
            self._keeper_fd = None

    async def stop(self) -> None:
        """Detach and end strace (SIGTERM: strace detaches every tracee and exits; if it
        hangs, SIGKILL: the kernel then detaches them itself)."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), STOP_TIMEOUT)
            except asyncio.TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        self._close_keeper()
        if self._reader_fd is not None:
            os.close(self._reader_fd)
            self._reader_fd = None
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None
