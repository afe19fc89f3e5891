import sys

from pep522.cli import main

sys.exit(main())
