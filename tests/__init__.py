"""The test suite. A package, so that its files import the shared helpers as ``tests.conftest``."""
