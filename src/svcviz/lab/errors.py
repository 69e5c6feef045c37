"""The one error the lab raises, shared by the pieces that raise it."""


class LabError(Exception):
    """Something the user can fix (a busy port, a bad option): one line."""
