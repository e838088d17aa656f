"""The Import Manager's pages: each builds plain data once, rendered as HTML or JSON."""
