"""Helpers that talk to the operating system: processes and /proc, private directories, this
host's facts, the watchdog's lifeline, and the kernelspecs on disk."""
