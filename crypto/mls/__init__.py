"""MLS (RFC 9420) for cipher suites 1 and 3: pure, sans-I/O."""
