"""The one exception type that the command-line tools turn into a one-line message."""


class UserError(Exception):
  """Bad input from the user: a file, a line, a flag, a workdir.

  The message must say what is wrong and where; `nmt_flax.cli` prints it as
  `error: <message>` and exits with status 2, never with a traceback.
  """
