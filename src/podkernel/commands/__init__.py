"""One module per ``podkernel`` command."""
