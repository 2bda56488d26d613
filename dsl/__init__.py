"""datablox dsl package."""
