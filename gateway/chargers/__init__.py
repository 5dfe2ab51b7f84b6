"""chargers."""
