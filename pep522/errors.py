"""The one exception type the tool reports to the user."""


class Error(Exception):
    """Something is wrong and the user can fix it.

    The message says what is wrong; *hint*, when given, is the command or
    action that fixes it.  The CLI prints both and exits with status 1.
    """

    def __init__(self, message, hint=None):
        super().__init__(message)
        self.hint = hint
