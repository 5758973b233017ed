"""The OCI runtime: bundle -> launch plan -> container, and its lifecycle."""
