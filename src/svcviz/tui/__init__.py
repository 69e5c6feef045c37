"""The dashboard: a Textual app drawing what the lab sees. Only this package imports Textual."""
