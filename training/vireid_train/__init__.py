"""vireid training recipe."""
