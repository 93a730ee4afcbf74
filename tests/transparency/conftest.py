"""Marker for the transparency tests that open sockets or start processes.

Those live in files named ``test_net_*.py`` and carry ``pytest.mark.net``;
deselect them with ``-m "not net"``.
"""


def pytest_configure(config):
    config.addinivalue_line("markers", "net: opens local sockets or starts processes")
