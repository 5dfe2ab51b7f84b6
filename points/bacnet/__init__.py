"""bacnet."""
