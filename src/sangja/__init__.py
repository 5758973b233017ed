"""sangja: an OCI container runtime with a small container engine on top."""

__version__ = "0.1.0"
# The OCI runtime spec version this runtime implements (runc's --version prints it too).
OCI_VERSION = "1.2.0"
