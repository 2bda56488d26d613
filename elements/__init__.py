"""datablox elements package."""
