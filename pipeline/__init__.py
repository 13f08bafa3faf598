"""defintel: document intelligence for Türkiye–Azerbaijan defence-industry cooperation news."""

__version__ = "0.1.0"
