"""Tests: model tests on plain objects, integration tests over loopback."""
