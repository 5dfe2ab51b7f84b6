"""charging."""
