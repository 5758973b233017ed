import sys

from sangja.cli.main import main

sys.exit(main())
