"""Private: not part of the extension API."""

import sys

from .cli import main

sys.exit(main())
