"""``python -m refsnn``: the same command line as the ``refsnn`` script (see :mod:`refsnn.cli`)."""
import sys

from refsnn.cli import main

if __name__ == "__main__":
    sys.exit(main())
