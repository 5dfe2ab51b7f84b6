"""Jinja2 templates for web pages and exports; a package so that `pip install .` ships them."""
