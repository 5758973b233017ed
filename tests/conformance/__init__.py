"""OCI runtime-spec conformance: one test per testable MUST/SHOULD (see conftest.py)."""
