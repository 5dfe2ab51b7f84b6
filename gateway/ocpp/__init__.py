"""ocpp."""
