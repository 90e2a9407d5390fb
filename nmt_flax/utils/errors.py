"""The one exception type that the command-line tools turn into a one-line message."""


class UserError(Exception):
  """Bad input from the user: a file, a line, an option, a workdir.

  The message says what is wrong and where, in the library's words: an error
  about an option names it as the API does (`UserError("must be positive, got
  0", option="units")` reads "units must be positive, got 0"). The command-line
  tools print `error: <message>` with the option spelled as their flag
  (`--units must be positive, got 0`) and exit with status 2, never with a
  traceback.
  """

  def __init__(self, message: str, option: str | None = None):
    super().__init__(f"{option} {message}" if option else message)
    self.message, self.option = message, option

  def as_flag(self, flags: dict[str, str] | None = None) -> str:
    """The message with its option named as a command-line flag: `flags` maps an
    option to its flag where they differ (texts -> --translate), else units -> --units."""
    if not self.option:
      return self.message
    flag = (flags or {}).get(self.option) or "--" + self.option.replace("_", "-")
    return f"{flag} {self.message}"
