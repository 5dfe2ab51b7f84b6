"""Tests on plain objects: no sockets, no servers, no subprocesses of the gateway."""
