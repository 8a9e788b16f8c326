"""The command line's exit codes (documented in the README)."""

EXIT_OK = 0
EXIT_PARTIAL = 1  # some inputs failed; every other result was still written
EXIT_USAGE = 2  # bad arguments or input, a missing or broken model
EXIT_MISSING_DEPENDENCY = 3  # an optional extra is not installed
EXIT_INTERRUPTED = 130  # Ctrl-C
EXIT_PIPE_CLOSED = 141  # 128 + SIGPIPE, as a shell reports a command killed by it (stdout closed early)
