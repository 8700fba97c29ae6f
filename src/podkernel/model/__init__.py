"""Plain values at the bottom of the house: a kernel's settings, one start's launch, label names,
the connection file and the remote host's URL. They import nothing of podkernel but its error type."""
