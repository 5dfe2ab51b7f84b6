"""ocpp-bms-gateway: an OCPP 1.6-J central system that serves EV chargers to a BMS."""

__version__ = "0.1.0"
