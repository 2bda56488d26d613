"""datablox datablox package."""
