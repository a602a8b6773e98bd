"""The parts of the ack-latency benchmark (`tests/bench/test_ack_latency.py`): the load, the
naive design, the measures, and the pool and bot it runs against."""
