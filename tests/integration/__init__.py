"""Tests of the running gateway: real websocket, BACnet and Modbus servers on 127.0.0.1, port 0."""
