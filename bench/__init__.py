"""Benchmark harness: a raw-frame OCPP 1.6 load generator, a floor server and a runner.

The harness lives outside the gateway package on purpose: it must measure the gateway
from the outside, over real websockets, the way chargers see it (see docs/benchmarks.md).
"""
