"""Recordings of what the dashboard sees: written sample by sample, read back, replayed."""
