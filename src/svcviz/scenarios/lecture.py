"""The lecture's experiments, in its order, each as a scenario that checks what it claims.

Each one is what the lecture did at a terminal (start a server, telnet to it, type
`discard`, quit, run the blaster) and what it said about the result, judged from the
kernel's view of the server and from what the clients received.
"""

from __future__ import annotations

import asyncio
import errno
import resource
import socket
import time
from collections.abc import Callable
from typing import Any

from svcviz.lab import LabUpdate
from svcviz.scenarios.base import Run, Scenario
from svcviz.scenarios.probes import (
    ANSWER,
    REQUEST,
    accepted_by_distinct,
    accepted_by_server,
    all_hold_the_listening_socket,
    all_of,
    answered,
    client_state,
    conn_state,
    connected,
    fd_table_full,
    listening,
    newest_connection_forked,
    no_eof,
    no_process_but,
    open_file_limit,
    plural,
    processes,
    queue,
    queue_at_least,
    server_alive,
    server_exited,
    server_holds,
    threaded_or_closed,
    threads,
    unanswered,
    zombies,
)
from svcviz.servers.config import ServerConfig


async def arrive(run: Run, count: int, asking: bool = True) -> list[int]:
    """Telnets started one after another (each connected before the next), each asking once."""
    arrived = []
    for _ in range(count):
        [new] = await run.add()
        if asking:
            await run.lab.send_line(new, REQUEST)
        await run.until(f"telnet #{new} connects", "connected", connected(new))
        arrived.append(new)
    return arrived


async def ask(run: Run, *client_ids: int) -> None:
    for client_id in client_ids:
        await run.lab.send_line(client_id, REQUEST)


def most(updates: list[LabUpdate], measure: Callable[[LabUpdate], int]) -> int:
    return max(measure(u) for u in updates)


def accepted_count(update: LabUpdate) -> int:
    return sum(1 for c in update.snapshot.connections if c.state == "accepted")


# -- serviceserver00: listen only -------------------------------------------------------


