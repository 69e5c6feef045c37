"""The server models, one module each, and what they share."""
