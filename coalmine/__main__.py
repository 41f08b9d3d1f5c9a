import sys

from coalmine.cli import main

sys.exit(main())
