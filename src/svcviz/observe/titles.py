"""Who a process says it is: its title (the cmdline as it set it) and its user's name.

nginx, PostgreSQL and gunicorn (setproctitle) overwrite their argv so that the cmdline
reads "nginx: worker process", "postgres: joe db 127.0.0.1(59934) idle". The text is the
watched process's to choose, so control characters are escaped here, once, before any
screen sees it.
"""

from __future__ import annotations

import pwd

MAX_TITLE = 200
_users: dict[int, str] = {}


def title_of(raw: str) -> str:
    """The cmdline text as a title: arguments joined by spaces, the padding a rewritten
    argv leaves (NULs, spaces) dropped, controls shown as \\xNN."""
    text = " ".join(part for part in raw.split("\0") if part).strip()
    if len(text) > MAX_TITLE:
        text = text[: MAX_TITLE - 1] + "…"
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" for ch in text)


def user_name(uid: int | None) -> str:
    """The name of uid (the number when the passwd database has none), "" when unknown."""
    if uid is None:
        return ""
    name = _users.get(uid)
    if name is None:
        try:
            name = pwd.getpwuid(uid).pw_name
        except KeyError:
            name = str(uid)
        _users[uid] = name
    return name
