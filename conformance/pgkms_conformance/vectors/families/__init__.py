"""One module per vector file; each exposes ``build() -> Family`` (``accumulated`` takes N)."""
