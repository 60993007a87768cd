import sys

from courriel.cli.main import main

sys.exit(main())
