"""podkernel: Jupyter kernels in Podman containers."""

__version__ = "0.1.0"
