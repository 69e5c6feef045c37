"""Messages from the lab to the app.

The lab samples at 10/s; when the app is busy, a newer LabUpdated supersedes the pending
one (as toolong's messages do), so the queue never floods. A message is never changed
once posted: the events of a superseded update wait in the app's own buffer (see
SvcvizApp._run_lab), so the log loses nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.message import Message

if TYPE_CHECKING:
    from svcviz.lab import LabUpdate


class LabUpdated(Message):
    """The lab's newest sample: the snapshot, its clients and settings."""

    def __init__(self, update: LabUpdate) -> None:
        super().__init__()
        self.update = update

    def can_replace(self, message: Message) -> bool:
        # Textual asks the newer message whether it supersedes the pending older one.
        return isinstance(message, LabUpdated)
