"""The one error type a user can cause: its message is shown as a single line on stderr."""


class PodkernelError(Exception):
    """A problem the user can fix; the message says what is wrong and what to do."""
