"""tocsin package."""
