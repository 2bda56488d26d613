"""A user module that fails while being imported (for the dsl tests)."""

raise RuntimeError("boom while importing")
