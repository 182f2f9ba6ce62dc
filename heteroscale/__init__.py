"""heteroscale: the application package (CLI and project paths)."""
