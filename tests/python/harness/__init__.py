"""Test harness for the real-client suites: servers, clients, proxy, extra requests."""
