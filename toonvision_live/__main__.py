from toonvision_live.cli import main

raise SystemExit(main())
