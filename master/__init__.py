"""datablox master package."""
