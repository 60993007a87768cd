"""One module per fuzz target: ``test_one(data)``, ``seeds()``, optional ``TOKENS`` and ``setup(workdir)``."""
