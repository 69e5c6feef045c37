"""The kernel observer: process trees, fds, sockets and listen queues, as immutable snapshots."""
