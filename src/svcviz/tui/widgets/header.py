"""The top lines: which server, where, its pid and status, and the live settings."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive, var
from textual.widget import Widget

from svcviz.plain import plain
from svcviz.servers.registry import model_of
from svcviz.tui.widgets.text import one_per_row


class LabHeader(Widget):
    DEFAULT_CSS = """
    LabHeader {
        height: 2;
        background: $panel;
    }
    """

    latest = var(None)
    paused = reactive(False)
    config = reactive(None)
    server_pid = reactive(None)
    status = reactive("")
    backlogs = reactive(())  # as the kernel has them: what a watched server's header shows
    program = reactive(None)  # a watched server's (name, cmdline), as it set them

    def __init__(self, *, watching: bool, **kwargs) -> None:
        super().__init__(**kwargs)
        self.watching = watching

    def watch_latest(self, update) -> None:
        if update is not None:
            self.config, self.server_pid, self.status = update.config, update.server_pid, update.status
            self.backlogs = tuple(sock.backlog for sock in update.snapshot.listen)
            root = update.snapshot.process(update.snapshot.root_pid) if self.watching else None
            self.program = None if root is None else (root.name, root.cmdline)

    def render(self) -> Text:
        config = self.config
        if config is None:
            return Text(" svcviz  starting the lab…", style="bold")
        top = Text(" svcviz ", style="bold reverse")
        top.append(f" {config.model} ", style="bold")
        top.append(f" {config.host}:{config.port} ")
        top.append(f" pid {self.server_pid if self.server_pid is not None else '-'} ")
        top.append(f" {self.status} ", style="green" if self.status in ("running", "watching") else "bold red")
        top.append(" paused " if self.paused else " live ", style="bold yellow reverse" if self.paused else "dim")
        if self.watching:
            top.append(" watch mode: model keys off ", style="dim")
            backlogs = ", ".join(str(backlog) for backlog in self.backlogs) or "-"
            second = Text(f" backlog: {backlogs} (from the kernel; the rest is its own)", style="dim")
            if self.program is not None:
                # Which program this is: its own name and command line, shown as plain text.
                name, cmdline = self.program
                second.append(f"   {plain(name)}: ", style="bold")
                second.append(plain(cmdline or "-"))
            return one_per_row([top, second])
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
