"""Shared by both code locations: warehouse resource, IO manager, asset-key contract."""
