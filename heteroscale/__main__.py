from heteroscale.cli import main

raise SystemExit(main())