def recv_on_a_listening_socket() -> str:
    """What recv() on a listening socket gives: the call serviceserver00 makes."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        try:
            listener.recv(1024)
        except OSError as exc:
            return f"{errno.errorcode.get(exc.errno or 0, exc.errno)} ({exc.strerror})"
    return "recv() returned data"


async def listen_only(run: Run) -> None:
    seen = recv_on_a_listening_socket()
    run.record(
        "reading from a listening socket fails: it is not a connection", "ENOTCONN", seen, seen.startswith("ENOTCONN")
    )
    fits = run.lab.config.backlog + 1
    waiting = await run.add(fits)
    await ask(run, *waiting)
    await run.until(
        "clients still connect: the kernel completes the handshake and queues them",
        f"{fits} connected, queued (accept queue {fits} = backlog + 1)",
        all_of(connected(*waiting), conn_state("queued", *waiting), queue(fits)),
    )
    [late] = await run.add()
    await run.until(
        "with the queue full, the kernel drops the next SYN: that client waits in SYN_SENT",
        f"#{late} syn_sent",
        conn_state("syn_sent", late),
    )
    await run.throughout("nobody is ever answered", "no client receives a byte", unanswered(*waiting, late))


# -- serviceserver01: accept once -------------------------------------------------------


async def accept_once(run: Run) -> None:
    [first] = await arrive(run, 1)
    await run.until(
        "the first client is accepted and answered",
        f"#{first} answered {ANSWER!r}, accepted by the server",
        all_of(answered(first), accepted_by_server(first)),
    )
    await run.until(
        "the server closed its listening socket after that one accept", "no listening socket", listening(False)
    )
    [second] = await run.add()
    await run.until("so the next client is refused", f"#{second} refused", client_state("refused", second))
    await run.lab.close_client(first)
    await run.until("with its one client gone, the server exits", "server exited", server_exited())


# -- serviceserver02: a listening socket per connection ---------------------------------


async def relisten(run: Run) -> None:
    before = (await run.until("the server listens", "a listening socket", listening()))[-1].snapshot.listen[0].inode
    [first] = await arrive(run, 1)
    await run.until(
        "the first client is accepted and answered",
        f"#{first} answered",
        all_of(answered(first), accepted_by_server(first)),
    )
    await run.until(
        "while it serves, nobody listens: it closed the listening socket", "no listening socket", listening(False)
    )
    [second] = await run.add()
    await run.until("a client arriving meanwhile is refused", f"#{second} refused", client_state("refused", second))
    await run.lab.close_client(first)
    after = (
        (await run.until("once the first client quits, the server listens again", "a listening socket", listening()))[
            -1
        ]
        .snapshot.listen[0]
        .inode
    )
    run.record(
        "on a new socket: at least one listening socket per connection",
        f"an inode other than {before}",
        f"inode {after}",
        after != before,
    )
    [third] = await arrive(run, 1)
    await run.until("and the next client is served", f"#{third} answered", answered(third))


# -- serviceserver03: one at a time -----------------------------------------------------


async def serial(run: Run) -> None:
    first, second, third = await arrive(run, 3)
    await run.until(
        "the first client is accepted and answered",
        f"#{first} answered, its connection accepted",
        all_of(answered(first), conn_state("accepted", first)),
    )
    await run.until(
        "the other two wait in the kernel's accept queue",
        "accept queue 2; both queued",
        all_of(queue(2), conn_state("queued", second, third)),
    )
    await run.throughout(
        "what they typed waits in the kernel while the first client stays",
        f"#{second} and #{third} receive nothing",
        unanswered(second, third),
    )
    await run.lab.close_client(first)
    await run.until(
        "when the first quits, the second is accepted and answered",
        f"#{second} answered; accept queue 1",
        all_of(answered(second), queue(1)),
    )
    await run.throughout(
        "the third still waits its turn",
        f"#{third} receives nothing; accept queue 1",
        all_of(unanswered(third), queue(1)),
    )
    await run.lab.close_client(second)
    await run.until(
        "then the third: served in arrival order",
        f"#{third} answered; accept queue 0",
        all_of(answered(third), queue(0)),
    )
    await run.until("all of it in one process", "1 process", processes(1))


async def serial_blaster(run: Run) -> None:
    count = 12 if run.quick else 30
    delay = run.lab.config.delay
    began = time.time()
    crowd = await run.add(count, "scripted", queries=1)  # the serviceblaster: connect, ask once, quit
    seen = await run.until(
        f"all {count} blasted clients are served eventually",
        f"{count} answered",
        answered(*crowd),
        timeout=count * delay * 4 + run.timing.timeout,
    )
    took = seen[-1].snapshot.time - began
    at_once = most(seen, accepted_count)
    run.record(
        "but one at a time: no sample shows two connections accepted",
        "at most 1 accepted",
        f"at most {at_once} accepted",
        at_once <= 1,
    )
    queued = most(seen, lambda u: u.snapshot.queue_length)
    run.record("the others wait their turn in the accept queue", "a queue", f"up to {queued} queued", queued > 0)
    run.record(
        "so the requests take the sum of their times: utilization is one request",
        f">= {count} x {delay:g} s = {count * delay:.2f} s",
        f"{took:.2f} s",
        took >= count * delay,
    )


# -- fork -------------------------------------------------------------------------------


async def fork(run: Run) -> None:
    first, second = await arrive(run, 2)
    await run.until(
        "two telnets are served in parallel",
        f"#{first} and #{second} answered, both still open",
        all_of(answered(first, second), connected(first, second)),
    )
    await run.until("three processes for two telnets: the server and a child per client", "3 processes", processes(3))
    await run.until(
        "each connection is held by its own child", "2 different child pids", accepted_by_distinct(first, second)
    )
    await run.until(
        "and every process holds the one listening socket (fork copies the fd table)",
        "3 of 3 processes",
        all_hold_the_listening_socket(),
    )


async def two_finished_children(run: Run) -> None:
    clients = await arrive(run, 2, asking=False)
    await run.until("each client gets a child process", "3 processes", processes(3))
    for client_id in clients:
        await run.lab.close_client(client_id)


async def fork_zombies(run: Run) -> None:
    await two_finished_children(run)
    await run.until("a child that exits becomes a zombie", "2 zombies", zombies(2))
    await run.throughout("and stays one while its parent does not wait for it", "2 zombies", zombies(2))
    await run.lab.reap_now()
    await run.until(
        "waitpid() reaps them (the server's SIGUSR2 runs its waitpid loop)",
        "0 zombies; 1 process",
        all_of(zombies(0), processes(1)),
    )


async def fork_sigchld_ignore(run: Run) -> None:
    await two_finished_children(run)
    await run.until("under the default SIGCHLD handling, finished children are zombies", "2 zombies", zombies(2))
    mode = await run.lab.cycle_sigchld()
    run.record("the server now ignores SIGCHLD (SIGUSR1: signal(SIGCHLD, SIG_IGN))", "ignore", mode, mode == "ignore")
    await run.throughout("the zombies that exist stay: SIG_IGN reaps no one", "2 zombies", zombies(2))
    later = await arrive(run, 2, asking=False)
    await run.until(
        "two more clients get a child each", "5 processes (2 of them zombies)", all_of(processes(5), zombies(2))
    )
    for client_id in later:
        await run.lab.close_client(client_id)
    seen = await run.until(
        "later children leave no zombie: they are gone when they exit",
        "3 processes: the server and the 2 old zombies",
        all_of(processes(3), zombies(2)),
    )
    extra = most(seen, lambda u: len(u.snapshot.zombies))
    run.record("no sample showed a new zombie", "at most 2 zombies", f"at most {extra}", extra <= 2)
    await run.lab.reap_now()
    await run.until(
        "the old zombies go when waitpid() reaps them", "0 zombies; 1 process", all_of(zombies(0), processes(1))
    )


async def fork_sigchld_reap(run: Run) -> None:
    await two_finished_children(run)
    await run.until(
        "a SIGCHLD handler that calls waitpid() reaps each child as it exits",
        "1 process; 0 zombies",
        all_of(processes(1), zombies(0)),
    )
    await run.throughout("no zombie stays behind", "0 zombies", zombies(0))


async def fork_leak_fd(run: Run) -> None:
    [half] = await run.add(1, "half-close")  # asks, then shuts its sending side: it waits for EOF
    await run.until(
        "a client that half-closes is answered, and its child exits",
        f"#{half} answered; 1 process",
        all_of(answered(half), processes(1)),
    )
    await run.until(
        "but the parent still holds that connection: it never closed its copy",
        f"the server holds #{half}'s connection",
        server_holds(half),
    )
    await run.throughout(
        "so the client never sees EOF: the last descriptor never closes", f"#{half} open, no EOF", no_eof(half)
    )
    limit = open_file_limit(run.server_pid)
    await run.add(limit)  # more than the table has room for
    full = (
        await run.until(
            "every connection stays in the parent's fd table until it is full (RLIMIT_NOFILE)",
            f"{limit} of {limit} fds open; the last one handed to a child",
            all_of(fd_table_full(limit), newest_connection_forked()),
        )
    )[-1]
    forked = {p.pid for p in full.snapshot.processes}
    await run.throughout(
        "then accept() fails (EMFILE): later clients wait in the queue, no child is forked",
        f"accept queue > 0; no pid but the {len(forked)} processes of the full table",
        all_of(queue_at_least(1), no_process_but(forked)),
    )


async def fork_blaster(run: Run) -> None:
    cap = run.lab.config.cap_procs
    first = await run.add(cap // 2)
    await run.until(
        "the process count follows the clients",
        f"{cap // 2 + 1} processes for {len(first)} clients",
        processes(cap // 2 + 1),
    )
    more = await run.add(cap)
    total = len(first) + len(more)
    await run.until(
        f"{total} clients: it would fork {total} children; svcviz's cap stops it",
        f"{cap} processes (--cap-procs {cap})",
        processes(cap),
    )
    await run.throughout(
        "never past the cap; the rest wait in the accept queue",
        f"{cap} processes; accept queue {total - (cap - 1)}",
        all_of(processes(cap), queue(total - (cap - 1))),
    )
    began = time.monotonic()
    shell = await asyncio.create_subprocess_exec("sh", "-c", "exit 0")
    code = await shell.wait()
    took = time.monotonic() - began
    run.record(
        "a shell still starts (always be able to start one)",
        "exit 0 within 1 s",
        f"exit {code} in {took * 1000:.0f} ms",
        code == 0 and took < 1.0,
    )


# -- threads ----------------------------------------------------------------------------


async def thread(run: Run) -> None:
    clients = await arrive(run, 3)
    await run.until(
        "one process, one thread per client (and the main one)",
        "1 process, 4 threads; all answered",
        all_of(processes(1), threads(4), answered(*clients)),
    )
    await run.until(
        "each connection is served by its own thread",
        "3 different threads",
        accepted_by_distinct(*clients, among="threads"),
    )
    for client_id in clients:
        await run.lab.close_client(client_id)
    await run.until("a thread ends with its client", "1 thread", threads(1))


def stack_mb() -> int:
    """A new thread's stack: RLIMIT_STACK (glibc's default), or 2 MB when unlimited."""
    soft, _ = resource.getrlimit(resource.RLIMIT_STACK)
    return 2 if soft == resource.RLIM_INFINITY else max(1, soft // (1024 * 1024))


async def thread_memory(run: Run) -> None:
    budget = run.lab.config.max_memory
    assert budget is not None  # the scenario's config sets it
    count = budget // stack_mb() + 4  # more stacks than the address space can hold
    crowd = await run.add(count)
    seen = await run.until(
        f"{count} clients arrive: each is given a thread or turned away",
        f"client threads + closed clients = {count}",
        threaded_or_closed(crowd),
    )
    last = seen[-1]
    made = last.snapshot.thread_total - 1
    run.record(
        "thread creation fails when memory runs out (--max-memory)",
        f"fewer than {count} client threads",
        f"{made} client threads for {count} clients",
        made < count,
    )
    closed = [c.id for c in last.clients if c.id in crowd and c.state == "closed"]
    run.record(
        "the clients it has no thread for are turned away: the server closes them",
        "at least 1 closed",
        f"{len(closed)} closed",
        bool(closed),
    )
    kept = next(c.id for c in last.clients if c.id in crowd and c.state == "idle")
    await ask(run, kept)
    await run.until(
        "the server lives on and serves the clients it has",
        f"#{kept} answered; the server alive",
        all_of(answered(kept), server_alive()),
    )


# -- pools and the event loop -----------------------------------------------------------


async def prefork(run: Run) -> None:
    workers = run.lab.config.workers
    await run.until(
        "a fixed pool is forked before any client: the parent and its workers",
        f"{workers + 1} processes",
        processes(workers + 1),
    )
    await run.until(
        "all of them share the one listening socket",
        f"{workers + 1} of {workers + 1} processes",
        all_hold_the_listening_socket(),
    )
    pool = await arrive(run, workers)
    await run.until(
        f"{workers} clients are served at once, each by a worker",
        f"{workers} different workers",
        all_of(answered(*pool), accepted_by_distinct(*pool)),
    )
    [extra] = await arrive(run, 1)
    await run.throughout(
        "client N+1 waits in the accept queue; no process is forked for it",
        f"#{extra} receives nothing; accept queue 1; {workers + 1} processes",
        all_of(unanswered(extra), queue(1), processes(workers + 1)),
    )
    await run.lab.close_client(pool[0])
    await run.until(
        "when a worker is free, it takes the waiting client",
        f"#{extra} answered; accept queue 0",
        all_of(answered(extra), queue(0)),
    )


async def threadpool(run: Run) -> None:
    workers = run.lab.config.workers
    await run.until(
        "a fixed pool of threads is started before any client",
        f"1 process, {workers + 1} threads",
        all_of(processes(1), threads(workers + 1)),
    )
    pool = await arrive(run, workers)
    await run.until(
        f"{workers} clients are served at once, each by a thread",
        f"{workers} different threads",
        all_of(answered(*pool), accepted_by_distinct(*pool, among="threads")),
    )
    [extra] = await arrive(run, 1)
    await run.throughout(
        "client N+1 waits in the accept queue; no thread is started for it",
        f"#{extra} receives nothing; accept queue 1; {workers + 1} threads",
        all_of(unanswered(extra), queue(1), threads(workers + 1)),
    )
    await run.lab.close_client(pool[0])
    await run.until(
        "when a thread is free, it takes the waiting client",
        f"#{extra} answered; accept queue 0",
        all_of(answered(extra), queue(0)),
    )


async def event(run: Run) -> None:
    count = 10 if run.quick else 30
    delay = run.lab.config.delay
    began = time.time()
    crowd = await run.add(count)
    await ask(run, *crowd)
    seen = await run.until(
        f"{count} clients, each asking for {delay:g} s of work, are all answered", f"{count} answered", answered(*crowd)
    )
    took = seen[-1].snapshot.time - began
    run.record(
        "at once: together in about one request's time, not one after another",
        f"well under {count} x {delay:g} s = {count * delay:.1f} s",
        f"{took:.2f} s",
        took < count * delay / 3,
    )
    await run.until(
        "the server holds every connection itself", f"{count} accepted by the server", accepted_by_server(*crowd)
    )
    procs, thread_count = most(seen, lambda u: len(u.snapshot.processes)), most(seen, lambda u: u.snapshot.thread_total)
    run.record(
        "all in one process with one thread (in every sample)",
        "1 process, 1 thread",
        f"at most {plural(procs, 'process')}, {plural(thread_count, 'thread')}",
        procs == 1 and thread_count == 1,
    )


def config(model: str, **options: Any) -> ServerConfig:  # Any: ServerConfig fields, each its own type
    return ServerConfig(model=model, port=0, **options)


SCENARIOS = (
    Scenario(
        "listen-only",
        "reading a listening socket fails; clients queue, nobody is served",
        "serviceserver00",
        config("listen-only", backlog=2),
        listen_only,
    ),
    Scenario(
        "accept-once",
        "one client is served; the listening socket is closed, the next is refused",
        "serviceserver01",
        config("accept-once"),
        accept_once,
    ),
    Scenario(
        "relisten",
        "a client arriving while another is served is refused",
        "serviceserver02",
        config("relisten"),
        relisten,
    ),
    Scenario(
        "serial",
        "concurrent clients wait in the accept queue and are served in arrival order",
        "serviceserver03",
        config("serial"),
        serial,
    ),
    Scenario(
        "serial-blaster",
        "under the blaster everyone is served eventually, one at a time",
        "serviceserver03 + serviceblaster",
        config("serial", delay=0.05, backlog=64),
        serial_blaster,
    ),
    Scenario(
        "fork",
        "parallel clients each get a process: three processes for two telnets",
        "forked serviceserver03",
        config("fork"),
        fork,
    ),
    Scenario(
        "fork-zombies",
        "finished children stay zombies until waitpid() reaps them",
        "forked serviceserver03",
        config("fork", sigchld="default"),
        fork_zombies,
    ),
    Scenario(
        "fork-sigchld-ignore",
        "with SIGCHLD ignored no new zombies; existing ones stay until reaped",
        "signal(SIGCHLD, SIG_IGN)",
        config("fork", sigchld="default"),
        fork_sigchld_ignore,
    ),
    Scenario(
        "fork-sigchld-reap",
        "a SIGCHLD handler that calls waitpid() leaves no zombies",
        "wait system call",
        config("fork", sigchld="reap"),
        fork_sigchld_reap,
    ),
    Scenario(
        "fork-leak-fd",
        "a parent that keeps each connection: no EOF for the client, then EMFILE",
        "serviceblaster: capped at 1020",
        config("fork", close_fd=False, max_fds=12, sigchld="reap"),
        fork_leak_fd,
    ),
    Scenario(
        "fork-blaster",
        "without limits the internet sets the process count, up to the cap",
        "serviceblaster + fork",
        config("fork", sigchld="reap", cap_procs=12, backlog=64),
        fork_blaster,
    ),
    Scenario("thread", "one process, a thread per client", "serviceserver07", config("thread"), thread),
    Scenario(
        "thread-memory",
        "thread creation fails when memory runs out; the server lives on",
        "serviceserver07 at 482 connections",
        config("thread", max_memory=64, backlog=64),
        thread_memory,
    ),
    Scenario(
        "prefork",
        "a fixed pool shares one listening socket; client N+1 waits",
        "prefork, n=20",
        config("prefork", workers=3),
        prefork,
    ),
    Scenario(
        "threadpool",
        "a fixed pool of threads; client N+1 waits",
        "prefork with threads",
        config("threadpool", workers=3),
        threadpool,
    ),
    Scenario(
        "event",
        "one process, one thread, many clients served at once",
        "event-driven server",
        config("event", delay=0.2, backlog=64),
        event,
    ),
)

BY_NAME = {scenario.name: scenario for scenario in SCENARIOS}
