"""The ``courriel`` command line."""
