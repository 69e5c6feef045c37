"""The top lines: which server, where, its pid and status, and the live settings."""

from __future__ import annotations

from rich.text import Text

from svcviz.plain import plain
from svcviz.servers.registry import model_of
from svcviz.tui.widgets.text import Panel, one_per_row


class LabHeader(Panel):
    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.update_ = None
        self.paused = False
        self.watching = False

    def show(self, update, *, paused: bool, watching: bool) -> None:
        self.update_, self.paused, self.watching = update, paused, watching
        self.changed()

    def build(self) -> Text:
        u = self.update_
        if u is None:
            return Text(" svcviz  starting the lab…", style="bold")
        config = u.config
        top = Text(" svcviz ", style="bold reverse")
        top.append(f" {config.model} ", style="bold")
        top.append(f" {config.host}:{config.port} ")
        top.append(f" pid {u.server_pid if u.server_pid is not None else '-'} ")
        top.append(f" {u.status} ", style="green" if u.status in ("running", "watching") else "bold red")
        top.append(" paused " if self.paused else " live ", style="bold yellow reverse" if self.paused else "dim")
        if self.watching:
            top.append(" watch mode: model keys off ", style="dim")
        if self.watching:
            backlogs = ", ".join(str(sock.backlog) for sock in u.snapshot.listen) or "-"
            second = Text(f" backlog: {backlogs} (from the kernel; the rest is its own)", style="dim")
            root = next((p for p in u.snapshot.processes if p.pid == u.snapshot.root_pid), None)
            if root is not None:
                # Which program this is: its own name and command line, shown as plain text.
                second.append(f"   {plain(root.name)}: ", style="bold")
                second.append(plain(root.cmdline or "-"))
            return one_per_row([top, second])
        model = model_of(config.model)
        forks = model is not None and model.forks
        settings = Text(" ")
        settings.append(f"SIGCHLD: {config.sigchld}", style="bold" if forks else "dim")
        settings.append("   ")
        settings.append(
            f"close fd in parent: {'yes' if config.close_fd else 'no'}",
            style=("bold" if config.close_fd else "bold red") if forks else "dim",
        )
        settings.append(f"   backlog: {config.backlog}   delay: {config.delay:g}s")
        if model is not None and model.has_pool:
            settings.append(f"   workers: {config.workers}")
        return one_per_row([top, settings])
