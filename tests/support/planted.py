"""A pickle an attacker would plant where a forged task result points."""


class Planted:
    """Unpickled, creates `marker`: any code would run the same way."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))
