"""Example systems under test."""
