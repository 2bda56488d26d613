"""datablox caretaker package."""
