"""Huiliu shared library: the domain core deployed as a Lambda layer.

Kept import-light on purpose: every Lambda imports this package during its cold start.
"""

__version__ = "0.1.0"
