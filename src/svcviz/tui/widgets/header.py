"""The top lines: which server, where, its pid and status, and the live settings."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.reactive import reactive, var
from textual.widget import Widget

from svcviz.lab.lab import STILL_RATE
from svcviz.plain import plain
from svcviz.servers.ready import address_text
from svcviz.servers.registry import model_of
from svcviz.tui.widgets.text import one_per_row

if TYPE_CHECKING:
    from typing import Unpack

    from svcviz.lab import LabUpdate
    from svcviz.servers.config import ServerConfig
    from svcviz.tui.widgets.text import WidgetOptions


class LabHeader(Widget):
    DEFAULT_CSS = """
    LabHeader {
        height: 2;
        background: $panel;
    }
    """

    latest: var[LabUpdate | None] = var(None)
    paused = reactive(False)
    moment = reactive("")  # the past or a replay's position, said where "live" would be
    config: reactive[ServerConfig | None] = reactive(None)
    server_pid: reactive[int | None] = reactive(None)
    status = reactive("")
    backlogs: reactive[tuple[int, ...]] = reactive(())  # as the kernel has them: what a watched server's header shows
    program: reactive[tuple[str, str] | None] = reactive(None)  # a watched server's (name, cmdline), as it set them
    still = reactive(False)  # the lab samples slowly: nothing moved for a while
    # "netns 4026532290 (web1)": a container's server, where its sockets live
    netns: reactive[str | None] = reactive(None)
    notes: reactive[tuple[str, ...]] = reactive(())  # what cannot be seen from here, and what would show it
    client_protocol = reactive("line")  # what the clients speak, and why

    def __init__(self, *, watching: bool, replay: bool = False, **kwargs: Unpack[WidgetOptions]) -> None:
        super().__init__(**kwargs)
        self.watching = watching and not replay  # a replay shows the recorded settings
        self.replay = replay

    def watch_latest(self, update: LabUpdate | None) -> None:
        if update is not None:
            self.config, self.server_pid, self.status = update.config, update.server_pid, update.status
            self.still = update.still
            self.backlogs = tuple(sock.backlog for sock in update.snapshot.listen)
            root = update.snapshot.process(update.snapshot.root_pid) if self.watching else None
            self.program = None if root is None else (root.name, root.cmdline or root.title)
            self.client_protocol = update.client_protocol
            self.netns, self.notes = update.snapshot.netns_title, update.snapshot.notes

    def watch_notes(self, notes: tuple[str, ...]) -> None:
        height = 2 + min(len(notes), 2)  # a line each for what cannot be seen from here
        if self.styles.height is None or self.styles.height.value != height:  # a new height lays out the screen
            self.styles.height = height

    def render(self) -> Text:
        config = self.config
        if config is None:
            return Text(" svcviz  starting the lab…", style="bold")
        top = Text(" svcviz ", style="bold reverse")
        top.append(f" {config.model} ", style="bold")
        top.append(f" {address_text(config.host, config.port)} ")
        if self.netns:
            top.append(f" {plain(self.netns)} ", style="bold cyan")
        top.append(f" pid {self.server_pid if self.server_pid is not None else '-'} ")
        top.append(f" {self.status} ", style="green" if self.status in ("running", "watching") else "bold red")
        if self.moment:
            top.append(f" {self.moment} ", style="bold yellow reverse")
        else:
            top.append(" paused " if self.paused else " live ", style="bold yellow reverse" if self.paused else "dim")
        if self.still and not self.paused:
            top.append(f"{STILL_RATE:g} samples/s: nothing moved ", style="dim")
        if self.replay:
            top.append(" keys that steer a server are off ", style="dim")
        if self.watching:
            top.append(" watch mode: model keys off ", style="dim")
            # On the top line: the program's command line below may be long.
            top.append(" clients speak: ", style="bold")
            top.append(self.client_protocol)
            backlogs = ", ".join(str(backlog) for backlog in self.backlogs) or "-"
            second = Text(f" backlog: {backlogs} (from the kernel; the rest is its own)", style="dim")
            if self.program is not None:
                # Which program this is: its own name and command line, shown as plain text.
                name, cmdline = self.program
                second.append(f"   {plain(name)}: ", style="bold")
                second.append(plain(cmdline or "-"))
            notes = [Text(f" {plain(note)}", style="bold yellow") for note in self.notes]
            return one_per_row([top, second, *notes])
        model = model_of(config.model)
        settings = Text(" ")
        if model is not None and model.forks:  # SIGCHLD and the parent's fd matter only where it forks
            settings.append(f"SIGCHLD: {config.sigchld}", style="bold")
            settings.append("   ")
            settings.append(
                f"close fd in parent: {'yes' if config.close_fd else 'no'}",
                style="bold" if config.close_fd else "bold red",
            )
            settings.append("   ")
        settings.append(f"backlog: {config.backlog}   delay: {config.delay:g}s")
        if config.max_fds is not None:
            settings.append(f"   max fds: {config.max_fds}")
        if config.max_memory is not None:
            settings.append(f"   max memory: {config.max_memory} MB")
        if model is not None and model.has_pool:
            settings.append(f"   workers: {config.workers}")
        return one_per_row([top, settings])
