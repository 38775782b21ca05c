"""Bundled demo data: reference.csv (see make_reference.py) and config.yml for the image."""
