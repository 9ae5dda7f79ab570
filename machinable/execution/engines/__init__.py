"""Engines run trial specs: ``local`` (in process), ``process`` (worker processes), ``ray`` (Ray tasks)."""
