"""The pipeline screen's picture: each process a row with its fds 0, 1 and 2, and each pipe
drawn as the same thing wherever it is held: one name and one colour (`pipe A`), so the
three cats' fd 1 and the parser's fd 0 are seen to be one pipe, not three alike.

Pipes are named in the pipeline's order, A for the first hop (see pipeline_order), and keep
their name while the pipeline runs (a process exiting does not rename the others). svcviz's own ends have names of their
own: the cats' inputs it feeds (`feed a`) and the last stage's output it reads (`to svcviz`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.style import Style
from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from svcviz.observe.pipes import End, Member, Pipe, PipelineView
from svcviz.plain import plain
from svcviz.tui.pipelines import is_parser
from svcviz.tui.widgets.text import one_per_row

if TYPE_CHECKING:
    from typing import Unpack

    from svcviz.tui.widgets.text import WidgetOptions

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
COLOURS = 6  # pipeline--pipe-0 .. -5 in app.tcss; the seventh pipe takes the first colour again
FEED_NAMES = "abc"  # the cat keys: feed a is what key a types into


def command_of(member: Member, root: int) -> str:
    """The process as the lecture writes it: `svcviz parse`, `cat`, `bash (subshell)`."""
    if is_parser(member):
        return "svcviz parse"
    if member.name == "bash":
        return "bash (the pipeline's shell)" if member.pid == root else "bash (subshell)"
    return plain(member.command or member.name)


def state_of(member: Member) -> str:
    if member.state == "T":
        return "stopped"
    if member.state == "R":
        return "running"
    return f"in {member.call}" if member.call else {"S": "sleeping", "D": "disk wait"}.get(member.state, member.state)


def count(value: int | None) -> str:
    return "?" if value is None else f"{value:,}"


class PipelinePanel(Widget, can_focus=False):
    """Draws a PipelineView; the screen names the pipeline's shell and the feeds (forget)
    and says which feeds svcviz still holds open (open_feeds) before it sets `view`."""

    COMPONENT_CLASSES = {
        *(f"pipeline--pipe-{i}" for i in range(COLOURS)),
        "pipeline--feed",
        "pipeline--out",
        "pipeline--heading",
    }
    DEFAULT_CSS = """
    PipelinePanel {
        border: round $primary;
        border-title-color: $accent;
        height: 1fr;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    """
    BORDER_TITLE = "processes and their pipes"

    view: reactive[PipelineView | None] = reactive(None, always_update=True)

    def __init__(self, **kwargs: Unpack[WidgetOptions]) -> None:
        super().__init__(**kwargs)
        self.root = -1  # the pipeline's shell
        self.feeds: dict[int, int] = {}  # inode of a cat's input -> the cat
        self.open_feeds: set[int] = set()  # those svcviz still writes (no EOF yet)
        self._names: dict[int, str] = {}

    def forget(self, root: int, feeds: dict[int, int]) -> None:
        """A new pipeline: its pipes are named afresh, A first."""
        self.root, self.feeds, self.open_feeds = root, feeds, set(feeds)
        self._names = {}
        self.view = None

    def name_of(self, inode: int, root: Member | None) -> str:
        if inode in self.feeds:
            return f"feed {FEED_NAMES[self.feeds[inode]]}"
        if root is not None and root.ends[1].pipe == inode:
            return "to svcviz"  # the shell's stdout: the pipe svcviz reads the last stage's lines from
        if inode not in self._names:
            self._names[inode] = f"pipe {LETTERS[len(self._names) % len(LETTERS)]}"
        return self._names[inode]

    def pipeline_order(self, pipe: Pipe) -> tuple[float, int]:
        """Left to right as bash wrote the line: it forks the stages in order, so a pipe's
        first holder other than the shell has a smaller pid the further left it is. Not the
        shell's own pids: it holds each new pipe a moment before the stage that takes it."""
        holders = [pid for pid, _ in (*pipe.writers, *pipe.readers) if pid != self.root]
        return (min(holders, default=float("inf")), pipe.inode)

    def _style(self, name: str) -> Style:
        if name.startswith("feed"):
            return self.get_component_rich_style("pipeline--feed")
        if name == "to svcviz":
            return self.get_component_rich_style("pipeline--out")
        return self.get_component_rich_style(f"pipeline--pipe-{LETTERS.index(name[-1]) % COLOURS}")

    def render(self) -> Text:
        view = self.view
        if view is None:
            return Text("")
        if not view.members:
            return Text("no process of the pipeline is left", style="dim")
        root = next((m for m in view.members if m.pid == self.root), None)
        names = {pipe.inode: self.name_of(pipe.inode, root) for pipe in sorted(view.pipes, key=self.pipeline_order)}
        heading = self.get_component_rich_style("pipeline--heading")
        lines = [
            Text(
                f"{'pid':>7} {'ppid':>7}  {'process':<28} {'state':<12} {'fd 0':<11} {'fd 1':<11} {'fd 2':<11} "
                f"{'read B':>9} {'wrote B':>9}  other pipe fds",
                style=heading,
            )
        ]
        for member in view.members:
            line = Text(f"{member.pid:>7} {member.ppid:>7}  ")
            line.append(f"{command_of(member, self.root)[:28]:<28} ")
            line.append(f"{state_of(member)[:12]:<12} ")
            for end in member.ends[:3]:
                self._append_end(line, end, names, width=11)
            read, wrote = member.io or (None, None)
            line.append(f"{count(read):>9} {count(wrote):>9}  ")
            for end in member.ends[3:]:
                line.append(f"{end.fd}=")
                self._append_end(line, end, names)
            lines.append(line)
        lines.append(Text(""))
        ours_last = sorted(view.pipes, key=lambda pipe: not names[pipe.inode].startswith("pipe "))
        lines.extend(self._pipe_line(pipe, names, view) for pipe in ours_last)
        return one_per_row(lines)

    def _append_end(self, line: Text, end: End, names: dict[int, str], width: int = 0) -> None:
        """One fd, then a space: a pipe by its name and end (`pipe A w`), else its link text;
        cut or padded to width when one is given."""
        if end.pipe is not None and end.pipe in names:
            name = names[end.pipe]
            label, style = f"{name} {'w' if end.writes else 'r'}", self._style(name)
        else:
            label, style = plain(end.link or "-"), Style()
        if width:
            label = f"{label[:width]:<{width}}"
        line.append(label, style=style)
        line.append(" ")

    def _pipe_line(self, pipe: Pipe, names: dict[int, str], view: PipelineView) -> Text:
        name = names[pipe.inode]
        who = {m.pid: command_of(m, -1).split(" (")[0] for m in view.members}
        line = Text()
        line.append(f"{name:<10}", style=self._style(name))
        line.append(f" inode {pipe.inode:<9} ")
        if pipe.waiting is None:
            line.append("bytes waiting: unreadable (not our process)")
        else:
            full = " (full: its writer blocks)" if pipe.size is not None and pipe.waiting >= pipe.size else ""
            line.append(f"{pipe.waiting:>7,} B waiting of {count(pipe.size)}{full}", style="bold" if full else "")
        writers = ", ".join(f"{who[pid]} {pid} fd {fd}" for pid, fd in pipe.writers)
        readers = ", ".join(f"{who[pid]} {pid} fd {fd}" for pid, fd in pipe.readers)
        if pipe.inode in self.open_feeds:
            writers = f"svcviz (key {name[-1]})" + (f", {writers}" if writers else "")
        if name == "to svcviz":
            readers = "svcviz (lines out, below)" + (f", {readers}" if readers else "")
        line.append(f"   writers: {plain(writers) or 'none left (its readers get EOF)'}")
        line.append(f"   readers: {plain(readers) or 'none left (a write gets SIGPIPE)'}")
        return line
