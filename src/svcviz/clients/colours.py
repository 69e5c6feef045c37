"""A client's colour by its state: one table for the picture (picture/draw.py) and the
clients table (tui/widgets/clients.py), so that the two never tell a state apart
differently. Here, beside the states, and light: the dashboard's first frame imports it."""

STATE_COLOURS = {
    "connecting": "cyan",
    "waiting": "yellow",
    "served": "green",
    "idle": "green",
    "refused": "red",
    "timed_out": "red",
    "closed": "grey50",
    "hung": "magenta",
    "reset": "red",
    "error": "red",
    "quit": "grey50",
    "half-open": "yellow",
    "listen": "cyan",
}
