"""Point catalog and the BMS protocols (BACnet/IP, Modbus TCP) that serve it."""
