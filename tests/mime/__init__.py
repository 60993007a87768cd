"""Tests of courriel.mime."""
