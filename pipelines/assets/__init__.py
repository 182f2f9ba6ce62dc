"""One module per domain; each asset is a thin call into its plain package."""
