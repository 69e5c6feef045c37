"""The system calls of a server's tree as they happen, from strace: launch or attach
(strace.py), its output parsed in one place (parse.py), into TraceEvents (events.py)."""
