"""Messages from the lab to the app.

The lab samples at 10/s; when the app is busy a newer LabUpdated replaces the pending one
(as toolong's messages do) so the queue never floods, and the replaced one's events are
carried over so the log loses nothing.
"""

from __future__ import annotations

from textual.message import Message


class LabUpdated(Message):
    def __init__(self, update) -> None:  # update: svcviz.lab.LabUpdate
        super().__init__()
        self.update = update
        self.events = tuple(update.events)

    def can_replace(self, message: Message) -> bool:
        if not isinstance(message, LabUpdated):
            return False
        # Whichever of the two survives (Textual's direction has varied), it keeps both's events.
        merged = tuple(sorted(set(self.events) | set(message.events), key=lambda e: e.time))
        self.events = message.events = merged
        return True
