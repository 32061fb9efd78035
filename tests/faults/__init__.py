"""Test support for the reliability suite: a fault-injecting HTTP proxy and load workers.

Nothing here is imported by the library; tests import it as ``faults.<module>`` (pytest puts
``tests/`` on ``sys.path`` through its rootdir conftest).
"""
