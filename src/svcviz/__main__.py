from svcviz.cli import main

raise SystemExit(main())
